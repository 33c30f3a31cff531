"""Tests of ClipRepository against real SQLite and Postgres databases."""
