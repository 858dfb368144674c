"""SQL schema on real SQLite and PostgreSQL: exact decimal columns, migrations, the engine."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from adapters.storage.sql.migrations import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from adapters.storage.sql.tables import metadata
from adapters.storage.sql.unit_of_work import (
    SqlUnitOfWork,
    make_engine,
    make_session_factory,
    parse_database_url,
)
from domain.errors import ConfigError
from domain.model import (
    Direction,
    EquityPoint,
    ExitPlan,
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Signal,
    TimeInForce,
)

NewUow = Callable[..., SqlUnitOfWork]
T0 = 1_700_000_000_000  # ms UTC
WIDEST = Decimal("-12345678901234567890.123456789012345678")  # 38 digits, 18 after the point

# --- exact decimal columns --------------------------------------------------------------------


def test_decimals_keep_38_digits_and_signs(new_uow: NewUow) -> None:
    short = Position(
        "ETHUSDT",
        qty=WIDEST,
        entry_price=Decimal("0.000000000000000001"),
        opened_time=T0,
        entry_fees=Decimal("1E+3"),
    )

    with new_uow() as uow:
        uow.positions.upsert(short)
        uow.commit()
    with new_uow() as uow:
        (got,) = uow.positions.list()

    assert got == short
    assert str(got.qty) == str(WIDEST) and str(got.entry_fees) == "1000"


def test_decimals_round_half_even_past_18_places_and_refuse_20_digit_integers(
    new_uow: NewUow,
) -> None:
    with new_uow() as uow:
        uow.positions.upsert(Position("A", qty=Decimal("0.0000000000000000025")))
        uow.commit()
        with pytest.raises(ValueError, match="must be < 1e20"):
            uow.positions.upsert(Position("B", qty=Decimal("1E+20")))
    with new_uow() as uow:
        (got,) = uow.positions.list()

    assert got.qty == Decimal("0.000000000000000002")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.decimals(min_value=-(10**19), max_value=10**19, places=18, allow_nan=False))
def test_any_in_range_decimal_round_trips_exactly(new_uow: NewUow, qty: Decimal) -> None:
    with new_uow() as uow:
        uow.positions.upsert(Position("BTCUSDT", qty=qty))
        uow.commit()
    with new_uow() as uow:
        (got,) = uow.positions.list()

    assert got.qty == qty


# --- engine and migrations --------------------------------------------------------------------


def test_migrations_start_from_nothing_and_upgrade_is_idempotent(
    unmigrated_database_url: str,
) -> None:
    before = current_revision(unmigrated_database_url)

    upgrade_to_head(unmigrated_database_url)
    upgrade_to_head(unmigrated_database_url)

    assert before is None
    assert current_revision(unmigrated_database_url) == head_revision()


def test_migrated_schema_matches_the_table_metadata(engine: Engine) -> None:
    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), metadata)

    assert diffs == []


def test_schema_comparison_notices_a_table_missing_from_the_migrations(engine: Engine) -> None:
    drifted = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(drifted)
    sa.Table("extra", drifted, sa.Column("id", sa.Integer, primary_key=True))

    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), drifted)

    assert [diff[0] for diff in diffs] == ["add_table"]


def test_keys_and_unique_constraints_are_per_run(engine: Engine) -> None:
    inspector = sa.inspect(engine)
    keys = {
        table: inspector.get_pk_constraint(table)["constrained_columns"]
        for table in ("orders", "fills", "trades", "positions", "equity", "signals", "runs")
    }
    (signal_key,) = inspector.get_unique_constraints("signals")

    assert keys == {
        "orders": ["id"],
        "fills": ["id"],
        "trades": ["id"],
        "positions": ["run_id", "symbol"],
        "equity": ["run_id", "time"],
        "signals": ["id"],
        "runs": ["id"],
    }
    assert signal_key["column_names"] == ["run_id", "symbol", "timeframe", "strategy", "time"]
    for table in ("orders", "fills", "trades", "positions", "equity", "signals"):
        (run_id,) = [c for c in inspector.get_columns(table) if c["name"] == "run_id"]
        assert run_id["nullable"] is False, table


# --- migrating data from 0001 -----------------------------------------------------------------

_ROWS_0001 = [
    "INSERT INTO runs (id, mode, strategy, params, symbols, timeframe, started_time,"
    " initial_cash, cash, last_bar_time, stopped_reason) VALUES"
    " ('older', 'paper', 'sma_cross', '{}', '[\"BTCUSDT\"]', '1h', 1, '10000', '10000', '{}',"
    " 'stopped'),"
    " ('newest', 'paper', 'sma_cross', '{\"fast\": 10}', '[\"BTCUSDT\"]', '1h', 2, '10000',"
    " '10050.5', '{\"BTCUSDT\": 1700000000000}', NULL)",
    "INSERT INTO orders (id, symbol, side, type, qty, created_time, price, stop_price,"
    " client_order_id, status, filled_qty, avg_fill_price, updated_time, reduce_only, tag,"
    " reject_reason, stop_distance) VALUES"
    " ('o1', 'BTCUSDT', 'buy', 'market', '0.5', 1700000000000, NULL, NULL, 'my-id-1', 'filled',"
    " '0.5', '43000.12', 1700000060000, false, 'api', NULL, '250.50'),"
    " ('o2', 'BTCUSDT', 'sell', 'limit', '0.5', 1700000001000, '45000', NULL, NULL, 'new',"
    " '0', NULL, NULL, true, 'sma_cross', NULL, NULL)",
    "INSERT INTO fills (id, order_id, symbol, side, qty, price, fee, liquidity, time,"
    " realized_pnl) VALUES ('f1', 'o1', 'BTCUSDT', 'buy', '0.5', '43000.12', '0.0215', 'taker',"
    " 1700000060000, '0')",
    "INSERT INTO trades (id, symbol, side, qty, entry_time, entry_price, exit_time, exit_price,"
    " pnl, fees) VALUES ('t1', 'BTCUSDT', 'buy', '0.1', 1, '42000', 2, '42100.5', '10.04',"
    " '0.01')",
    "INSERT INTO positions (symbol, qty, entry_price, opened_time, entry_fees) VALUES"
    " ('BTCUSDT', '0.5', '43000.12', 1700000060000, '0.0215')",
    "INSERT INTO equity (time, equity, cash) VALUES (1700000060000, '10050.5', '9999.98')",
    "INSERT INTO signals (symbol, timeframe, time, direction, confidence, reasons, strategy)"
    " VALUES ('BTCUSDT', '1h', 1700000000000, 'long', 0.75,"
    ' \'[{"component": "sma", "message": "up", "values": {"fast": 1.5}}]\','
    " 'sma_cross')",
]


def _migrate_0001_rows(url: str, *, with_runs: bool) -> None:
    command.upgrade(alembic_config(url), "0001")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for statement in _ROWS_0001[0 if with_runs else 1 :]:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()
    upgrade_to_head(url)


def test_migration_from_0001_keeps_every_row_under_the_newest_run(
    unmigrated_database_url: str,
) -> None:
    url = unmigrated_database_url
    _migrate_0001_rows(url, with_runs=True)

    engine = make_engine(url)
    try:
        with SqlUnitOfWork(make_session_factory(engine), "newest") as uow:
            o1, o2 = uow.orders.get("o1"), uow.orders.get("o2")
            fills, trades = uow.fills.page().items, uow.trades.page().items
            positions, equity = uow.positions.list(), uow.equity.list()
            signals = uow.signals.page().items
            newest, older = uow.runs.get("newest"), uow.runs.get("older")
        with SqlUnitOfWork(make_session_factory(engine), "older") as uow:
            assert uow.orders.page().items == [] and uow.positions.list() == []
        with engine.connect() as connection:
            legacy_ids = connection.exec_driver_sql(
                "SELECT id, legacy_client_order_id FROM orders ORDER BY id"
            ).all()
            diffs = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()

    assert o1 == Order(
        "o1", "BTCUSDT", Side.BUY, OrderType.MARKET, Decimal("0.5"), T0,
        status=OrderStatus.FILLED, filled_qty=Decimal("0.5"), avg_fill_price=Decimal("43000.12"),
        updated_time=T0 + 60_000, exits=ExitPlan(stop_distance=Decimal("250.5")),
    )  # fmt: skip
    assert o2 is not None and o2.exits is None and o2.reduce_only and o2.tag == "sma_cross"
    assert o2.price == Decimal(45000) and o2.time_in_force is TimeInForce.GTC
    assert [tuple(row) for row in legacy_ids] == [("o1", "my-id-1"), ("o2", None)]
    assert fills == [
        Fill("f1", "o1", "BTCUSDT", Side.BUY, Decimal("0.5"), Decimal("43000.12"),
             Decimal("0.0215"), Liquidity.TAKER, T0 + 60_000)
    ]  # fmt: skip
    assert [(t.id, t.exit_price, t.pnl) for t in trades] == [
        ("t1", Decimal("42100.5"), Decimal("10.04"))
    ]
    assert positions == [
        Position("BTCUSDT", Decimal("0.5"), Decimal("43000.12"), T0 + 60_000, Decimal("0.0215"))
    ]
    assert equity == [EquityPoint(T0 + 60_000, Decimal("10050.5"), Decimal("9999.98"))]
    assert [(s.direction, s.confidence, s.reasons[0].values) for s in signals] == [
        (Direction.LONG, 0.75, {"fast": 1.5})
    ]
    assert newest is not None and older is not None
    assert (newest.cash, newest.last_bar_time, newest.params) == (
        Decimal("10050.5"),
        {"BTCUSDT": T0},
        {"fast": 10},
    )
    assert (newest.state, newest.candles_processed, newest.error) == ({}, 0, None)
    assert older.stopped_reason == "stopped"
    assert diffs == []


def test_migration_from_0001_without_runs_files_rows_under_legacy(
    unmigrated_database_url: str,
) -> None:
    _migrate_0001_rows(unmigrated_database_url, with_runs=False)

    engine = make_engine(unmigrated_database_url)
    try:
        factory = make_session_factory(engine)
        with SqlUnitOfWork(factory, "legacy") as uow:
            orders = [o.id for o in uow.orders.page().items]
            positions = uow.positions.list()
            # The migrated tables take new rows of other runs next to the old ones.
            uow.positions.upsert(Position("BTCUSDT", Decimal(1)))
            uow.commit()
        with SqlUnitOfWork(factory, "next") as uow:
            uow.positions.upsert(Position("BTCUSDT", Decimal(2)))
            uow.equity.add(EquityPoint(T0 + 60_000, Decimal(1), Decimal(1)))
            uow.signals.add(
                Signal("BTCUSDT", "1h", T0, Direction.LONG, 0.5, (), strategy="sma_cross")
            )
            uow.commit()
            mine = uow.positions.list()
    finally:
        engine.dispose()

    assert orders == ["o2", "o1"] and [p.qty for p in positions] == [Decimal("0.5")]
    assert mine == [Position("BTCUSDT", Decimal(2))]


def test_downgrading_0002_is_refused_with_a_reason(unmigrated_database_url: str) -> None:
    upgrade_to_head(unmigrated_database_url)
    command.downgrade(alembic_config(unmigrated_database_url), "0002")

    with pytest.raises(NotImplementedError, match="restore a backup"):
        command.downgrade(alembic_config(unmigrated_database_url), "0001")

    assert current_revision(unmigrated_database_url) == "0002"


def test_sqlite_engine_creates_the_directory_and_enables_wal_and_foreign_keys(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'x.db'}")
    try:
        with engine.connect() as connection:
            journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
            foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    finally:
        engine.dispose()

    assert (tmp_path / "a" / "b" / "x.db").exists()
    assert (journal, synchronous, foreign_keys) == ("wal", 1, 1)  # synchronous 1 = NORMAL


def test_database_urls_default_postgres_to_psycopg_and_refuse_other_databases() -> None:
    assert parse_database_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert parse_database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(ConfigError, match="mysql"):
        parse_database_url("mysql://u@h/db")
    with pytest.raises(ConfigError, match="not a database URL"):
        parse_database_url("nonsense")
