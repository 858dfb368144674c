"""Schema migrations: the only way the SQL schema is created or changed.

The revisions live in the repository's ``alembic/`` directory; these functions build the Alembic
configuration in code, so no ``alembic.ini`` or working directory is needed at run time.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from adapters.storage.sql.unit_of_work import make_engine

ALEMBIC_DIR: Path = Path(__file__).resolve().parents[3] / "alembic"
"""The repository's Alembic script directory (``env.py``, ``versions/``)."""


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the database at ``url``.

    The URL travels in ``config.attributes`` rather than the ini options, so characters such as
    ``%`` in a password need no escaping.

    Parameters
    ----------
    url:
        SQLAlchemy database URL (``sqlite:///...`` or ``postgresql+psycopg://...``).
    """
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.attributes["sqlalchemy.url"] = url
    return config


def upgrade_to_head(url: str) -> None:
    """Bring the schema of the database at ``url`` to the newest revision.

    Creates the tables in an empty database (and the SQLite file's directory); does nothing when
    the schema is already current, so it is safe to call at every start.

    Raises
    ------
    ConfigError
        If ``url`` is malformed or names an unsupported database.
    """
    command.upgrade(alembic_config(url), "head")


def head_revision() -> str | None:
    """The newest revision id in ``alembic/versions`` (None when there is none)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None when it was never migrated.

    Raises
    ------
    ConfigError
        If ``url`` is malformed or names an unsupported database.
    """
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
