"""The SQL unit of work, and the engine and session factory it runs on.

``make_engine(url)`` → ``make_session_factory(engine)`` → ``SqlUnitOfWork(factory, run_id)`` is
the whole wiring; the schema must exist first
(:func:`adapters.storage.sql.migrations.upgrade_to_head`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from adapters.storage.sql.alert_repository import SqlAlertRepository
from adapters.storage.sql.model_repository import SqlModelRepository
from adapters.storage.sql.pipeline_repository import SqlPipelineEventRepository
from adapters.storage.sql.repositories import (
    SqlEquityRepository,
    SqlFillRepository,
    SqlFundingRepository,
    SqlOrderRepository,
    SqlPositionRepository,
    SqlRiskRepository,
    SqlRunRepository,
    SqlSignalRepository,
    SqlTradeRepository,
)
from adapters.storage.sql.trade_history import SqlTradeHistoryRepository
from domain.errors import ConfigError
from domain.ports import (
    AlertRepository,
    EquityRepository,
    FillRepository,
    ModelRepository,
    OrderRepository,
    PipelineEventRepository,
    PositionRepository,
    RiskRepository,
    RunRepository,
    SignalRepository,
    TradeHistoryRepository,
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


_JSON = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def _json_dumps(value: Any) -> str:
    """Strict, compact JSON: NaN/infinity raise ``ValueError`` on both databases (PostgreSQL
    would refuse them, SQLite would store invalid JSON); other objects raise ``TypeError``."""
    return _JSON.encode(value)


def _is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def _sqlite_engine(url: URL) -> Engine:
    memory = _is_sqlite_memory(url)
    database = url.database or ""
    if not memory and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "connect_args": {"check_same_thread": False},
        "json_serializer": _json_dumps,
    }
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
                # In WAL mode a commit then needs no fsync (checkpoints do): a crash of the
                # machine may lose the last commits, never corrupt the database.
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    return engine


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine for ``url``.

    SQLite (``sqlite:///var/lootcapital.db``): the file's parent directory is created, the
    connection may be used from any thread, the journal is in WAL mode with
    ``synchronous=NORMAL`` (commits do not wait for fsync) and foreign keys are enforced; an
    in-memory URL (``sqlite://``) shares one connection. JSON columns are written strictly
    (NaN or infinity raise ``ValueError``). PostgreSQL
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
    return sa.create_engine(parsed, pool_pre_ping=True, json_serializer=_json_dumps)


def make_session_factory(engine: Engine) -> Callable[[], Connection]:
    """A thread-safe factory of database sessions on ``engine``: each call checks a
    :class:`~sqlalchemy.engine.Connection` out of the engine's pool (``engine.connect``)."""
    return engine.connect


class SqlUnitOfWork:
    """The :class:`~domain.ports.UnitOfWork` port over one SQL transaction, for one run.

    ``with uow: ...; uow.commit()``: entering checks a connection out of the pool and opens the
    repositories on it; leaving rolls back whatever was not committed (always on an exception)
    and returns the connection, so nothing is half-written. Every repository but ``runs`` and
    ``models`` (the model registry) reads and writes only the rows of ``run_id``. After
    ``commit()`` or ``rollback()`` the unit of work stays usable: the next statement starts a
    new transaction. An instance may be entered again after it is left, but not while it is in
    use: give each thread (or request) its own instance; they may share one factory.

    Parameters
    ----------
    session_factory:
        Callable returning a new :class:`~sqlalchemy.engine.Connection`, usually
        :func:`make_session_factory`'s result.
    run_id:
        The run whose rows the repositories read and write.
    keep_connection:
        Keep the connection between uses (until :meth:`close`), for a writer that commits
        often (the engine thread commits every bar); by default each use checks one out of
        the pool and returns it.

    Raises
    ------
    ValueError
        If ``run_id`` is empty.
    """

    # Declared as the ports (protocol attributes are invariant); the values are the Sql* classes.
    orders: OrderRepository
    fills: FillRepository
    trades: TradeRepository
    trade_history: TradeHistoryRepository
    positions: PositionRepository
    equity: EquityRepository
    signals: SignalRepository
    runs: RunRepository
    risk: RiskRepository
    pipeline: PipelineEventRepository
    models: ModelRepository
    alerts: AlertRepository

    def __init__(
        self,
        session_factory: Callable[[], Connection],
        run_id: str,
        *,
        keep_connection: bool = False,
    ) -> None:
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"run_id must be a non-empty string, was {run_id!r}")
        self._session_factory = session_factory
        self._connection: Connection | None = None
        self._kept: Connection | None = None
        self._keep = keep_connection
        self.run_id = run_id
        connect = self._in_transaction  # the repositories work on the connection of the use
        self.orders = SqlOrderRepository(connect, run_id)
        self.fills = SqlFillRepository(connect, run_id)
        self.trades = SqlTradeRepository(connect, run_id)
        self.trade_history = SqlTradeHistoryRepository(connect, run_id)
        self.funding = SqlFundingRepository(connect, run_id)
        self.positions = SqlPositionRepository(connect, run_id)
        self.equity = SqlEquityRepository(connect, run_id)
        self.signals = SqlSignalRepository(connect, run_id)
        self.runs = SqlRunRepository(connect)
        self.risk = SqlRiskRepository(connect, run_id)
        self.pipeline = SqlPipelineEventRepository(connect, run_id)
        self.models = SqlModelRepository(connect)
        self.alerts = SqlAlertRepository(connect, run_id)

    def __enter__(self) -> SqlUnitOfWork:
        """Check out a connection (or take the one kept since the last use).

        Raises
        ------
        RuntimeError
            If this unit of work is already in use.
        """
        if self._connection is not None:
            raise RuntimeError("this unit of work is already in use; create another one")
        self._connection = self._kept or self._session_factory()
        self._kept = None
        return self

    def __exit__(self, *exc: object) -> None:
        """Roll back anything not committed and return the connection to the pool (or keep
        it for the next use, with ``keep_connection``, unless the block raised: a connection
        that failed may be broken)."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        kept = False
        try:
            connection.rollback()
            kept = self._keep and (not exc or exc[0] is None)
        finally:
            if kept:
                self._kept = connection
            else:
                connection.close()

    def close(self) -> None:
        """Return a kept connection to the pool (the unit of work may be used again)."""
        kept, self._kept = self._kept, None
        if kept is not None:
            kept.close()

    def commit(self) -> None:
        """Make every write since entering (or the last commit) durable, atomically.

        Raises
        ------
        sqlalchemy.exc.IntegrityError
            If a deferred constraint fails (a fill whose order was never stored); nothing of
            the transaction is written.
        """
        self._active().commit()

    def rollback(self) -> None:
        """Discard every write since entering (or the last commit)."""
        self._active().rollback()

    def _active(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("the unit of work is not entered; use it in a `with` block")
        return self._connection

    def _in_transaction(self) -> Connection:
        """The connection, inside a transaction (begun here, so that writes run on the
        driver's cursor belong to the transaction that ``commit()`` ends)."""
        connection = self._active()
        if not connection.in_transaction():
            connection.begin()
        return connection
