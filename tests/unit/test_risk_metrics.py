"""Risk metrics (domain/risk_metrics.py): hand-computed cases, the 305 days of real Binance
BTCUSDT/ETHUSDT 5m klines, and Hypothesis invariants."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.marketdata.binance_csv import read_klines
from domain.candles import Candles
from domain.metrics import DAY_MS
from domain.model import EquityPoint, Position
from domain.risk_metrics import (
    DailyCloses,
    EquitySeries,
    daily_closes,
    daily_returns,
    drawdown,
    equity_var,
    exposure,
    historical_var_cvar,
    margin_ratio,
    min_observations,
    position_pnl,
    position_var,
    risk_metrics,
)
from tests.fixtures.data import load_candles, shared_file

BAR_MS = 300_000
# sorted: -0.08, -0.05, -0.03, -0.01, 0, 0.01, 0.015, 0.02, 0.03, 0.04
TEN_RETURNS = [0.02, -0.05, 0.01, -0.03, 0.0, 0.04, -0.01, -0.08, 0.03, 0.015]


def utc_day(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date()


def day_number(iso: str) -> int:
    return dt.date.fromisoformat(iso).toordinal() - dt.date(1970, 1, 1).toordinal()


# --- historical VaR / CVaR by hand -------------------------------------------------------


def test_var_with_a_fractional_tail_is_the_next_worst_loss_and_cvar_weights_it() -> None:
    # n = 10, c = 0.75: tail m = 10 × 0.25 = 2.5 days, k = ⌈2.5⌉ = 3 → VaR = 3rd worst = 0.03
    # CVaR = (0.08 + 0.05 + 0.5 × 0.03) / 2.5 = 0.145 / 2.5 = 0.058
    var, cvar = historical_var_cvar(TEN_RETURNS, 0.75)

    assert (var, cvar) == (pytest.approx(0.03), pytest.approx(0.058))


def test_var_with_a_whole_tail_is_the_mth_worst_loss_and_cvar_the_mean_of_the_m_worst() -> None:
    # c = 0.8: 1 − 0.8 is 0.19999999999999996 in binary; m = 2 exactly after snapping
    # → VaR = 2nd worst = 0.05, CVaR = (0.08 + 0.05) / 2 = 0.065
    var, cvar = historical_var_cvar(TEN_RETURNS, 0.8)

    assert (var, cvar) == (pytest.approx(0.05), pytest.approx(0.065))


def test_a_tail_of_exactly_one_day_is_accepted_despite_binary_rounding() -> None:
    # c = 0.9: 10 × (1 − 0.9) = 0.9999999999999998, which is one whole day: VaR = CVaR = worst
    assert historical_var_cvar(TEN_RETURNS, 0.9) == (pytest.approx(0.08), pytest.approx(0.08))


def test_var95_of_100_returns_is_the_5th_worst_not_the_6th() -> None:
    # losses 1..100 (returns -1..-100 %): the 5 % tail is 5 days, so VaR = the 5th worst = 0.96
    # (np.quantile(r, 1 - 0.95, method="inverted_cdf") gives the 6th worst, 0.95, because
    # 100 × 0.050000000000000044 rounds up to 6); CVaR = (1 + 0.99 + 0.98 + 0.97 + 0.96) / 5
    returns = -np.arange(1, 101) / 100

    var, cvar = historical_var_cvar(returns, 0.95)

    assert (var, cvar) == (pytest.approx(0.96), pytest.approx(0.98))


def test_var_is_negative_when_even_the_tail_is_a_gain() -> None:
    assert historical_var_cvar([0.01, 0.02, 0.03, 0.04], 0.5) == (
        pytest.approx(-0.02),  # m = 2: 2nd worst return +2 %
        pytest.approx(-0.015),  # mean of +1 % and +2 %
    )


def test_min_observations_leave_at_least_one_whole_day_in_the_tail() -> None:
    assert [min_observations(c) for c in (0.5, 0.9, 0.95, 0.99)] == [2, 10, 20, 100]


def test_var_refuses_fewer_returns_than_the_minimum() -> None:
    with pytest.raises(ValueError, match="at least 20 returns, had 19"):
        historical_var_cvar(np.zeros(19), 0.95)


@pytest.mark.parametrize("bad", [[0.01, math.nan] * 50, [0.01, math.inf] * 50])
def test_var_refuses_nan_and_infinite_returns(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="finite"):
        historical_var_cvar(bad, 0.95)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1, math.nan])
def test_var_refuses_a_confidence_outside_the_open_unit_interval(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence must be in"):
        historical_var_cvar(np.zeros(1000), confidence)


# --- equity curve, daily returns, drawdown by hand ---------------------------------------


def test_daily_returns_take_the_last_point_of_each_utc_day_and_skip_empty_days() -> None:
    # day 0: 00:05 → 100, 12:00 → 105, 24:00 → 110 (a close at midnight ends day 0)
    # day 1: 12:00 → 99; day 2: no point; day 3: 06:00 → 108.9
    # returns: 99 / 110 − 1 = −0.1, then 108.9 / 99 − 1 = +0.1 (spanning the empty day 2)
    h = 3_600_000
    curve = EquitySeries(
        np.array([BAR_MS, 12 * h, DAY_MS, DAY_MS + 12 * h, 3 * DAY_MS + 6 * h]),
        np.array([100.0, 105.0, 110.0, 99.0, 108.9]),
    )

    assert daily_returns(curve) == pytest.approx([-0.1, 0.1])


def test_daily_returns_refuse_a_non_positive_day_end_equity() -> None:
    curve = EquitySeries(np.array([DAY_MS, 2 * DAY_MS]), np.array([0.0, 5.0]))

    with pytest.raises(ValueError, match="positive equity"):
        daily_returns(curve)


def test_equity_series_from_points_converts_decimal_equity() -> None:
    points = [
        EquityPoint(1, Decimal("100.5"), Decimal(100)),
        EquityPoint(2, Decimal(99), Decimal(9)),
    ]

    curve = EquitySeries.from_points(points)

    assert (curve.time.tolist(), curve.equity.tolist()) == ([1, 2], [100.5, 99.0])


@pytest.mark.parametrize(
    ("time", "equity", "message"),
    [([], [], "non-empty"), ([2, 1], [1.0, 1.0], "increase"), ([1, 2], [1.0, math.nan], "finite")],
)
def test_equity_series_refuses_bad_state(
    time: list[int], equity: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        EquitySeries(np.array(time, dtype=np.int64), np.array(equity))


def test_drawdown_by_hand() -> None:
    # equity 100, 120, 90, 130, 65, 104 at days 1..6; running peaks 100, 120, 120, 130, 130, 130
    # falls 0, 0, 0.25, 0, 0.5, 0.2: max 0.5 from the peak at day 4 to the trough at day 5;
    # current 0.2 below the peak 130 of day 4
    times = np.arange(1, 7) * DAY_MS
    curve = EquitySeries(times, np.array([100.0, 120.0, 90.0, 130.0, 65.0, 104.0]))

    dd = drawdown(curve)

    assert (dd.current, dd.max, dd.peak_equity) == (pytest.approx(0.2), 0.5, 130.0)
    assert (dd.peak_time, dd.max_peak_time, dd.max_trough_time) == (times[3], times[3], times[4])


def test_a_peak_held_flat_dates_from_the_last_time_equity_stood_there() -> None:
    curve = EquitySeries(np.array([1, 2, 3]), np.array([100.0, 100.0, 90.0]))

    assert drawdown(curve).peak_time == 2


def test_drawdown_refuses_a_non_positive_first_equity() -> None:
    with pytest.raises(ValueError, match="positive first equity"):
        drawdown(EquitySeries(np.array([1]), np.array([0.0])))


# --- positions: VaR, exposure, leverage, margin ratio by hand ----------------------------

HAND_CLOSES = {
    # BTC returns +10 %, −10 %, 0, −10 %; ETH returns 0, +10 %, −10 %, 0
    "BTCUSDT": DailyCloses(np.arange(5), np.array([100.0, 110.0, 99.0, 99.0, 89.1])),
    "ETHUSDT": DailyCloses(np.arange(5), np.array([10.0, 10.0, 11.0, 9.9, 9.9])),
}
HAND_BOOK = [Position("BTCUSDT", Decimal(2)), Position("ETHUSDT", Decimal(-10))]
HAND_MARKS = {"BTCUSDT": Decimal(100), "ETHUSDT": Decimal(10)}


def test_position_pnl_revalues_todays_positions_by_each_past_days_returns() -> None:
    # 2 BTC × 100 = 200 long, −10 ETH × 10 = −100 short:
    # day 1: 200 × 0.1 − 100 × 0 = 20; day 2: 200 × −0.1 − 100 × 0.1 = −30
    # day 3: 0 − 100 × −0.1 = 10;     day 4: 200 × −0.1 − 0 = −20
    pnl = position_pnl(HAND_BOOK, HAND_MARKS, HAND_CLOSES)

    assert pnl == pytest.approx([20.0, -30.0, 10.0, -20.0])


def test_position_var_by_hand_in_quote_and_as_a_fraction_of_equity() -> None:
    # losses sorted 30, 20, −10, −20; c = 0.5: m = 2 → VaR = 20, CVaR = (30 + 20) / 2 = 25
    est = position_var(HAND_BOOK, HAND_MARKS, HAND_CLOSES, Decimal(1000), 0.5)

    assert (est.var_quote, est.cvar_quote) == (pytest.approx(20.0), pytest.approx(25.0))
    assert (est.var, est.cvar, est.observations) == (pytest.approx(0.02), pytest.approx(0.025), 4)


def test_position_pnl_uses_only_days_every_held_symbol_has() -> None:
    # ETH lacks day 2, so both series use days 0, 1, 3, 4: BTC 100, 110, 99, 89.1
    closes = {**HAND_CLOSES, "ETHUSDT": DailyCloses(np.array([0, 1, 3, 4]), np.full(4, 10.0))}

    pnl = position_pnl(HAND_BOOK, HAND_MARKS, closes)

    assert pnl == pytest.approx([20.0, 200 * (99 / 110 - 1), -20.0])


def test_a_flat_book_has_zero_var_without_any_history() -> None:
    est = position_var([Position("BTCUSDT")], {}, {}, 1000.0, 0.99)

    assert (est.var, est.cvar, est.var_quote, est.observations) == (0.0, 0.0, 0.0, 0)


def test_position_var_refuses_a_held_symbol_without_mark_or_closes() -> None:
    with pytest.raises(ValueError, match="no mark price for held symbol ETHUSDT"):
        position_pnl(HAND_BOOK, {"BTCUSDT": 100.0}, HAND_CLOSES)
    with pytest.raises(ValueError, match="no daily closes for held symbol ETHUSDT"):
        position_pnl(HAND_BOOK, HAND_MARKS, {"BTCUSDT": HAND_CLOSES["BTCUSDT"]})


def test_exposure_and_leverage_by_hand() -> None:
    # long 0.5 BTC at 60,000 = 30,000; short 10 ETH at 3,000 = −30,000; equity 20,000
    # gross 60,000 (3.0 × equity), net 0, leverage 3
    book = [Position("BTCUSDT", Decimal("0.5")), Position("ETHUSDT", Decimal(-10))]
    marks = {"BTCUSDT": Decimal(60_000), "ETHUSDT": Decimal(3_000)}

    exp = exposure(book, marks, Decimal(20_000))

    assert (exp.gross, exp.net, exp.gross_fraction, exp.net_fraction, exp.leverage) == (
        60_000.0, 0.0, 3.0, 0.0, 3.0
    )  # fmt: skip


def test_exposure_refuses_non_positive_equity() -> None:
    with pytest.raises(ValueError, match="equity must be > 0, was 0"):
        exposure([], {}, 0.0)


def test_margin_ratio_is_maintenance_margin_over_margin_balance() -> None:
    # maintenance 0.5 % of 60,000 notional = 300 against a 20,000 margin balance: 1.5 %
    assert margin_ratio(Decimal(300), Decimal(20_000)) == pytest.approx(0.015)


def test_margin_ratio_edges() -> None:
    assert (margin_ratio(0, 100), margin_ratio(0, -5), margin_ratio(1, 0)) == (0.0, 0.0, math.inf)
    with pytest.raises(ValueError, match="maintenance margin must be finite and >= 0, was -1"):
        margin_ratio(-1, 100)


def test_risk_metrics_mark_var_none_where_history_is_too_short() -> None:
    # 30 daily returns: enough for 95 % (needs 20), not for 99 % (needs 100)
    curve = EquitySeries(np.arange(31) * DAY_MS, 100.0 + np.arange(31) % 3)
    closes = {"BTCUSDT": DailyCloses(np.arange(31), 100.0 + np.arange(31) % 5)}
    book = [Position("BTCUSDT", Decimal(1))]

    risk = risk_metrics(curve, book, {"BTCUSDT": 100.0}, closes, Decimal(1))

    assert risk.equity_var[0.95] is not None and risk.equity_var[0.99] is None
    assert risk.position_var[0.95] is not None and risk.position_var[0.99] is None


# --- real data: 305 days of Binance USDⓈ-M 5m klines --------------------------------------


@pytest.fixture(scope="module")
def btc() -> Candles:
    return read_klines(shared_file("binance_usdm_BTCUSDT_5m.csv.gz"))


@pytest.fixture(scope="module")
def eth() -> Candles:
    return read_klines(shared_file("binance_usdm_ETHUSDT_5m.csv.gz"))


def buy_and_hold(candles: Candles, qty: float = 1.0) -> EquitySeries:
    """Equity of a fully funded long of ``qty`` bought at the first open: a start point at the
    first bar's open time, then one point per bar close."""
    times = np.r_[candles.open_time[0], candles.open_time + BAR_MS]
    return EquitySeries(times, qty * np.r_[candles.open[0], candles.close])


