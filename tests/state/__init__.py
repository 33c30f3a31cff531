"""Tests of the state store: schema, migrations, database URLs."""
