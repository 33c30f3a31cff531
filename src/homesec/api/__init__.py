"""The HTTP API (FastAPI): probes, the versioned JSON API, media, metrics and the web UI."""
