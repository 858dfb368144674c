"""The composition root takes every port from the caller: feed, execution client, clocks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np

from domain.candles import Candles
from domain.model import Fill, Liquidity, OrderStatus
from domain.orders import ExecutionEvent
from domain.orders import ExecutionEventKind as K
from lootcapital.bootstrap import bootstrap
from lootcapital.settings import Settings
from tests.fakes import ListFeed, ManualClock, ScriptedVenue
from tests.fixtures.data import load_sample_candles
from tests.integration.paper_harness import every, read_run

SYMBOL = "BTCUSDT"
CANDLES = load_sample_candles(SYMBOL).slice(0, 400)


def _feed(candles: Candles) -> Callable[..., ListFeed]:
    """A feed factory replaying ``candles`` one bar at a time after the bars processed."""

    def feed(after: dict[str, int] | None, sleep: Callable[[float], object]) -> ListFeed:
        cut = 0 if not after else int(np.searchsorted(candles.open_time, after[SYMBOL], "right"))
        batches = [{SYMBOL: candles.slice(i, i + 1)} for i in range(cut, len(candles))]
        return ListFeed(batches, (SYMBOL,), "5m", {SYMBOL: candles.slice(0, cut)})

    return feed


def _settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir, api_token="test-token-0123456789", autostart=False,
        symbols=[SYMBOL], strategy="sma_cross", strategy_params={"fast": 5, "slow": 20},
    )  # fmt: skip


def test_bootstrap_runs_the_kernel_on_an_injected_feed_venue_and_clock(tmp_path: Path) -> None:
    venues: list[ScriptedVenue] = []

    def execution(state, clock, positions, orders):  # type: ignore[no-untyped-def]
        venues.append(ScriptedVenue(clock))
        return venues[-1], None

    settings = _settings(tmp_path)
    container = bootstrap(
        settings, feed_factory=_feed(CANDLES), execution_factory=execution, market_clock=ManualClock
    )
    container.service.start()
    deadline = time.monotonic() + 30
    while container.service.status().running and time.monotonic() < deadline:
        time.sleep(0.01)

    orders = every(container.service.orders)
    assert container.service.status().stopped_reason == "end of data"
    assert len(orders) > 5
    assert set(venues[0].submitted.values()) == {1}
    assert {o.id for o in orders} == set(venues[0].submitted)
    assert {o.status for o in orders} == {OrderStatus.NEW}


def test_a_restart_refuses_a_fill_the_venue_sends_again(tmp_path: Path) -> None:
    """A live venue may send a fill again after a restart (a reconnect replays its stream):
    the restored ledger knows the stored fills of its open orders by id."""
    replays: list[list[ExecutionEvent]] = [[], [], []]
    started: list[ScriptedVenue] = []

    def execution(state, clock, positions, orders):  # type: ignore[no-untyped-def]
        venue = ScriptedVenue(clock)
        venue.orders = {o.id: replace(o, status=OrderStatus.NEW) for o in orders}
        venue.play(*replays[len(started)])  # what the venue says on (re)connecting
        started.append(venue)
        return venue, None

    settings = _settings(tmp_path)
    first = bootstrap(settings, feed_factory=_feed(CANDLES), execution_factory=execution)
    first.service.start()
    deadline = time.monotonic() + 30
    while first.service.status().running and time.monotonic() < deadline:
        time.sleep(0.01)
    order = every(first.service.orders)[0]
    half = order.qty / 2

    def fill(n: int) -> ExecutionEvent:
        part = Fill(f"venue-fill-{n}", order.id, SYMBOL, order.side, half, Decimal(60_000),
                    Decimal("0.01"), Liquidity.MAKER, int(CANDLES.open_time[-1]) + n)  # fmt: skip
        return ExecutionEvent(K.FILL, order.id, part.time, fill=part)

    replays[1] += [fill(1)]
    bootstrap(settings, feed_factory=_feed(CANDLES), execution_factory=execution)
    replays[2] += [fill(1), fill(2)]
    third = bootstrap(settings, feed_factory=_feed(CANDLES), execution_factory=execution)

    fills = [f for f in read_run(settings.database).fills if f.order_id == order.id]
    assert sorted(f.id for f in fills) == ["venue-fill-1", "venue-fill-2"]
    assert third.service.get_order(order.id).filled_qty == order.qty
    assert third.service.get_order(order.id).status is OrderStatus.FILLED
