"""Hypothesis settings shared by the fuzz tests: bounded and reproducible."""

from hypothesis import HealthCheck, settings

FUZZ = settings(
    max_examples=200,
    deadline=None,  # one huge input may take a while; the example count bounds the run
    derandomize=True,  # the same examples every run, no database of past failures
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""A few seconds per test; found crashes are kept as `@example`s."""
