"""Bodies of the risk endpoints (``/api/v1/risk``, ``/api/v1/positions/close-all``) and their
WebSocket messages, and the conversion from the risk use cases' results.

Fractions are fractions (``0.05`` = 5 %), percentiles are percent, money is a decimal string in
the account's currency, times are int ms UTC. The limits document has the shape of
:mod:`service_layer.risk_config`'s JSON form: ``GET`` gives it whole, ``PUT`` takes any part
of it (what is left out keeps its value).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.numbers import Numbers
from api.schemas import DecimalString, OrderOut, order_out
from domain.model import Order
from domain.ports import LimitsChange, RiskRecord
from domain.risk import Breaker, Hold, RiskAlert, RiskEvent, StateChange
from domain.risk_metrics import VarEstimate
from service_layer.risk_config import RiskConfig
from service_layer.risk_gate import RiskStatus
from service_layer.risk_service import RiskFigures, RiskReport

State = Literal["active", "reducing", "halted"]
HoldState = Literal["reducing", "halted"]
Fraction = Annotated[Decimal, Field(gt=0, lt=1, max_digits=38, decimal_places=18)]
Positive = Annotated[Decimal, Field(gt=0, max_digits=38, decimal_places=18)]
Percent = Annotated[float, Field(ge=0, le=100)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- limits -------------------------------------------------------------------------------------


class SizingOut(BaseModel):
    """Entries resized to lose ``risk_fraction`` of equity at their stop, then capped by
    ``max_notional`` per symbol (money), ``max_leverage`` (gross notional / equity), the
    available margin and ``heat_fraction`` (open risk / equity); ``drawdown_steps``
    ``[[threshold, multiplier], ...]`` scale them down in a drawdown."""

    enabled: bool
    risk_fraction: DecimalString
    max_notional: DecimalString | None
    max_leverage: DecimalString | None
    heat_fraction: DecimalString | None
    drawdown_steps: list[tuple[DecimalString, DecimalString]]


class DailyLossOut(BaseModel):
    """``state`` until 00:00 UTC once equity is ``limit`` below the day's start; ``close_all``
    closes every position too."""

    enabled: bool
    limit: DecimalString
    close_all: bool
    state: HoldState


class ConsecutiveLossesOut(BaseModel):
    """``state`` after ``count`` losing trades in a row, until resumed (or ``cooldown_ms``)."""

    enabled: bool
    count: int
    cooldown_ms: int | None
    state: HoldState


class VolatilitySpikeOut(BaseModel):
    """``state`` on a symbol while its ATR percentile (ATR(``atr_period``) of ``timeframe``
    bars ranked in the last ``window``) is above ``percentile_pct``, until below
    ``release_pct``."""

    enabled: bool
    percentile_pct: float
    release_pct: float
    state: HoldState
    timeframe: str
    atr_period: int
    window: int


class UnusualVolumeOut(BaseModel):
    """An alert when a bar's volume is ``rvol`` × the mean of the ``period`` bars before."""

    enabled: bool
    rvol: float
    period: int


class MaxOpenPositionsOut(BaseModel):
    """Entries that would open more than ``limit`` positions are refused."""

    enabled: bool
    limit: int


class MaxLeverageOut(BaseModel):
    """Entries that would take gross notional over ``limit`` × equity are refused."""

    enabled: bool
    limit: DecimalString


class RiskLimitsOut(BaseModel):
    """The limits in force; ``changed_by`` and ``changed_time`` (ms UTC, market clock) name
    the last change through the API (null: the settings' limits)."""

    sizing: SizingOut
    daily_loss: DailyLossOut
    consecutive_losses: ConsecutiveLossesOut
    volatility_spike: VolatilitySpikeOut
    unusual_volume: UnusualVolumeOut
    max_open_positions: MaxOpenPositionsOut
    max_leverage: MaxLeverageOut
    changed_by: str | None = None
    changed_time: int | None = None


