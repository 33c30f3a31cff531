"""sources plugins."""
