"""Capital allocation across up to 5 symbols (issue 6 component 7, the rule source; spec 001
"Portfolio Manager", Properties 15-18). Pure: no I/O, no clock. Fractions are of equity (0.2 =
20 %), times int ms UTC, money ``Decimal`` in the quote currency, correlation math float64.

* **Correlation** (:mod:`domain.correlation`): the caps treat an unknown pair (too little
  common history, a constant series) as correlated, the conservative choice (spec 001's
  "assume zero" is for calculation *errors*, which the pipeline's feature isolation handles).
* **Allocation**, in steps that only ever lower a fraction, so a bound once met stays met:
  1. band by confidence ``c``: ``c > 0.8`` → 0.40, ``0.5 ≤ c ≤ 0.8`` → 0.20 (the base),
     ``c < 0.5`` → 0.10; no new entry when ``c < 0.3`` (a held symbol keeps 0.10);
  2. capacity (Property 15): held symbols first, then by confidence, then by name; those past
     ``max_symbols`` (≤ 5) get 0;
  3. each symbol ≤ ``max_symbol_fraction`` (≤ 0.40, Property 18);
  4. pairs with ``ρ > 0.7`` over ``pair_fraction`` (0.50, Property 16): each such pair has the
     pro-rata factor ``f = 0.5 / (w_a + w_b)`` and each symbol is scaled once, by the smallest
     factor among its pairs; then ``s_a w_a + s_b w_b ≤ f (w_a + w_b) = 0.5`` for every pair at
     once. No iteration, no dependence on pair order; a symbol in two pairs may end below the
     cap of its looser pair;
  5. total ≤ ``max_total_fraction`` (1.0), pro rata.
  Each product is floored to :data:`QUANTUM`, so rounding never lifts a sum over its cap.
* **Risk** (Property 17): open risk = Σ ``|entry − stop| × |qty|``; :func:`risk_scale` gives the
  common factor of a rebalance's new positions that keeps it ≤ ``max_risk_fraction × equity``
  (one position's largest qty alone is the heat cap of :func:`domain.risk.sizing.size_position`).
* **Rebalance** every 6 h of market time at the epoch-aligned instants 00:00, 06:00, 12:00,
  18:00 UTC (at the first decision at or after each), or on a new signal with ``c > 0.8``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from itertools import combinations
from typing import Any

import numpy as np

from domain.correlation import CorrelationMatrix
from domain.errors import ConfigError
from domain.model import Position, Reason, Trade

M5, H1 = 300_000, 3_600_000
QUANTUM = Decimal("0.000001")
"""Resolution of an allocated fraction; every scaled fraction is floored to it."""
ZERO, ONE = Decimal(0), Decimal(1)
MIN_ENTRY_CONFIDENCE = 0.3
HIGH_FRACTION, BASE_FRACTION, LOW_FRACTION = Decimal("0.40"), Decimal("0.20"), Decimal("0.10")
PAIR_FRACTION = Decimal("0.50")
_VERSION = 1


def _floor(value: Decimal) -> Decimal:
    return value.quantize(QUANTUM, rounding=ROUND_FLOOR)


def _fraction(value: object, upper: Decimal) -> bool:
    return isinstance(value, Decimal) and ZERO < value <= upper


class AllocationCap(StrEnum):
    """A rule that set a symbol's fraction below its confidence band."""

    MIN_CONFIDENCE = "min_confidence"
    CAPACITY = "capacity"
    SYMBOL = "symbol"
    CORRELATION = "correlation"
    TOTAL = "total"


