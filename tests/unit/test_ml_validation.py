"""Validation and evaluation of predictors (domain/ml/validation.py): leak-free splits, scores
checked by hand (and against scikit-learn where it is installed), the trading result of acting
on predictions, and the rolling accuracy that disables a predictor (Properties 11 and 14)."""

from __future__ import annotations

import itertools
import json
import math
import random

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from domain.errors import ConfigError, DataError
from domain.metrics import sharpe_ratio
from domain.ml.accuracy import RollingAccuracy
from domain.ml.validation import (
    BARS_PER_YEAR_5M,
    as_probabilities,
    calibrate,
    calibration_error,
    chronological_split,
    classification_report,
    purged_walk_forward,
    trading_metrics,
)

BAR = 300_000  # 5m in ms
H4 = 48 * BAR


# -- splits ----------------------------------------------------------------------------------
def test_chronological_split_holds_out_the_last_fifth_in_order() -> None:
    train, holdout = chronological_split(10)

    assert train.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert holdout.tolist() == [8, 9]


def test_chronological_split_purges_the_embargo_before_the_holdout() -> None:
    train, holdout = chronological_split(100, 0.2, embargo=5)

    assert train[-1] == 74 and holdout[0] == 80 and len(holdout) == 20


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(2, 5000),
    holdout=st.floats(0.01, 0.99),
    embargo=st.integers(0, 60),
)
def test_chronological_split_never_shuffles(n: int, holdout: float, embargo: int) -> None:
    try:
        train, test = chronological_split(n, holdout, embargo=embargo)
    except ConfigError as exc:
        assert exc.field == "n"
        assume(False)

    assert train.tolist() == list(range(len(train)))
    assert test.tolist() == list(range(n - len(test), n))
    assert len(test) >= holdout * n - 1e-6
    assert test[0] - train[-1] == embargo + 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n": 10, "holdout": 0.0}, "holdout"),
        ({"n": 10, "holdout": 1.0}, "holdout"),
        ({"n": 10, "holdout": 0.2, "embargo": -1}, "embargo"),
        ({"n": 10, "holdout": 0.5, "embargo": 5}, "n"),
        ({"n": 1}, "n"),
    ],
)
def test_chronological_split_names_the_bad_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        chronological_split(**kwargs)

    assert caught.value.field == field


def test_purged_walk_forward_trains_before_each_test_fold_minus_the_embargo() -> None:
    folds = purged_walk_forward(20, 2, embargo=2, min_train=6)

    assert [(tr.tolist(), te.tolist()) for tr, te in folds] == [
        (list(range(6)), list(range(8, 14))),
        (list(range(12)), list(range(14, 20))),
    ]


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 3000),
    n_splits=st.integers(1, 12),
    embargo=st.integers(0, 100),
    min_train=st.none() | st.integers(1, 1000),
)
def test_purged_folds_never_leak_into_the_purge_or_embargo_zone(
    n: int, n_splits: int, embargo: int, min_train: int | None
) -> None:
    try:
        folds = purged_walk_forward(n, n_splits, embargo=embargo, min_train=min_train)
    except ConfigError as exc:
        assert exc.field == "n"
        assume(False)

    assert len(folds) == n_splits
    for train, test in folds:
        start, end = test[0], test[-1]
        assert not np.any((train >= start - embargo) & (train <= end + embargo))
        assert len(train) >= (min_train or 1)
        assert test.tolist() == list(range(start, end + 1))
        assert train.tolist() == list(range(len(train)))


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 3000), n_splits=st.integers(1, 12), embargo=st.integers(0, 100))
def test_purged_folds_are_in_time_order_and_windows_expand(
    n: int, n_splits: int, embargo: int
) -> None:
    try:
        folds = purged_walk_forward(n, n_splits, embargo=embargo)
    except ConfigError:
        assume(False)

    tests = [test for _, test in folds]
    assert all(a[-1] + 1 == b[0] for a, b in itertools.pairwise(tests))
    assert tests[-1][-1] == n - 1
    assert all(len(a) <= len(b) for (a, _), (b, _) in itertools.pairwise(folds))
    assert max(len(t) for t in tests) - min(len(t) for t in tests) <= 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n": 100, "n_splits": 0, "embargo": 1}, "n_splits"),
        ({"n": 100, "embargo": -1}, "embargo"),
        ({"n": 100, "embargo": 1, "min_train": 0}, "min_train"),
        ({"n": 100, "embargo": 2.5}, "embargo"),
        ({"n": 100, "n_splits": 5, "embargo": 48, "min_train": 50}, "n"),
    ],
)
def test_purged_walk_forward_names_the_bad_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        purged_walk_forward(**kwargs)

    assert caught.value.field == field