def test_btc_buy_and_hold_var_over_305_days(btc: Candles) -> None:
    # 2024-12-31 .. 2025-10-31: 305 daily returns
    returns = daily_returns(buy_and_hold(btc))
    var95, cvar95 = historical_var_cvar(returns, 0.95)
    var99, cvar99 = historical_var_cvar(returns, 0.99)

    assert len(returns) == 305
    assert var99 >= var95 > 0
    assert cvar95 >= var95 and cvar99 >= var99
    # 3.2 % / 4.9 % at 95 %, 6.1 % / 7.4 % at 99 %
    assert (var95, cvar95, var99, cvar99) == pytest.approx(
        (0.0322, 0.0485, 0.0613, 0.0738), abs=5e-4
    )


def test_btc_var_matches_an_independent_pandas_computation() -> None:
    # Parsed with plain pandas (tests/fixtures/data.py), not the adapter: last close per UTC day
    # against the previous day's (the first day against the first open).
    bars = load_candles("binance_usdm_BTCUSDT_5m.csv.gz")
    days = pd.Series(bars.close, index=pd.to_datetime(bars.open_time, unit="ms", utc=True).date)
    closes = np.r_[bars.open[0], days.groupby(level=0).last().to_numpy()]
    worst = np.sort(closes[1:] / closes[:-1] - 1.0)[:4]
    # 99 % of 305 days: m = 3.05 → VaR = 4th worst; CVaR = (L1 + L2 + L3 + 0.05 × L4) / 3.05
    expected_cvar = -(worst[0] + worst[1] + worst[2] + 0.05 * worst[3]) / 3.05

    var, cvar = historical_var_cvar(daily_returns(buy_and_hold(bars)), 0.99)

    assert (var, cvar) == (pytest.approx(-worst[3], rel=1e-12), pytest.approx(expected_cvar))


