"""Portfolio allocation (domain/allocation.py, issue 6 component 7): the confidence bands and the
pro-rata caps by hand, Hypothesis properties 15-18 and the 100 % total, the rebalance schedule
and its state, the metrics, and on real candles the correlation matrix (its shape, BTC/ETH, an
independent pandas computation, causality)."""

from __future__ import annotations

import json
import math
from decimal import ROUND_FLOOR, Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.allocation import (
    QUANTUM,
    AllocationCap,
    AllocationConfig,
    allocate,
    band_fraction,
    diversification_ratio,
    open_risk,
    portfolio_metrics,
    rebalance_due,
    risk_scale,
)
from domain.allocation import RebalanceSchedule as Schedule
from domain.candles import Candles
from domain.correlation import (
    H1,
    M5,
    CorrelationMatrix,
    correlation_at,
    hourly_log_returns,
    pearson_matrix,
)
from domain.errors import ConfigError
from domain.model import Position, Side, Trade
from tests.fixtures.data import load_candles, load_sample_candles

D = Decimal
SAMPLE = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
FIVE = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
DAY = 24 * H1


def matrix(symbols: list[str], pairs: dict[tuple[str, str], float]) -> CorrelationMatrix:
    """A correlation matrix with the given pairs and 0 elsewhere."""
    k = len(symbols)
    values = np.zeros((k, k))
    for (a, b), rho in pairs.items():
        i, j = symbols.index(a), symbols.index(b)
        values[i, j] = values[j, i] = rho
    return CorrelationMatrix(tuple(symbols), values, np.full(k, 0.01))


def sample_histories() -> dict[str, Candles]:
    return {s: load_sample_candles(s) for s in SAMPLE}


def end_of(candles: Candles) -> int:
    return int(candles.open_time[-1]) + M5


# --- config ------------------------------------------------------------------------------------


def test_config_refuses_more_than_five_symbols_naming_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        AllocationConfig(max_symbols=6)

    assert err.value.field == "max_symbols"
    assert "6" in err.value.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_symbols", 0),
        ("max_symbol_fraction", D("0.41")),
        ("pair_fraction", D("0.6")),
        ("pair_fraction", D("0.35")),
        ("max_total_fraction", D("1.5")),
        ("max_risk_fraction", D(0)),
        ("base_fraction", 0.2),
        ("correlation_threshold", 1.2),
        ("window", 1),
        ("min_overlap", 2),
        ("rebalance_ms", 0),
    ],
)
def test_config_refuses_a_value_out_of_range_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        AllocationConfig(**{field: value})

    assert err.value.field == field


# --- confidence bands and caps by hand ---------------------------------------------------------


@pytest.mark.parametrize(
    ("confidence", "held", "fraction"),
    [
        (1.0, False, "0.40"),
        (0.8001, False, "0.40"),
        (0.8, False, "0.20"),
        (0.5, False, "0.20"),
        (0.4999, False, "0.10"),
        (0.3, False, "0.10"),
        (0.2999, False, "0"),
        (0.2999, True, "0.10"),
        (0.0, False, "0"),
    ],
)
def test_confidence_band_gives_the_issue_fraction(
    confidence: float, held: bool, fraction: str
) -> None:
    assert band_fraction(confidence, held=held) == D(fraction)