# -- probabilities (Property 11) ------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e-9, 1 + 1e-9), max_size=50))
def test_probabilities_within_tolerance_come_back_inside_0_1(values: list[float]) -> None:
    # Property 11: every probability handed on lies in [0, 1].
    out = as_probabilities(values)

    assert out.dtype == np.float64 and out.shape == (len(values),)
    assert np.all((out >= 0.0) & (out <= 1.0))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0, 1), max_size=20),
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not (-1e-9 <= x <= 1 + 1e-9)),
)
def test_probabilities_outside_0_1_or_not_finite_are_refused(good: list[float], bad: float) -> None:
    with pytest.raises(DataError, match="probability at index"):
        as_probabilities([*good, bad])


# -- scores -----------------------------------------------------------------------------------
Y = [1, 0, 1, 1, 0]
P = [0.9, 0.2, 0.4, 0.8, 0.6]  # calls 1, 0, 0, 1, 1: TP 2, FP 1, FN 1, TN 1


def test_classification_report_matches_hand_computed_scores() -> None:

    report = classification_report(Y, P)

    assert report["n"] == 5 and report["positive_rate"] == pytest.approx(0.6)
    assert report["accuracy"] == pytest.approx(3 / 5)
    assert report["precision"] == pytest.approx(2 / 3)
    assert report["recall"] == pytest.approx(2 / 3)
    # pairs (positive, negative) ranked right: 0.9>0.2, 0.9>0.6, 0.4>0.2, 0.8>0.2, 0.8>0.6
    assert report["roc_auc"] == pytest.approx(5 / 6)
    expected_log_loss = -(math.log(0.9) + math.log(0.8) + math.log(0.4) * 2 + math.log(0.8)) / 5
    assert report["log_loss"] == pytest.approx(expected_log_loss)
    assert report["brier"] == pytest.approx((0.01 + 0.04 + 0.36 + 0.04 + 0.36) / 5)
    assert report["baseline_accuracy"] == pytest.approx(0.6)
    assert report["baseline_log_loss"] == pytest.approx(
        -(0.6 * math.log(0.6) + 0.4 * math.log(0.4))
    )
    assert report["baseline_brier"] == pytest.approx(0.6 * 0.16 + 0.4 * 0.36)


def test_classification_report_scores_the_baseline_with_the_training_prior() -> None:

    report = classification_report(Y, P, prior=0.5)

    assert report["baseline_log_loss"] == pytest.approx(math.log(2))
    assert report["baseline_brier"] == pytest.approx(0.25)


def test_classification_report_gives_none_for_metrics_undefined_on_a_one_class_fold() -> None:

    report = classification_report([0, 0, 0], [0.1, 0.3, 0.2])

    assert report["roc_auc"] is None
    assert report["precision"] is None  # no positive call
    assert report["recall"] is None  # no positive label
    assert report["accuracy"] == 1.0 and report["baseline_accuracy"] == 1.0
    assert report["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.7) + math.log(0.8)) / 3)


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([], [], "empty"),
        ([1, 0], [0.5], "shape"),
        ([1, 2], [0.5, 0.5], "0 or 1"),
        ([1, 0], [0.5, float("nan")], "probability at index 1"),
    ],
)
def test_classification_report_refuses_malformed_input(y: list, p: list, message: str) -> None:
    with pytest.raises(DataError, match=message):
        classification_report(y, p)