def test_btc_buy_and_hold_max_drawdown_is_the_april_2025_tariff_sell_off(btc: Candles) -> None:
    dd = drawdown(buy_and_hold(btc))

    assert dd.max == pytest.approx(0.3159, abs=1e-4)
    assert (utc_day(dd.max_peak_time), utc_day(dd.max_trough_time)) == (
        dt.date(2025, 1, 20), dt.date(2025, 4, 7)
    )  # fmt: skip
    # at the end of October BTC is 13 % below the 2025-10-06 high it held before the crash
    assert dd.current == pytest.approx(0.1304, abs=1e-4)
    assert utc_day(dd.peak_time) == dt.date(2025, 10, 6)


def drawdown_by_day(curve: EquitySeries) -> dict[int, float]:
    """UTC day number → the max drawdown within that day, measured from the previous day's
    last point through the day's points."""
    day = (curve.time - 1) // DAY_MS
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    ends = np.r_[starts[1:], len(day)]
    falls = {}
    for start, end in zip(starts, ends, strict=True):
        since = max(start - 1, 0)
        part = EquitySeries(curve.time[since:end], curve.equity[since:end])
        falls[int(day[start])] = drawdown(part).max
    return falls


def test_the_october_2025_crash_is_the_worst_intraday_drawdown_of_btc(btc: Candles) -> None:
    falls = drawdown_by_day(buy_and_hold(btc))

    worst, second = sorted(falls, key=falls.__getitem__, reverse=True)[:2]

    assert worst == day_number("2025-10-10")
    assert falls[worst] == pytest.approx(0.1546, abs=1e-4)
    assert falls[second] < 0.1  # 2025-03-03, 9.1 %


