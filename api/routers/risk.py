"""Risk control: trading states, breakers, limits and metrics; halt, resume, close everything."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from api.deps import NumbersDep, invalid
from api.errors import error_responses
from api.risk_schemas import (
    CloseAllIn,
    CloseAllOut,
    HaltIn,
    RiskLimitsIn,
    RiskLimitsOut,
    RiskOut,
    RiskStatusOut,
    close_all_out,
    limits_out,
    risk_out,
    status_out,
)
from domain.errors import ConfigError
from service_layer.risk_config import RiskConfig
from service_layer.risk_service import RiskControl

router = APIRouter(tags=["risk"])

WHO = "api"
"""Who a change made through the API is stored as: the bearer token names no person."""


async def get_risk(request: Request) -> RiskControl:
    """The risk use cases of this app's run."""
    return request.app.state.risk


RiskDep = Annotated[RiskControl, Depends(get_risk)]


@router.get("/risk", responses=error_responses(401, 409, 422))
def get_risk_report(risk: RiskDep, n: NumbersDep) -> RiskOut:
    """Trading state of the account and of each symbol, every circuit breaker with its status
    and reason, the limits in force, the risk metrics (1-day historical VaR/CVaR at 95 % and
    99 % of the equity curve and of the open positions, drawdown, exposure, leverage) and the
    latest risk events. 409 ``engine_state`` when the run has no risk gate."""
    return risk_out(risk.report(), n)


@router.put("/risk/limits", responses=error_responses(400, 401, 409, 422))
def put_risk_limits(body: RiskLimitsIn, risk: RiskDep) -> RiskLimitsOut:
    """Change the risk limits from now on: any part of the limits document (what is left out
    keeps its value). Stored with who (``api``) and when (market clock); 422 naming the field
    for a value out of range or limits that do not hold together."""
    try:
        change = risk.set_limits(body.changes(), WHO)
    except ConfigError as exc:
        name = exc.field or "body"
        raise invalid("body", name, exc.message, None) from None
    return limits_out(RiskConfig.from_json(change.limits), change)


@router.post("/risk/halt", responses=error_responses(400, 401, 409, 422))
def halt_trading(body: HaltIn, risk: RiskDep) -> RiskStatusOut:
    """Halt trading by hand: no order but cancels passes (strategy or API) until
    ``/risk/resume``. Stored with the reason and who, pushed, kept across a restart."""
    return status_out(risk.halt(body.reason, WHO))


@router.post("/risk/resume", responses=error_responses(401, 409, 422))
def resume_trading(risk: RiskDep) -> RiskStatusOut:
    """Lift the manual halt and the consecutive-losses halt (the daily loss limit lifts at
    00:00 UTC, a volatility hold when the ATR percentile falls back)."""
    return status_out(risk.resume(WHO))


@router.post("/positions/close-all", responses=error_responses(400, 401, 409, 422))
def close_all_positions(body: CloseAllIn, risk: RiskDep, n: NumbersDep) -> CloseAllOut:
    """Close every position with a reduce-only market order (working orders that could add
    exposure are canceled first); ``{"confirm": true}`` is required (422 naming ``confirm``
    otherwise). The orders go in every trading state, halted included."""
    return close_all_out(risk.close_all(WHO), n)