@dataclass(frozen=True, slots=True)
class AllocationConfig:
    """Settings of the portfolio manager (caps may be tightened, never loosened past issue 6's).

    ``enabled`` off: every signal gets ``base_fraction`` whatever its confidence; capacity and
    the caps still hold. ``max_risk_fraction`` defaults to 0.06 (the "6 % rule", A. Elder, *Come
    Into My Trading Room*, 2002; the issue fixes no value). ``window`` and ``min_overlap`` count
    hourly returns; ``rebalance_ms`` is the schedule's period.

    Raises
    ------
    ConfigError
        Naming the field: ``max_symbols`` outside [1, 5]; ``max_symbol_fraction`` outside
        (0, 0.4], ``pair_fraction`` outside [max_symbol_fraction, 0.5] (one symbol alone must
        fit a pair's cap), another fraction outside (0, 1] or not a
        Decimal; a threshold outside [0, 1]; ``window < 2``; ``min_overlap`` outside [3,
        window]; ``rebalance_ms <= 0``.
    """

    enabled: bool = True
    max_symbols: int = 5
    base_fraction: Decimal = BASE_FRACTION
    max_symbol_fraction: Decimal = HIGH_FRACTION
    pair_fraction: Decimal = PAIR_FRACTION
    max_total_fraction: Decimal = ONE
    max_risk_fraction: Decimal = Decimal("0.06")
    correlation_threshold: float = 0.7
    window: int = 720
    min_overlap: int = 168
    rebalance_ms: int = 6 * H1
    rebalance_confidence: float = 0.8

    def __post_init__(self) -> None:
        rules = (
            ("max_symbols", 1 <= self.max_symbols <= 5, "in [1, 5]"),
            ("base_fraction", _fraction(self.base_fraction, ONE), "a Decimal in (0, 1]"),
            ("max_symbol_fraction", _fraction(self.max_symbol_fraction, HIGH_FRACTION),
             "a Decimal in (0, 0.4]"),
            ("pair_fraction", _fraction(self.pair_fraction, PAIR_FRACTION)
             and self.pair_fraction >= self.max_symbol_fraction,
             "a Decimal in [max_symbol_fraction, 0.5]"),
            ("max_total_fraction", _fraction(self.max_total_fraction, ONE), "a Decimal in (0, 1]"),
            ("max_risk_fraction", _fraction(self.max_risk_fraction, ONE), "a Decimal in (0, 1]"),
            ("correlation_threshold", 0.0 <= self.correlation_threshold <= 1.0, "in [0, 1]"),
            ("rebalance_confidence", 0.0 <= self.rebalance_confidence <= 1.0, "in [0, 1]"),
            ("window", self.window >= 2, ">= 2"),
            ("min_overlap", 3 <= self.min_overlap <= self.window, "in [3, window]"),
            ("rebalance_ms", self.rebalance_ms > 0, "> 0"),
        )  # fmt: skip
        for name, ok, rule in rules:
            if not ok:
                raise ConfigError(f"{name} must be {rule}, was {getattr(self, name)!r}", field=name)


# --- allocation ------------------------------------------------------------------------------


def band_fraction(confidence: float, *, held: bool = False) -> Decimal:
    """The fraction of equity for a signal of ``confidence`` (in [0, 1]): 0.40 above 0.8, 0.20 in
    [0.5, 0.8], 0.10 below 0.5, 0 below 0.3 unless ``held`` (issue 6: "no entry below 0.3").
    Raises ValueError when ``confidence`` is not in [0, 1] (NaN included)."""
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence must be in [0, 1], was {confidence}")
    if confidence > 0.8:
        return HIGH_FRACTION
    if confidence >= 0.5:
        return BASE_FRACTION
    return LOW_FRACTION if held or confidence >= MIN_ENTRY_CONFIDENCE else ZERO


@dataclass(frozen=True, slots=True)
class AllocationReason:
    """Why ``symbol`` got ``fraction`` of equity: its signal ``confidence``, whether it was
    ``held``, the ``band`` its confidence gave, the ``caps`` that lowered it (in the order
    applied) and the ``correlated`` pairs ``(other symbol, ρ)`` whose cap scaled it."""

    symbol: str
    confidence: float
    held: bool
    band: Decimal
    fraction: Decimal
    caps: tuple[AllocationCap, ...] = ()
    correlated: tuple[tuple[str, float], ...] = ()

    @property
    def message(self) -> str:
        """The decision in words, with its numbers."""
        text = f"{self.fraction} of equity: confidence {self.confidence:.3g} -> band {self.band}"
        for cap in self.caps:
            text += f"; {cap} cap"
            if cap is AllocationCap.CORRELATION:
                text += " with " + ", ".join(f"{s} (rho {r:.3f})" for s, r in self.correlated)
        return text

    def as_reason(self) -> Reason:
        """As a stored and shown :class:`~domain.model.Reason` (component ``"allocation"``)."""
        values = {"fraction": float(self.fraction), "band": float(self.band),
                  "confidence": self.confidence, "held": float(self.held)}  # fmt: skip
        values.update({f"rho_{s}": r for s, r in self.correlated})
        return Reason("allocation", f"{self.symbol} {self.message}", values)


