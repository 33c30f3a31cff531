"""Pydantic models and enums shared by the core and the plugins."""
