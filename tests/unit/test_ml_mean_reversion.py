"""The ``ml_mean_reversion`` strategy through the real kernel on the sample's real BTCUSDT 5m bars,
with a small mean-reversion model fitted here on the first 20 days and acting on later bars:
entries only at candidates the indicators confirm (computed independently here) whose
P(reversion) clears the threshold; none without a model, each candidate saying why; walk-forward
fits that read only bars closed by their weekly boundary; a backtest (batch features) and a
paper run fed one bar at a time (incremental) decide alike; a run restored midway continues as
one that never stopped; predictions resolve on the mean-reversion label, so a model that keeps
calling "no reversion" where prices revert disables itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from functools import cache

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from adapters.clock import SimulatedClock
from adapters.venues.simulated.venue import SimulatedVenue
from domain import indicators
from domain.candles import Candles
from domain.errors import ConfigError
from domain.execution import FeeSchedule
from domain.ledger import Ledger
from domain.ml.dataset import build_dataset
from domain.ml.features import DEFAULT_FEATURE_SET
from domain.ml.labels import MeanReversionLabel
from domain.ml.models import Contribution, ModelKind, build_model
from domain.ml.signal_input import WEEK_MS, ActiveModel
from domain.model import Direction, ExitReason, Signal, Trade
from domain.strategies import build_strategy
from domain.strategies.ml_mean_reversion import MLMeanReversion
from service_layer.engine import BatchOutcome, Engine
from tests.fixtures.data import load_sample_candles
from tests.fixtures.venues import sample_instruments

BTC = "BTCUSDT"
RULES = sample_instruments(BTC)
CASH = Decimal(10_000)
DAY = 288  # 5m bars
TF = 300_000
WARM = 3_100  # bars fed before START: the model's features read 3,055
START, END = 20 * DAY, 45 * DAY  # the model is fitted on the bars before START
NAME = "ml_mean_reversion"


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield


@cache
def candles() -> Candles:
    return load_sample_candles(BTC)


@cache
def model() -> ActiveModel:
    """A mean-reversion model fitted on the sample's first 20 days only."""
    data = build_dataset(candles().slice(0, START), ModelKind.MEAN_REVERSION, days=12)
    fitted = build_model("hgb", data.feature_set.names, embargo=data.horizon, max_iter=20)
    fitted.fit(data.X, data.y)
    return ActiveModel(fitted, "mr-btc", data.feature_set, int(candles().open_time[START]))


class NeverReverts:
    """A model that always says P(reversion) = 0.1."""

    algo = "const"
    feature_names = DEFAULT_FEATURE_SET.names

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(np.atleast_2d(X)), 0.1)

    def explain(self, x_row: np.ndarray, top: int = 5) -> list[Contribution]:
        return []

    def library_versions(self) -> dict[str, str]:
        return {}


def kernel(*, incremental: bool, params: dict | None = None, models: str = "fitted") -> Engine:
    """An engine trading the strategy on BTCUSDT, warmed up on the bars before START, with
    ``models`` "fitted" (:func:`model` handed over), "none" (none active) or "walk-forward"
    (fitted in the run)."""
    strategy = build_strategy(NAME, params or {}, "5m", incremental=incremental)
    assert isinstance(strategy, MLMeanReversion)
    if models == "fitted":
        strategy.use_model(BTC, model())
    elif models == "none":
        strategy.use_model(BTC, None, "no active mean_reversion model for BTCUSDT")
    engine = _engine(strategy, CASH, [], [])
    engine.warm_up({BTC: candles().slice(START - WARM, START)})
    return engine


def _engine(strategy: object, cash: Decimal, positions: list, orders: list) -> Engine:
    clock = SimulatedClock()
    venue = SimulatedVenue(instruments=RULES, cash=cash, clock=clock, fees=FeeSchedule())
    if positions or orders:
        venue.restore(cash, positions, orders)
    return Engine(
        strategy=strategy,  # type: ignore[arg-type]
        execution=venue, matcher=venue, clock=clock, instruments=RULES, symbols=(BTC,),
        timeframe="5m", run_id="mr-run", ledger=Ledger(cash, positions, orders),
    )  # fmt: skip


