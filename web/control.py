"""The control centre's routes: halt, resume, close all, stop rules and leverage.

Each action runs the use case that the API's route runs for a bot (``POST /api/v1/risk/halt``,
``/risk/resume``, ``/positions/close-all``, ``PUT /api/v1/risk/limits``,
``/positions/{symbol}/leverage``), on the same :class:`~service_layer.risk_service.RiskControl`
and :class:`~service_layer.trading.TradingService`, with its input checked by the same body
model; the panel adds only HTML. A refusal comes back as the form again with the message next
to the field it names (the API's 422 ``field``). Changes are stored as made by ``panel``.

The forms live outside the panels that the SSE stream re-renders, so live updates never wipe
what is being typed; an action's answer swaps the panels it changed out of band.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse

from api.deps import ServiceDep, require_session
from api.risk_schemas import CloseAllIn, HaltIn
from api.routers.risk import RiskDep
from api.schemas import LeverageIn
from domain.errors import ConfigError, DomainError, EngineStateError
from domain.risk import TradingState
from domain.symbols import venue_symbol
from service_layer.risk_gate import RiskStatus
from service_layer.trading import TradingService
from web.forms import FORM_ERROR, changed_paths, posted_values, read_limits, validated
from web.views import (
    NO_STORE,
    leverage_context,
    limits_context,
    oob,
    positions_context,
    render,
    render_panel,
    risk_context,
)

WHO = "panel"
"""Who a change made in the control centre is stored as (the API stores ``api``)."""

control = APIRouter(prefix="/ui", dependencies=[Depends(require_session)])


def _html(*parts: str) -> HTMLResponse:
    return HTMLResponse("".join(parts), headers=NO_STORE)


def _panel_oob(name: str, service: TradingService) -> str:
    return oob(name, render_panel(name, service))


def _risk_oob(service: TradingService, status: RiskStatus | None = None) -> str:
    return oob("risk", render("partials/risk.html", risk_context(service, status)))


# -- live panels --------------------------------------------------------------------------------


@control.get("/risk", response_class=HTMLResponse)
def risk_partial(service: ServiceDep) -> HTMLResponse:
    """Trading state of the account and of each symbol, the holds and their reasons, every
    circuit breaker with its status."""
    return _html(render_panel("risk", service))


@control.get("/balance", response_class=HTMLResponse)
def balance_partial(service: ServiceDep) -> HTMLResponse:
    """Wallet, unrealized PnL, margin in use, maintenance margin, available, fees and funding
    paid, margin ratio."""
    return _html(render_panel("balance", service))


@control.get("/alerts", response_class=HTMLResponse)
def alerts_partial(service: ServiceDep) -> HTMLResponse:
    """The latest risk events: state changes and alerts, with their reason and who made them."""
    return _html(render_panel("alerts", service))


@control.get("/alert_log", response_class=HTMLResponse)
def alert_log_partial(service: ServiceDep) -> HTMLResponse:
    """The latest alerts (trades, thresholds, risk, ML, venue, health) and their delivery."""
    return _html(render_panel("alert_log", service))


@control.get("/venues", response_class=HTMLResponse)
def venues_partial(service: ServiceDep) -> HTMLResponse:
    """The live venues: connection, request budget, clock offset, reconnects, stale feeds."""
    return _html(render_panel("venues", service))


# -- halt and resume ----------------------------------------------------------------------------


def _halt_form(**context: Any) -> str:
    return render("partials/halt_form.html", {"reason": "", "errors": {}, **context})


@control.post("/risk/halt", response_class=HTMLResponse)
def halt(service: ServiceDep, risk: RiskDep, reason: Annotated[str, Form()] = "") -> HTMLResponse:
    """Halt trading (``POST /api/v1/risk/halt``): the halt form again, with the trading state
    and the alert log out of band; a missing reason is shown next to its field."""
    body, errors = validated(HaltIn, {"reason": reason.strip()})
    if body is None:
        return _html(_halt_form(reason=reason, errors=errors))
    try:
        status = risk.halt(body.reason, WHO)
    except EngineStateError as exc:
        return _html(_halt_form(reason=reason, errors={FORM_ERROR: exc.message}))
    done = f"Trading halted: {body.reason}"
    return _html(_halt_form(done=done), _risk_oob(service, status), _panel_oob("alerts", service))


@control.post("/risk/resume", response_class=HTMLResponse)
def resume(service: ServiceDep, risk: RiskDep) -> HTMLResponse:
    """Lift the manual halt and a losing-streak halt (``POST /api/v1/risk/resume``); the halt
    form says what still holds the account, if anything."""
    try:
        status = risk.resume(WHO)
    except EngineStateError as exc:
        return _html(_halt_form(errors={FORM_ERROR: exc.message}))
    if status.account is TradingState.ACTIVE:
        done = "Trading resumed: the account is active."
    else:
        held = "; ".join(h.reason for h in status.holds if h.scope == "account")
        done = f"The account is still {status.account}: {held}"
    return _html(_halt_form(done=done), _risk_oob(service, status), _panel_oob("alerts", service))


# -- close all ----------------------------------------------------------------------------------


def _close_all(step: str, **context: Any) -> str:
    return render("partials/close_all.html", {"step": step, "errors": {}, **context})


@control.get("/close-all", response_class=HTMLResponse)
def close_all_start() -> HTMLResponse:
    """The "Close all positions…" button (also what Cancel goes back to)."""
    return _html(_close_all("start"))


@control.get("/close-all/confirm", response_class=HTMLResponse)
def close_all_confirm(service: ServiceDep) -> HTMLResponse:
    """The confirm step: the open positions that would be closed, and the button that does
    it."""
    return _html(_close_all("confirm", **positions_context(service)))


@control.post("/close-all", response_class=HTMLResponse)
def close_all(
    service: ServiceDep, risk: RiskDep, confirm: Annotated[str | None, Form()] = None
) -> HTMLResponse:
    """Close every position (``POST /api/v1/positions/close-all``) when ``confirm`` is true;
    else the confirm step again with the reason. The closing orders as sent, with the
    positions and the alert log out of band."""
    body, errors = validated(CloseAllIn, {"confirm": False if confirm is None else confirm})
    if body is None:
        return _html(_close_all("confirm", errors=errors, **positions_context(service)))
    try:
        orders = risk.close_all(WHO)
    except DomainError as exc:
        errors = {FORM_ERROR: exc.message}
        return _html(_close_all("confirm", errors=errors, **positions_context(service)))
    return _html(
        _close_all("done", orders=orders),
        _panel_oob("positions", service),
        _panel_oob("alerts", service),
    )


# -- stop rules ---------------------------------------------------------------------------------


def _limits(service: TradingService, **context: Any) -> str:
    return render("partials/limits.html", limits_context(service, **context))


@control.get("/limits", response_class=HTMLResponse)
def limits_form(service: ServiceDep) -> HTMLResponse:
    """The stop-rules form with the limits in force."""
    return _html(_limits(service))


async def _posted_form(request: Request) -> dict[str, str]:
    """The posted form's text fields."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