def test_calibration_error_matches_hand_computed_bins() -> None:
    # bin 1: p .1, .15 vs y 0, 1 -> |0.5 - 0.125| × 2/4; bin 8: |1 - .8| × 1/4;
    # bin 9: |0 - .9| × 1/4
    assert calibration_error([0, 1, 1, 0], [0.1, 0.15, 0.8, 0.9]) == pytest.approx(
        0.375 / 2 + 0.2 / 4 + 0.9 / 4
    )


def test_calibration_error_is_zero_when_frequencies_match_and_puts_one_in_the_last_bin() -> None:
    assert calibration_error([1, 0, 1, 1], [0.5, 0.5, 1.0, 1.0]) == 0.0
    assert calibration_error([], []) == 0.0


def test_calibrate_wraps_calibrated_classifier_cv_over_the_purged_folds() -> None:

    rng = np.random.default_rng(7)
    x = rng.normal(size=(600, 2))
    y = (x[:, 0] + rng.normal(scale=0.5, size=600) > 0).astype(int)
    folds = purged_walk_forward(600, 3, embargo=5)

    model = calibrate(LogisticRegression(), "sigmoid", folds=folds).fit(x, y)
    proba = model.predict_proba(x)[:, 1]

    assert model.method == "sigmoid" and len(model.calibrated_classifiers_) == 3
    assert np.all((proba >= 0) & (proba <= 1))


@pytest.mark.parametrize(("method", "folds", "field"), [("temperature", [1], "method"),
                                                        ("isotonic", [], "folds")])  # fmt: skip
