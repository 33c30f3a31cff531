"""Clip sources: cameras and folders that produce finalized clips on local disk."""
