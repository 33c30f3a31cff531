"""The clip pipeline: stages, retries, recovery and retention."""