def test_calibrate_names_the_bad_field(method: str, folds: list, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        calibrate(object(), method, folds=folds)

    assert caught.value.field == field


# -- trading metrics --------------------------------------------------------------------------
def test_trading_metrics_long_only_matches_hand_computed_trades() -> None:
    fee = 0.001
    # long, long, flat, long, flat: trade 1 = bars 0-1, trade 2 = bar 3
    bars = [1.01 * (1 - fee) - 1, 0.98 * (1 - fee) - 1, 0.0, 1.03 * (1 - fee) ** 2 - 1, 0.0]
    trade_1, trade_2 = 1.01 * 0.98 * (1 - fee) ** 2 - 1, 1.03 * (1 - fee) ** 2 - 1
    equity = np.cumprod(np.add(bars, 1))

    m = trading_metrics([0.7, 0.8, 0.3, 0.9, 0.2], [0.01, -0.02, 0.05, 0.03, 0.04], fee=fee)

    assert m["trades"] == 2 and m["hit_rate"] == 0.5
    assert m["mean_trade_return"] == pytest.approx((trade_1 + trade_2) / 2)
    assert m["cumulative_return"] == pytest.approx((1 + trade_1) * (1 + trade_2) - 1)
    assert m["max_drawdown"] == pytest.approx(1 - equity[1] / equity[0])
    mean, sd = np.mean(bars), np.std(bars, ddof=1)
    assert m["sharpe"] == pytest.approx(mean / sd * math.sqrt(365 * 288))
    assert m["exposure"] == pytest.approx(3 / 5)
    assert m["buy_and_hold_return"] == pytest.approx(1.01 * 0.98 * 1.05 * 1.03 * 1.04 - 1)


def test_trading_metrics_long_short_pays_two_fees_on_a_flip() -> None:
    fee = 0.001

    m = trading_metrics(
        [0.7, 0.3, 0.3, 0.6], [0.02, -0.01, 0.03, 0.01], threshold_short=0.4, fee=fee
    )

    # long 1.02, short (1.01 × 0.97), long 1.01; three round trips
    assert m["trades"] == 3 and m["hit_rate"] == pytest.approx(2 / 3)
    assert m["cumulative_return"] == pytest.approx(1.02 * 1.01 * 0.97 * 1.01 * (1 - fee) ** 6 - 1)
    assert m["exposure"] == 1.0


def test_trading_metrics_without_a_trade_is_flat() -> None:
    m = trading_metrics([0.2, 0.5, 0.4], [0.05, -0.02, 0.01])

    assert m["trades"] == 0 and m["hit_rate"] is None and m["mean_trade_return"] is None
    assert m["cumulative_return"] == 0.0 and m["sharpe"] == 0.0 and m["max_drawdown"] == 0.0


def test_trading_metrics_floors_a_short_wiped_out_at_minus_one() -> None:
    m = trading_metrics([0.1, 0.1], [1.5, 0.2], threshold_short=0.4, fee=0.0)

    assert m["cumulative_return"] == -1.0 and m["max_drawdown"] == 1.0 and m["trades"] == 1


def reference_trades(proba: list[float], returns: list[float], fee: float, short: bool) -> list:
    """Net trade returns, one bar at a time: the plain loop the vectorized form must match."""
    side = [1 if p > 0.5 else -1 if short and p < 0.4 else 0 for p in proba]
    trades, growth = [], 1.0
    for i, (s, r) in enumerate(zip(side, returns, strict=True)):
        if s == 0:
            continue
        if i == 0 or side[i - 1] != s:
            growth = 1 - fee
        growth *= max(1 + s * r, 0.0)
        if i + 1 == len(side) or side[i + 1] != s:
            trades.append(growth * (1 - fee) - 1)
    return trades


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.floats(-0.5, 0.5)), min_size=1, max_size=60),
    st.floats(0, 0.01),
    st.booleans(),
)
def test_trading_metrics_match_a_bar_by_bar_loop(
    rows: list[tuple[float, float]], fee: float, short: bool
) -> None:
    proba, returns = (list(c) for c in zip(*rows, strict=True))
    trades = reference_trades(proba, returns, fee, short)

    m = trading_metrics(proba, returns, fee=fee, threshold_short=0.4 if short else None)

    assert m["trades"] == len(trades)
    if trades:
        assert m["hit_rate"] == pytest.approx(np.mean(np.array(trades) > 0))
        assert m["mean_trade_return"] == pytest.approx(np.mean(trades), abs=1e-12)
    assert m["cumulative_return"] == pytest.approx(np.prod(np.add(trades, 1)) - 1, abs=1e-12)
    assert 0.0 <= m["max_drawdown"] <= 1.0


def test_trading_metrics_sharpe_uses_the_given_annualization() -> None:
    returns = [0.01, -0.02, 0.03]

    m = trading_metrics([0.9, 0.9, 0.9], returns, fee=0.0, periods_per_year=252)

    assert m["sharpe"] == pytest.approx(sharpe_ratio(np.array(returns), 252))
    assert BARS_PER_YEAR_5M == 105_120


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"threshold_long": 1.5}, "threshold_long"),
        ({"threshold_long": 0.5, "threshold_short": 0.6}, "threshold_short"),
        ({"fee": 1.0}, "fee"),
        ({"fee": -0.001}, "fee"),
        ({"periods_per_year": 0}, "periods_per_year"),
    ],
)
def test_trading_metrics_names_the_bad_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        trading_metrics([0.6], [0.01], **kwargs)

    assert caught.value.field == field


@pytest.mark.parametrize("returns", [[0.01], [0.01, float("nan")], [0.01, -1.5]])
def test_trading_metrics_refuses_mismatched_or_impossible_returns(returns: list) -> None:
    with pytest.raises(DataError):
        trading_metrics([0.6, 0.6], returns)