class SizingIn(_In):
    """Part of :class:`SizingOut` (a field left out keeps its value; null removes a cap)."""

    enabled: bool | None = None
    risk_fraction: Annotated[Decimal, Field(gt=0, le=1)] | None = None
    max_notional: Positive | None = None
    max_leverage: Positive | None = None
    heat_fraction: Annotated[Decimal, Field(gt=0, le=1)] | None = None
    drawdown_steps: list[tuple[Fraction, Annotated[Decimal, Field(ge=0, le=1)]]] | None = None


class DailyLossIn(_In):
    """Part of :class:`DailyLossOut`."""

    enabled: bool | None = None
    limit: Fraction | None = None
    close_all: bool | None = None
    state: HoldState | None = None


class ConsecutiveLossesIn(_In):
    """Part of :class:`ConsecutiveLossesOut` (``cooldown_ms`` null: only by hand)."""

    enabled: bool | None = None
    count: Annotated[int, Field(ge=1, le=1000)] | None = None
    cooldown_ms: Annotated[int, Field(gt=0)] | None = None
    state: HoldState | None = None


class VolatilitySpikeIn(_In):
    """Part of :class:`VolatilitySpikeOut`."""

    enabled: bool | None = None
    percentile_pct: Percent | None = None
    release_pct: Percent | None = None
    state: HoldState | None = None
    timeframe: Annotated[str, Field(pattern=r"^[0-9]+[mhdw]$")] | None = None
    atr_period: Annotated[int, Field(ge=1, le=1000)] | None = None
    window: Annotated[int, Field(ge=1, le=100_000)] | None = None


class UnusualVolumeIn(_In):
    """Part of :class:`UnusualVolumeOut`."""

    enabled: bool | None = None
    rvol: Annotated[float, Field(gt=0)] | None = None
    period: Annotated[int, Field(ge=1, le=10_000)] | None = None


class MaxOpenPositionsIn(_In):
    """Part of :class:`MaxOpenPositionsOut`."""

    enabled: bool | None = None
    limit: Annotated[int, Field(ge=1, le=10_000)] | None = None


class MaxLeverageIn(_In):
    """Part of :class:`MaxLeverageOut`."""

    enabled: bool | None = None
    limit: Positive | None = None


class RiskLimitsIn(_In):
    """``PUT /api/v1/risk/limits``: any part of the limits document; what is left out keeps its
    value. ``{"daily_loss": {"enabled": true, "limit": "0.03"}}``."""

    sizing: SizingIn | None = None
    daily_loss: DailyLossIn | None = None
    consecutive_losses: ConsecutiveLossesIn | None = None
    volatility_spike: VolatilitySpikeIn | None = None
    unusual_volume: UnusualVolumeIn | None = None
    max_open_positions: MaxOpenPositionsIn | None = None
    max_leverage: MaxLeverageIn | None = None

    def changes(self) -> dict[str, Any]:
        """The parts given, in the JSON form (decimals as strings, nulls kept)."""
        return self.model_dump(mode="json", exclude_unset=True)


def limits_out(config: RiskConfig, change: LimitsChange | None) -> RiskLimitsOut:
    """The limits in force (and their last change) as a response body."""
    body = config.to_json()
    return RiskLimitsOut.model_validate(
        {
            **body,
            "changed_by": None if change is None else change.who,
            "changed_time": None if change is None else change.time,
        }
    )


# -- state --------------------------------------------------------------------------------------


class HoldOut(BaseModel):
    """A breaker (or a person: ``manual``) holding ``scope`` (``account`` or a symbol) in
    ``state`` since ``since``, until ``until`` (null: until a condition or a person lifts it),
    for ``reason``."""

    scope: str
    breaker: Breaker
    state: HoldState
    reason: str
    since: int
    until: int | None


class BreakerOut(BaseModel):
    """One breaker: ``enabled``, ``tripped`` (holding some scope now, or alerting on some
    symbol), on which ``scopes``, and the first hold's ``reason``, ``since`` and ``until``."""

    breaker: Breaker
    enabled: bool
    tripped: bool
    scopes: list[str]
    reason: str | None
    since: int | None
    until: int | None


