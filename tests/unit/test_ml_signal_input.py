"""The ML probability as a strategy input (domain/ml/signal_input.py), on the real BTCUSDT bars
of the sample with a small calibrated HGB model: the same predictions whether the bars come in
one block (backtest) or one by one (paper), walk-forward fits that never read a bar after their
boundary, Properties 12 and 13 on signals (Hypothesis), Property 14 (disabling) with a model
that is always up, and the state's round trip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from domain.candles import Candles
from domain.ml.dataset import build_dataset
from domain.ml.features import DEFAULT_FEATURE_SET, TAKER_FEATURE_SET
from domain.ml.models import CalibratedTrees, Contribution, ModelKind, build_model
from domain.ml.predictor import MLRules, Prediction
from domain.ml.signal_input import (
    WEEK_MS,
    ActiveModel,
    MLInput,
    fit_model,
    with_prediction,
)
from domain.model import Direction, Reason, Signal
from tests.fixtures.data import load_sample_candles

BTC = "BTCUSDT"
TF = 300_000


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield


@cache
def bars() -> Candles:
    return load_sample_candles(BTC)


@cache
def model() -> ActiveModel:
    """Fitted on the first 20 days: every prediction below is on later bars."""
    data = build_dataset(bars().slice(0, 20 * 288), ModelKind.TREND, days=12)
    fitted: CalibratedTrees = build_model(
        "hgb", data.feature_set.names, embargo=data.horizon, max_iter=20
    ).fit(data.X, data.y)
    return ActiveModel(fitted, "m-btc", data.feature_set, int(bars().open_time[20 * 288]))


def close_time(i: int) -> int:
    return int(bars().open_time[i]) + TF


def ml(**kwargs: object) -> MLInput:
    source = MLInput(tf_ms=TF, **kwargs)  # type: ignore[arg-type]
    if "trainer" not in kwargs:
        source.use(BTC, model())
    return source


# -- batch and incremental forms ------------------------------------------------------------


def test_bars_in_one_block_or_one_by_one_give_the_same_predictions() -> None:
    batch, paper = ml(), ml()
    n = len(bars())
    batch.take(BTC, bars())
    paper.take(BTC, bars().slice(0, n - 400))
    times = [close_time(i) for i in range(n - 400, n, 80)]
    got = []
    for i in range(n - 400, n):
        paper.take(BTC, bars().slice(i, i + 1))
        if close_time(i) in times:
            got.append(paper.predict(BTC, close_time(i)))

    expected = [batch.predict(BTC, t) for t in times]

    assert all(p is not None for p in expected)
    assert got == expected
    assert len(paper._bars[BTC]) <= paper.keep_bars + 1  # the paper form keeps a window


def test_a_prediction_reads_only_bars_closed_by_its_time() -> None:
    i = 30 * 288
    whole, cut = ml(), ml()
    whole.take(BTC, bars())
    cut.take(BTC, bars().slice(0, i + 1))

    prediction = whole.predict(BTC, close_time(i))
    assert prediction is not None
    assert prediction == cut.predict(BTC, close_time(i))


def test_a_missing_bar_gives_no_prediction_and_no_model_says_why() -> None:
    source = ml()
    source.take(BTC, bars().slice(0, 30 * 288))
    off = MLInput(tf_ms=TF)
    off.use(BTC, None, "model m9 not loaded: sha256 mismatch")

    assert source.predict(BTC, close_time(40 * 288)) is None  # a bar not taken yet
    assert off.predict(BTC, close_time(10)) is None
    assert off.status(BTC) == "model m9 not loaded: sha256 mismatch"


# -- walk-forward ---------------------------------------------------------------------------


def test_walk_forward_fits_once_per_week_on_bars_closed_by_the_boundary() -> None:
    seen: list[tuple[int, int]] = []
    fit = fit_model(5, bar_ms=TF)

    def trainer(symbol: str, given: Candles, boundary: int) -> ActiveModel:
        seen.append((boundary, int(given.open_time[-1]) + TF))
        return fit(symbol, given, boundary)

    source = MLInput(tf_ms=TF, trainer=trainer, train_days=5)
    source.take(BTC, bars())
    decisions = [close_time(i) for i in range(20 * 288, 36 * 288, 97)]
    predictions = [source.predict(BTC, t) for t in decisions]

    boundaries = sorted({t // WEEK_MS * WEEK_MS for t in decisions})
    assert [b for b, _ in seen] == boundaries  # one fit per week, at its boundary
    assert all(last <= boundary for boundary, last in seen)  # never a bar after it
    assert all(p is not None and p.model_id.startswith("wf-BTCUSDT-") for p in predictions)
    spans = source.spans()
    assert [s.model_id for s in spans] == [f"wf-BTCUSDT-{b}" for b in boundaries]
    assert sum(s.predictions for s in spans) == len(decisions)


def test_a_fit_without_enough_bars_leaves_ml_off_until_the_next_boundary() -> None:
    source = MLInput(tf_ms=TF, trainer=fit_model(30, bar_ms=TF), train_days=30)
    source.take(BTC, bars().slice(0, 3 * 288))

    assert source.predict(BTC, close_time(3 * 288 - 1)) is None
    assert "walk-forward fit" in (source.status(BTC) or "")
    assert "usable samples" in (source.status(BTC) or "")


# -- Properties 12 and 13 on signals ----------------------------------------------------------


def _signal(direction: Direction, confidence: float) -> Signal:
    return Signal(BTC, "5m", 1, direction, confidence, (Reason("timeframes", "aligned"),), "x")


def _prediction(p_up: float) -> Prediction:
    return Prediction(BTC, 1, p_up, (Contribution("rsi", 24.0, 0.05),), "long: RSI 24", None, "m")


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.0, 1.0),
    st.sampled_from([Direction.LONG, Direction.SHORT]),
    st.floats(0.0, 1.0),
    st.floats(0.0, 2.0),
    st.sampled_from(["halve", "filter"]),
)
def test_high_probability_never_lowers_confidence_and_low_halves_or_filters(
    p_up: float, direction: Direction, confidence: float, size: float, action: str
) -> None:
    rules = MLRules(low_action=action)
    p = p_up if direction is Direction.LONG else 1.0 - p_up

    signal, enter, new_size = with_prediction(
        _signal(direction, confidence), True, size, _prediction(p_up), None, rules
    )

    assert 0.0 <= signal.confidence <= 1.0
    assert signal.reasons[-1].component == "ml"
    if p > rules.high:  # Property 12: the multiplier is at least 1
        assert enter and new_size == size and signal.confidence >= confidence
    elif p < rules.low:  # Property 13
        if action == "filter":
            assert not enter and signal.direction is Direction.FLAT
        else:
            assert enter and new_size == pytest.approx(size * 0.5)
    else:
        assert enter and new_size == size


def test_without_a_prediction_the_signal_only_says_why() -> None:
    before = _signal(Direction.LONG, 0.6)

    signal, enter, size = with_prediction(before, True, 1.0, None, "no model", MLRules())

    assert (enter, size, signal.confidence) == (True, 1.0, 0.6)
    assert signal.reasons[-1] == Reason("ml", "ML off: no model", {})


# -- Property 14 and the state -------------------------------------------------------------


class AlwaysUp:
    algo = "const"
    feature_names = DEFAULT_FEATURE_SET.names

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(np.atleast_2d(X)), 0.9)

    def explain(self, x_row: np.ndarray, top: int = 5) -> list[Contribution]:
        return []

    def library_versions(self) -> dict[str, str]:
        return {}


def test_an_always_up_model_is_disabled_below_55_percent_on_real_bars() -> None:
    source = MLInput(tf_ms=TF)
    source.use(BTC, ActiveModel(AlwaysUp(), "up", DEFAULT_FEATURE_SET, 0))  # type: ignore[arg-type]
    source.take(BTC, bars())
    alerts = []
    for i in range(12 * 288, len(bars()), 12):  # one prediction an hour
        alerts += source.resolve(close_time(i))
        if source.predict(BTC, close_time(i)) is None:
            break

    closes = bars().close
    rises = [closes[i + 48] > closes[i] for i in range(12 * 288, len(closes) - 48, 12)]
    # The real share of 4-hour rises: an always-up model is wrong too often.
    assert np.mean(rises) < 0.55
    ((symbol, alert),) = alerts
    assert symbol == BTC and alert.accuracy < 0.55 and alert.window == 100
    assert "disabled" in (source.status(BTC) or "")
    (event,) = source.drain_events()
    assert (event.time, event.symbol, event.kind) == (alert.time, BTC, "ml")
    assert event.values["model_id"] == "up" and event.values["accuracy"] == alert.accuracy
    assert "ML predictor up disabled" in event.message


class Broken(AlwaysUp):
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        raise RuntimeError("corrupt tree")


def test_a_failing_model_gives_one_half_and_reports_the_error() -> None:
    source = MLInput(tf_ms=TF)
    source.use(BTC, ActiveModel(Broken(), "bad", DEFAULT_FEATURE_SET, 0))  # type: ignore[arg-type]
    source.take(BTC, bars())

    prediction = source.predict(BTC, close_time(30 * 288))
    (event,) = source.drain_events()

    assert prediction is not None and prediction.probability == 0.5
    assert prediction.error is not None and "corrupt tree" in prediction.error
    assert (event.kind, event.time, event.values["model_id"]) == (
        "ml_error",
        close_time(30 * 288),
        "bad",
    )
    assert "corrupt tree" in event.message and "taken as 0.5" in event.message
    assert source.drain_events() == []


def test_features_that_fail_leave_ml_off_saying_why_and_report_it() -> None:
    source = MLInput(tf_ms=TF)  # a model of taker features on bars without the taker column
    source.use(BTC, ActiveModel(AlwaysUp(), "taker", TAKER_FEATURE_SET, 0))  # type: ignore[arg-type]
    source.take(BTC, bars())

    assert source.predict(BTC, close_time(30 * 288)) is None
    (event,) = source.drain_events()

    assert (source.status(BTC) or "").startswith("features failed:")
    assert event.kind == "ml_error" and "taker" in event.message


def test_the_state_round_trips_in_either_order_of_restore_and_model() -> None:
    first = ml()
    first.take(BTC, bars())
    for i in range(30 * 288, 32 * 288, 24):
        first.resolve(close_time(i))
        first.predict(BTC, close_time(i))
    state = json.loads(json.dumps(first.state()))

    model_first, state_first = ml(), MLInput(tf_ms=TF)
    model_first.restore(state)
    state_first.restore(state)
    state_first.use(BTC, model())

    for again in (model_first, state_first):
        assert again.state() == first.state()
        assert again._predictors[BTC].pending(BTC) == first._predictors[BTC].pending(BTC)
        assert again.spans() == first.spans()


def test_the_model_in_effect_handed_over_again_keeps_its_accuracy_and_pending() -> None:
    source = ml()
    source.take(BTC, bars())
    for i in range(30 * 288, 31 * 288, 24):
        source.predict(BTC, close_time(i))
    before = source.state()

    source.use(BTC, model())  # e.g. another kind's model was activated meanwhile

    assert source.state() == before and source._predictors[BTC].pending(BTC)


def test_a_malformed_state_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        ml().restore({"version": 99})
    with pytest.raises(ValueError, match="malformed"):
        ml().restore({"version": 1, "symbols": {BTC: {}}, "spans": []})