@cache
def backtest() -> BatchOutcome:
    return kernel(incremental=False).process({BTC: candles().slice(START, END)})


def candidates(signals: list[Signal]) -> list[Signal]:
    """The signals given at candidates (their first reason is the Bollinger band's)."""
    return [s for s in signals if s.reasons and s.reasons[0].component == "bollinger"]


def ml_values(signal: Signal) -> dict[str, float]:
    (reason,) = [r for r in signal.reasons if r.component == "ml"]
    return reason.values


def trade_key(t: Trade) -> tuple:
    return (t.side, t.qty, t.entry_time, t.entry_price, t.exit_time, t.exit_price, t.pnl,
            t.exit_reason)  # fmt: skip


def signal_key(s: Signal) -> tuple:
    return (s.symbol, s.time, s.direction, s.confidence, tuple(r.message for r in s.reasons))


# -- entries --------------------------------------------------------------------------------


def test_entries_happen_only_at_confirmed_candidates_whose_probability_clears_the_threshold() -> (
    None
):
    outcome = backtest()
    bars = candles().slice(START - WARM, END)
    upper, _, lower = indicators.bollinger(bars.close, 20, 2.0)
    rsi = indicators.rsi(bars.close, 14)
    adx = indicators.adx(bars.high, bars.low, bars.close, 14)
    longs = (bars.close < lower) & (rsi < 30) & (adx < 20)
    shorts = (bars.close > upper) & (rsi > 70) & (adx < 20)
    close_time = bars.open_time + TF
    confirmed = {int(t): 1 for t in close_time[longs]} | {int(t): -1 for t in close_time[shorts]}

    seen = candidates(outcome.signals)
    entered = [s for s in seen if s.direction is not Direction.FLAT]
    skipped = [s for s in seen if s.direction is Direction.FLAT]
    entries = {o.id: o for o in outcome.changes.orders if o.tag == NAME and not o.reduce_only}

    assert len(entries) >= 5 and skipped, "the model both lets entries through and holds some"
    for signal in seen:
        side = confirmed[signal.time]  # (KeyError: a signal at a bar no indicator confirms)
        bollinger, rsi_reason, adx_reason = signal.reasons[:3]
        assert adx_reason.values["adx"] < 20
        if side > 0:
            assert bollinger.values["close"] < bollinger.values["lower"]
            assert rsi_reason.values["rsi"] < 30
        else:
            assert bollinger.values["close"] > bollinger.values["upper"]
            assert rsi_reason.values["rsi"] > 70
    for signal in entered:
        expected = Direction.LONG if confirmed[signal.time] > 0 else Direction.SHORT
        assert signal.direction is expected
        assert ml_values(signal)["probability"] >= 0.6 == ml_values(signal)["threshold"]
        assert signal.confidence == ml_values(signal)["probability"]
    for signal in skipped:
        assert ml_values(signal)["probability"] < 0.6
        assert "no entry" in signal.reasons[3].message
    assert sorted(o.created_time for o in entries.values()) == [s.time for s in entered]
    by_time = {s.time: s for s in entered}
    for order in entries.values():  # each comes from an entered signal, towards the mean
        signal = by_time[order.created_time]
        assert (order.side.value == "buy") == (signal.direction is Direction.LONG)
        assert order.exits is not None and len(order.exits.take_profits) == 2


