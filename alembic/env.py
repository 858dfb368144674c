"""Alembic environment: migrates the LootCapital schema (``adapters/storage/sql/tables.py``).

The database URL comes, first found, from ``config.attributes["sqlalchemy.url"]`` (set by
:func:`adapters.storage.sql.migrations.upgrade_to_head`), ``alembic -x url=...``, the
``LOOTCAPITAL_DATABASE_URL`` environment variable, or ``sqlalchemy.url`` in ``alembic.ini``.
A caller may also pass an open connection as ``config.attributes["connection"]``.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from adapters.storage.sql.tables import metadata
from adapters.storage.sql.unit_of_work import make_engine

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = (
        config.attributes.get("sqlalchemy.url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("LOOTCAPITAL_DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise RuntimeError("no database URL: set LOOTCAPITAL_DATABASE_URL or pass -x url=...")
    return str(url)


def _configure(**options: object) -> None:
    context.configure(target_metadata=metadata, compare_type=True, **options)


def _run_on(connection: Connection) -> None:
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit the migration SQL to stdout (``alembic upgrade head --sql``)."""
    url = _database_url()
    _configure(url=url, literal_binds=True, render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate the database over a connection (given, or opened from the URL)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = make_engine(_database_url())
    try:
        with engine.connect() as new_connection:
            _run_on(new_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
