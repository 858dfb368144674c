"""The adaptive pipeline's events (issue 6): every thresholds adjustment with its old and new
values and the percentile behind it, every regime change, found on real bars the same way in
the batch form (a backtest) and one bar at a time (paper), and reported by the engine only for
bars it trades on."""

from __future__ import annotations

import itertools
from decimal import Decimal

import numpy as np

from adapters.clock import SimulatedClock
from adapters.venues.simulated.venue import SimulatedVenue
from domain.execution import FeeSchedule
from domain.ledger import Ledger
from domain.pipeline_events import REGIME, THRESHOLDS, PipelineEvent
from domain.strategies import build_strategy
from domain.thresholds import ThresholdConfig, thresholds_for
from service_layer.engine import Engine
from tests.fixtures.data import load_sample_candles
from tests.fixtures.venues import sample_instruments

SYMBOLS = ("BTCUSDT", "ETHUSDT")
CANDLES = {s: load_sample_candles(s) for s in SYMBOLS}


def _batch_events() -> list[PipelineEvent]:
    strategy = build_strategy("adaptive", {}, "5m", incremental=False)
    strategy.prepare(SYMBOLS, {})
    strategy.on_bars(CANDLES)
    return strategy.drain_events()


def test_one_bar_at_a_time_reports_what_the_batch_reports() -> None:
    strategy = build_strategy("adaptive", {}, "5m", incremental=True)
    strategy.prepare(SYMBOLS, {})
    stepped: list[PipelineEvent] = []
    for i in range(len(CANDLES["BTCUSDT"])):
        strategy.on_bars({s: c.slice(i, i + 1) for s, c in CANDLES.items()})
        stepped += strategy.drain_events()

    batch = _batch_events()

    assert len(batch) > 100
    assert sorted(stepped, key=_key) == sorted(batch, key=_key)
    assert strategy.drain_events() == []


def test_each_adjustment_holds_old_and_new_thresholds_and_the_percentile_behind_them() -> None:
    config = ThresholdConfig()
    for symbol in SYMBOLS:
        mine = [e for e in _batch_events() if e.symbol == symbol and e.kind == THRESHOLDS]
        assert len(mine) > 10
        assert (mine[0].values["old_adx"], mine[0].values["old_rvol"]) == thresholds_for(50, config)
        for event in mine:
            v = event.values
            assert (v["new_adx"], v["new_rvol"]) == thresholds_for(
                float(v["volatility_pct"]), config
            )
            assert (v["old_adx"], v["old_rvol"]) != (v["new_adx"], v["new_rvol"])
        for before, after in itertools.pairwise(mine):
            assert before.time < after.time
            assert (before.values["new_adx"], before.values["new_rvol"]) == (
                after.values["old_adx"], after.values["old_rvol"],
            )  # fmt: skip


def test_regime_changes_chain_from_the_first_confirmed_regime() -> None:
    for symbol in SYMBOLS:
        mine = [e for e in _batch_events() if e.symbol == symbol and e.kind == REGIME]
        assert mine[0].values["from"] is None
        assert all(e.values["from"] != e.values["to"] for e in mine)
        for before, after in itertools.pairwise(mine):
            assert before.values["to"] == after.values["from"]
        assert (
            mine[1].message == f"{symbol} regime {mine[1].values['from']} -> {mine[1].values['to']}"
        )


def test_the_engine_reports_the_bars_it_trades_on_not_its_warm_up() -> None:
    warm, rest = 3_000, {s: c.slice(3_000, len(c)) for s, c in CANDLES.items()}
    clock = SimulatedClock()
    rules = sample_instruments(*SYMBOLS)
    venue = SimulatedVenue(instruments=rules, cash=Decimal(10_000), clock=clock, fees=FeeSchedule())
    engine = Engine(
        strategy=build_strategy("adaptive", {}, "5m"), execution=venue, matcher=venue,
        clock=clock, instruments=rules, symbols=SYMBOLS, timeframe="5m", run_id="events",
        ledger=Ledger(Decimal(10_000)),
    )  # fmt: skip
    engine.warm_up({s: c.slice(0, warm) for s, c in CANDLES.items()})

    reported = engine.process(rest).pipeline_events

    first_traded = min(int(c.open_time[warm]) for c in CANDLES.values()) + 300_000
    expected = [e for e in _batch_events() if e.time >= first_traded]
    assert reported and sorted(reported, key=_key) == sorted(expected, key=_key)
    assert np.all(np.diff([e.time for e in reported if e.symbol == "BTCUSDT"]) >= 0)


def _key(event: PipelineEvent) -> tuple:
    return (event.symbol, event.time, event.kind)
