"""Object filters: decide what is in a clip."""
