"""SQL schema on real SQLite and PostgreSQL: exact decimal columns, migrations, the engine."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from adapters.storage.sql.migrations import current_revision, head_revision, upgrade_to_head
from adapters.storage.sql.tables import metadata
from adapters.storage.sql.unit_of_work import SqlUnitOfWork, make_engine, parse_database_url
from domain.errors import ConfigError
from domain.model import Position

NewUow = Callable[[], SqlUnitOfWork]
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
    assert current_revision(unmigrated_database_url) == head_revision() == "0001"


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


def test_sqlite_engine_creates_the_directory_and_enables_wal_and_foreign_keys(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'x.db'}")
    try:
        with engine.connect() as connection:
            journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    finally:
        engine.dispose()

    assert (tmp_path / "a" / "b" / "x.db").exists()
    assert (journal, foreign_keys) == ("wal", 1)


def test_database_urls_default_postgres_to_psycopg_and_refuse_other_databases() -> None:
    assert parse_database_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert parse_database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(ConfigError, match="mysql"):
        parse_database_url("mysql://u@h/db")
    with pytest.raises(ConfigError, match="not a database URL"):
        parse_database_url("nonsense")