@pytest.mark.parametrize("confidence", [math.nan, -0.1, 1.01])
def test_band_refuses_a_confidence_outside_the_unit_interval(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        band_fraction(confidence)


def test_new_symbol_below_min_confidence_gets_nothing_with_the_reason() -> None:
    result = allocate({"BTCUSDT": 0.25}, matrix(["BTCUSDT"], {}))

    reason = result.reasons["BTCUSDT"]
    assert result.fractions["BTCUSDT"] == 0
    assert reason.caps == (AllocationCap.MIN_CONFIDENCE,)
    assert reason.confidence == 0.25


def test_correlated_pair_over_half_is_scaled_down_pro_rata() -> None:
    # 0.40 + 0.20 = 0.60 > 0.50: both × 0.5 / 0.6, floored to 1e-6.
    corr = matrix(["A", "B"], {("A", "B"): 0.75})

    result = allocate({"A": 0.9, "B": 0.6}, corr)

    assert result.fractions == {"A": D("0.333333"), "B": D("0.166666")}
    assert result.reasons["A"].caps == (AllocationCap.CORRELATION,)
    assert result.reasons["A"].correlated == (("B", 0.75),)
    assert result.reasons["B"].band == D("0.20")


def test_pair_at_exactly_the_threshold_is_not_capped() -> None:
    result = allocate({"A": 0.9, "B": 0.6}, matrix(["A", "B"], {("A", "B"): 0.7}))

    assert result.fractions == {"A": D("0.40"), "B": D("0.20")}


def test_symbol_in_two_correlated_pairs_takes_its_tightest_factor() -> None:
    # A-B: 0.5 / 0.8 = 0.625; B-C: 0.5 / 0.6; A-C uncorrelated. B takes 0.625.
    corr = matrix(["A", "B", "C"], {("A", "B"): 0.9, ("B", "C"): 0.8})

    result = allocate({"A": 0.9, "B": 0.9, "C": 0.6}, corr)

    assert result.fractions == {"A": D("0.25"), "B": D("0.25"), "C": D("0.166666")}
    assert result.reasons["B"].correlated == (("A", 0.9), ("C", 0.8))


def test_unknown_correlation_is_treated_as_correlated() -> None:
    result = allocate({"A": 0.9, "B": 0.9}, CorrelationMatrix.unknown(["A", "B"]))

    assert result.fractions == {"A": D("0.25"), "B": D("0.25")}


def test_total_over_equity_is_scaled_pro_rata() -> None:
    symbols = ["A", "B", "C", "D", "E"]

    result = allocate(dict.fromkeys(symbols, 0.95), matrix(symbols, {}))

    assert result.fractions == dict.fromkeys(symbols, D("0.2"))
    assert all(r.caps == (AllocationCap.TOTAL,) for r in result.reasons.values())


def test_symbol_cap_tightened_in_config_limits_high_confidence() -> None:
    config = AllocationConfig(max_symbol_fraction=D("0.3"))

    result = allocate({"A": 0.95}, matrix(["A"], {}), config)

    assert result.fractions["A"] == D("0.3")
    assert result.reasons["A"].caps == (AllocationCap.SYMBOL,)


def test_held_symbol_keeps_its_slot_over_a_stronger_new_signal() -> None:
    config = AllocationConfig(max_symbols=2)
    corr = matrix(["A", "B", "C"], {})

    result = allocate({"A": 0.6, "B": 0.6, "C": 0.95}, corr, config, held={"A", "B"})

    assert result.active == ("A", "B")
    assert result.reasons["C"].caps == (AllocationCap.CAPACITY,)


def test_sixth_symbol_is_refused_for_capacity() -> None:
    symbols = ["A", "B", "C", "D", "E", "F"]
    confidences = dict(zip(symbols, [0.9, 0.85, 0.7, 0.6, 0.55, 0.52], strict=True))

    result = allocate(confidences, matrix(symbols, {}))

    assert result.active == ("A", "B", "C", "D", "E")
    assert result.fractions["F"] == 0
    assert "capacity" in result.reasons["F"].message


def test_disabled_manager_gives_every_signal_the_base_fraction() -> None:
    config = AllocationConfig(enabled=False)

    result = allocate({"A": 0.95, "B": 0.1}, matrix(["A", "B"], {}), config)

    assert result.fractions == {"A": D("0.20"), "B": D("0.20")}


def test_reason_is_stored_with_its_numbers() -> None:
    result = allocate({"A": 0.9, "B": 0.6}, matrix(["A", "B"], {("A", "B"): 0.75}))

    stored = result.reasons["A"].as_reason()

    assert stored.component == "allocation"
    assert stored.values["fraction"] == pytest.approx(0.333333)
    assert stored.values["rho_B"] == 0.75
    assert "correlation cap with B" in stored.message


# --- properties ------------------------------------------------------------------------------

NAMES = [f"S{i}" for i in range(8)]


@st.composite
def portfolios(
    draw: st.DrawFn,
) -> tuple[dict[str, float], CorrelationMatrix, set[str], AllocationConfig]:
    """Confidences for 1-8 symbols, a symmetric correlation matrix (some pairs unknown), a held
    subset and a valid config."""
    k = draw(st.integers(1, 8))
    symbols = NAMES[:k]
    confidences = {s: draw(st.floats(0.0, 1.0)) for s in symbols}
    rho = st.one_of(st.floats(-1.0, 1.0), st.sampled_from([0.7, 0.71, 1.0, math.nan]))
    values = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            values[i, j] = values[j, i] = draw(rho)
    held = set(draw(st.lists(st.sampled_from(symbols), max_size=k)))
    pair_cap = draw(st.sampled_from([D("0.5"), D("0.35")]))
    symbol_cap = draw(
        st.sampled_from([c for c in (D("0.4"), D("0.3"), D("0.15")) if c <= pair_cap])
    )
    config = AllocationConfig(
        enabled=draw(st.booleans()),
        max_symbols=draw(st.integers(1, 5)),
        max_symbol_fraction=symbol_cap,
        pair_fraction=pair_cap,
        max_total_fraction=draw(st.sampled_from([D(1), D("0.8")])),
    )
    return confidences, CorrelationMatrix(tuple(symbols), values, np.zeros(k)), held, config


# Property 15
@settings(max_examples=200, deadline=None)
@given(portfolios())
def test_active_symbols_never_exceed_capacity_and_held_ones_come_first(case) -> None:
    confidences, corr, held, config = case

    result = allocate(confidences, corr, config, held=held)

    assert len(result.active) <= config.max_symbols <= 5
    if any(s not in held for s in result.active):
        eligible = {s for s in held if band_fraction(confidences[s], held=True) > 0}
        assert eligible <= set(result.active)


# Property 16
@settings(max_examples=200, deadline=None)
@given(portfolios())
def test_correlated_pairs_hold_at_most_half_combined(case) -> None:
    confidences, corr, held, config = case

    result = allocate(confidences, corr, config, held=held)

    for a in result.fractions:
        for b in result.fractions:
            if a < b and corr.effective(a, b) > config.correlation_threshold:
                assert result.fractions[a] + result.fractions[b] <= config.pair_fraction <= D("0.5")


# Property 18
@settings(max_examples=200, deadline=None)
@given(portfolios())
def test_no_symbol_gets_more_than_forty_percent(case) -> None:
    confidences, corr, held, config = case

    result = allocate(confidences, corr, config, held=held)

    assert all(0 <= w <= config.max_symbol_fraction <= D("0.4") for w in result.fractions.values())


@settings(max_examples=200, deadline=None)
@given(portfolios())
def test_allocations_sum_to_at_most_all_of_equity(case) -> None:
    confidences, corr, held, config = case

    result = allocate(confidences, corr, config, held=held)

    assert result.total <= config.max_total_fraction <= 1
    assert all(w == w.quantize(QUANTUM) for w in result.fractions.values())


PRICE = st.decimals(D("0.01"), D("100000"), places=2, allow_nan=False, allow_infinity=False)
QTY = st.decimals(D("0.001"), D("1000"), places=3, allow_nan=False, allow_infinity=False)


# Property 17
@settings(max_examples=300, deadline=None)
@given(
    equity=st.decimals(D("100"), D("10000000"), places=2, allow_nan=False, allow_infinity=False),
    max_risk=st.decimals(D("0.001"), D("1"), places=3, allow_nan=False, allow_infinity=False),
    existing=st.lists(st.tuples(QTY, PRICE, PRICE, st.booleans()), max_size=5),
    proposals=st.lists(st.tuples(QTY, PRICE, PRICE, st.sampled_from(["0.001", "0.1", "1"])),
                       max_size=5),
)  # fmt: skip
def test_total_open_risk_stays_within_the_configured_fraction(
    equity: Decimal, max_risk: Decimal, existing: list, proposals: list
) -> None:
    positions = {f"E{i}": Position(f"E{i}", q if long else -q, e) for i, (q, e, _, long) in
                 enumerate(existing)}  # fmt: skip
    stops = {f"E{i}": s for i, (_, _, s, _) in enumerate(existing)}
    before = open_risk(positions, stops)
    proposed = sum((abs(e - s) * q for q, e, s, _ in proposals), D(0))
    limit = max_risk * equity

    scale = risk_scale(
        equity=equity, max_risk_fraction=max_risk, open_risk=before, proposed_risk=proposed
    )
    added = D(0)
    for q, e, s, step in proposals:
        qty = (q * scale / D(step)).to_integral_value(ROUND_FLOOR) * D(step)
        added += abs(e - s) * qty

    assert 0 <= scale <= 1
    assert before + added <= max(limit, before)
    if before <= limit:
        assert before + added <= limit
    if 0 < scale < 1:  # the largest such factor
        assert before + (scale + QUANTUM) * proposed > limit


@settings(max_examples=100, deadline=None)
@given(
    st.integers(3, 60).flatmap(
        lambda n: st.lists(st.lists(st.floats(-0.1, 0.1), min_size=4, max_size=4),
                           min_size=n, max_size=n)
    )
)  # fmt: skip
def test_pearson_matrix_is_a_correlation_matrix_equal_to_numpy(rows: list[list[float]]) -> None:
    x = np.array(rows)

    corr = pearson_matrix(x)

    assert np.array_equal(corr, corr.T, equal_nan=True)
    assert np.all(np.diag(corr) == 1.0)
    defined = ~np.isnan(corr)
    assert np.all(np.abs(corr[defined]) <= 1.0)
    varying = x.std(axis=0) > 1e-9
    if varying.sum() >= 2:
        sub = np.ix_(varying, varying)
        np.testing.assert_allclose(corr[sub], np.corrcoef(x[:, varying].T), atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    times=st.lists(st.integers(0, 40 * DAY), min_size=1, max_size=40, unique=True),
    confident=st.lists(st.booleans(), min_size=40, max_size=40),
    cut=st.integers(0, 40),
)
def test_schedule_restored_from_state_decides_as_if_never_stopped(
    times: list[int], confident: list[bool], cut: int
) -> None:
    times.sort()
    straight, restarted = Schedule(), Schedule()
    seen_straight, seen_restarted = [], []

    for i, (t, c) in enumerate(zip(times, confident, strict=False)):
        if i == cut:  # a new process continues from the committed state
            state = json.loads(json.dumps(restarted.state()))
            restarted = Schedule()
            restarted.restore(state)
        for schedule, seen in ((straight, seen_straight), (restarted, seen_restarted)):
            due = schedule.due(t, 0.9 if c else None)
            seen.append(due)
            if due:
                schedule.record(t)

    assert seen_straight == seen_restarted


# --- rebalance schedule by hand ----------------------------------------------------------------


def test_rebalance_is_due_once_per_six_hour_epoch_boundary() -> None:
    last = 6 * H1 + 5 * M5  # 06:25 UTC

    assert rebalance_due(None, last)
    assert not rebalance_due(last, 12 * H1 - M5)
    assert rebalance_due(last, 12 * H1)  # 12:00
    assert Schedule().next_time(last) == 12 * H1


def test_only_a_signal_above_0_8_triggers_an_early_rebalance() -> None:
    last = 6 * H1

    assert rebalance_due(last, 7 * H1, 0.81)
    assert not rebalance_due(last, 7 * H1, 0.8)
    assert not rebalance_due(last, 7 * H1, None)


def test_schedule_state_is_json_and_refuses_another_version() -> None:
    schedule = Schedule()
    schedule.record(123 * H1)
    restored = Schedule()

    restored.restore(json.loads(json.dumps(schedule.state())))

    assert restored.last_rebalance_ms == 123 * H1
    with pytest.raises(ValueError, match="version"):
        restored.restore({"version": 99, "last_rebalance_ms": 0})


# --- risk and metrics by hand ------------------------------------------------------------------


def test_open_risk_sums_stop_distance_times_quantity() -> None:
    positions = {"A": Position("A", D(2), D(100)), "B": Position("B", D(-3), D(50))}

    risk = open_risk(positions, {"A": D(95), "B": D(52)})

    assert risk == D(16)  # 5 × 2 + 2 × 3


def test_open_risk_refuses_a_position_without_stop() -> None:
    with pytest.raises(ValueError, match="no stop"):
        open_risk({"A": Position("A", D(1), D(100))}, {})


def test_risk_scale_halves_proposals_that_would_double_the_budget() -> None:
    # limit 0.06 × 10,000 = 600; 400 open; 400 proposed → 200 / 400.
    scale = risk_scale(
        equity=D(10000), max_risk_fraction=D("0.06"), open_risk=D(400), proposed_risk=D(400)
    )

    assert scale == D("0.5")


def test_diversification_ratio_by_hand() -> None:
    corr = np.array([[1.0, 0.0], [0.0, 1.0]])
    vol = np.array([0.02, 0.02])

    assert diversification_ratio(np.array([0.5, 0.5]), vol, corr) == pytest.approx(math.sqrt(2))
    assert diversification_ratio(np.array([0.5, 0.0]), vol, corr) == pytest.approx(1.0)
    assert math.isnan(diversification_ratio(np.zeros(2), vol, corr))


def test_portfolio_metrics_add_realized_and_unrealized_pnl_per_symbol() -> None:
    trade = Trade("t1", "A", Side.BUY, D(1), 0, D(100), H1, D(110), D("9.5"), D("0.5"))
    positions = {"A": Position("A", D(2), D(100)), "B": Position("B", D(-1), D(50))}
    corr = matrix(["A", "B"], {("A", "B"): 0.5})

    metrics = portfolio_metrics(
        equity=D(1000), positions=positions, marks={"A": D(105), "B": D(40)}, trades=[trade],
        stops={"A": D(95), "B": D(55)}, correlation=corr,
    )  # fmt: skip

    assert metrics.per_symbol_pnl == {"A": D("19.5"), "B": D(10)}
    assert metrics.total_pnl == D("29.5")
    assert metrics.weights == {"A": 0.21, "B": -0.04}
    assert metrics.total_risk == D(15)
    # σ equal: (0.21 + 0.04) / sqrt(0.21² + 0.04² − 2 × 0.5 × 0.21 × 0.04)
    expected = 0.25 / math.sqrt(0.21**2 + 0.04**2 - 0.21 * 0.04)
    assert metrics.diversification_ratio == pytest.approx(expected)


# --- correlation on real candles ---------------------------------------------------------------


def test_sample_correlation_is_symmetric_with_ones_on_the_diagonal() -> None:
    histories = sample_histories()

    corr = correlation_at(histories, SAMPLE, end_of(histories["BTCUSDT"]))

    assert corr.observations == 720
    assert np.array_equal(corr.values, corr.values.T)
    assert np.all(np.diag(corr.values) == 1.0)
    assert np.all(np.abs(corr.values) <= 1.0)
    assert corr.to_dict()["ETHUSDT"]["BTCUSDT"] == corr.get("BTCUSDT", "ETHUSDT")


def test_btc_and_eth_hourly_returns_are_highly_correlated() -> None:
    histories = sample_histories()

    corr = correlation_at(histories, SAMPLE, end_of(histories["BTCUSDT"]))

    # 2025-10-02 .. 2025-11-01: BTC/ETH 0.823, BTC/SOL 0.806, ETH/SOL 0.855.
    assert corr.get("BTCUSDT", "ETHUSDT") == pytest.approx(0.8233, abs=1e-4)
    assert corr.get("BTCUSDT", "ETHUSDT") > 0.7


def pandas_reference(histories: dict[str, Candles], symbols: list[str], t: int) -> np.ndarray:
    """The same statistic with pandas' resample and corr, written independently."""
    returns = {}
    for symbol in symbols:
        c = histories[symbol]
        index = pd.to_datetime(c.open_time, unit="ms", utc=True)
        frame = pd.DataFrame({"close": c.close, "n": 1}, index=index)
        frame = frame[c.open_time + M5 <= t]
        hourly = frame.resample("1h").agg({"close": "last", "n": "sum"})
        close = hourly["close"][hourly["n"] == 12]
        close = close.reindex(pd.date_range(close.index[0], close.index[-1], freq="1h"))
        r = np.log(close).diff()
        r.index = r.index + pd.Timedelta(hours=1)
        returns[symbol] = r
    frame = pd.DataFrame(returns).dropna()
    frame = frame[frame.index > pd.Timestamp(t - 720 * H1, unit="ms", tz="UTC")]
    return frame.corr().to_numpy()


def test_five_symbol_correlation_matches_an_independent_pandas_computation() -> None:
    histories = {s: load_candles(f"binance_usdm_{s}_5m.csv.gz") for s in FIVE}
    t = int(histories["BTCUSDT"].open_time[0]) + 200 * DAY + 7 * M5

    corr = correlation_at(histories, FIVE, t)

    assert corr.observations == 720
    np.testing.assert_allclose(corr.values, pandas_reference(histories, FIVE, t), atol=1e-12)


def test_correlation_at_t_ignores_truncated_or_changed_future_bars() -> None:
    histories = sample_histories()
    t = int(histories["BTCUSDT"].open_time[0]) + 40 * DAY + 25 * M5
    before = correlation_at(histories, SAMPLE, t)
    truncated = {s: c.between(None, t - M5 + 1) for s, c in histories.items()}
    changed = {}
    for s, c in histories.items():
        close = c.close.copy()
        close[c.open_time + M5 > t] *= 3.0
        changed[s] = Candles(c.open_time, c.open, np.maximum(c.high, close), c.low, close, c.volume)

    after_truncation = correlation_at(truncated, SAMPLE, t)
    after_change = correlation_at(changed, SAMPLE, t)

    assert np.array_equal(before.values, after_truncation.values)
    assert np.array_equal(before.values, after_change.values)
    assert np.array_equal(before.volatility, after_change.volatility)


def test_a_forming_hour_does_not_count() -> None:
    histories = sample_histories()
    hour = int(histories["BTCUSDT"].open_time[0]) + 40 * DAY

    at_hour = correlation_at(histories, SAMPLE, hour)
    mid_hour = correlation_at(histories, SAMPLE, hour + 30 * 60_000)

    assert np.array_equal(at_hour.values, mid_hour.values)


def test_too_little_history_leaves_every_pair_unknown_and_capped() -> None:
    histories = sample_histories()
    t = int(histories["BTCUSDT"].open_time[0]) + 100 * H1

    corr = correlation_at(histories, SAMPLE, t)

    assert corr.observations == 0
    assert math.isnan(corr.get("BTCUSDT", "ETHUSDT"))
    assert corr.effective("BTCUSDT", "ETHUSDT") == 1.0
    assert corr.to_dict()["BTCUSDT"]["SOLUSDT"] is None


def test_no_hourly_return_spans_a_missing_bar() -> None:
    c = load_sample_candles("BTCUSDT").slice(0, 12 * 6)  # six hours
    gap = np.ones(len(c), dtype=bool)
    gap[12 * 2 + 5] = False  # a 5m bar missing inside the third hour
    holed = Candles(*(col[gap] for col in (c.open_time, c.open, c.high, c.low, c.close, c.volume)))

    times, returns = hourly_log_returns(holed)

    start = int(c.open_time[0])
    assert times.tolist() == [start + 2 * H1, start + 5 * H1, start + 6 * H1]
    assert returns[0] == pytest.approx(math.log(c.close[23] / c.close[11]))


def test_real_correlations_cap_btc_and_eth_at_half_of_equity() -> None:
    histories = sample_histories()
    corr = correlation_at(histories, SAMPLE, end_of(histories["BTCUSDT"]))

    result = allocate({"BTCUSDT": 0.9, "ETHUSDT": 0.85, "SOLUSDT": 0.6}, corr)

    assert result.fractions["BTCUSDT"] + result.fractions["ETHUSDT"] == D("0.5")
    assert result.fractions["SOLUSDT"] == D("0.166666")


def test_a_gap_in_one_symbol_drops_those_hours_for_all_and_matches_pandas() -> None:
    histories = sample_histories()
    eth = histories["ETHUSDT"]
    t = end_of(eth)
    keep = (eth.open_time < t - 10 * DAY) | (eth.open_time >= t - 10 * DAY + 3 * H1 + 2 * M5)
    columns = (eth.open_time, eth.open, eth.high, eth.low, eth.close, eth.volume)
    histories["ETHUSDT"] = Candles(*(col[keep] for col in columns))

    corr = correlation_at(histories, SAMPLE, t)

    assert corr.observations == 720 - 5  # 4 hours gone (one partial) + the return after them
    np.testing.assert_allclose(corr.values, pandas_reference(histories, SAMPLE, t), atol=1e-12)
