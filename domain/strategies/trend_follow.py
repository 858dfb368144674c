"""``trend_follow``: trade 5m pullbacks in the direction of the 1h trend.

* Trend (higher timeframe, completed buckets only): up when EMA(``ema_fast``) > EMA(``ema_slow``)
  of the 1h close, down when below; it counts only while ADX(``adx_period``) > ``adx_min``.
* Entry (base timeframe): long when the trend is up and RSI(``rsi_period``) crosses back up
  through ``rsi_long`` (the pullback ends); short mirrored through ``rsi_short``.
* Stop: a reduce-only stop ``atr_mult × ATR(atr_period)`` from the entry fill (an exit plan
  attached to the entry: the engine places it when the entry fills).
* Size: ``equity × risk / (atr_mult × ATR)`` (so the stop loses ``risk`` of equity), capped by the
  max notional ``equity × allocation × max_exposure`` and, on a futures account, by what the
  margin left carries (``margin available × leverage``); rounded down to the lot step.
* Exit: the stop, or a market exit when the 1h EMAs cross against the position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from domain.candles import Candles
from domain.errors import ConfigError
from domain.execution import to_decimal
from domain.features import ADX, ATR, EMA, RSI, Lifted
from domain.model import (
    Direction,
    ExitPlan,
    Instrument,
    Reason,
    Side,
    Signal,
    fast_constructor,
)
from domain.strategies.base import (
    FIRST_ROW,
    NO_ROWS,
    Decision,
    DecisionContext,
    OrderIntent,
    floor_qty,
)
from domain.strategies.features import FeatureBlock, SymbolFeatures
from domain.strategies.params import param
from domain.timeframes import timeframe_ms

_NOTHING = Decision()
"""The decision to do nothing (decisions are immutable: one serves every such time)."""
# Built by the kernel's faster constructors (the same checks).
_new_intent = fast_constructor(OrderIntent, validate=True)
_new_plan = fast_constructor(ExitPlan, validate=True)
_new_reason = fast_constructor(Reason, validate=True)
_new_signal = fast_constructor(Signal, validate=True)
_new_decision = fast_constructor(Decision, validate=True)


@dataclass(frozen=True, slots=True)
class TrendFollowParams:
    """Parameters; ``risk`` and ``max_exposure`` are fractions (0.01 = 1 % of equity at risk
    per trade).

    Raises
    ------
    ConfigError
        On a parameter outside its range (the message names it).
    """

    ema_fast: int = param(50, "fast EMA of the trend timeframe's close, in trend bars (>= 2)")
    ema_slow: int = param(
        200, "slow EMA of the trend timeframe's close, in trend bars (> ema_fast)"
    )
    adx_period: int = param(14, "ADX period on the trend timeframe, in trend bars (>= 2)")
    adx_min: float = param(
        20.0, "trend counts only while ADX is above this, 0-100 (below it: no entry)"
    )
    rsi_period: int = param(14, "RSI period on the bar timeframe, in bars (>= 2)")
    rsi_long: float = param(
        40.0, "long entry when RSI crosses back up through this level in an up trend, 0-100"
    )
    rsi_short: float = param(
        60.0, "short entry when RSI crosses back down through this level in a down trend, 0-100"
    )
    atr_period: int = param(14, "ATR period on the bar timeframe, in bars (>= 1)")
    atr_mult: float = param(2.0, "stop distance from the entry fill, in ATRs (> 0)")
    risk: float = param(
        0.01, "fraction of equity lost when the stop is hit; sets the size (0 < risk <= 0.1)"
    )
    max_exposure: float = param(
        1.0,
        "cap on one position's notional, as a multiple of the equity allocated to its symbol "
        "(equity / number of symbols; 0 < x <= 10)",
    )
    trend_timeframe: str = param(
        "1h",
        "timeframe of the trend's EMAs and ADX (complete buckets only), a multiple of the bar "
        "timeframe",
    )

    def __post_init__(self) -> None:
        checks = {
            "ema_fast": self.ema_fast >= 2,
            "ema_slow": self.ema_slow > self.ema_fast,
            "adx_period": self.adx_period >= 2,
            "adx_min": 0 <= self.adx_min < 100,
            "rsi_period": self.rsi_period >= 2,
            "rsi_long": 0 < self.rsi_long < 100,
            "rsi_short": 0 < self.rsi_short < 100,
            "atr_period": self.atr_period >= 1,
            "atr_mult": self.atr_mult > 0,
            "risk": 0 < self.risk <= 0.1,
            "max_exposure": 0 < self.max_exposure <= 10,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"{name} is out of range, was {getattr(self, name)}", field=name)
        timeframe_ms(self.trend_timeframe)


class TrendFollow:
    """1h EMA trend + ADX filter, 5m RSI pullback entries, ATR stops, risk-based sizing.

    Stateless between decisions: everything it needs is in its features, rebuilt from the bars.

    Raises
    ------
    ConfigError
        When the trend timeframe is not a multiple of the bar timeframe.
    """

    name = "trend_follow"
    Params = TrendFollowParams

    def __init__(
        self, params: TrendFollowParams | None = None, *, timeframe: str, incremental: bool
    ) -> None:
        self.p = params or TrendFollowParams()
        self.timeframe = timeframe
        self.incremental = incremental
        if timeframe_ms(self.p.trend_timeframe) % timeframe_ms(timeframe):
            raise ConfigError(
                f"trend_timeframe {self.p.trend_timeframe} must be a multiple of the bar "
                f"timeframe {timeframe}",
                field="trend_timeframe",
            )
        self._features: dict[str, SymbolFeatures] = {}
        self._blocks: dict[str, FeatureBlock] = {}
        self._setups: dict[str, tuple[np.ndarray | tuple[int], np.ndarray | tuple[int]]] = {}
        self._allocation = Decimal(1)

    def params(self) -> dict[str, float | int | str | bool]:
        """Every parameter by name."""
        p = self.p
        return {
            k: getattr(p, k)
            for k in (
                "ema_fast", "ema_slow", "adx_period", "adx_min", "rsi_period", "rsi_long",
                "rsi_short", "atr_period", "atr_mult", "risk", "max_exposure", "trend_timeframe",
            )
        }  # fmt: skip

    def warmup_bars(self) -> int:
        """Bars to the first defined slow EMA on the trend timeframe, plus one bucket."""
        per = timeframe_ms(self.p.trend_timeframe) // timeframe_ms(self.timeframe)
        return (max(self.p.ema_slow, 2 * self.p.adx_period) + 1) * per

    def prepare(self, symbols: tuple[str, ...], instruments: Mapping[str, Instrument]) -> None:
        """Build each symbol's features."""
        p = self.p
        base, htf = timeframe_ms(self.timeframe), timeframe_ms(p.trend_timeframe)
        self._allocation = Decimal(1) / Decimal(len(symbols))
        for symbol in symbols:
            components = {
                "ema_fast": Lifted(EMA(p.ema_fast), base, htf),
                "ema_slow": Lifted(EMA(p.ema_slow), base, htf),
                "adx": Lifted(ADX(p.adx_period), base, htf),
                "rsi": RSI(p.rsi_period),
                "atr": ATR(p.atr_period),
            }
            self._features[symbol] = SymbolFeatures(components, base, self.incremental)

    def on_bars(self, bars: Mapping[str, Candles]) -> dict[str, np.ndarray]:
        """Update the features; candidates are entry bars and trend flips."""
        out: dict[str, np.ndarray] = {}
        for symbol, block in bars.items():
            f = self._features[symbol].update(block)
            self._blocks[symbol] = f
            trend, entry, due = self._setup_bar(f) if len(f) == 1 else self._setup_block(f)
            self._setups[symbol] = (trend, entry)
            out[symbol] = f.close_time[due]
        return out

    def _setup_block(self, f: FeatureBlock) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per bar of ``f``: the trend (+1/−1/0), the entry (+1 long, −1 short, 0 none), and
        the rows due (an entry or a trend flip)."""
        p = self.p
        trend = _trend(f.values["ema_fast"], f.values["ema_slow"])
        before = _trend(
            np.array([f.previous.get("ema_fast", np.nan)]),
            np.array([f.previous.get("ema_slow", np.nan)]),
        )
        first = before[0] if f.previous else (trend[0] if len(trend) else 0)
        flips = trend != np.r_[first, trend[:-1]]
        strong = f.values["adx"] > p.adx_min
        r, prev = f.values["rsi"], f.lagged("rsi")
        long_entry = (trend == 1) & strong & (prev < p.rsi_long) & (r >= p.rsi_long)
        short_entry = (trend == -1) & strong & (prev > p.rsi_short) & (r <= p.rsi_short)
        entry = long_entry.astype(np.int8) - short_entry
        return trend, entry, np.flatnonzero(long_entry | short_entry | flips)

    def _setup_bar(self, f: FeatureBlock) -> tuple[tuple[int], tuple[int], np.ndarray]:
        """:meth:`_setup_block` of a one-bar block (a paper or live bar), in scalar arithmetic:
        the same comparisons without building arrays."""
        p, values, previous = self.p, f.values, f.previous
        trend = _trend_of(float(values["ema_fast"][0]), float(values["ema_slow"][0]))
        before = (
            _trend_of(previous.get("ema_fast", np.nan), previous.get("ema_slow", np.nan))
            if previous
            else trend
        )
        strong = float(values["adx"][0]) > p.adx_min
        r, prev = float(values["rsi"][0]), previous.get("rsi", np.nan)
        if trend == 1 and strong and prev < p.rsi_long and r >= p.rsi_long:
            entry = 1
        elif trend == -1 and strong and prev > p.rsi_short and r <= p.rsi_short:
            entry = -1
        else:
            entry = 0
        return (trend,), (entry,), FIRST_ROW if entry or trend != before else NO_ROWS

    def decide(self, ctx: DecisionContext) -> Decision:
        """For each due symbol: exit on a trend flip against the position; enter on a pullback
        when flat."""
        signals: list[Signal] = []
        orders: list[OrderIntent] = []
        for symbol in sorted(ctx.due):
            signal, intents = self._decide_symbol(symbol, ctx)
            if signal is not None:
                signals.append(signal)
            orders.extend(intents)
        if not (signals or orders):
            return _NOTHING
        return _new_decision(signals=tuple(signals), orders=tuple(orders))

    def _decide_symbol(
        self, symbol: str, ctx: DecisionContext
    ) -> tuple[Signal | None, tuple[OrderIntent, ...]]:
        f = self._blocks[symbol]
        i = f.index(ctx.time)
        trend, entry = self._setups[symbol]  # per bar, from on_bars
        held = ctx.portfolio.position(symbol).qty
        if held != 0:
            if (held > 0) == (trend[i] > 0):
                return None, ()  # no entry while a position is open
            reasons = self._reasons(f, i)
            reasons.append(_new_reason("exit", "the trend turned against the position", {}))
            signal = self._signal(symbol, ctx.time, Direction.FLAT, reasons, 1.0)
            exit_side = Side.SELL if held > 0 else Side.BUY
            return signal, (_new_intent(symbol, exit_side, abs(held), reduce_only=True),)
        if not entry[i] or symbol in ctx.closed:  # (the risk gate would refuse it)
            return None, ()
        return self._enter(symbol, ctx, f, i, Side.BUY if entry[i] > 0 else Side.SELL)

    def _enter(
        self, symbol: str, ctx: DecisionContext, f: FeatureBlock, i: int, side: Side
    ) -> tuple[Signal, tuple[OrderIntent, ...]]:
        p = self.p
        reasons = self._reasons(f, i)
        atr_value = float(f.values["atr"][i])
        distance = atr_value * p.atr_mult
        direction = Direction.LONG if side is Side.BUY else Direction.SHORT
        confidence = min(1.0, float(f.values["adx"][i]) / 50.0)
        if not np.isfinite(distance) or distance <= 0:
            reasons.append(_new_reason("sizing", "ATR is not defined yet: no entry", {}))
            return self._signal(symbol, ctx.time, direction, reasons, confidence), ()
        portfolio = ctx.portfolio
        instrument = portfolio.instruments[symbol]
        close = to_decimal(f.close[i])
        stop = to_decimal(distance)
        risk_notional = portfolio.equity * to_decimal(p.risk) / stop * close
        cap = portfolio.equity * self._allocation * to_decimal(p.max_exposure)
        margin = portfolio.margin_available(symbol)
        if margin is not None:  # futures: no more than the margin left can carry
            cap = min(cap, margin * portfolio.leverage_of(symbol))
        qty = floor_qty(min(risk_notional, cap), close, instrument)
        reasons.append(
            _new_reason(
                "sizing",
                f"risk {p.risk:.2%} of equity over a {p.atr_mult:g}×ATR stop {distance:.6g}"
                f" → qty {qty}",
                {"atr": atr_value, "stop_distance": distance, "qty": float(qty)},
            )
        )
        signal = self._signal(symbol, ctx.time, direction, reasons, confidence)
        if qty == 0:
            return signal, ()
        plan = _new_plan(stop_distance=instrument.round_price(stop, up=True))
        return signal, (_new_intent(symbol, side, qty, exits=plan),)

    def _reasons(self, f: FeatureBlock, i: int) -> list[Reason]:
        p = self.p
        fast, slow = float(f.values["ema_fast"][i]), float(f.values["ema_slow"][i])
        a, r = float(f.values["adx"][i]), float(f.values["rsi"][i])
        word = {1: "up", -1: "down", 0: "flat"}[int(np.sign(fast - slow)) if fast == fast else 0]
        return [
            _new_reason(
                "trend",
                f"{p.trend_timeframe} EMA({p.ema_fast}) {fast:.6g} vs EMA({p.ema_slow}) "
                f"{slow:.6g}: trend {word}, ADX({p.adx_period}) {a:.1f} (min {p.adx_min:g})",
                {"ema_fast": fast, "ema_slow": slow, "adx": a},
            ),
            _new_reason(
                "pullback",
                f"RSI({p.rsi_period}) {r:.1f}",
                {"rsi": r, "rsi_long": p.rsi_long, "rsi_short": p.rsi_short},
            ),
        ]

    def _signal(
        self, symbol: str, time: int, direction: Direction, reasons: list[Reason], confidence: float
    ) -> Signal:
        return _new_signal(
            symbol=symbol,
            timeframe=self.timeframe,
            time=time,
            direction=direction,
            confidence=confidence,
            reasons=tuple(reasons),
            strategy=self.name,
        )

    def state(self) -> dict[str, Any]:
        """No path-dependent state: the features are rebuilt from the bars."""
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Nothing to restore."""


def _trend(fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
    """+1 when ``fast > slow``, −1 when below, 0 otherwise (NaN included)."""
    return np.where(fast > slow, 1, np.where(fast < slow, -1, 0))


def _trend_of(fast: float, slow: float) -> int:
    """:func:`_trend` of one bar."""
    return 1 if fast > slow else -1 if fast < slow else 0