# -- rolling accuracy (Property 14) -----------------------------------------------------------
def feed(tracker: RollingAccuracy, hits: list[bool], start: int = 0) -> list:
    """One prediction per bar, each resolved one horizon later: correct when ``hits[i]``."""
    alerts = []
    for i, hit in enumerate(hits, start):
        tracker.add(i * BAR, 0.8)
        alerts += tracker.resolve(i * BAR + tracker.horizon_ms, lambda _t, h=hit: int(h))
    return alerts


def test_prediction_resolves_one_horizon_later_in_market_time() -> None:
    tracker = RollingAccuracy(H4)
    tracker.add(0, 0.9)
    seen: list[int] = []

    tracker.resolve(H4 - 1, lambda t: seen.append(t) or 1)
    early = (tracker.resolved, tracker.due(H4 - 1))
    tracker.resolve(H4, lambda t: seen.append(t) or 1)

    assert early == (0, [])
    assert seen == [0] and tracker.resolved == 1 and tracker.accuracy == 1.0
    assert tracker.pending == ()


def test_disables_with_one_alert_when_accuracy_over_100_falls_below_55_percent() -> None:
    tracker = RollingAccuracy(BAR)

    alerts = feed(tracker, [True] * 54 + [False] * 46)

    assert tracker.disabled
    assert len(alerts) == 1 and alerts[0].accuracy == 0.54 and alerts[0].time == 100 * BAR
    assert "54.0%" in alerts[0].message


def test_stays_enabled_at_exactly_55_percent() -> None:
    tracker = RollingAccuracy(BAR)

    alerts = feed(tracker, [False] * 45 + [True] * 55)

    assert not tracker.disabled and alerts == [] and tracker.accuracy == 0.55


def test_fewer_than_100_resolved_never_disable() -> None:
    tracker = RollingAccuracy(BAR)

    feed(tracker, [False] * 99)

    assert not tracker.disabled and tracker.accuracy == 0.0


def test_stays_disabled_after_accuracy_recovers() -> None:
    tracker = RollingAccuracy(BAR)
    feed(tracker, [False] * 100)

    alerts = feed(tracker, [True] * 100, start=100)

    assert tracker.disabled and alerts == [] and tracker.accuracy == 1.0


@settings(max_examples=150, deadline=None)
@given(st.floats(0.45, 0.65), st.integers(90, 260), st.randoms(use_true_random=False))
def test_disables_exactly_when_accuracy_over_last_100_resolved_falls_below_55_percent(
    p_correct: float, count: int, rng: random.Random
) -> None:
    # Property 14
    hits = [rng.random() < p_correct for _ in range(count)]
    tracker = RollingAccuracy(BAR)

    alerts = feed(tracker, hits)

    below = [sum(hits[i - 100 : i]) / 100 < 0.55 for i in range(100, count + 1)]
    assert tracker.disabled == any(below)
    assert len(alerts) == int(any(below))


def test_a_direction_call_is_correct_against_the_realized_label() -> None:
    tracker = RollingAccuracy(BAR, window=4)
    for i, p in enumerate([0.9, 0.2, 0.5, 0.6]):
        tracker.add(i * BAR, p)

    tracker.resolve(10 * BAR, {0: 1, BAR: 0, 2 * BAR: 0, 3 * BAR: 0}.get)

    # 0.9 vs 1 right, 0.2 vs 0 right, 0.5 (a call of 0) vs 0 right, 0.6 vs 0 wrong
    assert tracker.accuracy == 0.75


def test_unknown_outcome_is_dropped_uncounted() -> None:
    tracker = RollingAccuracy(BAR)
    tracker.add(0, 0.9)
    tracker.add(BAR, 0.9)

    tracker.resolve(2 * BAR, {BAR: 1}.get)

    assert tracker.resolved == 1 and tracker.dropped == 1 and tracker.pending == ()