def test_real_position_var_is_positive_ordered_and_linear_in_size(
    btc: Candles, eth: Candles
) -> None:
    closes = {"BTCUSDT": daily_closes(btc), "ETHUSDT": daily_closes(eth)}
    marks = {"BTCUSDT": float(btc.close[-1]), "ETHUSDT": float(eth.close[-1])}
    book = [Position("BTCUSDT", Decimal("0.5")), Position("ETHUSDT", Decimal(-5))]
    double = [Position(p.symbol, 2 * p.qty) for p in book]

    v95, v99 = (position_var(book, marks, closes, 10_000.0, c) for c in (0.95, 0.99))
    d95, d99 = (position_var(double, marks, closes, 10_000.0, c) for c in (0.95, 0.99))

    assert v99.var_quote >= v95.var_quote > 0 and v95.observations == 304
    assert v95.cvar_quote >= v95.var_quote and v99.cvar_quote >= v99.var_quote
    assert (d95.var_quote, d99.var_quote, d99.cvar_quote) == pytest.approx(
        (2 * v95.var_quote, 2 * v99.var_quote, 2 * v99.cvar_quote), rel=1e-12
    )


def test_var_of_a_fully_funded_long_equals_the_var_of_its_equity_curve(btc: Candles) -> None:
    # Equity = qty × close, so the position's P&L over equity is BTC's daily return: the two
    # routes (equity curve, positions revalued) must agree on the same 304 days.
    qty = 0.25
    mark = float(btc.close[-1])
    curve = EquitySeries(btc.open_time + BAR_MS, qty * btc.close)
    book = [Position("BTCUSDT", Decimal(str(qty)))]

    for c in (0.95, 0.99):
        from_curve = equity_var(curve, c)
        from_book = position_var(book, {"BTCUSDT": mark}, {"BTCUSDT": daily_closes(btc)},
                                 qty * mark, c)  # fmt: skip
        assert (from_book.var, from_book.cvar) == pytest.approx((from_curve.var, from_curve.cvar))
        assert from_book.observations == from_curve.observations == 304


