"""``ml_mean_reversion``: fade Bollinger-band extremes in a ranging market when a model says the
price will revert (issue 7; spec 004, "Enhanced Dynamic Mean Reversion (XGBoost Day Trading)":
"entry/exit rules based on model probability thresholds" with "secondary indicator
confirmation").

* **Candidates** (vectorized over each block of bars, from the kernel's feature components,
  whose batch and incremental forms agree): a long candidate where the close is below the lower
  Bollinger band (SMA(``bb_period``) − ``bb_width`` population deviations), RSI(``rsi_period``)
  is below ``rsi_low`` and ADX(``adx_period``) below ``adx_max``; a short candidate mirrored
  (above the upper band, RSI above ``rsi_high``, the same ADX).
* **Entry**: at a candidate of a flat symbol, the symbol's mean-reversion model
  (:class:`~domain.ml.labels.MeanReversionLabel`: the price moves half-way back to its 20-bar
  mean within 12 bars) gives P(reversion) ``p``; the strategy enters towards the mean when
  ``p >= threshold``, with confidence ``p``. Without a model (none active, a failed load or fit,
  the predictor disabled below 55 % accuracy: Property 14) it takes no entry and says why.
* **Size**: ``equity × risk / (stop_atr × ATR(atr_period))`` (the stop loses ``risk`` of
  equity), capped by the symbol's share of equity (equity / symbols traded) × its leverage and
  by what the margin left carries; rounded down to the lot step.
* **Exits** (:mod:`domain.exit_rules`, the advanced exit manager): a stop at ``stop_atr`` ATRs
  and take-profits towards the mean, half the entry qty half-way to the middle band and the
  rest at it (distances from the signal's close, applied from the entry fill); breakeven at
  2 ATR, a 0.5 ATR trail once in profit when the MACD(12, 26, 9) histogram turns against the
  position, and a close after 24 h when no profit level was reached.

Models come from the registry (the composition root hands the active ``mean_reversion`` model
of each symbol over) or, with ``ml_train_days > 0``, from weekly walk-forward fits in the run
on the bars closed by each boundary (:class:`~domain.ml.signal_input.MLInput`). Predictions
resolve 12 bars later on the mean-reversion label. Every signal carries the indicators' values,
the model's probability and its explanation. The exits' states and the ML input's (pending
predictions, rolling accuracy) live in :meth:`MLMeanReversion.state`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from domain import exit_rules
from domain.candles import Candles
from domain.errors import ConfigError
from domain.execution import to_decimal
from domain.features import ADX, ATR, MACD, RSI, Bollinger
from domain.model import Direction, Instrument, Reason, Side, Signal
from domain.pipeline_events import ML, PipelineEvent
from domain.strategies.base import (
    Decision,
    DecisionContext,
    OrderIntent,
    floor_qty,
    zero_crossings,
)
from domain.strategies.features import FeatureBlock, SymbolFeatures
from domain.strategies.mean_reversion_rules import (
    MLMeanReversionParams,
    candidate_sides,
    indicator_reasons,
    ml_reason,
    reversion_plan,
    sizing_reason,
)
from domain.timeframes import timeframe_ms

if TYPE_CHECKING:  # scikit-learn loads only when the strategy is built (it takes a second)
    from domain.ml.signal_input import ActiveModel, MLInput, ModelSpan

_NOTHING = Decision()
_VERSION = 1
MODEL_KIND = "mean_reversion"
"""The registry kind of the models this strategy reads (:class:`~domain.ml.models.ModelKind`)."""


class MLMeanReversion:
    """Fade Bollinger-band extremes in a range when the model's P(reversion) clears a threshold.

    The RSI must be extreme and the ADX low; an ATR stop, take-profits towards the mean and the
    exit manager's rules close (see the module docstring).

    Raises
    ------
    ConfigError
        (field ``timeframe``) When the bar length does not divide one hour (the model's
        features count bars per hour).
    """

    name = "ml_mean_reversion"
    Params = MLMeanReversionParams
    model_kind = MODEL_KIND

    def __init__(
        self, params: MLMeanReversionParams | None = None, *, timeframe: str, incremental: bool
    ) -> None:
        from domain.ml.models import ModelKind, label_for
        from domain.ml.predictor import MLRules
        from domain.ml.signal_input import MLInput, fit_model

        self.p = params or MLMeanReversionParams()
        self.timeframe = timeframe
        self.incremental = incremental
        self.tf_ms = timeframe_ms(timeframe)
        kind = ModelKind.MEAN_REVERSION
        days = self.p.ml_train_days
        rules = MLRules(horizon_ms=label_for(kind).horizon * self.tf_ms)
        trainer = (
            fit_model(days, algo=self.p.ml_algo, bar_ms=self.tf_ms, kind=kind) if days else None
        )
        self._ml: MLInput = MLInput(
            rules, tf_ms=self.tf_ms, trainer=trainer, train_days=days or 90, kind=kind
        )
        try:
            self._keep = self._ml.keep_bars
        except ConfigError as exc:
            raise ConfigError(f"{self.name}: {exc}", field="timeframe") from exc
        self._features: dict[str, SymbolFeatures] = {}
        self._blocks: dict[str, FeatureBlock] = {}
        self._sides: dict[str, np.ndarray] = {}  # per bar of the block: +1 long, −1 short, 0
        self._exits: dict[str, exit_rules.ExitState] = {}
        self._armed: dict[str, tuple[float, str]] = {}  # ATR and qty of entries to arm
        self._events: list[PipelineEvent] = []
        self._allocation = Decimal(1)

    def params(self) -> dict[str, float | int | str | bool]:
        """Every parameter by name."""
        return {f.name: getattr(self.p, f.name) for f in dataclasses.fields(self.p)}

    def warmup_bars(self) -> int:
        """Bars to the slowest indicator, or the bars the model's predictions (and
        walk-forward fits) read, whichever is more."""
        p = self.p
        slowest = max(p.bb_period, p.rsi_period + 1, 2 * p.adx_period + 1, p.atr_period + 1, 35)
        return max(slowest, self._keep)

    # -- models (UsesModels) -----------------------------------------------------------------
    @property
    def wants_models(self) -> bool:
        """True unless the models are fitted walk-forward in the run: the composition root
        then hands each symbol's active ``mean_reversion`` model over with :meth:`use_model`."""
        return self._ml.trainer is None

    def use_model(self, symbol: str, model: ActiveModel | None, error: str | None = None) -> None:
        """Put ``model`` in effect on ``symbol`` (None: no entries there, ``error`` saying
        why)."""
        self._ml.use(symbol, model, error)

    def model_spans(self) -> list[ModelSpan]:
        """Which model predicted on which symbol when."""
        return self._ml.spans()

    def drain_events(self) -> list[PipelineEvent]:
        """The ML predictors that disabled themselves (Property 14) and the predictions that
        failed since the last call."""
        events, self._events = self._events, []
        return events

    # -- bars --------------------------------------------------------------------------------
    def prepare(self, symbols: tuple[str, ...], instruments: Mapping[str, Instrument]) -> None:
        """Build each symbol's indicator components."""
        p = self.p
        self._allocation = Decimal(1) / Decimal(len(symbols))
        for symbol in symbols:
            components = {
                "bb": Bollinger(p.bb_period, p.bb_width),
                "rsi": RSI(p.rsi_period),
                "adx": ADX(p.adx_period),
                "atr": ATR(p.atr_period),
                "macd": MACD(12, 26, 9),
            }
            self._features[symbol] = SymbolFeatures(components, self.tf_ms, self.incremental)

    def on_bars(self, bars: Mapping[str, Candles]) -> dict[str, np.ndarray]:
        """Update the indicators and the model's bars; due are the candidates and the bars
        where the MACD histogram crosses zero (the exit manager's trailing may start)."""
        out: dict[str, np.ndarray] = {}
        for symbol, block in bars.items():
            self._ml.take(symbol, block)
            f = self._features[symbol].update(block)
            sides = candidate_sides(f, self.p)
            crossings = zero_crossings(f.previous.get("macd.hist", math.nan), f.values["macd.hist"])
            due = sides != 0
            due[crossings] = True
            self._blocks[symbol], self._sides[symbol] = f, sides
            out[symbol] = f.close_time[due]
        return out

    # -- decisions ---------------------------------------------------------------------------
    def decide(self, ctx: DecisionContext) -> Decision:
        """Exits of the open positions; entries at the due candidates of flat symbols."""
        woken: dict[str, set[str]] = {}
        for wake in ctx.woken:
            woken.setdefault(wake.symbol, set()).add(wake.tag)
        self._resolve(ctx.time)
        actions = exit_rules.ExitActions(None)
        signals: list[Signal] = []
        entries: list[OrderIntent] = []
        for symbol in sorted(ctx.due | set(woken)):
            if ctx.portfolio.position(symbol).qty != 0:
                acted = self._manage(symbol, ctx, woken.get(symbol, set()))
                actions = actions.then(acted)
                if acted.reasons:
                    signals.append(self._exit_signal(symbol, ctx, acted))
                continue
            self._exits.pop(symbol, None)
            if exit_rules.FILLED_TAG in woken.get(symbol, ()):
                self._armed.pop(symbol, None)  # the entry did not fill (refused or gone)
            if symbol not in ctx.due or symbol in ctx.closed:  # (the risk gate would refuse)
                continue
            f = self._blocks[symbol]
            i = f.index(ctx.time)
            side = int(self._sides[symbol][i])
            if side:
                signal, intent = self._entry(symbol, ctx, f, i, side)
                signals.append(signal)
                if intent is not None:
                    entries.append(intent)
        self._events += self._ml.drain_events()  # disabled predictors, failed predictions
        wake = actions.wake + tuple(exit_rules.fill_wake(o.symbol, ctx.time) for o in entries)
        orders = actions.orders + tuple(entries)
        if not (signals or orders or actions.modify or wake or actions.drop_wakes):
            return _NOTHING
        return Decision(
            signals=tuple(signals),
            orders=orders,
            modify=actions.modify,
            wake=wake,
            drop_wakes=actions.drop_wakes,
        )

    def _resolve(self, time: int) -> None:
        """Resolve the predictions due by ``time`` on the mean-reversion label (a predictor
        that disables itself reports a pipeline event, collected after the entries)."""
        self._ml.resolve(time)

    def _entry(
        self, symbol: str, ctx: DecisionContext, f: FeatureBlock, i: int, side: int
    ) -> tuple[Signal, OrderIntent | None]:
        """The signal at candidate row ``i`` (``side`` +1 long, −1 short) and its entry, if
        the model confirms and a size fits."""
        p = self.p
        reasons = indicator_reasons(f, i, side, p)
        prediction = self._ml.predict(symbol, ctx.time)
        if prediction is None:
            why = self._ml.status(symbol) or "no prediction"
            reasons.append(Reason(ML, f"ML off: {why}: no entry", {}))
            return self._signal(symbol, ctx.time, Direction.FLAT, reasons, 0.0), None
        probability = prediction.probability
        reasons.append(ml_reason(prediction, p.threshold))
        if probability < p.threshold:
            return self._signal(symbol, ctx.time, Direction.FLAT, reasons, 0.0), None
        direction = Direction.LONG if side > 0 else Direction.SHORT
        atr = float(f.values["atr"][i])
        distance = atr * p.stop_atr
        if not (math.isfinite(distance) and distance > 0):
            reasons.append(Reason("sizing", "ATR is not defined yet: no entry", {}))
            return self._signal(symbol, ctx.time, direction, reasons, probability), None
        qty = self._size(symbol, ctx, float(f.close[i]), distance)
        reasons.append(sizing_reason(p, atr, distance, qty))
        signal = self._signal(symbol, ctx.time, direction, reasons, probability)
        if qty <= 0:
            return signal, None
        instrument = ctx.portfolio.instruments[symbol]
        gap = abs(float(f.close[i]) - float(f.values["bb.middle"][i]))
        plan = reversion_plan(distance, gap, instrument)
        self._armed[symbol] = (atr, str(qty))
        return signal, OrderIntent(symbol, Side.BUY if side > 0 else Side.SELL, qty, exits=plan)

    def _size(self, symbol: str, ctx: DecisionContext, price: float, distance: float) -> Decimal:
        """``equity × risk / distance`` in base asset, capped by the symbol's share of equity
        × its leverage and by the margin left, rounded down to the lot step."""
        portfolio = ctx.portfolio
        close, stop = to_decimal(price), to_decimal(distance)
        risk_notional = portfolio.equity * to_decimal(self.p.risk) / stop * close
        leverage = portfolio.leverage_of(symbol)
        cap = portfolio.equity * self._allocation * leverage
        margin = portfolio.margin_available(symbol)
        if margin is not None:  # futures: no more than the margin left can carry
            cap = min(cap, margin * leverage)
        return floor_qty(min(risk_notional, cap), close, portfolio.instruments[symbol])

    def _signal(
        self, symbol: str, time: int, direction: Direction, reasons: list[Reason], confidence: float
    ) -> Signal:
        return Signal(
            symbol, self.timeframe, time, direction, confidence, tuple(reasons), self.name
        )

    # -- exits -------------------------------------------------------------------------------
    def _manage(self, symbol: str, ctx: DecisionContext, woken: set[str]) -> exit_rules.ExitActions:
        """The exit manager on ``symbol``'s open position: arm it after the entry's fill, then
        run the rules due (:func:`domain.exit_rules.manage`)."""
        portfolio = ctx.portfolio
        position = portfolio.position(symbol)
        state = self._exits.get(symbol)
        done = exit_rules.ExitActions(state)
        if state is None:
            armed = self._armed.pop(symbol, None)
            if armed is None:
                return done  # a position this strategy did not open: left alone
            working = portfolio.open_orders.get(symbol, ())
            qty = exit_rules.entry_fill(working, Decimal(armed[1]))
            done = exit_rules.start(position, armed[0], ctx.time, entry_qty=qty)
            state = done.state
            assert state is not None
        f = self._blocks[symbol]
        i = f.index(ctx.time)
        hist = f.values["macd.hist"]
        before = f.previous.get("macd.hist", math.nan) if i == 0 else hist[i - 1]
        bar = exit_rules.Bar(float(f.close[i]), float(hist[i]), float(before))
        orders = portfolio.orders(symbol)
        instrument = portfolio.instruments[symbol]
        done = done.then(
            exit_rules.manage(state, position, orders, instrument, bar, ctx.time, woken)
        )
        if done.state is None:
            self._exits.pop(symbol, None)
        else:
            self._exits[symbol] = done.state
        return done

    def _exit_signal(
        self, symbol: str, ctx: DecisionContext, acted: exit_rules.ExitActions
    ) -> Signal:
        """The exit rules' reasons on ``symbol`` (FLAT when they close it)."""
        held = ctx.portfolio.position(symbol).qty
        closing = any(o.symbol == symbol for o in acted.orders)
        direction = Direction.FLAT if closing else Direction.LONG if held > 0 else Direction.SHORT
        return Signal(symbol, self.timeframe, ctx.time, direction, 1.0, acted.reasons, self.name)

    # -- state -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The exits' states, the entries waiting to be armed and the ML input's state
        (pending predictions, rolling accuracy, model spans): JSON."""
        return {
            "version": _VERSION,
            "exits": {s: e.to_json() for s, e in self._exits.items()},
            "armed": {s: list(a) for s, a in self._armed.items()},
            "ml": self._ml.state(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state` (an empty mapping: nothing to restore).

        Raises
        ------
        ValueError
            When ``state`` is of another version or malformed.
        """
        if not state:
            return
        if state.get("version") != _VERSION:
            raise ValueError(f"{self.name} state version must be {_VERSION}, was {state!r}")
        try:
            exits = {s: exit_rules.ExitState.from_json(e) for s, e in state["exits"].items()}
            armed = {s: (float(a), str(q)) for s, (a, q) in state["armed"].items()}
            ml = state["ml"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed {self.name} state: {exc!r}") from exc
        self._ml.restore(ml)
        self._exits, self._armed = exits, armed