class ScopeStateOut(BaseModel):
    """The trading state of one scope: ``account`` or a symbol."""

    scope: str
    state: State


class RiskStatusOut(BaseModel):
    """Trading states now: the account's, each symbol's own (an order on a symbol faces the
    more restrictive of the two), and the holds behind them."""

    time: int
    account_state: State
    symbol_states: list[ScopeStateOut]
    holds: list[HoldOut]
    consecutive_losses: int


def _hold(h: Hold) -> HoldOut:
    return HoldOut(
        scope=h.scope, breaker=h.source, state=h.state.value,  # type: ignore[arg-type]
        reason=h.reason, since=h.since, until=h.until,
    )  # fmt: skip


def status_out(s: RiskStatus) -> RiskStatusOut:
    """The gate's status as a response body."""
    return RiskStatusOut(
        time=s.time,
        account_state=s.account.value,
        symbol_states=[ScopeStateOut(scope=k, state=v.value) for k, v in s.symbols.items()],
        holds=[_hold(h) for h in s.holds],
        consecutive_losses=s.consecutive_losses,
    )


def breakers_out(s: RiskStatus) -> list[BreakerOut]:
    """Every breaker with its status now."""
    config = s.config.breakers
    out = []
    for breaker in Breaker:
        holds = [h for h in s.holds if h.source is breaker]
        scopes = [h.scope for h in holds]
        if breaker is Breaker.UNUSUAL_VOLUME:
            scopes = list(s.loud)
        first = holds[0] if holds else None
        out.append(
            BreakerOut(
                breaker=breaker,
                enabled=config.enabled(breaker),
                tripped=bool(scopes),
                scopes=scopes,
                reason=None if first is None else first.reason,
                since=None if first is None else first.since,
                until=None if first is None else first.until,
            )
        )
    return out


# -- metrics ------------------------------------------------------------------------------------


class VarOut(BaseModel):
    """1-day historical VaR and CVaR at ``confidence`` (0.95, 0.99) as losses: fractions of
    equity and ``*_quote`` money; null while fewer daily observations than it needs (20 at 95
    %, 100 at 99 %) exist; ``observations`` the days used."""

    confidence: float
    var: float | None
    cvar: float | None
    var_quote: DecimalString | None
    cvar_quote: DecimalString | None
    observations: int


class DrawdownOut(BaseModel):
    """Fall of equity below its running peak (fractions), as the gate followed it at every bar
    close: ``current``, ``max``; ``peak_equity`` (money) last held at ``peak_time``."""

    current: float
    max: float
    peak_equity: DecimalString
    peak_time: int


class RiskMetricsOut(BaseModel):
    """The account's risk at ``time`` with ``equity`` (money): VaR/CVaR of the equity curve's
    daily returns and of the open positions, drawdown, ``gross_exposure`` and
    ``net_exposure`` (money), ``leverage`` in use (gross / equity) and ``margin_ratio`` (null
    until margin is known)."""

    time: int
    equity: DecimalString
    equity_var: list[VarOut]
    position_var: list[VarOut]
    drawdown: DrawdownOut
    gross_exposure: DecimalString | None
    net_exposure: DecimalString | None
    leverage: float | None
    margin_ratio: float | None


def _money(n: Numbers, x: float) -> str:
    return n.money(Decimal(repr(x)))


def _var(c: float, v: VarEstimate | None, n: Numbers) -> VarOut:
    if v is None:
        return VarOut(
            confidence=c, var=None, cvar=None, var_quote=None, cvar_quote=None, observations=0
        )
    return VarOut(
        confidence=c, var=v.var, cvar=v.cvar, var_quote=_money(n, v.var_quote),
        cvar_quote=_money(n, v.cvar_quote), observations=v.observations,
    )  # fmt: skip