def test_out_of_order_prediction_is_refused_and_a_replayed_bar_ignored() -> None:
    tracker = RollingAccuracy(BAR)
    tracker.add(BAR, 0.9)

    replayed = tracker.add(BAR, 0.1)

    assert replayed is False and tracker.pending == ((BAR, 0.9),)
    with pytest.raises(DataError, match="before the last"):
        tracker.add(0, 0.9)


def test_bad_label_is_refused_and_the_prediction_kept() -> None:
    tracker = RollingAccuracy(BAR)
    tracker.add(0, 0.9)

    with pytest.raises(DataError, match="0 or 1"):
        tracker.resolve(BAR, lambda _t: 2)

    assert tracker.pending == ((0, 0.9),)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"horizon_ms": 0}, "horizon_ms"), ({"horizon_ms": 1, "window": 0}, "window"),
     ({"horizon_ms": 1, "min_accuracy": 1.2}, "min_accuracy")],
)  # fmt: skip
def test_rolling_accuracy_names_the_bad_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RollingAccuracy(**kwargs)

    assert caught.value.field == field


# operations: ("add", proba, label) at the next bar, or ("tick", bars) advancing the clock
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.floats(0, 1), st.sampled_from([0, 1, None])),
        st.tuples(st.just("tick"), st.integers(0, 6), st.none()),
    ),
    max_size=120,
)


def run(tracker: RollingAccuracy, ops: list, clock: list[int], labels: dict) -> list:
    alerts = []
    for kind, value, label in ops:
        if kind == "add":
            clock[0] += BAR
            labels[clock[0]] = label
            tracker.add(clock[0], value)
        else:
            clock[0] += value * BAR
        alerts += tracker.resolve(clock[0], labels.get)
    return alerts


@settings(max_examples=150, deadline=None)
@given(ops=OPS, cut=st.integers(0, 120))
def test_state_round_trip_mid_run_continues_as_if_never_stopped(ops: list, cut: int) -> None:
    kwargs = {"horizon_ms": 4 * BAR, "window": 10, "min_accuracy": 0.55}
    straight, clock, labels = RollingAccuracy(**kwargs), [0], {}
    expected = run(straight, ops, clock, labels)
    first, clock, labels = RollingAccuracy(**kwargs), [0], {}
    before = run(first, ops[:cut], clock, labels)

    restarted = RollingAccuracy(**kwargs)
    restarted.restore(json.loads(json.dumps(first.state())))
    after = run(restarted, ops[cut:], clock, labels)

    assert before + after == expected
    assert restarted.state() == straight.state()


def test_replaying_the_last_bar_after_a_restart_does_not_double_count() -> None:
    tracker = RollingAccuracy(H4)
    tracker.add(0, 0.9)
    tracker.add(BAR, 0.2)
    restarted = RollingAccuracy(H4)
    restarted.restore(json.loads(json.dumps(tracker.state())))

    restarted.add(BAR, 0.2)  # the engine reprocesses the bar it stopped on
    restarted.resolve(BAR + H4, {0: 1, BAR: 0}.get)

    assert restarted.resolved == 2 and restarted.accuracy == 1.0 and restarted.pending == ()


@pytest.mark.parametrize(
    "state",
    [
        {"version": 99},
        {"version": 1, "pending": [], "hits": []},
        {"version": 1, "pending": [[5, 0.5], [1, 0.5]], "hits": [], "disabled": False,
         "last_time": 5, "resolved": 0, "dropped": 0},
        {"version": 1, "pending": [[5, 1.5]], "hits": [], "disabled": False,
         "last_time": 5, "resolved": 0, "dropped": 0},
        {"version": 1, "pending": [], "hits": [2], "disabled": False,
         "last_time": None, "resolved": 0, "dropped": 0},
    ],
)  # fmt: skip
def test_restore_refuses_a_malformed_state(state: dict) -> None:
    with pytest.raises(ValueError):
        RollingAccuracy(H4).restore(state)
