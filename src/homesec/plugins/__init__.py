"""Plugins: sources, storage, filters, analyzers, alert policies and notifiers."""
