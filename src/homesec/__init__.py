"""HomeSec: a self-hosted, local-first AI pipeline for home security cameras."""

__version__ = "0.1.0"