@dataclass(frozen=True, slots=True)
class Allocation:
    """Target ``fractions`` of equity per symbol (``Decimal`` >= 0; 0: hold none) and their
    ``reasons``, both keyed in allocation order (held first, then by confidence)."""

    fractions: Mapping[str, Decimal]
    reasons: Mapping[str, AllocationReason]

    @property
    def total(self) -> Decimal:
        """Sum of the fractions (≤ ``max_total_fraction``)."""
        return sum(self.fractions.values(), ZERO)

    @property
    def active(self) -> tuple[str, ...]:
        """Symbols with a fraction > 0 (at most ``max_symbols``)."""
        return tuple(s for s, w in self.fractions.items() if w > 0)


def allocate(
    confidences: Mapping[str, float],
    correlation: CorrelationMatrix,
    config: AllocationConfig | None = None,
    *,
    held: Collection[str] = (),
) -> Allocation:
    """Target fractions of equity (steps 1-5 of the module docstring; issue 6 component 7,
    Properties 15, 16, 18, total ≤ ``max_total_fraction``).

    ``confidences`` (fractions in [0, 1]) holds every symbol to hold after the rebalance, held
    ones included with their latest signal's confidence: a held symbol left out frees its slot.
    ``held`` names the symbols with open positions: they keep their slot before new ones.
    Pairs are capped whatever their directions. Raises ValueError on a confidence outside [0, 1].
    """
    config = config or AllocationConfig()
    order = sorted(confidences, key=lambda s: (s not in held, -confidences[s], s))
    band = {s: band_fraction(confidences[s], held=s in held) for s in order}
    if not config.enabled:
        band = dict.fromkeys(order, config.base_fraction)
    weights: dict[str, Decimal] = {}
    caps: dict[str, list[AllocationCap]] = {s: [] for s in order}
    for symbol in order:
        weight, cap = band[symbol], None
        if weight == 0:
            cap = AllocationCap.MIN_CONFIDENCE
        elif sum(1 for w in weights.values() if w > 0) >= config.max_symbols:
            weight, cap = ZERO, AllocationCap.CAPACITY
        elif weight > config.max_symbol_fraction:
            weight, cap = config.max_symbol_fraction, AllocationCap.SYMBOL
        weights[symbol] = weight
        caps[symbol] += [cap] if cap else []
    pairs = _cap_pairs(weights, correlation, config, caps)
    total = sum(weights.values(), ZERO)
    if total > config.max_total_fraction:
        scale = config.max_total_fraction / total
        for symbol in (s for s in order if weights[s] > 0):
            weights[symbol] = _floor(weights[symbol] * scale)
            caps[symbol].append(AllocationCap.TOTAL)
    reasons = {s: AllocationReason(s, float(confidences[s]), s in held, band[s], weights[s],
                                   tuple(caps[s]), tuple(pairs[s])) for s in order}  # fmt: skip
    return Allocation(weights, reasons)


def _cap_pairs(
    weights: dict[str, Decimal],
    correlation: CorrelationMatrix,
    config: AllocationConfig,
    caps: dict[str, list[AllocationCap]],
) -> dict[str, list[tuple[str, float]]]:
    """Step 4 in place on ``weights``; returns each symbol's capped pairs."""
    factors = dict.fromkeys(weights, ONE)
    pairs: dict[str, list[tuple[str, float]]] = {s: [] for s in weights}
    for a, b in combinations([s for s, w in weights.items() if w > 0], 2):
        rho, combined = correlation.effective(a, b), weights[a] + weights[b]
        if rho > config.correlation_threshold and combined > config.pair_fraction:
            factor = config.pair_fraction / combined
            factors[a], factors[b] = min(factors[a], factor), min(factors[b], factor)
            pairs[a].append((b, rho))
            pairs[b].append((a, rho))
    for symbol, factor in factors.items():
        if factor < ONE:
            weights[symbol] = _floor(weights[symbol] * factor)
            caps[symbol].append(AllocationCap.CORRELATION)
    return pairs


