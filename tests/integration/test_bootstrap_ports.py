"""The composition root takes every port from the caller: feed, execution client, clocks."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from domain.model import OrderStatus
from lootcapital.bootstrap import bootstrap
from lootcapital.settings import Settings
from tests.fakes import ListFeed, ManualClock, ScriptedVenue
from tests.fixtures.data import load_sample_candles
from tests.integration.paper_harness import every

SYMBOL = "BTCUSDT"


def test_bootstrap_runs_the_kernel_on_an_injected_feed_venue_and_clock(tmp_path: Path) -> None:
    candles = load_sample_candles(SYMBOL).slice(0, 400)
    venues: list[ScriptedVenue] = []

    def feed(after: dict[str, int] | None, sleep: Callable[[float], object]) -> ListFeed:
        cut = 0 if not after else int(np.searchsorted(candles.open_time, after[SYMBOL], "right"))
        batches = [{SYMBOL: candles.slice(i, i + 1)} for i in range(cut, len(candles))]
        return ListFeed(batches, (SYMBOL,), "5m", {SYMBOL: candles.slice(0, cut)})

    def execution(state, clock, positions, orders):  # type: ignore[no-untyped-def]
        venues.append(ScriptedVenue(clock))
        return venues[-1], None

    settings = Settings(
        data_dir=tmp_path, api_token="test-token-0123456789", autostart=False,
        symbols=[SYMBOL], strategy="sma_cross", strategy_params={"fast": 5, "slow": 20},
    )  # fmt: skip
    container = bootstrap(
        settings, feed_factory=feed, execution_factory=execution, market_clock=ManualClock
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