def test_exits_come_from_the_exit_manager_stop_and_take_profits_towards_the_mean() -> None:
    outcome = backtest()

    reasons = {t.exit_reason for t in outcome.changes.trades}
    plans = [o.exits for o in outcome.changes.orders if o.exits is not None]

    assert {ExitReason.TAKE_PROFIT, ExitReason.STOP} <= reasons
    assert reasons <= {ExitReason.TAKE_PROFIT, ExitReason.STOP, ExitReason.TIME}
    assert any("exits armed" in r.message for s in outcome.signals for r in s.reasons)
    for plan in plans:
        first, second = plan.take_profits
        assert first.distance < second.distance  # half-way to the mean, then at it
        assert first.fraction + second.fraction == 1


def test_without_a_model_no_entry_is_taken_and_each_candidate_says_why() -> None:
    engine = kernel(incremental=False, models="none")

    outcome = engine.process({BTC: candles().slice(START, END)})

    seen = candidates(outcome.signals)
    assert seen and not outcome.changes.orders
    for signal in seen:
        assert signal.direction is Direction.FLAT
        assert signal.reasons[-1].message == (
            "ML off: no active mean_reversion model for BTCUSDT: no entry"
        )


# -- walk-forward ---------------------------------------------------------------------------


def test_walk_forward_fits_only_on_bars_closed_by_each_weekly_boundary() -> None:
    engine = kernel(incremental=False, params={"ml_train_days": 5}, models="walk-forward")
    strategy = engine.strategy
    assert isinstance(strategy, MLMeanReversion) and not strategy.wants_models
    fits: list[tuple[int, int]] = []
    trainer = strategy._ml.trainer
    assert trainer is not None

    def recorded(symbol: str, given: Candles, boundary: int) -> ActiveModel:
        fits.append((boundary, int(given.open_time[-1]) + TF))
        return trainer(symbol, given, boundary)

    strategy._ml.trainer = recorded

    outcome = engine.process({BTC: candles().slice(START, END)})

    spans = strategy.model_spans()
    assert len(fits) >= 3 and spans
    for boundary, last_close in fits:
        assert boundary % WEEK_MS == 0 and last_close <= boundary
    for span in spans:
        boundary = int(span.model_id.removeprefix("wf-BTCUSDT-"))
        assert boundary <= span.first and span.last < boundary + WEEK_MS
    assert [o for o in outcome.changes.orders if not o.reduce_only]


# -- batch, incremental, restart ------------------------------------------------------------


def test_a_backtest_and_a_paper_run_fed_one_bar_at_a_time_decide_alike() -> None:
    paper = kernel(incremental=True)
    signals: list[Signal] = []
    trades: list[Trade] = []
    bars = candles()

    for i in range(START, END):
        outcome = paper.process({BTC: bars.slice(i, i + 1)})
        trades += outcome.changes.trades + paper.send(outcome.outbox).trades
        signals += outcome.signals

    expected = backtest()
    assert len(expected.changes.trades) >= 5
    assert [signal_key(s) for s in signals] == [signal_key(s) for s in expected.signals]
    assert [trade_key(t) for t in trades] == [trade_key(t) for t in expected.changes.trades]


def test_a_paper_run_restored_midway_neither_forgets_nor_double_counts() -> None:
    bars = candles()
    never_stopped = kernel(incremental=True)
    whole: list[Trade] = []
    split = None
    for i in range(START, END):
        outcome = never_stopped.process({BTC: bars.slice(i, i + 1)})
        whole += outcome.changes.trades + never_stopped.send(outcome.outbox).trades
        state = never_stopped.strategy.state()
        pending = state["ml"]["symbols"].get(BTC, {}).get("predictor", {}).get("symbols", {})
        if split is None and state["exits"] and pending.get(BTC, {}).get("pending"):
            split = i + 1  # an open position with armed exits and an unresolved prediction
    assert split is not None

    first = kernel(incremental=True)
    resumed: list[Trade] = []
    for i in range(START, split):
        outcome = first.process({BTC: bars.slice(i, i + 1)})
        resumed += outcome.changes.trades + first.send(outcome.outbox).trades
    stored = json.loads(json.dumps(first.state()))
    ledger = first.ledger
    positions, orders = list(ledger.account.positions.values()), ledger.open_orders()
    strategy = build_strategy(NAME, {}, "5m", incremental=True)
    assert isinstance(strategy, MLMeanReversion)
    strategy.use_model(BTC, model())
    again = _engine(strategy, ledger.cash, positions, orders)
    again.restore(stored)
    again.warm_up({BTC: bars.slice(START - WARM, split)})
    again.reconcile()
    again.flush()
    for i in range(split, END):
        outcome = again.process({BTC: bars.slice(i, i + 1)})
        resumed += outcome.changes.trades + again.send(outcome.outbox).trades

    assert [trade_key(t) for t in whole if t.exit_time >= bars.open_time[split]]
    assert [trade_key(t) for t in resumed] == [trade_key(t) for t in whole]
    assert again.state()["strategy"] == never_stopped.state()["strategy"]