# --- risk ------------------------------------------------------------------------------------


def open_risk(positions: Mapping[str, Position], stops: Mapping[str, Decimal]) -> Decimal:
    """Σ ``|entry − stop| × |qty|`` over the non-flat ``positions``, quote currency: the loss if
    every stop (``stops``: price per symbol, quote currency) filled at its price. Raises
    ValueError when a non-flat position has no stop."""
    risk = ZERO
    for symbol, position in positions.items():
        if position.qty == 0:
            continue
        if symbol not in stops:
            raise ValueError(f"no stop for the open position in {symbol}")
        risk += abs(position.entry_price - stops[symbol]) * abs(position.qty)
    return risk


def risk_scale(
    *, equity: Decimal, max_risk_fraction: Decimal, open_risk: Decimal, proposed_risk: Decimal
) -> Decimal:
    """The largest ``s`` in [0, 1], a multiple of :data:`QUANTUM`, with ``open_risk + s ×
    proposed_risk ≤ max_risk_fraction × equity`` (Property 17; issue 6: "total open risk ≤ the
    configured maximum fraction of equity").

    ``open_risk``: the risk already open; ``proposed_risk``: Σ ``|entry − stop| × qty`` of the new
    quantities (quote currency). Multiply every new quantity by ``s`` and round it down to its
    lot step: the total stays within the limit. 0 when the limit is spent (an open risk over it
    can only shrink by closing), 1 when nothing is proposed. Raises ValueError on a negative risk.
    """
    if open_risk < 0 or proposed_risk < 0:
        raise ValueError(f"risks must be >= 0, were open={open_risk} proposed={proposed_risk}")
    if proposed_risk == 0:
        return ONE
    limit = max_risk_fraction * equity
    scale = max(ZERO, min(ONE, _floor((limit - open_risk) / proposed_risk)))
    while scale > 0 and open_risk + scale * proposed_risk > limit:  # 28-digit division rounding
        scale -= QUANTUM
    return scale


# --- rebalance schedule ----------------------------------------------------------------------


def rebalance_due(
    last_rebalance_ms: int | None,
    now_ms: int,
    signal_confidence: float | None = None,
    *,
    period_ms: int = 6 * H1,
    confidence_trigger: float = 0.8,
) -> bool:
    """Whether to rebalance at ``now_ms`` (ms UTC; issue 6: "every 6 hours or on a new signal
    with confidence > 0.8"): never rebalanced (``last_rebalance_ms`` None), an epoch-aligned
    ``period_ms`` boundary (00:00, 06:00, 12:00, 18:00 UTC) reached since the last rebalance, or
    ``signal_confidence`` (of a signal new at ``now_ms``, None when none) above
    ``confidence_trigger``. Raises ValueError when ``period_ms`` is not > 0.
    """
    if period_ms <= 0:
        raise ValueError(f"period_ms must be > 0, was {period_ms}")
    if signal_confidence is not None and signal_confidence > confidence_trigger:
        return True
    return last_rebalance_ms is None or now_ms // period_ms > last_rebalance_ms // period_ms


