"""Clips made once per session from the shared media."""

from tests.video.clip_fixtures import faststart_empty_scene

__all__ = ["faststart_empty_scene"]