@control.post("/limits", response_class=HTMLResponse)
def save_limits(
    form: Annotated[dict[str, str], Depends(_posted_form)], service: ServiceDep, risk: RiskDep
) -> HTMLResponse:
    """Change the stop rules (``PUT /api/v1/risk/limits`` with the fields that differ from the
    limits in force): the form again, with the changed fields named, or what was typed and
    each error next to its field; the trading state out of band (breakers on or off)."""
    try:
        current = risk.status().config.to_json()
    except EngineStateError:
        return _html(_limits(service))  # says the run has no risk gate
    read = read_limits(form, current)
    if read.errors:
        return _html(_limits(service, values=posted_values(form), errors=read.errors))
    if not read.changes:
        return _html(_limits(service, saved=[]))
    try:
        risk.set_limits(read.changes, WHO)
    except ConfigError as exc:
        errors = {exc.field or FORM_ERROR: exc.message}
        return _html(_limits(service, values=posted_values(form), errors=errors))
    return _html(_limits(service, saved=changed_paths(read.changes)), _risk_oob(service))


# -- leverage -----------------------------------------------------------------------------------


def _leverage(service: TradingService, **context: Any) -> str:
    return render("partials/leverage.html", leverage_context(service, **context))


@control.get("/leverage", response_class=HTMLResponse)
def leverage_form(service: ServiceDep) -> HTMLResponse:
    """Each traded symbol's leverage, each with its own form."""
    return _html(_leverage(service))


@control.post("/leverage/{symbol}", response_class=HTMLResponse)
def set_leverage(
    symbol: str, service: ServiceDep, leverage: Annotated[str, Form()] = ""
) -> HTMLResponse:
    """Set ``symbol``'s leverage (``PUT /api/v1/positions/{symbol}/leverage``): the leverage
    forms again, with the refusal next to that symbol's field or the new leverage, and the
    positions and the balance out of band (margin and liquidation price move with it)."""
    body, errors = validated(LeverageIn, {"leverage": leverage.strip()})
    if body is not None:
        try:
            venue = venue_symbol(symbol)
            done = service.set_leverage(venue, body.leverage)
        except DomainError as exc:
            errors = {"leverage": exc.message}
        except ValueError as exc:  # a malformed symbol
            errors = {"leverage": str(exc)}
        else:
            saved = {venue: f"{venue} now at {done}×"}
            return _html(
                _leverage(service, saved=saved),
                _panel_oob("positions", service),
                _panel_oob("balance", service),
            )
    typed = {symbol: leverage}
    message = next(iter(errors.values()))
    return _html(_leverage(service, typed=typed, errors={symbol: message}))
