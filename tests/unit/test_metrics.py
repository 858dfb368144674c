"""Performance statistics (domain/metrics.py) on series checked by hand."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from domain.metrics import (
    DAY_MS,
    daily_returns,
    max_drawdown,
    performance,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
)
from domain.model import Side, Trade
from tests.fixtures.data import load_sample_candles

BAR_MS = 300_000
# r = [1 %, -0.5 %, 2 %, 0 %, -1 %]
RETURNS = np.array([0.01, -0.005, 0.02, 0.0, -0.01])


def trade(pnl: str) -> Trade:
    return Trade("t", "BTCUSDT", Side.BUY, Decimal("0.01"), 0, Decimal(100), 1, Decimal(100),
                 Decimal(pnl), Decimal(0))  # fmt: skip


def test_max_drawdown_is_the_largest_fall_from_a_running_peak() -> None:
    # peaks 100, 120, 120, 130, 130: the worst fall is 130 -> 65, i.e. 50 %
    assert max_drawdown(np.array([100.0, 120.0, 90.0, 130.0, 65.0])) == 0.5


def test_performance_reports_max_drawdown_in_percent_including_the_start_equity() -> None:
    times = np.arange(1, 5) * DAY_MS

    metrics = performance(times, np.array([120.0, 90.0, 130.0, 65.0]), 100.0, [], 0.0,
                          np.zeros(4, bool))  # fmt: skip

    assert metrics.max_drawdown_pct == pytest.approx(50.0)


def test_profit_factor_is_gross_profit_over_gross_loss() -> None:
    # gains 10 + 20 = 30, losses 5 + 10 = 15
    assert profit_factor([10.0, -5.0, 20.0, -10.0]) == 2.0


def test_profit_factor_is_infinite_without_losses_and_zero_without_trades() -> None:
    assert (profit_factor([3.0, 4.0]), profit_factor([])) == (math.inf, 0.0)


def test_sharpe_of_a_known_daily_series_matches_the_hand_computation() -> None:
    # mean = (0.01 - 0.005 + 0.02 + 0 - 0.01) / 5 = 0.003
    # deviations 0.007, -0.008, 0.017, -0.003, -0.013; squares sum to
    # 0.000049 + 0.000064 + 0.000289 + 0.000009 + 0.000169 = 0.00058
    # sample variance = 0.00058 / 4 = 0.000145
    expected = 0.003 / math.sqrt(0.000145) * math.sqrt(365)  # = 4.7597...

    assert sharpe_ratio(RETURNS) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(4.7597, abs=1e-4)


def test_sortino_of_a_known_daily_series_matches_the_hand_computation() -> None:
    # downside min(r, 0) = 0, -0.005, 0, 0, -0.01; mean square = (0.000025 + 0.0001) / 5
    # = 0.000025, so the downside deviation is 0.005 and Sortino = 0.003 / 0.005 × √365
    expected = 0.6 * math.sqrt(365)  # = 11.4630...

    assert sortino_ratio(RETURNS) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(11.4630, abs=1e-4)


def test_sharpe_and_sortino_are_zero_when_undefined() -> None:
    flat = np.zeros(10)

    assert (sharpe_ratio(flat), sortino_ratio(flat), sharpe_ratio(np.array([0.01]))) == (0, 0, 0)


def test_daily_returns_group_by_utc_day_of_the_bar_close_and_midnight_closes_the_day() -> None:
    # two real days of BTCUSDT 5m bars from 2025-09-02 00:00 UTC; bar 287 closes at exactly
    # 2025-09-03 00:00 and so ends the first day
    bars = load_sample_candles("BTCUSDT").slice(0, 2 * 288)
    close_time = bars.open_time + BAR_MS
    equity = 10_000.0 * bars.close / bars.close[0]
    assert close_time[287] % DAY_MS == 0

    daily = daily_returns(close_time, equity, 10_000.0)

    expected = [equity[287] / 10_000.0 - 1.0, equity[575] / equity[287] - 1.0]
    assert daily == pytest.approx(expected, rel=1e-15)


def test_a_close_just_after_midnight_starts_a_new_day() -> None:
    times = np.array([DAY_MS - BAR_MS, DAY_MS, DAY_MS + BAR_MS])

    daily = daily_returns(times, np.array([101.0, 102.0, 104.0]), 100.0)

    assert daily == pytest.approx([0.02, 104.0 / 102.0 - 1.0])


def test_annualized_return_of_a_two_year_doubling_is_about_41_4_percent() -> None:
    start = int(load_sample_candles("BTCUSDT").open_time[0])
    times = np.array([start, start + 730 * DAY_MS])

    metrics = performance(times, np.array([100.0, 200.0]), 100.0, [], 0.0, np.zeros(2, bool))

    # (1 + 100 %) ** (365 / 730) - 1 = √2 - 1
    assert metrics.annualized_return_pct == pytest.approx((math.sqrt(2) - 1) * 100)
    assert metrics.annualized_return_pct == pytest.approx(41.42, abs=0.01)
    assert metrics.total_return_pct == pytest.approx(100.0)


def test_win_rate_counts_strictly_positive_trades() -> None:
    times = np.array([DAY_MS, 2 * DAY_MS])
    trades = [trade("10"), trade("-5"), trade("20"), trade("0")]

    metrics = performance(times, np.array([100.0, 125.0]), 100.0, trades, 0.0, np.ones(2, bool))

    assert (metrics.win_rate_pct, metrics.trades) == (50.0, 4)
    assert metrics.profit_factor == pytest.approx(6.0)


def test_performance_of_an_equity_curve_without_trades() -> None:
    bars = load_sample_candles("BTCUSDT")
    times = bars.open_time + BAR_MS
    equity = np.full(len(bars), 10_000.0)

    metrics = performance(times, equity, 10_000.0, [], 0.0, np.zeros(len(bars), bool))

    assert metrics.trades == 0
    assert (metrics.win_rate_pct, metrics.profit_factor) == (0.0, 0.0)
    assert (metrics.total_return_pct, metrics.annualized_return_pct) == (0.0, 0.0)
    assert (metrics.sharpe, metrics.sortino, metrics.max_drawdown_pct) == (0.0, 0.0, 0.0)
    assert (metrics.exposure_pct, metrics.end_equity) == (0.0, 10_000.0)
