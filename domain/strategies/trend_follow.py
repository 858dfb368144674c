"""``trend_follow``: trade 5m pullbacks in the direction of the 1h trend.

* Trend (higher timeframe, completed buckets only): up when EMA(``ema_fast``) > EMA(``ema_slow``)
  of the 1h close, down when below; it counts only while ADX(``adx_period``) > ``adx_min``.
* Entry (base timeframe): long when the trend is up and RSI(``rsi_period``) crosses back up
  through ``rsi_long`` (the pullback ends); short mirrored through ``rsi_short``.
* Stop: a reduce-only stop ``atr_mult × ATR(atr_period)`` from the entry fill.
* Size: ``equity × risk / (atr_mult × ATR)`` (so the stop loses ``risk`` of equity), capped by the
  max notional ``equity × allocation × max_exposure``; rounded down to the lot step.
* Exit: the stop, or a market exit when the 1h EMAs cross against the position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from domain.candles import Candles
from domain.errors import ConfigError
from domain.execution import to_decimal
from domain.indicators import adx, atr, ema, rsi
from domain.model import Direction, Reason, Side, Signal
from domain.resample import completed_index, resample
from domain.strategies.base import Decision, DecisionContext, OrderIntent, floor_qty
from domain.timeframes import timeframe_ms


@dataclass(frozen=True, slots=True)
class TrendFollow:
    """1h EMA trend + ADX filter, 5m RSI pullback entries, ATR stops, risk-based sizing.

    ``risk`` and ``max_exposure`` are fractions (0.01 = 1 % of equity at risk per trade).

    Raises
    ------
    ConfigError
        On a parameter outside its range (the message names it).
    """

    ema_fast: int = 50
    ema_slow: int = 200
    adx_period: int = 14
    adx_min: float = 20.0
    rsi_period: int = 14
    rsi_long: float = 40.0
    rsi_short: float = 60.0
    atr_period: int = 14
    atr_mult: float = 2.0
    risk: float = 0.01
    max_exposure: float = 1.0
    trend_timeframe: str = "1h"
    timeframe: str = "5m"
    name: str = "trend_follow"

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
        if timeframe_ms(self.trend_timeframe) % timeframe_ms(self.timeframe):
            raise ConfigError(
                f"trend_timeframe {self.trend_timeframe} must be a multiple of the bar "
                f"timeframe {self.timeframe}",
                field="trend_timeframe",
            )

    def params(self) -> dict[str, float | int | str]:
        """Every parameter by name."""
        return {
            k: getattr(self, k)
            for k in (
                "ema_fast", "ema_slow", "adx_period", "adx_min", "rsi_period", "rsi_long",
                "rsi_short", "atr_period", "atr_mult", "risk", "max_exposure", "trend_timeframe",
            )
        }  # fmt: skip

    def evaluate(self, candles: Candles, start: int) -> _Evaluation:
        """Indicators over the history; candidates are entry bars and trend flips ``>= start``."""
        htf_ms = timeframe_ms(self.trend_timeframe)
        base_ms = timeframe_ms(self.timeframe)
        hourly = resample(candles, base_ms, htf_ms)
        where = completed_index(hourly.open_time, htf_ms, candles.open_time, base_ms)
        known = where >= 0
        pick = np.where(known, where, 0)

        def lift(values: np.ndarray) -> np.ndarray:
            if len(values) == 0:
                return np.full(len(candles), np.nan)
            return np.where(known, values[pick], np.nan)

        fast = lift(ema(hourly.close, self.ema_fast))
        slow = lift(ema(hourly.close, self.ema_slow))
        strength = lift(adx(hourly.high, hourly.low, hourly.close, self.adx_period))
        trend = np.where(fast > slow, 1, np.where(fast < slow, -1, 0))
        strong = strength > self.adx_min
        r = rsi(candles.close, self.rsi_period)
        prev = np.r_[np.nan, r[:-1]]
        long_entry = (trend == 1) & strong & (prev < self.rsi_long) & (r >= self.rsi_long)
        short_entry = (trend == -1) & strong & (prev > self.rsi_short) & (r <= self.rsi_short)
        flips = np.r_[False, trend[1:] != trend[:-1]]
        candidates = np.flatnonzero(long_entry | short_entry | flips)
        volatility = atr(candles.high, candles.low, candles.close, self.atr_period)
        return _Evaluation(
            self, candles, fast, slow, strength, trend, r, volatility,
            long_entry, short_entry, candidates[candidates >= start],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Evaluation:
    strategy: TrendFollow
    candles: Candles
    ema_fast: np.ndarray
    ema_slow: np.ndarray
    adx: np.ndarray
    trend: np.ndarray
    rsi: np.ndarray
    atr: np.ndarray
    long_entry: np.ndarray
    short_entry: np.ndarray
    candidates: np.ndarray

    def _reasons(self, i: int) -> list[Reason]:
        s = self.strategy
        f, sl, a = float(self.ema_fast[i]), float(self.ema_slow[i]), float(self.adx[i])
        word = {1: "up", -1: "down", 0: "flat"}[int(self.trend[i])]
        return [
            Reason(
                "trend",
                f"{s.trend_timeframe} EMA({s.ema_fast}) {f:.6g} vs EMA({s.ema_slow}) {sl:.6g}: "
                f"trend {word}, ADX({s.adx_period}) {a:.1f} (min {s.adx_min:g})",
                {"ema_fast": f, "ema_slow": sl, "adx": a},
            ),
            Reason(
                "pullback",
                f"RSI({s.rsi_period}) {float(self.rsi[i]):.1f}",
                {"rsi": float(self.rsi[i]), "rsi_long": s.rsi_long, "rsi_short": s.rsi_short},
            ),
        ]

    def decide(self, i: int, ctx: DecisionContext) -> Decision:
        """Exit on a trend flip against the position; enter on a pullback when flat."""
        held = ctx.position.qty
        trend = int(self.trend[i])
        if held != 0 and (held > 0) != (trend > 0):
            exit_side = Side.SELL if held > 0 else Side.BUY
            reasons = self._reasons(i)
            reasons.append(Reason("exit", "the trend turned against the position", {}))
            signal = self._signal(ctx, Direction.FLAT, reasons, 1.0)
            return Decision(signal, (OrderIntent(exit_side, abs(held), reduce_only=True),))
        entry_long, entry_short = bool(self.long_entry[i]), bool(self.short_entry[i])
        if held != 0 or not (entry_long or entry_short):
            return Decision(None)
        return self._enter(i, ctx, Side.BUY if entry_long else Side.SELL)

    def _enter(self, i: int, ctx: DecisionContext, side: Side) -> Decision:
        s = self.strategy
        reasons = self._reasons(i)
        distance = float(self.atr[i]) * s.atr_mult
        direction = Direction.LONG if side is Side.BUY else Direction.SHORT
        confidence = min(1.0, float(self.adx[i]) / 50.0)
        if not np.isfinite(distance) or distance <= 0:
            reasons.append(Reason("sizing", "ATR is not defined yet: no entry", {}))
            return Decision(self._signal(ctx, direction, reasons, confidence))
        close = to_decimal(self.candles.close[i])
        stop = to_decimal(distance)
        risk_notional = ctx.equity * to_decimal(s.risk) / stop * close
        cap = ctx.equity * ctx.allocation * to_decimal(s.max_exposure)
        qty = floor_qty(min(risk_notional, cap), close, ctx.instrument)
        reasons.append(
            Reason(
                "sizing",
                f"risk {s.risk:.2%} of equity over a {s.atr_mult:g}×ATR stop {distance:.6g}"
                f" → qty {qty}",
                {"atr": float(self.atr[i]), "stop_distance": distance, "qty": float(qty)},
            )
        )
        signal = self._signal(ctx, direction, reasons, confidence)
        if qty == 0:
            return Decision(signal)
        rounded = ctx.instrument.round_price(stop, up=True)
        return Decision(signal, (OrderIntent(side, qty, stop_distance=rounded),))

    def _signal(
        self, ctx: DecisionContext, direction: Direction, reasons: list[Reason], confidence: float
    ) -> Signal:
        return Signal(
            symbol=ctx.symbol,
            timeframe=ctx.timeframe,
            time=ctx.time,
            direction=direction,
            confidence=confidence,
            reasons=tuple(reasons),
            strategy=self.strategy.name,
        )
