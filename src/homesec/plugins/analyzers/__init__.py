"""VLM analyzers: turn a clip into a structured summary and a risk level."""
