"""Performance statistics of a backtest or a live run.

Conventions: returns are fractions internally and ``_pct`` names hold percent. Daily returns are
taken from the equity at the last bar close of each UTC day; Sharpe and Sortino are annualized
with a 365-day year (crypto trades every day) and a zero risk-free rate:
``Sharpe = mean(r) / std(r, ddof=1) × √365`` (Sharpe 1994); ``Sortino = mean(r) / DD × √365``
with downside deviation ``DD = sqrt(mean(min(r, 0)²))`` (Sortino & Price 1994).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from domain.model import Trade

DAY_MS = 86_400_000
YEAR_DAYS = 365


@dataclass(frozen=True, slots=True)
class PerformanceMetrics:
    """Summary statistics; ``*_pct`` fields are percent, the rest plain numbers.

    ``exposure_pct`` is the share of bars that closed with a position open; ``profit_factor`` is
    gross profit / gross loss (``inf`` with no losing trade, 0 with no trade).
    """

    start_equity: float
    end_equity: float
    total_return_pct: float
    annualized_return_pct: float
    sharpe: float
    sortino: float
    max_drawdown_pct: float
    win_rate_pct: float
    profit_factor: float
    trades: int
    fees_paid: float
    exposure_pct: float
    days: float

    def as_dict(self) -> dict[str, float]:
        """Field name → value."""
        return asdict(self)


def daily_returns(time_ms: np.ndarray, equity: np.ndarray, start_equity: float) -> np.ndarray:
    """Returns of the equity at the last close of each UTC day (first day against the start).

    ``time_ms`` are bar close times; a close at exactly 00:00 belongs to the day that ends there.
    A day that starts with no equity left (an account wiped out by a liquidation) returns 0.
    """
    if len(equity) == 0:
        return np.empty(0)
    day = (np.asarray(time_ms, dtype=np.int64) - 1) // DAY_MS
    last = np.r_[day[1:] != day[:-1], True]
    closes = np.r_[start_equity, equity[last]]
    before = closes[:-1]
    ratio = np.divide(closes[1:], before, out=np.ones(len(before)), where=before > 0)
    return ratio - 1.0


def max_drawdown(equity: np.ndarray) -> float:
    """Largest peak-to-trough fall as a fraction of the peak (0.25 = −25 %)."""
    if len(equity) == 0:
        return 0.0
    peaks = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peaks))


def sharpe_ratio(returns: np.ndarray, periods: int = YEAR_DAYS) -> float:
    """Annualized Sharpe ratio of periodic ``returns`` (0 when undefined)."""
    if len(returns) < 2:
        return 0.0
    sd = float(np.std(returns, ddof=1))
    return 0.0 if sd == 0 else float(np.mean(returns)) / sd * math.sqrt(periods)


def sortino_ratio(returns: np.ndarray, periods: int = YEAR_DAYS) -> float:
    """Annualized Sortino ratio with downside deviation around 0 (0 when undefined)."""
    if len(returns) < 2:
        return 0.0
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    return 0.0 if downside == 0 else float(np.mean(returns)) / downside * math.sqrt(periods)


def profit_factor(pnls: Sequence[float]) -> float:
    """Gross profit / gross loss of trade PnLs."""
    gains = sum(p for p in pnls if p > 0)
    losses = -sum(p for p in pnls if p < 0)
    if losses == 0:
        return math.inf if gains > 0 else 0.0
    return gains / losses


def performance(
    time_ms: np.ndarray,
    equity: np.ndarray,
    start_equity: float,
    trades: Sequence[Trade],
    fees_paid: float,
    exposed: np.ndarray,
) -> PerformanceMetrics:
    """All statistics of one run.

    Parameters
    ----------
    time_ms, equity:
        Bar close times (ms UTC) and equity there (quote currency), same length n.
    start_equity:
        Equity before the first bar.
    exposed:
        Boolean array (n) — a position was open at that close.
    """
    end = float(equity[-1]) if len(equity) else start_equity
    total = end / start_equity - 1.0
    span_ms = float(time_ms[-1] - time_ms[0]) if len(time_ms) > 1 else 0.0
    days = span_ms / DAY_MS
    annual = (1.0 + total) ** (YEAR_DAYS / days) - 1.0 if days > 0 and total > -1 else total
    daily = daily_returns(time_ms, equity, start_equity)
    pnls = [float(t.pnl) for t in trades]
    wins = sum(1 for p in pnls if p > 0)
    return PerformanceMetrics(
        start_equity=start_equity,
        end_equity=end,
        total_return_pct=total * 100,
        annualized_return_pct=annual * 100,
        sharpe=sharpe_ratio(daily),
        sortino=sortino_ratio(daily),
        max_drawdown_pct=max_drawdown(np.r_[start_equity, equity]) * 100,
        win_rate_pct=100.0 * wins / len(pnls) if pnls else 0.0,
        profit_factor=profit_factor(pnls),
        trades=len(pnls),
        fees_paid=fees_paid,
        exposure_pct=100.0 * float(np.mean(exposed)) if len(exposed) else 0.0,
        days=days,
    )
