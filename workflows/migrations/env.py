"""Alembic environment for the event store, used programmatically (no alembic.ini).

``workflows.database.migrate`` passes an open connection, already inside its
transaction, as ``config.attributes["connection"]``; the command line form
(``alembic -x url=… upgrade head`` with a hand-made config) is supported too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from workflows.database import make_engine, write_transaction
from workflows.store.schema import metadata


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: Alembic rebuilds the table instead.
        render_as_batch=sqlite,
        # Our SQLite engines emit BEGIN themselves, so DDL really is transactional there.
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass a connection in config.attributes or -x url=…")
    engine = make_engine(url)
    try:
        with write_transaction(engine) as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported")
_run_online()
