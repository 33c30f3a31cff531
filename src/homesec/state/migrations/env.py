"""Alembic environment: runs on the connection that `StateStore` passes in.

HomeSec applies its migrations itself at start-up (`StateStore.ensure_schema`), on its own async
engine, so this file never builds an engine or reads a URL: the connection arrives in
`config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from homesec.state.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "HomeSec migrations run from the application (StateStore.ensure_schema), "
        "which passes a connection in config.attributes['connection']"
    )
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
