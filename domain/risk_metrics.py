"""Risk metrics of an account at one moment: historical VaR and CVaR, drawdown, exposure,
leverage and margin ratio.

Conventions: returns, VaR, CVaR, drawdown and the ``*_fraction`` fields are fractions (0.05 =
5 %); money is float64 in the quote currency; times are int ms UTC. VaR and CVaR are *losses*:
positive numbers for a loss, over a 1-day horizon.

**Historical simulation** (Jorion, *Value at Risk*, 3rd ed., 2007, "VaR Methods"; Hull, *Risk
Management and Financial Institutions*, "Historical Simulation"): the n observed daily returns
(or P&Ls) are the scenarios and ``L = −r`` their losses, sorted worst first as ``L_(1) ≥ L_(2)
≥ …``. With the tail mass ``m = n·(1 − c)`` at confidence c and ``k = ⌈m⌉``:

* ``VaR_c = L_(k)``, the lower (1 − c) quantile of the returns (Hyndman & Fan 1996 definition 1,
  numpy's ``method="inverted_cdf"``), with no interpolation: VaR is a loss that happened. This
  is Hull's reading (500 days at 99 %: the 5th-worst loss). The textbook minimum
  ``min{ℓ : P(L > ℓ) ≤ 1 − c}`` (Acerbi & Tasche's upper quantile) is the next loss, the 6th,
  when m is whole; the two agree when it is not.
* ``CVaR_c = VaR_c + (1/m)·Σ_i max(L_i − VaR_c, 0)``: Rockafellar & Uryasev (2002, "Conditional
  value-at-risk for general loss distributions", J. Banking & Finance 26, Theorem 10)
  ``min_ζ ζ + E[(L − ζ)⁺] / (1 − c)`` at the empirical distribution, whose minimum VaR_c attains
  under either reading above. It equals Acerbi & Tasche's (2002) expected shortfall: the mean of
  the worst m days, the k-th counted with weight ``m − k + 1`` — when m is whole, the plain mean
  of the m worst losses. As VaR plus a non-negative term, CVaR ≥ VaR holds in floating point.

``m`` is snapped to the nearest whole number when within 1e-9 of it, because ``1 − 0.95`` is
0.050000000000000044 in binary: 100 days at 95 % hold a tail of 5 days, not 5.000000000000004
(``np.quantile(x, 1 - 0.95, method="inverted_cdf")`` returns the 6th worst of 100 for that
reason). VaR needs ``m ≥ 1`` — at least ``⌈1 / (1 − c)⌉`` observations (20 at 95 %, 100 at
99 %) — so the tail holds at least one whole day.

Other libraries differ: ``quantstats.value_at_risk`` is parametric (a normal quantile of the
mean and standard deviation) and its CVaR averages the returns below that; ``empyrical`` uses
``np.percentile`` (linear interpolation between order statistics) for VaR.

**Day boundary**: an equity point at time t (a bar close) belongs to UTC day ``(t − 1) // 1 day``,
so a close at exactly 00:00 ends the day before (as in :mod:`domain.metrics`); a daily close is
the value at the last point of its day. A daily close of candles is the close of the last bar
that opened in the day (bars of up to one day never straddle midnight).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from typing import NamedTuple

import numpy as np

from domain.candles import Candles
from domain.metrics import DAY_MS
from domain.model import EquityPoint, Position

CONFIDENCES = (0.95, 0.99)
"""The confidence levels reported by default (the issue's 95 % and 99 %)."""
_SNAP = 1e-9

Number = float | Decimal


def min_observations(confidence: float) -> int:
    """Fewest returns for a VaR at ``confidence``: ``⌈1 / (1 − c)⌉`` (20 at 0.95, 100 at 0.99).

    Raises
    ------
    ValueError
        When ``confidence`` is not in (0, 1).
    """
    _check_confidence(confidence)
    n = max(1, math.floor(1.0 / (1.0 - confidence)) - 1)
    while _tail(n, confidence) < 1.0:
        n += 1
    return n


def historical_var_cvar(
    returns: Sequence[float] | np.ndarray, confidence: float
) -> tuple[float, float]:
    """1-day VaR and CVaR (expected shortfall) by historical simulation.

    Parameters
    ----------
    returns:
        n daily returns (fractions), or daily P&Ls (quote currency): the result is in the
        same unit. Order does not matter.
    confidence:
        c in (0, 1), e.g. 0.95.

    Returns
    -------
    tuple[float, float]
        ``(VaR, CVaR)`` as losses (positive = loss; negative when even the tail is a gain),
        with CVaR ≥ VaR. Formulas and sources in the module docstring.

    Raises
    ------
    ValueError
        When ``confidence`` is not in (0, 1), ``returns`` is not 1-D or holds a NaN or an
        infinity, or has fewer than :func:`min_observations` values.
    """
    _check_confidence(confidence)
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"returns must be 1-D, had shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError(f"returns must be finite, had {int(np.sum(~np.isfinite(r)))} NaN/inf")
    tail = _tail(len(r), confidence)
    if tail < 1.0:
        raise ValueError(
            f"VaR at confidence {confidence} needs at least {min_observations(confidence)} "
            f"returns, had {len(r)}"
        )
    losses = np.sort(-r)[::-1]
    var = float(losses[math.ceil(tail) - 1])
    cvar = var + float(np.sum(np.maximum(losses - var, 0.0))) / tail
    return var, cvar


@dataclass(frozen=True, slots=True, eq=False)
class EquitySeries:
    """An equity curve: ``time`` (n, int64 ms UTC, strictly increasing; bar close times) and
    ``equity`` (n, float64, quote currency: wallet balance plus unrealized PnL).

    Raises
    ------
    ValueError
        When the arrays are empty, not 1-D, of different lengths, the times do not increase
        or an equity is not finite.
    """

    time: np.ndarray
    equity: np.ndarray

    def __post_init__(self) -> None:
        t = np.asarray(self.time, dtype=np.int64)
        e = np.asarray(self.equity, dtype=np.float64)
        object.__setattr__(self, "time", t)
        object.__setattr__(self, "equity", e)
        if t.ndim != 1 or e.ndim != 1 or len(t) != len(e) or len(t) == 0:
            raise ValueError(f"time and equity must be 1-D, equal, non-empty: {t.shape}, {e.shape}")
        if len(t) > 1 and not np.all(np.diff(t) > 0):
            raise ValueError(f"times must increase, did not at index {int(np.argmin(np.diff(t)))}")
        if not np.all(np.isfinite(e)):
            raise ValueError(f"equity must be finite, had {int(np.sum(~np.isfinite(e)))} NaN/inf")

    @classmethod
    def from_points(cls, points: Sequence[EquityPoint]) -> EquitySeries:
        """The series of stored equity points (time order), Decimal equity converted to float."""
        return cls(
            np.array([p.time for p in points], dtype=np.int64),
            np.array([float(p.equity) for p in points], dtype=np.float64),
        )


class DailyCloses(NamedTuple):
    """``close`` (float64) at the end of each UTC ``day`` (int64 days since 1970-01-01)."""

    day: np.ndarray
    close: np.ndarray


def day_ends(curve: EquitySeries) -> DailyCloses:
    """The equity at the last point of each UTC day (a point at 00:00 ends the day before)."""
    day = (curve.time - 1) // DAY_MS
    last = np.r_[day[1:] != day[:-1], True]
    return DailyCloses(day[last], curve.equity[last])


def daily_closes(candles: Candles) -> DailyCloses:
    """The close of the last bar opened in each UTC day (bars of up to 1 day, any timeframe)."""
    day = np.asarray(candles.open_time, dtype=np.int64) // DAY_MS
    last = np.r_[day[1:] != day[:-1], True] if len(day) else np.empty(0, dtype=bool)
    return DailyCloses(day[last], np.asarray(candles.close, dtype=np.float64)[last])


def daily_returns(curve: EquitySeries) -> np.ndarray:
    """Simple returns between consecutive day-end equities (n_days − 1, fractions).

    A day without any point is skipped, so the next return spans it (the trading-day
    convention for stocks). Include a point at the start time (e.g. the first bar's open)
    to get the first day's return from the starting equity.

    Raises
    ------
    ValueError
        When a day-end equity that a return starts from is ≤ 0.
    """
    ends = day_ends(curve).close
    if np.any(ends[:-1] <= 0):
        raise ValueError(f"a return needs positive equity, a day ended at {ends[:-1].min()}")
    return ends[1:] / ends[:-1] - 1.0


@dataclass(frozen=True, slots=True)
class VarEstimate:
    """VaR and CVaR at ``confidence`` over 1 day, as losses (positive = loss).

    ``var``/``cvar`` are fractions of the current equity, ``var_quote``/``cvar_quote`` the same
    in quote currency; ``observations`` is the number of daily scenarios used.
    """

    confidence: float
    var: float
    cvar: float
    var_quote: float
    cvar_quote: float
    observations: int


def equity_var(curve: EquitySeries, confidence: float) -> VarEstimate:
    """VaR/CVaR of the equity curve's :func:`daily_returns`; the quote amounts apply them to
    the last equity.

    Raises
    ------
    ValueError
        As :func:`historical_var_cvar` and :func:`daily_returns`.
    """
    returns = daily_returns(curve)
    var, cvar = historical_var_cvar(returns, confidence)
    equity = float(curve.equity[-1])
    return VarEstimate(confidence, var, cvar, var * equity, cvar * equity, len(returns))


def position_pnl(
    positions: Sequence[Position],
    marks: Mapping[str, Number],
    closes: Mapping[str, DailyCloses],
) -> np.ndarray:
    """Daily P&L scenarios of today's open positions (quote currency), by historical simulation.

    ``P&L_d = Σ_i qty_i × mark_i × r_i,d`` with ``r_i,d`` symbol i's return between consecutive
    days present in every held symbol's ``closes`` (Hull, RMFI ch. 13: today's values revalued
    by each past day's relative change). Flat positions are ignored; a flat book gives an
    empty array.

    Raises
    ------
    ValueError
        When a held symbol has no mark or no closes, a mark or a close is not > 0.
    """
    held = [p for p in positions if p.qty != 0]
    if not held:
        return np.empty(0)
    for p in held:
        if p.symbol not in closes:
            raise ValueError(f"no daily closes for held symbol {p.symbol}")
    days = reduce(np.intersect1d, [closes[p.symbol].day for p in held])
    pnl = np.zeros(max(len(days) - 1, 0))
    for p in held:
        series = closes[p.symbol]
        close = series.close[np.searchsorted(series.day, days)]
        if np.any(close <= 0):
            raise ValueError(f"closes of {p.symbol} must be > 0, min was {close.min()}")
        pnl += float(p.qty) * _mark(marks, p.symbol) * (close[1:] / close[:-1] - 1.0)
    return pnl


def position_var(
    positions: Sequence[Position],
    marks: Mapping[str, Number],
    closes: Mapping[str, DailyCloses],
    equity: Number,
    confidence: float,
) -> VarEstimate:
    """VaR/CVaR of the open positions' :func:`position_pnl`, as fractions of ``equity`` (quote
    currency, > 0) and in quote currency. A flat book has VaR 0 and uses no observation.

    Raises
    ------
    ValueError
        As :func:`position_pnl` and :func:`historical_var_cvar`; when ``equity`` is not > 0.
    """
    eq = _positive(equity, "equity")
    if all(p.qty == 0 for p in positions):
        _check_confidence(confidence)
        return VarEstimate(confidence, 0.0, 0.0, 0.0, 0.0, 0)
    pnl = position_pnl(positions, marks, closes)
    var, cvar = historical_var_cvar(pnl, confidence)
    return VarEstimate(confidence, var / eq, cvar / eq, var, cvar, len(pnl))


@dataclass(frozen=True, slots=True)
class Drawdown:
    """Falls of equity below its running peak, as fractions of the peak (0.25 = 25 % below).

    ``current`` at the last point, below its ``peak_equity`` (quote currency) last held at
    ``peak_time``; ``max`` the largest fall, from ``max_peak_time`` to ``max_trough_time``
    (all ms UTC; the first point when equity never fell). A peak's time is the last time
    equity stood at it.
    """

    current: float
    max: float
    peak_equity: float
    peak_time: int
    max_peak_time: int
    max_trough_time: int


def drawdown(curve: EquitySeries) -> Drawdown:
    """Current and maximum drawdown, ``1 − equity / running peak`` (as :mod:`domain.metrics`).

    Both lie in [0, 1) while equity stays positive.

    Raises
    ------
    ValueError
        When the first equity is not > 0 (no peak to measure from).
    """
    e, time = curve.equity, curve.time
    if e[0] <= 0:
        raise ValueError(f"drawdown needs a positive first equity, was {e[0]}")
    peaks = np.maximum.accumulate(e)
    falls = 1.0 - e / peaks
    at_peak = np.maximum.accumulate(np.where(e >= peaks, np.arange(len(e)), 0))
    trough = int(np.argmax(falls))
    return Drawdown(
        current=float(falls[-1]),
        max=float(falls[trough]),
        peak_equity=float(peaks[-1]),
        peak_time=int(time[at_peak[-1]]),
        max_peak_time=int(time[at_peak[trough]]),
        max_trough_time=int(time[trough]),
    )


@dataclass(frozen=True, slots=True)
class Exposure:
    """Notional of the open positions at their marks, quote currency: ``gross`` = Σ|qty|×mark,
    ``net`` = Σ qty×mark (short < 0); ``*_fraction`` are the same over equity, and
    ``leverage`` = gross / equity (the gross fraction, named as traders read it)."""

    gross: float
    net: float
    gross_fraction: float
    net_fraction: float
    leverage: float


def exposure(
    positions: Sequence[Position], marks: Mapping[str, Number], equity: Number
) -> Exposure:
    """Gross and net notional and the leverage in use, against ``equity`` (quote currency).

    Raises
    ------
    ValueError
        When ``equity`` is not > 0, or a held symbol's mark is missing or not > 0.
    """
    eq = _positive(equity, "equity")
    notional = [float(p.qty) * _mark(marks, p.symbol) for p in positions if p.qty != 0]
    gross = float(sum(abs(n) for n in notional))
    net = float(sum(notional))
    return Exposure(gross, net, gross / eq, net / eq, gross / eq)


def margin_ratio(maintenance_margin: Number, margin_balance: Number) -> float:
    """Binance's margin ratio: maintenance margin / margin balance (fraction; liquidation at 1).

    Margin balance is wallet balance plus unrealized PnL (this system's equity); the
    maintenance margin comes from the leverage brackets (Binance Support, "Leverage and
    Margin of USDⓈ-M Futures" and the ``totMaintMargin`` / ``totalMarginBalance`` fields of
    ``GET /fapi/v2/account``). 0 with no maintenance margin; ``inf`` when the balance is ≤ 0
    and some margin is required.

    Raises
    ------
    ValueError
        When ``maintenance_margin`` is negative or either input is not finite.
    """
    mm, balance = float(maintenance_margin), float(margin_balance)
    if not (math.isfinite(mm) and math.isfinite(balance)) or mm < 0:
        raise ValueError(
            f"maintenance margin must be finite and >= 0, was {mm} (balance {balance})"
        )
    if mm == 0:
        return 0.0
    return mm / balance if balance > 0 else math.inf


@dataclass(frozen=True, slots=True)
class RiskMetrics:
    """The account's risk at ``time`` (ms UTC, the last equity point), with ``equity`` (quote
    currency) there.

    ``equity_var`` and ``position_var`` map each confidence (0.95…) to a
    :class:`VarEstimate` of the equity curve's daily returns and of today's positions
    revalued over past days; ``None`` where the history is shorter than
    :func:`min_observations`. ``drawdown`` and ``exposure`` as their classes;
    ``maintenance_margin`` in quote currency and ``margin_ratio`` its fraction of equity.
    """

    time: int
    equity: float
    equity_var: dict[float, VarEstimate | None]
    position_var: dict[float, VarEstimate | None]
    drawdown: Drawdown
    exposure: Exposure
    maintenance_margin: float
    margin_ratio: float


def risk_metrics(
    curve: EquitySeries,
    positions: Sequence[Position],
    marks: Mapping[str, Number],
    closes: Mapping[str, DailyCloses],
    maintenance_margin: Number,
    confidences: Sequence[float] = CONFIDENCES,
) -> RiskMetrics:
    """All risk metrics at the curve's last point, whose equity is the margin balance.

    Parameters
    ----------
    curve:
        The account's equity at bar closes up to now.
    positions, marks:
        Open positions (signed qty) and each held symbol's mark price (quote currency).
    closes:
        Each held symbol's daily closes over complete UTC days (see :func:`daily_closes`).
    maintenance_margin:
        The account's total maintenance margin (quote currency), from the leverage brackets.

    Raises
    ------
    ValueError
        When the last equity is not > 0, or as the functions it calls.
    """
    equity = _positive(curve.equity[-1], "equity")
    returns = daily_returns(curve)
    scenarios = len(position_pnl(positions, marks, closes))
    flat = all(p.qty == 0 for p in positions)
    equity_vars: dict[float, VarEstimate | None] = {}
    position_vars: dict[float, VarEstimate | None] = {}
    for c in confidences:
        enough = min_observations(c)
        equity_vars[c] = equity_var(curve, c) if len(returns) >= enough else None
        if flat or scenarios >= enough:
            position_vars[c] = position_var(positions, marks, closes, equity, c)
        else:
            position_vars[c] = None
    return RiskMetrics(
        time=int(curve.time[-1]),
        equity=equity,
        equity_var=equity_vars,
        position_var=position_vars,
        drawdown=drawdown(curve),
        exposure=exposure(positions, marks, equity),
        maintenance_margin=float(maintenance_margin),
        margin_ratio=margin_ratio(maintenance_margin, equity),
    )


def _tail(n: int, confidence: float) -> float:
    """The tail mass ``n·(1 − c)``, snapped to a whole number within 1e-9 of one."""
    tail = n * (1.0 - confidence)
    whole = float(round(tail))
    return whole if abs(tail - whole) <= _SNAP * max(1.0, tail) else tail


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:  # also refuses NaN
        raise ValueError(f"confidence must be in (0, 1), was {confidence}")


def _positive(value: Number | np.floating, name: str) -> float:
    x = float(value)
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be > 0, was {value}")
    return x


def _mark(marks: Mapping[str, Number], symbol: str) -> float:
    if symbol not in marks:
        raise ValueError(f"no mark price for held symbol {symbol}")
    return _positive(marks[symbol], f"mark of {symbol}")
