"""Risk use cases over the run of a :class:`~service_layer.trading.TradingService`: the risk
report (trading states, breakers, limits, VaR/CVaR, drawdown, exposure), limit changes, halt and
resume by hand, and closing every position.

Every change runs on the engine's owner thread (the service's command queue) and is stored with
who made it and when (market clock) before it is published; a halt or a limits change also
stores the kernel's state at once, so a restart keeps it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from domain.errors import EngineStateError
from domain.model import EquityPoint, Order, OrderType, Side
from domain.orders import API_TAG
from domain.ports import LimitsChange, RiskRecord, UnitOfWork
from domain.risk import ACCOUNT, AlertKind, RiskAlert, RiskEvent, TradingState
from domain.risk_metrics import (
    CONFIDENCES,
    EquitySeries,
    Exposure,
    VarEstimate,
    daily_closes,
    daily_returns,
    equity_var,
    exposure,
    min_observations,
    position_pnl,
    position_var,
)
from service_layer.risk_config import RiskConfig
from service_layer.risk_gate import Drawdown, RiskGate, RiskStatus
from service_layer.runner import change_events, progress, store_changes

if TYPE_CHECKING:
    from service_layer.trading import TradingService

DAYS = 400
"""Daily equity closes read for the VaR of the equity curve (100 returns are needed at 99 %)."""


@dataclass(frozen=True, slots=True)
class RiskFigures:
    """The account's risk at ``time`` (ms UTC) with ``equity`` (quote currency): 1-day
    historical VaR/CVaR by confidence of the equity curve's daily returns and of the open
    positions revalued over past days (None while the history is too short), the drawdown the
    gate followed, the exposure and leverage in use; ``margin_ratio`` None until margin is
    known."""

    time: int
    equity: Decimal
    equity_var: dict[float, VarEstimate | None]
    position_var: dict[float, VarEstimate | None]
    drawdown: Drawdown
    exposure: Exposure | None
    margin_ratio: float | None


@dataclass(frozen=True, slots=True)
class RiskReport:
    """``GET /api/v1/risk``: the gate's ``status``, the ``figures``, the latest stored risk
    events (newest first) and the limits change in force (None: the settings')."""

    status: RiskStatus
    figures: RiskFigures
    history: list[RiskRecord]
    limits_change: LimitsChange | None


@dataclass(frozen=True, slots=True)
class RiskGauges:
    """What ``/metrics`` shows: each scope's state, the drawdown, the VaR by confidence."""

    states: dict[str, TradingState]
    drawdown: float
    var: dict[float, float | None]


class RiskControl:
    """The risk use cases of ``service``'s run (see the module docstring)."""

    def __init__(self, service: TradingService) -> None:
        self.service = service

    # -- reads -----------------------------------------------------------------------------
    def report(self) -> RiskReport:
        """The risk report now.

        Raises
        ------
        EngineStateError
            When the run has no risk gate.
        """
        with self.service.uow_factory() as uow:
            days = uow.risk.day_ends(DAYS)
            history = uow.risk.events(50)
            change = uow.risk.latest_limits()
        return self.service.commands.call(lambda: self._report(days, history, change))

    def _report(
        self, days: list[EquityPoint], history: list[RiskRecord], change: LimitsChange | None
    ) -> RiskReport:
        engine = self.service.engine
        gate = self._gate()
        now = engine.clock.now_ms()
        return RiskReport(gate.status(now, engine.symbols), self._figures(days), history, change)

    def gauges(self) -> RiskGauges:
        """The gauges' values now (the VaR from the stored daily equity).

        Raises
        ------
        EngineStateError
            When the run has no risk gate.
        """
        with self.service.uow_factory() as uow:
            days = uow.risk.day_ends(DAYS)

        def read() -> RiskGauges:
            engine = self.service.engine
            status = self._gate().status(engine.clock.now_ms(), engine.symbols)
            curve = _curve(days, engine.clock.now_ms(), engine.portfolio().equity)
            var = {
                c: (None if (v := _equity_var(curve, c)) is None else v.var) for c in CONFIDENCES
            }
            states = {ACCOUNT: status.account, **status.symbols}
            return RiskGauges(states, status.drawdown.current, var)

        return self.service.commands.call(read)

    def events(self, limit: int = 50) -> list[RiskRecord]:
        """The latest ``limit`` stored risk events (state changes and alerts), newest first."""
        with self.service.uow_factory() as uow:
            return uow.risk.events(limit)

    def latest_change(self) -> LimitsChange | None:
        """The last stored change of the limits (who, when, what), None before any."""
        with self.service.uow_factory() as uow:
            return uow.risk.latest_limits()

    def _figures(self, days: list[EquityPoint]) -> RiskFigures:
        engine = self.service.engine
        now = engine.clock.now_ms()
        portfolio = engine.portfolio()
        positions = list(portfolio.positions.values())
        marks = {s: m for s in portfolio.positions if (m := portfolio.marks.get(s)) is not None}
        curve = _curve(days, now, portfolio.equity)
        closes = {s: daily_closes(engine.history[s].candles) for s in portfolio.positions}
        equity = float(portfolio.equity)
        return RiskFigures(
            time=now,
            equity=portfolio.equity,
            equity_var={c: _equity_var(curve, c) for c in CONFIDENCES},
            position_var={
                c: _position_var(positions, marks, closes, equity, c) for c in CONFIDENCES
            },
            drawdown=self._gate().status(now, ()).drawdown,
            exposure=exposure(positions, marks, equity) if equity > 0 else None,
            margin_ratio=None,
        )

    # -- changes ---------------------------------------------------------------------------
    def set_limits(self, limits: Mapping[str, Any], who: str) -> LimitsChange:
        """Change the risk limits (the JSON form, :mod:`service_layer.risk_config`; what is
        left out keeps its value) from now on; stored with ``who`` and the market time.

        Raises
        ------
        ConfigError
            On a bad value (``field`` its dotted path, ``daily_loss.limit``).
        EngineStateError
            When the run has no risk gate.
        """

        def apply(gate: RiskGate, now: int) -> tuple[list[RiskEvent], LimitsChange]:
            config = RiskConfig.from_json(limits, base=gate.config)
            change = LimitsChange(now, who, config.to_json())
            return gate.configure(config, now), change

        return self._change(apply, who)

    def halt(self, reason: str, who: str) -> RiskStatus:
        """Halt trading by hand (nothing but cancels) until :meth:`resume`."""
        self._change(lambda gate, now: (gate.halt(now, reason, who), None), who)
        return self.status()

    def resume(self, who: str) -> RiskStatus:
        """Lift the manual halt and the consecutive-losses halt (the daily loss limit still
        lifts only at 00:00 UTC, a volatility hold only when the percentile falls back)."""
        self._change(lambda gate, now: (gate.resume(now), None), who)
        return self.status()

    def status(self) -> RiskStatus:
        """The gate's status now."""

        def read() -> RiskStatus:
            engine = self.service.engine
            return self._gate().status(engine.clock.now_ms(), engine.symbols)

        return self.service.commands.call(read)

    def close_all(self, who: str) -> list[Order]:
        """Cancel the working orders that could add exposure and close every position with a
        reduce-only market order (confirmed by hand: they go in every trading state, halted
        included); stored, then sent, as API orders. Returns the closing orders as the venue
        answered them."""
        return self.service.commands.call(lambda: self._close_all(who))

    def _close_all(self, who: str) -> list[Order]:
        service = self.service
        engine = service.engine
        now = engine.clock.now_ms()
        for order in engine.ledger.open_orders():
            if not order.reduce_only:
                engine.request_cancel(order.id)
        orders = [
            Order(
                id="api-" + uuid.uuid4().hex[:28],
                symbol=p.symbol,
                side=Side.SELL if p.qty > 0 else Side.BUY,
                type=OrderType.MARKET,
                qty=abs(p.qty),
                created_time=now,
                reduce_only=True,
                tag=API_TAG,
            )
            for p in sorted(engine.ledger.account.positions.values(), key=lambda p: p.symbol)
            if p.qty != 0
        ]
        engine.submit_now(orders)
        alert = RiskAlert(
            ACCOUNT, AlertKind.CLOSE_ALL, f"close all by hand ({who}): {len(orders)} position(s)",
            now, float(len(orders)),
        )  # fmt: skip
        self._commit(engine.flush(), [alert], who)
        self._commit(engine.send(orders), [], who)
        return [engine.ledger.get(o.id) or o for o in orders]

    def _change(
        self,
        apply: Callable[[RiskGate, int], tuple[list[RiskEvent], LimitsChange | None]],
        who: str,
    ) -> LimitsChange:
        def command() -> LimitsChange:
            service = self.service
            engine = service.engine
            gate = self._gate()
            now = engine.clock.now_ms()
            events, change = apply(gate, now)
            with service.uow_factory() as uow:
                for event in events:
                    uow.risk.add_event(event, who)
                if change is not None:
                    uow.risk.add_limits(change)
                _save_state(uow, service)
                uow.commit()
            service.bus.publish(events)
            return change or LimitsChange(now, who, gate.config.to_json())

        return self.service.commands.call(command)

    def _commit(self, changes: Any, events: Sequence[RiskEvent], who: str) -> None:
        service = self.service
        with service.uow_factory() as uow:
            store_changes(uow, changes)
            for event in events:
                uow.risk.add_event(event, who)
            uow.commit()
        service.bus.publish([*change_events(changes, service.engine.marks), *events])

    def _gate(self) -> RiskGate:
        gate = self.service.engine.risk
        if gate is None:
            raise EngineStateError("this run has no risk gate")
        return gate


def _save_state(uow: UnitOfWork, service: TradingService) -> None:
    """Store the kernel's state now (the gate's holds in it), with the run's committed
    progress: a restart then keeps a halt or a limit made between bars."""
    run = service.current_run()
    uow.runs.save_progress(progress(run, service.engine, 0))


def _curve(days: list[EquityPoint], now: int, equity: Decimal) -> EquitySeries | None:
    """The daily equity closes, ending with the equity now."""
    points = [p for p in days if p.time < now]
    series = [(p.time, float(p.equity)) for p in points] + [(now, float(equity))]
    if not all(math.isfinite(e) for _, e in series):
        return None
    return EquitySeries.from_points(
        [EquityPoint(t, Decimal(repr(e)), Decimal(0)) for t, e in series]
    )


def _equity_var(curve: EquitySeries | None, confidence: float) -> VarEstimate | None:
    if curve is None:
        return None
    try:
        if len(daily_returns(curve)) < min_observations(confidence):
            return None
        return equity_var(curve, confidence)
    except ValueError:  # a day ended at or below zero equity: no return from it
        return None


def _position_var(
    positions: list[Any],
    marks: Mapping[str, Decimal],
    closes: Mapping[str, Any],
    equity: float,
    confidence: float,
) -> VarEstimate | None:
    if equity <= 0:
        return None
    try:
        held = [p for p in positions if p.qty != 0]
        if held and len(position_pnl(held, marks, closes)) < min_observations(confidence):
            return None
        return position_var(positions, marks, closes, equity, confidence)
    except ValueError:
        return None
