"""The HTTP API (FastAPI): health probes and diagnostics."""
