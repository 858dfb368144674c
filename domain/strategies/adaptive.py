"""``adaptive``: the adaptive pipeline of issue 6 as a strategy.

* **Signal** (:func:`domain.signal_assembly.assemble`): the timeframe coordinator's direction
  with 3+ of 4 timeframes aligned, gated by the market regime (UNCERTAIN takes no entry) and
  the adaptive thresholds (the 1h ADX and the 5m RVOL must reach them), sized by the regime
  (VOLATILE halves) and the volume profile (a low-volume area halves).
* **Size**: ``equity × risk / (stop_multiplier × ATR)`` (the stop loses ``risk`` of equity; the
  1h ATR(24), the regime's stop multiplier) × the size factor, capped by the portfolio
  manager's fraction of equity (:func:`domain.allocation.allocate`: confidence bands, at most
  5 symbols, 40 % each, 50 % per correlated pair) × the symbol's leverage, and by the margin
  left; rounded down to the lot step.
* **Exits** (:mod:`domain.exit_rules`): stop and 33/33/34 % take-profits at 1.5/3/5 ATR
  (frozen at entry), breakeven at 2 ATR, a 0.5 ATR trail when the 1h MACD histogram turns
  against a position in profit, a 24 h time exit, and every position closed when the
  symbol's regime turns from TRENDING to RANGING.

Decisions come at the bars where an entry may pass the gates, where the regime turns, where
the 1h MACD histogram changes sign, and at the exits' wake-ups. Every signal carries each
component's reasons. The exits' states live in :meth:`Adaptive.state`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from domain import exit_rules
from domain.allocation import AllocationConfig, allocate
from domain.analysis import PipelineConfig
from domain.candles import Candles
from domain.correlation import CorrelationMatrix, correlation_of
from domain.errors import ConfigError
from domain.execution import to_decimal
from domain.isolation import FeatureGuard, FeatureStatus
from domain.model import Direction, Instrument, Reason, Side, Signal
from domain.pipeline_events import LastValues, PipelineEvent, find_events
from domain.regime import REGIMES, Regime, RegimeConfig
from domain.signal_assembly import PipelineInputs, assemble
from domain.strategies.adaptive_pipeline import (
    NO_REGIME,
    PipelineRows,
    SymbolPipeline,
    regime_of,
)
from domain.strategies.base import (
    Decision,
    DecisionContext,
    OrderIntent,
    PipelineView,
    floor_qty,
)
from domain.strategies.params import param
from domain.thresholds import ThresholdConfig, Thresholds, thresholds_for
from domain.timeframes import timeframe_ms

if TYPE_CHECKING:  # scikit-learn loads only when ML is on (it takes a second)
    from domain.ml.signal_input import ActiveModel, MLInput, ModelSpan

_TRENDING = (Regime.TRENDING_BULLISH, Regime.TRENDING_BEARISH)
_NOTHING = Decision()
_VERSION = 1


@dataclass(frozen=True, slots=True)
class AdaptiveParams:
    """Parameters; ``risk`` is a fraction of equity (0.01 = 1 % lost when a stop is hit).

    Raises
    ------
    ConfigError
        On a parameter outside its range (the message names it).
    """

    risk: float = param(
        0.01, "fraction of equity lost when the stop is hit; sets the size (0 < risk <= 0.1)"
    )
    thresholds: bool = param(True, "adaptive ADX/RVOL thresholds (off: the base ones)")
    regime: bool = param(True, "market regime gating, sizing and stops (off: neutral)")
    volume_profile: bool = param(True, "volume profile: half size in low-volume areas")
    portfolio: bool = param(True, "portfolio manager caps (off: equal shares of equity)")
    ml: bool = param(
        False,
        "the ML trend probability as an input of entries: the registry's active trend model "
        "per symbol, or walk-forward fits in the run (ml_train_days > 0)",
    )
    ml_train_days: int = param(
        0, "walk-forward: days of bars each weekly fit reads (0: registry models; 2 to 365)"
    )
    ml_algo: str = param(
        "hgb",
        "the model walk-forward fits train: hgb (HistGradientBoosting), rf (random forest) or "
        "xgb (XGBoost: the fastest to predict; needs the ml extra)",
    )

    def __post_init__(self) -> None:
        if not 0 < self.risk <= 0.1:
            raise ConfigError(f"risk is out of range, was {self.risk}", field="risk")
        if self.ml_train_days != 0 and not 2 <= self.ml_train_days <= 365:
            raise ConfigError(
                f"ml_train_days must be 0 or 2 to 365, was {self.ml_train_days}",
                field="ml_train_days",
            )
        if self.ml_algo not in ("hgb", "rf", "xgb"):
            raise ConfigError(
                f"ml_algo must be hgb, rf or xgb, was {self.ml_algo!r}", field="ml_algo"
            )


class Adaptive:
    """The adaptive pipeline (see the module docstring).

    Raises
    ------
    ConfigError
        When the timeframe is not 5m (the pipeline's 15m, 1h and 4h come from 5m bars).
    """

    name = "adaptive"
    Params = AdaptiveParams

    def __init__(
        self, params: AdaptiveParams | None = None, *, timeframe: str, incremental: bool
    ) -> None:
        self.p = params or AdaptiveParams()
        if timeframe != "5m":
            raise ConfigError(f"adaptive trades 5m bars, not {timeframe}", field="timeframe")
        self.timeframe = timeframe
        self.incremental = incremental
        self.tf_ms = timeframe_ms(timeframe)
        self.config = PipelineConfig(
            thresholds=ThresholdConfig(enabled=self.p.thresholds),
            regime=RegimeConfig(enabled=self.p.regime),
            volume_profile=self.p.volume_profile,
        )
        self._pipelines: dict[str, SymbolPipeline] = {}
        self._rows: dict[str, PipelineRows] = {}
        self._last: dict[str, tuple[int, float]] = {}  # regime code, MACD hist of the last bar
        self._before: dict[str, tuple[int, float]] = {}  # the same, bar before the block
        self._reported: dict[str, LastValues] = {}  # thresholds and regime at the last bar
        self._events: list[PipelineEvent] = []
        self._entry_bars: dict[str, np.ndarray] = {}  # per bar of the block: may enter
        self._exits: dict[str, exit_rules.ExitState] = {}
        self._armed: dict[str, tuple[float, str]] = {}  # ATR and qty of entries to arm
        self._instruments: Mapping[str, Instrument] = {}
        self._guard = FeatureGuard({"portfolio": self.p.portfolio})
        self._ml: MLInput | None = None
        if self.p.ml:
            from domain.ml.predictor import MLRules
            from domain.ml.signal_input import MLInput, fit_model

            days = self.p.ml_train_days
            trainer = fit_model(days, algo=self.p.ml_algo, bar_ms=self.tf_ms) if days else None
            self._ml = MLInput(MLRules(), tf_ms=self.tf_ms, trainer=trainer, train_days=days or 90)

    def params(self) -> dict[str, float | int | str | bool]:
        """Every parameter by name."""
        p = self.p
        return {
            "risk": p.risk, "thresholds": p.thresholds, "regime": p.regime,
            "volume_profile": p.volume_profile, "portfolio": p.portfolio, "ml": p.ml,
            "ml_train_days": p.ml_train_days, "ml_algo": p.ml_algo,
        }  # fmt: skip

    @property
    def wants_models(self) -> bool:
        """True when the strategy reads the registry's active trend models: the composition
        root hands each symbol's over with :meth:`use_model`."""
        return self._ml is not None and self._ml.trainer is None

    def use_model(self, symbol: str, model: ActiveModel | None, error: str | None = None) -> None:
        """Put ``model`` in effect on ``symbol`` (None: ML off there, ``error`` saying why;
        the rest of the pipeline runs on)."""
        if self._ml is not None:
            self._ml.use(symbol, model, error)

    def model_spans(self) -> list[ModelSpan]:
        """Which ML model predicted on which symbol when (empty with ML off)."""
        return [] if self._ml is None else self._ml.spans()

    def warmup_bars(self) -> int:
        """Bars to the 4h EMA(50), the slowest input (about 8 days of 5m bars); with ML on,
        the bars its predictions (and walk-forward fits) read, when more."""
        return max(51 * 48, 0 if self._ml is None else self._ml.keep_bars)

    def prepare(self, symbols: tuple[str, ...], instruments: Mapping[str, Instrument]) -> None:
        """One pipeline per symbol."""
        self._instruments = instruments
        for symbol in symbols:
            guard = FeatureGuard(
                {"timeframes": True, "thresholds": True, "regime": True, "exits": True,
                 "volume_profile": self.p.volume_profile}
            )  # fmt: skip
            self._pipelines[symbol] = SymbolPipeline(
                self.config, self.tf_ms, incremental=self.incremental, guard=guard
            )

    def on_bars(self, bars: Mapping[str, Candles]) -> dict[str, np.ndarray]:
        """Update the pipelines; candidates are the bars where an entry may pass the gates,
        the regime changes or the 1h MACD histogram changes sign."""
        out: dict[str, np.ndarray] = {}
        for symbol, block in bars.items():
            if self._ml is not None:
                self._ml.take(symbol, block)
            rows = self._pipelines[symbol].update(block)
            before = self._last.get(symbol, (-1, np.nan))
            if len(rows):
                self._last[symbol] = (int(rows.regime[-1]), float(rows.macd_hist[-1]))
            self._rows[symbol], self._before[symbol] = rows, before
            self._report(symbol, rows)
            regime_prev = np.r_[before[0], rows.regime[:-1]]
            macd_prev = np.r_[before[1], rows.macd_hist[:-1]]
            turned = (rows.regime != regime_prev) | (np.sign(rows.macd_hist) != np.sign(macd_prev))
            may_enter = self._may_enter(rows)
            self._entry_bars[symbol] = may_enter
            self._pipelines[symbol].keep_analyses(rows.close_time[may_enter])
            out[symbol] = rows.close_time[may_enter | turned]
        return out

    def _report(self, symbol: str, rows: PipelineRows) -> None:
        """Queue the block's threshold adjustments and regime changes (:meth:`drain_events`):
        the thresholds component's own values (base × band, clamped; the VOLATILE regime's
        factor is the regime's part of an entry's gate, not an adjustment)."""
        cfg = self.config.thresholds
        mult = rows.multiplier if cfg.enabled else np.ones(len(rows))
        adx = np.clip(cfg.base_adx * mult, cfg.adx_min, cfg.adx_max)
        rvol = np.clip(cfg.base_rvol * mult, cfg.rvol_min, cfg.rvol_max)
        base = thresholds_for(50.0, cfg)
        before = self._reported.get(symbol, LastValues(base[0], base[1], NO_REGIME))
        self._events += find_events(
            symbol, rows.close_time, adx, rvol, rows.volatility_pct, mult, rows.regime, before,
        )  # fmt: skip
        if len(rows):
            self._reported[symbol] = LastValues(
                float(adx[-1]), float(rvol[-1]), int(rows.regime[-1])
            )

    def drain_events(self) -> list[PipelineEvent]:
        """The threshold adjustments and regime changes of the bars taken since the last
        call, in time order per symbol (:mod:`domain.pipeline_events`)."""
        events, self._events = self._events, []
        return events

    def _may_enter_at(self, symbol: str, time: int) -> bool:
        """Whether the bar of ``symbol`` closing at ``time`` is one where an entry may pass
        (a flat symbol due for another reason, a regime or momentum turn, has nothing to
        assemble)."""
        rows = self._rows[symbol]
        return bool(self._entry_bars[symbol][int(np.searchsorted(rows.close_time, time))])

    def _may_enter(self, rows: PipelineRows) -> np.ndarray:
        """The bars whose entry gates may pass (a little looser than :func:`assemble`, which
        decides)."""
        cfg = self.config.thresholds
        regime = rows.regime
        volatile = regime == _code(Regime.VOLATILE)
        factor = np.where(volatile, 1.3, 1.0) if self.p.regime else 1.0
        mult = rows.multiplier if cfg.enabled else 1.0
        adx = np.clip(cfg.base_adx * mult * factor, cfg.adx_min, cfg.adx_max)
        rvol = np.clip(cfg.base_rvol * mult * factor, cfg.rvol_min, cfg.rvol_max)
        allowed = (regime != _code(Regime.UNCERTAIN)) if self.p.regime else True
        return (
            (rows.direction != 0)
            & (rows.aligned >= 3)
            & allowed
            & (rows.adx >= adx * (1 - 1e-9))
            & (rows.rvol >= rvol * (1 - 1e-9))
        )

    def decide(self, ctx: DecisionContext) -> Decision:
        """Exits of the open positions; entries where the signal allows, sized and capped."""
        signals: list[Signal] = []
        actions = exit_rules.ExitActions(None)
        entries: dict[str, tuple[Signal, float, float]] = {}
        woken: dict[str, set[str]] = {}
        for wake in ctx.woken:
            woken.setdefault(wake.symbol, set()).add(wake.tag)
        reasons: dict[str, tuple[Reason, ...]] = {}
        if self._ml is not None:
            self._ml_alerts(ctx.time)
        for symbol in sorted(ctx.due | set(woken)):
            held = ctx.portfolio.position(symbol)
            if held.qty != 0:
                acted = self._manage(symbol, ctx, woken.get(symbol, set()))
                if acted.reasons:
                    reasons[symbol] = acted.reasons
                actions = actions.then(acted)
                continue
            self._exits.pop(symbol, None)
            if symbol in ctx.closed:  # the risk gate would refuse the entry
                continue
            if symbol in ctx.due and self._may_enter_at(symbol, ctx.time):
                signal, enter, size, stop = self._signal(symbol, ctx.time)
                signals.append(signal)
                if enter:
                    entries[symbol] = (signal, size, stop)
        signals += self._failures(ctx.time)
        if self._ml is not None:  # disabled predictors, failed predictions
            self._events += self._ml.drain_events()
        entered = self._enter(entries, ctx)
        orders = list(actions.orders) + entered
        wake = actions.wake + tuple(exit_rules.fill_wake(o.symbol, ctx.time) for o in entered)
        signals += self._exit_signals(reasons, actions, ctx)
        if not (signals or orders or actions.modify or wake or actions.drop_wakes):
            return _NOTHING
        return Decision(
            signals=tuple(signals),
            orders=tuple(orders),
            modify=actions.modify,
            wake=wake,
            drop_wakes=actions.drop_wakes,
        )

    # -- entries -----------------------------------------------------------------------------
    def _signal(self, symbol: str, time: int) -> tuple[Signal, bool, float, float]:
        """The assembled signal at ``time``: itself, whether it enters, its size factor and
        its stop multiplier (in 1h ATRs)."""
        pipeline, rows = self._pipelines[symbol], self._rows[symbol]
        i = int(np.searchsorted(rows.close_time, time))
        price = float(rows.close[i])
        result = assemble(
            PipelineInputs(
                symbol=symbol,
                time=time,
                price=price,
                timeframes=pipeline.analysis(time),
                thresholds=self._levels(rows, i) if self.p.thresholds else None,
                regime=regime_of(rows.regime[i]) if self.p.regime else None,
                adx=float(rows.adx[i]),
                rvol=float(rows.rvol[i]),
                profile=pipeline.guard.call(
                    "volume_profile", pipeline.profile, time, fallback=None, time_ms=time
                ),
            ),
            timeframe=self.timeframe,
            thresholds=self.config.thresholds,
            regime=self.config.regime,
        )
        atr = float(rows.atr[i])
        enter = result.enter and np.isfinite(atr) and atr > 0
        signal, size = result.signal, result.size_factor
        if enter and self._ml is not None:
            signal, enter, size = self._ml.adjust(signal, enter, size)
        return signal, enter, size, result.stop_multiplier

    def _ml_alerts(self, time: int) -> None:
        """Resolve the predictions due by ``time``: a predictor that disables itself reports a
        pipeline event (Property 14), collected with the failed predictions' after the
        entries are assembled."""
        assert self._ml is not None
        self._ml.resolve(time)

    @staticmethod
    def _levels(rows: PipelineRows, i: int) -> Thresholds:
        """The adaptive thresholds' percentile, band and ATR at row ``i`` (the ADX and RVOL
        thresholds follow from them in :func:`assemble`)."""
        pct, mult, atr = rows.volatility_pct[i], rows.multiplier[i], rows.atr[i]
        return Thresholds(None, float(pct), float(mult), float(atr), math.nan, math.nan)

    def _enter(
        self, entries: dict[str, tuple[Signal, float, float]], ctx: DecisionContext
    ) -> list[OrderIntent]:
        portfolio = ctx.portfolio
        if not entries:
            return []
        held = [s for s, p in portfolio.positions.items() if p.qty != 0]
        share = Decimal(1) / Decimal(len(self._pipelines))
        fractions = self._guard.call(
            "portfolio", self._allocation, entries, held, ctx.time,
            fallback=dict.fromkeys(entries, share), time_ms=ctx.time,
        )  # fmt: skip
        intents = []
        for symbol, (signal, size, multiplier) in entries.items():
            instrument = portfolio.instruments[symbol]
            rows = self._rows[symbol]
            i = int(np.searchsorted(rows.close_time, ctx.time))
            close = to_decimal(float(rows.close[i]))
            atr = float(rows.atr[i])
            stop = to_decimal(multiplier * atr)
            risk_notional = portfolio.equity * to_decimal(self.p.risk * size) / stop * close
            leverage = portfolio.leverage_of(symbol)
            cap = portfolio.equity * fractions.get(symbol, Decimal(0)) * leverage
            margin = portfolio.margin_available(symbol)
            if margin is not None:
                cap = min(cap, margin * leverage)
            qty = floor_qty(min(risk_notional, cap), close, instrument)
            if qty <= 0:
                continue
            side = Side.BUY if signal.direction is Direction.LONG else Side.SELL
            plan = exit_rules.exit_plan(atr, multiplier, instrument)
            intents.append(OrderIntent(symbol, side, qty, exits=plan))
            self._armed[symbol] = (atr, str(qty))
        return intents

    def _allocation(
        self, entries: Mapping[str, tuple[Signal, float, float]], held: list[str], time: int
    ) -> dict[str, Decimal]:
        """Each entering symbol's fraction of equity (the portfolio manager's, or an equal
        share of the symbols traded when it is off)."""
        if not self.p.portfolio:
            share = Decimal(1) / Decimal(len(self._pipelines))
            return dict.fromkeys(entries, share)
        confidences = {s: entries[s][0].confidence for s in entries}
        confidences |= {s: 1.0 for s in held if s not in confidences}
        symbols = sorted(confidences)
        config = AllocationConfig()
        if len(symbols) > 1:
            series = [self._pipelines[s].hourly_returns(time, config.window) for s in symbols]
            correlation = correlation_of(series, symbols, time, min_overlap=config.min_overlap)
        else:
            correlation = CorrelationMatrix.unknown(symbols, time)
        result = allocate(confidences, correlation, config, held=held)
        return {s: Decimal(result.fractions.get(s, 0)) for s in entries}

    # -- robustness ------------------------------------------------------------------------
    def feature_status(self) -> dict[str, dict[str, FeatureStatus]]:
        """Each feature's state (on, off, failed) per symbol, and the portfolio manager's
        under ``"*"``."""
        out = {s: p.guard.status() for s, p in self._pipelines.items()}
        out["*"] = self._guard.status()
        return out

    def pipeline_view(self) -> list[PipelineView]:
        """Each symbol's pipeline at its last bar (:class:`PipelineView`)."""
        views = []
        shared = self._guard.status()
        for symbol, pipeline in sorted(self._pipelines.items()):
            rows = self._rows.get(symbol)
            if rows is None or not len(rows):
                continue
            i = len(rows) - 1
            regime = regime_of(rows.regime[i])
            factor = 1.3 if regime is Regime.VOLATILE and self.p.regime else 1.0
            pct = float(rows.volatility_pct[i])
            adx, rvol = thresholds_for(pct, self.config.thresholds, factor)
            status = pipeline.guard.status() | shared
            views.append(
                PipelineView(
                    symbol=symbol,
                    regime=None if regime is None or not self.p.regime else regime.value,
                    confidence=float(rows.confidence[i]),
                    volatility_pct=pct,
                    adx_threshold=adx,
                    rvol_threshold=rvol,
                    features={k: v.state.value for k, v in status.items()}
                    | {"ml": self._ml_state(symbol)},
                    failures={k: v.total_failures for k, v in status.items()},
                )
            )
        return views

    def _ml_state(self, symbol: str) -> str:
        """``on`` while a model acts on ``symbol``, ``off`` with ML off or no model yet,
        ``failed`` when its model failed to load or fit or fell below the minimum accuracy."""
        if self._ml is None:
            return "off"
        why = self._ml.status(symbol)
        if why is None:
            return "on"
        return "off" if why.startswith(("no ", "waiting")) else "failed"

    def _failures(self, time: int) -> list[Signal]:
        """A FLAT signal per symbol whose features failed since the last decision, each failure
        a reason (the feature goes on without; after 3 in a row it is disabled until restart)."""
        out = []
        guards = [(s, p.guard) for s, p in self._pipelines.items()] + [("*", self._guard)]
        for symbol, guard in guards:
            reasons = tuple(
                Reason(
                    "isolation",
                    f"{f.feature} failed ({f.error}); going on without it"
                    + ("; disabled until restart" if f.disabled else ""),
                    {"consecutive_failures": float(f.consecutive)},
                )
                for f in guard.drain_events()
            )
            for name in [symbol] if symbol != "*" else sorted(self._pipelines)[:1]:
                if reasons:
                    out.append(
                        Signal(name, self.timeframe, time, Direction.FLAT, 0.0, reasons, self.name)
                    )
        return out

    # -- exits -----------------------------------------------------------------------------
    def _exit_signals(
        self,
        reasons: Mapping[str, tuple[Reason, ...]],
        actions: exit_rules.ExitActions,
        ctx: DecisionContext,
    ) -> list[Signal]:
        """One signal per symbol the exit rules acted on, with their reasons (FLAT when they
        close it)."""
        closing = {o.symbol for o in actions.orders}
        out = []
        for symbol, why in reasons.items():
            held = ctx.portfolio.position(symbol).qty
            direction = (
                Direction.FLAT if symbol in closing
                else Direction.LONG if held > 0 else Direction.SHORT
            )  # fmt: skip
            out.append(Signal(symbol, self.timeframe, ctx.time, direction, 1.0, why, self.name))
        return out

    def _manage(self, symbol: str, ctx: DecisionContext, woken: set[str]) -> exit_rules.ExitActions:
        portfolio = ctx.portfolio
        position = portfolio.position(symbol)
        instrument = portfolio.instruments[symbol]
        rows = self._rows[symbol]
        i = int(np.searchsorted(rows.close_time, ctx.time))
        regime = rows.regime[i]
        previous, macd_before = (
            self._before[symbol] if i == 0 else (int(rows.regime[i - 1]), rows.macd_hist[i - 1])
        )
        if previous >= 0 and exit_rules.regime_exit(regime_of(previous), regime_of(regime)):
            self._exits.pop(symbol, None)
            closing = exit_rules.close_positions(
                regime_of(previous), regime_of(regime), {symbol: position}, portfolio.instruments
            )
            assert closing is not None
            return closing
        state = self._exits.get(symbol)
        done = exit_rules.ExitActions(state)
        if state is None:
            armed = self._armed.pop(symbol, None)
            if armed is None:
                return done
            working = portfolio.open_orders.get(symbol, ())
            qty = exit_rules.entry_fill(working, Decimal(armed[1]))
            done = exit_rules.start(position, armed[0], ctx.time, entry_qty=qty)
            state = done.state
            assert state is not None
        orders = portfolio.open_orders.get(symbol, ())
        bar = exit_rules.Bar(float(rows.close[i]), float(rows.macd_hist[i]), float(macd_before))
        managed = self._pipelines[symbol].guard.call(
            "exits", exit_rules.manage, state, position, orders, instrument, bar, ctx.time, woken,
            fallback=exit_rules.ExitActions(state), time_ms=ctx.time,
        )  # fmt: skip
        done = done.then(managed)
        if done.state is None:
            self._exits.pop(symbol, None)
        else:
            self._exits[symbol] = done.state
        return done

    # -- state -----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The exits' states and the entries waiting to be armed (JSON)."""
        return {
            "version": _VERSION,
            "exits": {s: e.to_json() for s, e in self._exits.items()},
            "armed": {s: list(a) for s, a in self._armed.items()},
            "ml": None if self._ml is None else self._ml.state(),
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
            raise ValueError(f"adaptive state version must be {_VERSION}, was {state!r}")
        self._exits = {
            s: exit_rules.ExitState.from_json(e) for s, e in state.get("exits", {}).items()
        }
        self._armed = {s: (float(a), str(q)) for s, (a, q) in state.get("armed", {}).items()}
        if self._ml is not None and state.get("ml"):
            self._ml.restore(state["ml"])


def _code(regime: Regime) -> int:
    return REGIMES.index(regime)
