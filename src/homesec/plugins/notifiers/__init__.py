"""notifiers plugins."""