def test_risk_metrics_of_a_real_book_bundle_the_parts(btc: Candles, eth: Candles) -> None:
    curve = buy_and_hold(btc, qty=0.1)
    closes = {"BTCUSDT": daily_closes(btc), "ETHUSDT": daily_closes(eth)}
    marks = {"BTCUSDT": float(btc.close[-1]), "ETHUSDT": float(eth.close[-1])}
    book = [Position("BTCUSDT", Decimal("0.1")), Position("ETHUSDT", Decimal("-1"))]
    equity = float(curve.equity[-1])

    risk = risk_metrics(curve, book, marks, closes, Decimal(50))

    assert (risk.time, risk.equity) == (int(curve.time[-1]), equity)
    assert utc_day(risk.time - 1) == dt.date(2025, 10, 31)
    assert risk.equity_var[0.99] == equity_var(curve, 0.99)
    assert risk.position_var[0.95] == position_var(book, marks, closes, equity, 0.95)
    assert risk.exposure.leverage == pytest.approx(
        (0.1 * marks["BTCUSDT"] + marks["ETHUSDT"]) / equity
    )
    assert risk.margin_ratio == pytest.approx(50 / equity)
    assert risk.drawdown == drawdown(curve)


# --- Hypothesis invariants --------------------------------------------------------------

