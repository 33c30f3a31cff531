"""filters plugins."""
