"""ClipRepository: the one way the pipeline reads and writes clip state and events."""
