"""``sma_cross``: the reference stop-and-reverse strategy on SMA crossovers of the close.

A cross up at bar ``t`` means ``fast[t-1] < slow[t-1]`` and ``fast[t] > slow[t]`` (strict both
times; a touch with equality is no cross); a cross down is mirrored; SMAs are undefined for their
first ``n − 1`` bars. On every cross, close the open position whatever its side and open a new one
in the cross's direction with all the equity allocated to the symbol put up as margin
(``qty = floor_step(equity × allocation × leverage / close_t)``, allocation ``1 / number of
symbols``, leverage the account's for the symbol, 1 unless set; on a futures account the
margin is at most what the other symbols' positions leave), so a cross in the direction
already held closes that trade and opens a new one. Crosses are decided on the exact sign of
``fast − slow`` with prices in ticks (:class:`~domain.features.SmaSign`), so an exact tie is
never a cross; the SMAs give the values shown in the reasons. Orders are market orders: they
fill at bar ``t+1``'s open. A reversal is one order of ``|held| + qty`` (the fill closes the old
position and opens the new one at the same price, fees split pro rata); a same-direction cross
is a reduce-only close followed by a new order.
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
from domain.features import SMA, SmaSign
from domain.model import ZERO, Direction, Instrument, Reason, Side, Signal, fast_constructor
from domain.strategies.base import (
    Decision,
    DecisionContext,
    OrderIntent,
    Portfolio,
    floor_qty,
    zero_crossings,
)
from domain.strategies.features import FeatureBlock, SymbolFeatures
from domain.strategies.params import param
from domain.timeframes import timeframe_ms

# One decision per crossover: built by the kernel's faster constructors (the same checks).
_new_intent = fast_constructor(OrderIntent, validate=True)
_new_reason = fast_constructor(Reason, validate=True)
_new_signal = fast_constructor(Signal, validate=True)
_new_decision = fast_constructor(Decision, validate=True)


@dataclass(frozen=True, slots=True)
class SmaCrossParams:
    """``fast`` and ``slow`` SMA periods in bars.

    Raises
    ------
    ConfigError
        When ``fast < 1`` or ``slow <= fast``.
    """

    fast: int = param(50, "period of the fast simple moving average of the close, in bars (>= 1)")
    slow: int = param(
        200, "period of the slow simple moving average of the close, in bars (> fast)"
    )

    def __post_init__(self) -> None:
        if self.fast < 1:
            raise ConfigError(f"fast must be >= 1, was {self.fast}", field="fast")
        if self.slow <= self.fast:
            raise ConfigError(f"slow must be > fast ({self.fast}), was {self.slow}", field="slow")


class SmaCross:
    """Stop-and-reverse on SMA(``fast``) / SMA(``slow``) crossovers of the close.

    Stateless between decisions: everything it needs is in its features, rebuilt from the bars.
    """

    name = "sma_cross"
    Params = SmaCrossParams

    def __init__(
        self, params: SmaCrossParams | None = None, *, timeframe: str, incremental: bool
    ) -> None:
        self.p = params or SmaCrossParams()
        self.timeframe = timeframe
        self.incremental = incremental
        self._features: dict[str, SymbolFeatures] = {}
        self._blocks: dict[str, FeatureBlock] = {}
        self._allocation = Decimal(1)

    def params(self) -> dict[str, float | int | str | bool]:
        """``{"fast": ..., "slow": ...}``."""
        return {"fast": self.p.fast, "slow": self.p.slow}

    def warmup_bars(self) -> int:
        """The slow SMA's period plus the bar before it (to see a cross)."""
        return self.p.slow + 1

    def prepare(self, symbols: tuple[str, ...], instruments: Mapping[str, Instrument]) -> None:
        """Build each symbol's features (the exact sign needs the instrument's tick)."""
        tf_ms = timeframe_ms(self.timeframe)
        self._allocation = Decimal(1) / Decimal(len(symbols))
        for symbol in symbols:
            tick = float(instruments[symbol].tick_size)
            components = {
                "fast": SMA(self.p.fast),
                "slow": SMA(self.p.slow),
                "sign": SmaSign(self.p.fast, self.p.slow, tick),
            }
            self._features[symbol] = SymbolFeatures(components, tf_ms, self.incremental)

    def on_bars(self, bars: Mapping[str, Candles]) -> dict[str, np.ndarray]:
        """Update the features; candidates are the bars where the exact sign crosses zero."""
        out: dict[str, np.ndarray] = {}
        for symbol, block in bars.items():
            features = self._features[symbol].update(block)
            self._blocks[symbol] = features
            crosses = zero_crossings(features.previous.get("sign", np.nan), features.values["sign"])
            out[symbol] = features.close_time[crosses]
        return out

    def decide(self, ctx: DecisionContext) -> Decision:
        """Close whatever is held and open in the cross's direction with all allocated equity,
        for every symbol that crossed at ``ctx.time``."""
        signals: list[Signal] = []
        orders: list[OrderIntent] = []
        for symbol in sorted(ctx.due):
            signal, intents = self._decide_symbol(symbol, ctx)
            signals.append(signal)
            orders.extend(intents)
        return _new_decision(signals=tuple(signals), orders=tuple(orders))

    def _decide_symbol(
        self, symbol: str, ctx: DecisionContext
    ) -> tuple[Signal, tuple[OrderIntent, ...]]:
        block = self._blocks[symbol]
        i = block.index(ctx.time)
        up = block.values["sign"][i] > 0
        side = Side.BUY if up else Side.SELL
        close = to_decimal(block.close[i])
        portfolio: Portfolio = ctx.portfolio
        held = portfolio.position(symbol).qty
        instrument = portfolio.instruments[symbol]
        margin = portfolio.equity * self._allocation
        available = portfolio.margin_available(symbol)
        if available is not None:  # futures: the other symbols' positions hold some margin
            margin = min(margin, available)
        closed = symbol in ctx.closed  # a lasting risk hold: only the close may go
        qty = (
            ZERO if closed else floor_qty(margin * portfolio.leverage_of(symbol), close, instrument)
        )
        orders: tuple[OrderIntent, ...]
        if held != 0 and (held > 0) == up:
            orders = (_new_intent(symbol, side.opposite, abs(held), reduce_only=True),)
            orders += (_new_intent(symbol, side, qty),) if qty > 0 else ()
        elif qty + abs(held) > 0:
            # One market order that closes the opposite position and opens the new one: the
            # same fill price, fees and trade records as two orders, as a venue executes it.
            orders = (_new_intent(symbol, side, abs(held) + qty),)
        else:
            orders = ()
        f, s = float(block.values["fast"][i]), float(block.values["slow"][i])
        verb = "above" if up else "below"
        reasons = (
            _new_reason(
                "sma_cross",
                f"SMA({self.p.fast}) {f:.6g} crossed {verb} SMA({self.p.slow}) {s:.6g}",
                {"fast": f, "slow": s, "close": float(block.close[i])},
            ),
        )
        if closed:
            reasons += (_new_reason("risk", "a risk hold admits no new exposure", {"qty": 0.0}),)
        elif qty == 0:
            reasons += (
                _new_reason("sizing", "allocated equity is below the minimum order", {"qty": 0.0}),
            )
        signal = _new_signal(
            symbol=symbol,
            timeframe=self.timeframe,
            time=ctx.time,
            direction=Direction.LONG if up else Direction.SHORT,
            confidence=1.0,
            reasons=reasons,
            strategy=self.name,
        )
        return signal, orders

    def state(self) -> dict[str, Any]:
        """No path-dependent state: the features are rebuilt from the bars."""
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Nothing to restore."""