returns_lists = st.lists(
    st.floats(-0.9, 2.0, allow_nan=False, allow_subnormal=False), min_size=100, max_size=400
)
confidences = st.floats(0.5, 0.99)


@given(returns_lists, confidences, confidences)
def test_var_and_cvar_grow_with_confidence(returns: list[float], a: float, b: float) -> None:
    low, high = sorted((a, b))

    var_low, cvar_low = historical_var_cvar(returns, low)
    var_high, cvar_high = historical_var_cvar(returns, high)

    assert var_low <= var_high
    assert cvar_low <= cvar_high + 1e-12  # equal in exact arithmetic at equal tails


@given(returns_lists, confidences)
def test_cvar_is_never_below_var(returns: list[float], c: float) -> None:
    var, cvar = historical_var_cvar(returns, c)

    assert cvar >= var


@given(returns_lists, confidences, st.floats(1e-3, 1e3))
def test_scaling_returns_by_k_scales_var_and_cvar_by_k(
    returns: list[float], c: float, k: float
) -> None:
    var, cvar = historical_var_cvar(returns, c)

    var_k, cvar_k = historical_var_cvar(np.asarray(returns) * k, c)

    # rounding is monotone, so the order statistic of k·r is k times that of r, exactly
    assert var_k == k * var
    assert cvar_k == pytest.approx(k * cvar, rel=1e-9, abs=1e-12)


@given(returns_lists, st.sampled_from([0.5, 0.75, 0.875, 0.9375]))
def test_var_is_numpys_inverted_cdf_quantile_where_one_minus_c_is_exact(
    returns: list[float], c: float
) -> None:
    var, _ = historical_var_cvar(returns, c)

    assert var == -np.quantile(returns, 1 - c, method="inverted_cdf")


@settings(max_examples=200)
@given(st.lists(st.floats(1.0, 1e6), min_size=1, max_size=200))
def test_drawdown_lies_in_unit_interval_and_current_never_exceeds_max(equity: list[float]) -> None:
    dd = drawdown(EquitySeries(np.arange(len(equity)), np.array(equity)))

    assert 0.0 <= dd.current <= dd.max < 1.0
    assert dd.max_peak_time <= dd.max_trough_time
