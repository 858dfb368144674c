"""The alert rules: which bus events become alerts, and with what words.

Each rule reads the events the engine already publishes (after their commit):

* ``trade_executed``: every fill (:class:`~domain.events.OrderFilled`);
* ``pnl``: the run's PnL (equity / initial cash − 1, from
  :class:`~domain.events.EquityUpdated`) at or beyond ``+gain`` or ``-loss``;
* ``drawdown``: equity ``limit`` or more below its peak since the rules were built;
* ``risk``: trading halted or reduced (a breaker tripped, or a halt by hand) and the risk
  alerts (close everything, unusual volume);
* ``ml_disabled``: a symbol's ML predictor disabled itself (a pipeline event of kind ``ml``);
* ``venue``: a venue disconnected, a feed gone stale;
* ``health``: the engine stopped on an error.

The threshold rules alert once per crossing: again only after the value has come back inside.
Their peak and crossing state live in memory, so a restarted server starts them afresh (the
peak from the first equity it sees). Pure: no I/O, times from the events.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.alerts import Alert, AlertRule, Severity
from domain.events import EngineStopped, EquityUpdated, FeedStale, OrderFilled, VenueDisconnected
from domain.model import Fill
from domain.pipeline_events import ML, PipelineEvent
from domain.risk import AlertKind, RiskAlert, StateChange, TradingState

ERROR_PREFIX = "error: "
"""How the runner's stop reason starts when the engine stopped on an error."""


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """Each rule's toggle and thresholds (fractions: 0.05 = 5 %).

    Raises
    ------
    ValueError
        When a threshold is not > 0, or ``pnl_loss`` / ``drawdown_limit`` is not < 1.
    """

    trade_executed: bool = True
    pnl: bool = True
    pnl_gain: Decimal = Decimal("0.10")
    pnl_loss: Decimal = Decimal("0.05")
    drawdown: bool = True
    drawdown_limit: Decimal = Decimal("0.10")
    risk: bool = True
    ml_disabled: bool = True
    venue: bool = True
    health: bool = True

    def __post_init__(self) -> None:
        for name in ("pnl_gain", "pnl_loss", "drawdown_limit"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, was {getattr(self, name)}")
        for name in ("pnl_loss", "drawdown_limit"):
            if not getattr(self, name) < 1:
                raise ValueError(f"{name} must be < 1, was {getattr(self, name)}")


class AlertRules:
    """The rules of ``config`` over one run that started with ``initial_equity`` (quote
    currency, > 0). Not thread-safe: call :meth:`evaluate` from one thread (the bus's
    publisher, in event order)."""

    def __init__(self, config: RuleConfig, initial_equity: Decimal) -> None:
        if not initial_equity > 0:
            raise ValueError(f"initial_equity must be > 0, was {initial_equity}")
        self.config = config
        self.initial_equity = initial_equity
        self._peak: Decimal | None = None
        self._pnl_side = 0  # -1 beyond the loss, +1 beyond the gain, 0 inside
        self._in_drawdown = False

    def evaluate(self, event: object) -> list[Alert]:
        """The alerts ``event`` raises (none for most events)."""
        c = self.config
        match event:
            case OrderFilled(fill=fill) if c.trade_executed:
                return [_trade(fill)]
            case EquityUpdated(point=point):
                return self._equity(point.equity, point.time)
            case StateChange() if c.risk and event.to_state.severity > event.from_state.severity:
                return [_state_change(event)]
            case RiskAlert() if c.risk:
                return [_risk_alert(event)]
            case PipelineEvent(kind=kind) if c.ml_disabled and kind == ML:
                return [_ml_disabled(event)]
            case VenueDisconnected() if c.venue:
                return [_venue(event)]
            case FeedStale() if c.venue:
                return [_stale(event)]
            case EngineStopped(reason=reason, time=time) if c.health and reason.startswith(
                ERROR_PREFIX
            ):
                return [_engine_error(reason.removeprefix(ERROR_PREFIX), time)]
        return []

    def _equity(self, equity: Decimal, time: int) -> list[Alert]:
        alerts: list[Alert] = []
        c = self.config
        if c.pnl:
            pnl = equity / self.initial_equity - 1
            side = 1 if pnl >= c.pnl_gain else -1 if pnl <= -c.pnl_loss else 0
            if side and side != self._pnl_side:
                alerts.append(self._pnl_alert(pnl, equity, time))
            self._pnl_side = side
        if c.drawdown:
            peak = equity if self._peak is None else max(self._peak, equity)
            self._peak = peak
            drawdown = 1 - equity / peak
            if drawdown >= c.drawdown_limit and not self._in_drawdown:
                alerts.append(_drawdown(drawdown, equity, peak, c.drawdown_limit, time))
            self._in_drawdown = drawdown >= c.drawdown_limit
        return alerts

    def _pnl_alert(self, pnl: Decimal, equity: Decimal, time: int) -> Alert:
        c = self.config
        gain = pnl > 0
        limit = c.pnl_gain if gain else -c.pnl_loss
        word = "gain" if gain else "loss"
        return Alert(
            AlertRule.PNL,
            Severity.INFO if gain else Severity.WARNING,
            f"PnL {float(pnl):+.2%}: {word} threshold {float(limit):+.2%} reached",
            f"The run's PnL is {float(pnl):+.2%} (equity {equity} from {self.initial_equity}), "
            f"beyond the {word} threshold of {float(limit):+.2%}.",
            time,
            {"pnl": float(pnl), "threshold": float(limit), "equity": str(equity),
             "initial_equity": str(self.initial_equity)},
        )  # fmt: skip


def _trade(fill: Fill) -> Alert:
    side = str(fill.side).upper()
    return Alert(
        AlertRule.TRADE_EXECUTED,
        Severity.INFO,
        f"{side} {fill.qty} {fill.symbol} at {fill.price}",
        f"Trade executed: {side} {fill.qty} {fill.symbol} at {fill.price} (order "
        f"{fill.order_id}, fee {fill.fee}, realized PnL {fill.realized_pnl}).",
        fill.time,
        {"symbol": fill.symbol, "side": str(fill.side), "qty": str(fill.qty),
         "price": str(fill.price), "fee": str(fill.fee), "order_id": fill.order_id,
         "fill_id": fill.id, "realized_pnl": str(fill.realized_pnl)},
    )  # fmt: skip


def _drawdown(
    drawdown: Decimal, equity: Decimal, peak: Decimal, limit: Decimal, time: int
) -> Alert:
    return Alert(
        AlertRule.DRAWDOWN,
        Severity.WARNING,
        f"Drawdown {float(drawdown):.2%} (limit {float(limit):.2%})",
        f"Equity {equity} is {float(drawdown):.2%} below its peak {peak}, beyond the "
        f"{float(limit):.2%} limit.",
        time,
        {"drawdown": float(drawdown), "limit": float(limit), "equity": str(equity),
         "peak": str(peak)},
    )  # fmt: skip


def _state_change(change: StateChange) -> Alert:
    halted = change.to_state is TradingState.HALTED
    what = "halted" if halted else "reducing only"
    source = change.source or "manual"
    cause = "by hand" if source == "manual" else f"circuit breaker {source} tripped"
    return Alert(
        AlertRule.RISK,
        Severity.CRITICAL if halted else Severity.WARNING,
        f"Trading {what} on {change.scope} ({cause})",
        f"Trading on {change.scope} went from {change.from_state} to {change.to_state} "
        f"({cause}): {change.reason}",
        change.time,
        {"scope": change.scope, "from_state": str(change.from_state),
         "to_state": str(change.to_state), "source": source, "reason": change.reason},
    )  # fmt: skip


def _risk_alert(alert: RiskAlert) -> Alert:
    close_all = alert.kind is AlertKind.CLOSE_ALL
    title = (
        f"Closing every position ({alert.scope})"
        if close_all
        else f"Unusual volume on {alert.scope}"
    )
    return Alert(
        AlertRule.RISK,
        Severity.CRITICAL if close_all else Severity.WARNING,
        title,
        alert.message,
        alert.time,
        {"scope": alert.scope, "kind": str(alert.kind), "value": alert.value},
    )


def _ml_disabled(event: PipelineEvent) -> Alert:
    return Alert(
        AlertRule.ML_DISABLED,
        Severity.WARNING,
        f"ML predictor disabled on {event.symbol}",
        event.message,
        event.time,
        {"symbol": event.symbol, **dict(event.values)},
    )


def _venue(event: VenueDisconnected) -> Alert:
    return Alert(
        AlertRule.VENUE,
        Severity.CRITICAL,
        f"Venue {event.venue} disconnected",
        f"The connection to {event.venue} was lost: {event.reason}",
        event.time,
        {"venue": event.venue, "reason": event.reason},
    )


def _stale(event: FeedStale) -> Alert:
    return Alert(
        AlertRule.VENUE,
        Severity.CRITICAL,
        f"Feed of {event.symbol} stale",
        f"No bar of {event.symbol} for {event.silent_ms / 1000:.0f} s (last bar opened at "
        f"{event.last_bar_time} ms UTC).",
        event.time,
        {"symbol": event.symbol, "silent_ms": event.silent_ms,
         "last_bar_time": event.last_bar_time},
    )  # fmt: skip


def _engine_error(error: str, time: int) -> Alert:
    return Alert(
        AlertRule.HEALTH,
        Severity.CRITICAL,
        "Engine stopped on an error",
        f"The engine stopped on an error: {error}. Start it again to resume at the failed bar.",
        time,
        {"error": error},
    )
