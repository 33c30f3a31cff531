# `make run` and `make test` install what they need first (scripts/bootstrap.sh).
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
CONFIG ?= config/local.yaml
# Offline development: use the test models when the shared folder is next to the checkout.
export HOMESEC_MODEL_DIR ?= $(wildcard $(CURDIR)/../shared/models)

.PHONY: setup setup-test run test test-fast check lint typecheck format docs bench

setup:
	@./scripts/bootstrap.sh

setup-test:
	@./scripts/bootstrap.sh --test

run: setup
	$(UV) run homesec run --config $(CONFIG)

test: setup-test
	$(UV) run pytest

# The quick part, for the edit-test loop: leaves out the tests marked `slow` (tests/conftest.py).
test-fast: setup-test
	$(UV) run pytest -m "not slow"

check: setup lint typecheck

lint:
	$(UV) run ruff check src tests bench
	$(UV) run ruff format --check src tests bench

typecheck:
	$(UV) run mypy src tests

format:
	$(UV) run ruff check --fix src tests bench
	$(UV) run ruff format src tests bench

# The configuration reference, from the config models (a test fails when it is out of date).
docs: setup
	$(UV) run homesec config-reference > docs/configuration.md

bench: setup-test
	$(UV) run python -m bench.pipeline
	$(UV) run python -m bench.filter
	$(UV) run python -m bench.vlm
	$(UV) run python -m bench.upload
	$(UV) run python -m bench.latency
	$(UV) run python -m bench.latency --source rtsp
	$(UV) run python -m bench.motion
	$(UV) run python -m bench.api
	$(UV) run python -m bench.ingest
	$(UV) run python -m bench.relevance
