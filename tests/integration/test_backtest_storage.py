"""Stored backtests (:class:`adapters.storage.sql.backtest_repository.SqlBacktestStore`) on real
SQLite and PostgreSQL: a record round-trips with its JSON, a listing pages newest first without
results, records come back in the order asked, running ones are failed at a restart, and what
JSON cannot hold (NaN, infinity) is stored as null; a record read for showing has its view and
not its result; backtests stored before revision 0009 read back with no view, and keep their
rows through its downgrade."""

from __future__ import annotations

import dataclasses
import math

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from adapters.storage.sql.backtest_repository import SqlBacktestStore
from adapters.storage.sql.migrations import alembic_config, upgrade_to_head
from adapters.storage.sql.unit_of_work import make_engine, make_session_factory
from domain.backtest_records import BacktestRecord
from domain.errors import ConfigError

RESULT = {
    "header": {"strategy": "sma_cross", "params": {"fast": 5}},
    "trades": [{"symbol": "BTCUSDT", "pnl": "-1.25000000"}],
    "equity": [[1_759_277_100_000, "10000.00000000"], [1_759_277_400_000, "9998.75000000"]],
    "closes": {"BTCUSDT": [[1_759_276_800_000, 114_000.5]]},
}
VIEW = {"trades": [{"symbol": "BTCUSDT"}], "trades_total": 1, "chart_json": '{"equity": {}}'}


def _record(backtest_id: str, created_ms: int, **changes: object) -> BacktestRecord:
    record = BacktestRecord(
        id=backtest_id, status="done", strategy="sma_cross", symbols=("BTCUSDT", "ETHUSDT"),
        timeframe="5m", request={"strategy": "sma_cross", "cash": "10000"},
        created_ms=created_ms, finished_ms=created_ms + 5, metrics={"trades": 1, "sharpe": 0.5},
        result=RESULT,
    )  # fmt: skip
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


@pytest.fixture
def store(engine: Engine) -> SqlBacktestStore:
    return SqlBacktestStore(make_session_factory(engine))


def test_a_record_round_trips_with_its_result(store: SqlBacktestStore) -> None:
    record = _record("aa", 1_000)

    store.add(record)

    assert store.get("aa") == record
    assert store.get("bb") is None


def test_adding_a_record_again_replaces_it(store: SqlBacktestStore) -> None:
    store.add(_record("aa", 1_000, status="running", finished_ms=None, metrics=None, result=None))

    store.add(_record("aa", 1_000))

    found = store.get("aa")
    assert found is not None and found.status == "done" and found.result == RESULT


def test_a_listing_pages_newest_first_without_results(store: SqlBacktestStore) -> None:
    for k, created in enumerate((3_000, 1_000, 2_000, 2_000)):
        store.add(_record(f"a{k}", created))

    first = store.page(limit=3)
    rest = store.page(limit=3, cursor=first.next_cursor)

    assert [r.id for r in first.items] == ["a0", "a3", "a2"]
    assert [r.id for r in rest.items] == ["a1"] and rest.next_cursor is None
    assert all(r.result is None and r.metrics == {"trades": 1, "sharpe": 0.5} for r in first.items)
    assert all(r.view is None for r in first.items + rest.items)


def test_a_record_read_for_showing_has_its_view_and_not_its_result(
    store: SqlBacktestStore,
) -> None:
    record = _record("aa", 1_000, view=VIEW)
    store.add(record)
    store.add(_record("bb", 2_000))  # stored without a view

    full, shown = store.get("aa"), store.get("aa", result=False)
    many = store.get_many(["bb", "aa"], result=False)

    assert full == record
    assert shown == dataclasses.replace(record, result=None)
    assert [(r.id, r.view, r.result) for r in many] == [("bb", None, None), ("aa", VIEW, None)]


def test_a_malformed_cursor_names_the_field(store: SqlBacktestStore) -> None:
    with pytest.raises(ConfigError) as refused:
        store.page(limit=5, cursor="not-a-cursor")

    assert refused.value.field == "cursor"


def test_records_come_back_in_the_order_asked(store: SqlBacktestStore) -> None:
    for k in range(3):
        store.add(_record(f"b{k}", 1_000 + k))

    found = store.get_many(["b2", "zz", "b0", "b2"])

    assert [r.id for r in found] == ["b2", "b0"]


def test_running_records_are_failed_with_the_error_given(store: SqlBacktestStore) -> None:
    store.add(_record("run", 1_000, status="running", finished_ms=None, metrics=None, result=None))
    store.add(_record("done", 2_000))

    count = store.fail_running("interrupted", 9_000)

    failed, done = store.get("run"), store.get("done")
    assert count == 1
    assert failed is not None and (failed.status, failed.error, failed.finished_ms) == (
        "failed", "interrupted", 9_000
    )  # fmt: skip
    assert done is not None and done.status == "done"


def test_numbers_json_cannot_hold_are_stored_as_null(store: SqlBacktestStore) -> None:
    store.add(_record("nan", 1_000, metrics={"sharpe": math.nan, "profit_factor": math.inf}))

    found = store.get("nan")

    assert found is not None and found.metrics == {"sharpe": None, "profit_factor": None}


def test_backtests_stored_before_0009_read_without_a_view_and_keep_their_rows_down(
    unmigrated_database_url: str,
) -> None:
    url = unmigrated_database_url
    command.upgrade(alembic_config(url), "0008")
    engine = make_engine(url)
    old = sa.table(
        "backtests", *(sa.column(c) for c in ("id", "status", "strategy", "timeframe")),
        *(sa.column(c, sa.JSON) for c in ("symbols", "request", "metrics", "result")),
        sa.column("created_ms"), sa.column("finished_ms"),
    )  # fmt: skip
    try:
        with engine.begin() as connection:
            connection.execute(old.insert().values(
                id="old", status="done", strategy="sma_cross", timeframe="5m",
                symbols=["BTCUSDT"], request={}, metrics={"trades": 1}, result=RESULT,
                created_ms=1_000, finished_ms=1_005,
            ))  # fmt: skip
        upgrade_to_head(url)
        store = SqlBacktestStore(make_session_factory(engine))
        before = store.get("old")
        store.add(_record("new", 2_000, view=VIEW))
        command.downgrade(alembic_config(url), "0008")
        with engine.connect() as connection:
            kept = connection.execute(sa.select(old.c.id, old.c.result).order_by(old.c.id)).all()
    finally:
        engine.dispose()

    assert before is not None and (before.view, before.result) == (None, RESULT)
    assert [tuple(row) for row in kept] == [("new", RESULT), ("old", RESULT)]


def test_the_trades_are_read_without_the_rest_of_the_result(store: SqlBacktestStore) -> None:
    store.add(_record("aa", 1_000))
    store.add(_record("bb", 2_000, status="running", finished_ms=None, metrics=None, result=None))

    assert store.trades("aa") == RESULT["trades"]
    assert store.trades("bb") == []
    assert store.trades("cc") is None
