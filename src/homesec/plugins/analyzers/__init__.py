"""analyzers plugins."""
