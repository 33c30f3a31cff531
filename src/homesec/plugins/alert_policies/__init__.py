"""alert policies plugins."""
