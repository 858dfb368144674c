"""The SQL unit of work, and the engine and session factory it runs on.

``make_engine(url)`` → ``make_session_factory(engine)`` → ``SqlUnitOfWork(factory)`` is the whole
wiring; the schema must exist first (:func:`adapters.storage.sql.migrations.upgrade_to_head`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from adapters.storage.sql.repositories import (
    SqlEquityRepository,
    SqlFillRepository,
    SqlOrderRepository,
    SqlPositionRepository,
    SqlRunRepository,
    SqlSignalRepository,
    SqlTradeRepository,
)
from domain.errors import ConfigError
from domain.ports import (
    EquityRepository,
    FillRepository,
    OrderRepository,
    PositionRepository,
    RunRepository,
    SignalRepository,
    TradeRepository,
)


def parse_database_url(url: str) -> URL:
    """``url`` parsed, with a driverless PostgreSQL URL pointed at psycopg 3.

    ``postgres://`` and ``postgresql://`` become ``postgresql+psycopg://`` (SQLAlchemy would pick
    psycopg2 otherwise, which is not installed).

    Raises
    ------
    ConfigError
        If ``url`` is not a URL, or names a database other than SQLite or PostgreSQL.
    """
    try:
        parsed = sa.make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url!r}", field="database_url") from exc
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        shown = parsed.render_as_string(hide_password=True)
        raise ConfigError(
            f"database URL must be sqlite or postgresql, was {shown!r}", field="database_url"
        )
    return parsed


def _is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def _sqlite_engine(url: URL) -> Engine:
    memory = _is_sqlite_memory(url)
    database = url.database or ""
    if not memory and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if memory:
        # One shared connection, or every thread would see its own empty database.
        options["poolclass"] = StaticPool
    engine = sa.create_engine(url, **options)

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            if not memory:
                # Readers (the API) do not block the writer (the engine) and vice versa.
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    return engine


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine for ``url``.

    SQLite (``sqlite:///var/lootcapital.db``): the file's parent directory is created, the
    connection may be used from any thread, the journal is in WAL mode and foreign keys are
    enforced; an in-memory URL (``sqlite://``) shares one connection. PostgreSQL
    (``postgresql+psycopg://user@host:5432/db``): psycopg 3, connections checked before use.

    Parameters
    ----------
    url:
        Database URL (see :func:`parse_database_url`).

    Raises
    ------
    ConfigError
        If ``url`` is malformed or names an unsupported database.
    """
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return sa.create_engine(parsed, pool_pre_ping=True)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A thread-safe factory of sessions bound to ``engine`` (objects survive a commit)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


class SqlUnitOfWork:
    """The :class:`~domain.ports.UnitOfWork` port over one SQL transaction.

    ``with uow: ...; uow.commit()``: entering opens a session and its repositories; leaving
    rolls back whatever was not committed (always on an exception) and closes the session, so
    nothing is half-written. An instance may be entered again after it is left, but not while it
    is in use: give each thread (or request) its own instance; they may share one factory.

    Parameters
    ----------
    session_factory:
        Callable returning a new :class:`~sqlalchemy.orm.Session`, usually
        :func:`make_session_factory`'s result.
    """

    # Declared as the ports (protocol attributes are invariant); the values are the Sql* classes.
    orders: OrderRepository
    fills: FillRepository
    trades: TradeRepository
    positions: PositionRepository
    equity: EquityRepository
    signals: SignalRepository
    runs: RunRepository

    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._session_factory = session_factory
        self._session: Session | None = None

    def __enter__(self) -> SqlUnitOfWork:
        """Open a session and the repositories on it.

        Raises
        ------
        RuntimeError
            If this unit of work is already in use.
        """
        if self._session is not None:
            raise RuntimeError("this unit of work is already in use; create another one")
        session = self._session_factory()
        self._session = session
        self.orders = SqlOrderRepository(session)
        self.fills = SqlFillRepository(session)
        self.trades = SqlTradeRepository(session)
        self.positions = SqlPositionRepository(session)
        self.equity = SqlEquityRepository(session)
        self.signals = SqlSignalRepository(session)
        self.runs = SqlRunRepository(session)
        return self

    def __exit__(self, *exc: object) -> None:
        """Roll back anything not committed and close the session."""
        session, self._session = self._session, None
        if session is None:
            return
        try:
            session.rollback()
        finally:
            session.close()

    def commit(self) -> None:
        """Make every write since entering (or the last commit) durable, atomically."""
        self._active().commit()

    def rollback(self) -> None:
        """Discard every write since entering (or the last commit)."""
        self._active().rollback()

    def _active(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is not entered; use it in a `with` block")
        return self._session