def metrics_out(f: RiskFigures, n: Numbers) -> RiskMetricsOut:
    """The risk figures as a response body."""
    e = f.exposure
    return RiskMetricsOut(
        time=f.time,
        equity=n.money(f.equity),
        equity_var=[_var(c, v, n) for c, v in f.equity_var.items()],
        position_var=[_var(c, v, n) for c, v in f.position_var.items()],
        drawdown=DrawdownOut(
            current=f.drawdown.current,
            max=f.drawdown.max,
            peak_equity=_money(n, f.drawdown.peak),
            peak_time=f.drawdown.peak_time,
        ),
        gross_exposure=None if e is None else _money(n, e.gross),
        net_exposure=None if e is None else _money(n, e.net),
        leverage=None if e is None else e.leverage,
        margin_ratio=f.margin_ratio,
    )


# -- events -------------------------------------------------------------------------------------


class RiskEventOut(BaseModel):
    """A stored (and pushed) risk event: a trading-state change (``kind`` ``state``: from
    ``from_state`` to ``to_state``) or an alert (``kind`` ``unusual_volume`` or ``close_all``,
    with its ``value``: the RVOL, the day's loss or the positions closed), with its
    ``reason``, its ``source`` (a breaker or ``manual``) and ``who`` made it by hand."""

    time: int
    scope: str
    kind: Literal["state", "unusual_volume", "close_all"]
    from_state: State | None
    to_state: State | None
    reason: str
    source: str
    value: float | None
    who: str | None


def event_out(event: RiskEvent, who: str | None = None) -> RiskEventOut:
    """A risk event as its body (REST and WebSocket ``risk`` messages)."""
    if isinstance(event, StateChange):
        return RiskEventOut(
            time=event.time, scope=event.scope, kind="state",
            from_state=event.from_state.value, to_state=event.to_state.value,  # type: ignore[arg-type]
            reason=event.reason, source=event.source, value=None, who=who,
        )  # fmt: skip
    assert isinstance(event, RiskAlert)
    value = event.value if event.value == event.value else None  # NaN: none
    return RiskEventOut(
        time=event.time, scope=event.scope, kind=event.kind.value,  # type: ignore[arg-type]
        from_state=None, to_state=None, reason=event.message, source=event.kind.value,
        value=value, who=who,
    )  # fmt: skip


def record_out(r: RiskRecord) -> RiskEventOut:
    """A stored risk event as its body."""
    return event_out(r.event, r.who)


# -- the endpoints' bodies ----------------------------------------------------------------------


class RiskOut(BaseModel):
    """``GET /api/v1/risk``: trading states, breakers with their status and reasons, limits,
    metrics and the latest risk events (newest first)."""

    status: RiskStatusOut
    breakers: list[BreakerOut]
    limits: RiskLimitsOut
    metrics: RiskMetricsOut
    events: list[RiskEventOut]


def risk_out(r: RiskReport, n: Numbers) -> RiskOut:
    """The risk report as its response body."""
    return RiskOut(
        status=status_out(r.status),
        breakers=breakers_out(r.status),
        limits=limits_out(r.status.config, r.limits_change),
        metrics=metrics_out(r.figures, n),
        events=[record_out(x) for x in r.history],
    )


class HaltIn(_In):
    """``POST /api/v1/risk/halt``: why (stored and shown with the halt)."""

    reason: str = Field(min_length=1, max_length=500, examples=["news at 14:30"])


class CloseAllIn(_In):
    """``POST /api/v1/positions/close-all``: ``confirm`` must be true."""

    confirm: bool = Field(description="Must be true: every position is closed at market.")

    @field_validator("confirm")
    @classmethod
    def _confirmed(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError("confirm must be true to close every position")
        return value


class CloseAllOut(BaseModel):
    """The reduce-only market orders that close every position, as the venue answered them."""

    orders: list[OrderOut]


def close_all_out(orders: list[Order], n: Numbers) -> CloseAllOut:
    """The closing orders as the response body."""
    return CloseAllOut(orders=[order_out(o, n) for o in orders])