class RebalanceSchedule:
    """The path-dependent part of rebalancing, the last rebalance time (ms UTC), as JSON state
    for the strategy's persisted state: a restarted run keeps the schedule."""

    def __init__(self, config: AllocationConfig | None = None) -> None:
        self._config = config or AllocationConfig()
        self.last_rebalance_ms: int | None = None

    def due(self, now_ms: int, signal_confidence: float | None = None) -> bool:
        """:func:`rebalance_due` with this schedule's last time and config."""
        period, trigger = self._config.rebalance_ms, self._config.rebalance_confidence
        return rebalance_due(self.last_rebalance_ms, now_ms, signal_confidence,
                             period_ms=period, confidence_trigger=trigger)  # fmt: skip

    def record(self, now_ms: int) -> None:
        """Note a rebalance done at ``now_ms`` (ms UTC)."""
        self.last_rebalance_ms = now_ms

    def next_time(self, now_ms: int) -> int:
        """The first scheduled instant strictly after ``now_ms`` (ms UTC), for a wake-up."""
        return (now_ms // self._config.rebalance_ms + 1) * self._config.rebalance_ms

    def state(self) -> dict[str, Any]:
        """Path-dependent state, JSON-serializable."""
        return {"version": _VERSION, "last_rebalance_ms": self.last_rebalance_ms}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state`; ValueError when of another version or malformed."""
        last = state.get("last_rebalance_ms")
        valid = last is None or (isinstance(last, int) and not isinstance(last, bool))
        if state.get("version") != _VERSION or not valid:
            raise ValueError(f"rebalance state must be version {_VERSION}, was {state!r}")
        self.last_rebalance_ms = last


# --- metrics ---------------------------------------------------------------------------------


def diversification_ratio(weights: np.ndarray, volatility: np.ndarray, corr: np.ndarray) -> float:
    """``Σ |w_i| σ_i / sqrt(wᵀ C w)``, ``C = diag(σ) ρ diag(σ)``: the weighted average volatility
    over the portfolio volatility (Y. Choueifaty, Y. Coignard, "Toward Maximum Diversification",
    J. Portfolio Management 35(1), 2008; |w| in the numerator extends it to shorts). 1 for one
    asset or perfect correlation, higher when diversified. Shapes (k,), (k,), (k, k); signed
    weights (fractions of equity). NaN when nothing is held, the portfolio variance is 0, or a
    needed volatility or correlation is unknown.
    """
    w = np.asarray(weights, dtype=np.float64)
    held = w != 0
    if not held.any():
        return math.nan
    w, vol = w[held], np.asarray(volatility, dtype=np.float64)[held]
    variance = float(w @ (np.outer(vol, vol) * np.asarray(corr)[np.ix_(held, held)]) @ w)
    if not variance > 0:  # NaN included
        return math.nan
    return float(np.abs(w) @ vol) / math.sqrt(variance)


@dataclass(frozen=True, slots=True)
class PortfolioMetrics:
    """Portfolio figures (spec 001 ``PortfolioMetrics``): ``per_symbol_pnl`` = realized (closed
    trades, net of fees) + unrealized (open qty at the mark, before fees) and ``total_pnl``,
    quote currency; the ``correlation``; ``weights``, signed notional / equity; the
    ``diversification_ratio``; ``total_risk`` (:func:`open_risk`, quote currency)."""

    per_symbol_pnl: Mapping[str, Decimal]
    total_pnl: Decimal
    correlation: CorrelationMatrix
    weights: Mapping[str, float]
    diversification_ratio: float
    total_risk: Decimal


def portfolio_metrics(
    *,
    equity: Decimal,
    positions: Mapping[str, Position],
    marks: Mapping[str, Decimal],
    trades: Sequence[Trade],
    stops: Mapping[str, Decimal],
    correlation: CorrelationMatrix,
) -> PortfolioMetrics:
    """The :class:`PortfolioMetrics` of an account: ``equity`` and money in quote currency,
    ``marks`` the last price per symbol (a missing one counts as the entry price). A held symbol
    outside ``correlation.symbols`` makes the diversification ratio NaN. Raises ValueError when
    ``equity`` is not > 0 or an open position has no stop."""
    if not equity > 0:
        raise ValueError(f"equity must be > 0, was {equity}")
    pnl: dict[str, Decimal] = {}
    for trade in trades:
        pnl[trade.symbol] = pnl.get(trade.symbol, ZERO) + trade.pnl
    weights: dict[str, float] = {}
    for symbol, position in positions.items():
        mark = marks.get(symbol, position.entry_price)
        pnl[symbol] = pnl.get(symbol, ZERO) + position.unrealized_pnl(mark)
        if position.qty != 0:
            weights[symbol] = float(position.qty * mark / equity)
    vector = np.array([weights.get(s, 0.0) for s in correlation.symbols])
    ratio = diversification_ratio(vector, correlation.volatility, correlation.values)
    ratio = ratio if set(weights) <= set(correlation.symbols) else math.nan
    risk = open_risk(positions, stops)
    return PortfolioMetrics(pnl, sum(pnl.values(), ZERO), correlation, weights, ratio, risk)