# -- accuracy on the mean-reversion label (Property 14) -------------------------------------


def test_a_model_calling_no_reversion_where_prices_revert_is_disabled_on_that_label() -> None:
    loose = {"adx_max": 100.0, "rsi_low": 50.0, "rsi_high": 50.0}  # every band break
    engine = kernel(incremental=False, params=loose, models="none")
    strategy = engine.strategy
    assert isinstance(strategy, MLMeanReversion)
    strategy.use_model(BTC, ActiveModel(NeverReverts(), "never", DEFAULT_FEATURE_SET, 0))  # type: ignore[arg-type]

    outcome = engine.process({BTC: candles().slice(START, END)})

    predicted = [s.time for s in candidates(outcome.signals) if "probability" in ml_values(s)]
    bars = candles().slice(START - WARM, END)
    rows = np.searchsorted(bars.open_time + TF, predicted)
    hits = [int(y == 0) for y in MeanReversionLabel().compute(bars.close)[rows] if not np.isnan(y)]
    rolling = [np.mean(hits[k - 100 : k]) for k in range(100, len(hits) + 1)]
    first_low = next(a for a in rolling if a < 0.55)  # on the label computed here, whole series
    # (the engine takes a strategy's events after on_bars: those of a block's decisions
    # come with the next block, so the last block's are drained here)
    events = outcome.pipeline_events + strategy.drain_events()
    (event,) = [e for e in events if e.kind == "ml"]
    assert event.values["accuracy"] == pytest.approx(first_low)
    assert event.values["model_id"] == "never" and event.values["window"] == 100
    after = [s for s in candidates(outcome.signals) if s.time > event.time]
    assert after and all("ML predictor disabled" in s.reasons[-1].message for s in after)
    assert not [o for o in outcome.changes.orders if not o.reduce_only]


# -- parameters and state -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"threshold": 0.4}, "threshold"),
        ({"rsi_low": 60.0, "rsi_high": 40.0}, "rsi_high"),
        ({"ml_train_days": 1}, "ml_train_days"),
        ({"risk": 0.5}, "risk"),
    ],
)
def test_a_parameter_out_of_range_is_refused_naming_it(params: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field) as caught:
        build_strategy(NAME, params, "5m")

    assert caught.value.field == field


def test_a_timeframe_the_models_features_cannot_count_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        build_strategy(NAME, {}, "4h")

    assert caught.value.field == "timeframe"


def test_the_state_round_trips_through_json_and_refuses_another_or_a_malformed_one() -> None:
    engine = kernel(incremental=False)
    engine.process({BTC: candles().slice(START, START + 10 * DAY)})
    state = json.loads(json.dumps(engine.strategy.state()))

    again = build_strategy(NAME, {}, "5m")
    again.restore(state)
    assert isinstance(again, MLMeanReversion)
    again.use_model(BTC, model())

    assert again.state() == state
    with pytest.raises(ValueError, match="version"):
        again.restore({"version": 99})
    with pytest.raises(ValueError, match="malformed"):
        again.restore({"version": 1, "exits": {}})
