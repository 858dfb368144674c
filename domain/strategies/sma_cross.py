"""``sma_cross``: the reference stop-and-reverse strategy on SMA crossovers of the close.

A cross up at bar ``t`` means ``fast[t-1] < slow[t-1]`` and ``fast[t] > slow[t]`` (strict both
times; a touch with equality is no cross); a cross down is mirrored; SMAs are undefined for their
first ``n − 1`` bars. On every cross, close the open position whatever its side and open a new one
in the cross's direction with all the equity allocated to the symbol (``qty = floor_step(equity ×
allocation / close_t)``), so a cross in the direction already held closes that trade and opens a
new one. Crosses are decided on the exact sign of ``fast − slow``
(:func:`~domain.indicators.sma_sign`), so an exact tie is never a cross; the TA-Lib SMAs give
the values shown in the reasons. Orders are market orders: they fill at bar ``t+1``'s open.
A reversal is one order of ``|held| + qty`` (the fill closes the old position and opens the
new one at the same price, fees split pro rata); a same-direction cross is a reduce-only close
followed by a new order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from domain.candles import Candles
from domain.errors import ConfigError
from domain.execution import to_decimal
from domain.indicators import sma, sma_sign
from domain.model import Direction, Reason, Side, Signal
from domain.strategies.base import Decision, DecisionContext, OrderIntent, cross_up, floor_qty


@dataclass(frozen=True, slots=True)
class SmaCross:
    """Stop-and-reverse on SMA(``fast``) / SMA(``slow``) crossovers of the close.

    Raises
    ------
    ConfigError
        When ``fast < 1`` or ``slow <= fast``.
    """

    fast: int = 50
    slow: int = 200
    name: str = "sma_cross"

    def __post_init__(self) -> None:
        if self.fast < 1:
            raise ConfigError(f"fast must be >= 1, was {self.fast}", field="fast")
        if self.slow <= self.fast:
            raise ConfigError(f"slow must be > fast ({self.fast}), was {self.slow}", field="slow")

    def params(self) -> dict[str, float | int | str]:
        """``{"fast": ..., "slow": ...}``."""
        return {"fast": self.fast, "slow": self.slow}

    def evaluate(self, candles: Candles, start: int) -> _SmaCrossEvaluation:
        """SMAs over the history and the crossover bars at or after ``start``."""
        fast = sma(candles.close, self.fast)
        slow = sma(candles.close, self.slow)
        sign = sma_sign(candles.close, self.fast, self.slow)
        zero = np.zeros(len(sign))
        up = cross_up(sign, zero)
        down = cross_up(zero, sign)
        both = np.union1d(up, down)
        lo = max(start, 1)
        return _SmaCrossEvaluation(
            self, candles, fast, slow, both[both >= lo], set(up[up >= lo].tolist())
        )


@dataclass(frozen=True, slots=True)
class _SmaCrossEvaluation:
    strategy: SmaCross
    candles: Candles
    fast: np.ndarray
    slow: np.ndarray
    candidates: np.ndarray
    ups: set[int]

    def decide(self, i: int, ctx: DecisionContext) -> Decision:
        """Close whatever is held and open in the cross's direction with all allocated equity."""
        up = i in self.ups
        side = Side.BUY if up else Side.SELL
        close = to_decimal(self.candles.close[i])
        held = ctx.position.qty
        qty = floor_qty(ctx.equity * ctx.allocation, close, ctx.instrument)
        orders: tuple[OrderIntent, ...]
        if held != 0 and (held > 0) == up:
            orders = (OrderIntent(side.opposite, abs(held), reduce_only=True),)
            orders += (OrderIntent(side, qty),) if qty > 0 else ()
        elif qty + abs(held) > 0:
            # One market order that closes the opposite position and opens the new one: the
            # same fill price, fees and trade records as two orders, as a venue executes it.
            orders = (OrderIntent(side, abs(held) + qty),)
        else:
            orders = ()
        f, s = float(self.fast[i]), float(self.slow[i])
        verb = "above" if up else "below"
        reason = Reason(
            "sma_cross",
            f"SMA({self.strategy.fast}) {f:.6g} crossed {verb} SMA({self.strategy.slow}) {s:.6g}",
            {"fast": f, "slow": s, "close": float(self.candles.close[i])},
        )
        reasons = (reason,)
        if qty == 0:
            reasons += (
                Reason("sizing", "allocated equity is below the minimum order", {"qty": 0.0}),
            )
        signal = Signal(
            symbol=ctx.symbol,
            timeframe=ctx.timeframe,
            time=ctx.time,
            direction=Direction.LONG if up else Direction.SHORT,
            confidence=1.0,
            reasons=reasons,
            strategy=self.strategy.name,
        )
        return Decision(signal, orders)
