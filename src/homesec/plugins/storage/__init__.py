"""storage plugins."""
