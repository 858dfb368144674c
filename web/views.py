"""The panel's views: what each partial shows, read from the same service the API uses.

A *panel* is a partial template plus the function that reads its context from the
:class:`~service_layer.trading.TradingService`. The HTMX routes and the SSE stream render panels
through :func:`render_panel`, so a panel looks the same however it is refreshed.

The control centre's panels read the risk gate through
:class:`~service_layer.risk_service.RiskControl`, the use cases behind ``/api/v1/risk`` (it
holds nothing but the service, so one built here reads what the API's reads), and shape
breakers and risk events with the API's converters: the panel and ``GET /api/v1/risk`` say the
same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates

from api.alert_schemas import alert_out
from api.risk_schemas import breakers_out, record_out
from api.routers.venues import venue_out
from domain.errors import EngineStateError, InvalidOrder
from service_layer.alerts import alert_log
from service_layer.risk_gate import RiskStatus
from service_layer.risk_service import RiskControl
from service_layer.trading import TradingService
from web.formatting import register_filters
from web.forms import SECTIONS, form_values

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"

NO_STORE = {"Cache-Control": "no-store"}
"""Headers of every page and partial: they show live state, never cached."""

ORDERS_SHOWN = 20
TRADES_SHOWN = 20
SIGNALS_SHOWN = 10
ALERTS_SHOWN = 30
EQUITY_POINTS = 5_000

templates = Jinja2Templates(directory=TEMPLATES_DIR)
register_filters(templates.env)


def status_context(
    service: TradingService, *, action: str | None = None, error: str | None = None
) -> dict[str, Any]:
    """Engine status and the run's return since its start (a fraction).

    After a start or stop from the panel, ``action`` says what was done, or ``error`` why it
    was refused; the template then also sends it out of band to the page's message area.
    """
    status = service.status()
    initial = service.run.initial_cash
    ret = status.equity / initial - 1 if initial > 0 else None
    return {
        "status": status,
        "initial_cash": initial,
        "total_return": ret,
        "action": action,
        "error": error,
    }


def positions_context(service: TradingService) -> dict[str, Any]:
    """Open positions with mark and unrealized PnL, and their total."""
    views = service.positions()
    total = sum((v.unrealized_pnl for v in views), Decimal(0))
    return {"positions": views, "total_upnl": total}


def orders_context(service: TradingService) -> dict[str, Any]:
    """The most recent orders, newest first."""
    return {"orders": service.orders(limit=ORDERS_SHOWN).items}


def trades_context(service: TradingService) -> dict[str, Any]:
    """The most recent closed trades, newest first."""
    return {"trades": service.trades(limit=TRADES_SHOWN).items}


def signals_context(service: TradingService) -> dict[str, Any]:
    """The most recent signals with their reasons, newest first."""
    return {"signals": service.signals(limit=SIGNALS_SHOWN).items}


def risk_context(service: TradingService, status: RiskStatus | None = None) -> dict[str, Any]:
    """Trading states (the account's and each symbol's), the holds behind them with their
    reasons, every breaker (on, tripped, where, why) and the losing streak, as ``GET
    /api/v1/risk`` reports them; ``unavailable`` says why not when the run has no risk gate."""
    if status is None:
        try:
            status = RiskControl(service).status()
        except EngineStateError as exc:
            return {"unavailable": exc.message}
    return {"risk": status, "breakers": breakers_out(status)}


def balance_context(service: TradingService) -> dict[str, Any]:
    """The futures balance breakdown (None when the account is not margined as futures)."""
    try:
        return {"balance": service.balance()}
    except InvalidOrder:
        return {"balance": None}


def alerts_context(service: TradingService) -> dict[str, Any]:
    """The latest stored risk events (state changes and alerts), newest first, in the shape
    of ``GET /api/v1/risk``'s ``events``."""
    records = RiskControl(service).events(ALERTS_SHOWN)
    return {"events": [record_out(r) for r in records]}


def alert_log_context(service: TradingService) -> dict[str, Any]:
    """The latest stored alerts (every rule), newest first, with the channels that took or
    refused each, in the shape of ``GET /api/v1/alerts``."""
    page = alert_log(service.uow_factory, limit=ALERTS_SHOWN)
    return {"alerts": [alert_out(r) for r in page.items]}


def venues_context(service: TradingService) -> dict[str, Any]:
    """The live venues the run is connected to, in the shape of ``GET /api/v1/venues`` (none
    for a replay of stored bars)."""
    return {"venues": [venue_out(v) for v in service.venues()]}


def limits_context(
    service: TradingService,
    *,
    values: Mapping[str, str | bool] | None = None,
    errors: Mapping[str, str] | None = None,
    saved: list[str] | None = None,
) -> dict[str, Any]:
    """The stop-rules form: ``values`` by dotted field (the limits in force unless given: what
    was posted), ``errors`` by field, ``saved`` the fields a save changed, and the last change
    through the API or the panel (who, when)."""
    control = RiskControl(service)
    try:
        config = control.status().config
    except EngineStateError as exc:
        return {"unavailable": exc.message}
    change = control.latest_change()
    return {
        "sections": SECTIONS,
        "values": values if values is not None else form_values(config.to_json()),
        "errors": errors or {},
        "saved": saved,
        "change": change,
    }


def leverage_context(
    service: TradingService,
    *,
    typed: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    saved: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Each traded symbol's leverage (None when the account is not margined as futures), what
    was ``typed`` for a symbol whose change was refused, and ``errors`` or ``saved`` messages
    by symbol."""
    return {
        "leverage": service.leverages(),
        "typed": typed or {},
        "errors": errors or {},
        "saved": saved or {},
    }


@dataclass(frozen=True, slots=True)
class Panel:
    """A partial template and the function that reads its context."""

    template: str
    context: Callable[[TradingService], dict[str, Any]]


PANELS: Mapping[str, Panel] = {
    "status": Panel("partials/status.html", status_context),
    "positions": Panel("partials/positions.html", positions_context),
    "orders": Panel("partials/orders.html", orders_context),
    "trades": Panel("partials/trades.html", trades_context),
    "signals": Panel("partials/signals.html", signals_context),
    "risk": Panel("partials/risk.html", risk_context),
    "balance": Panel("partials/balance.html", balance_context),
    "alerts": Panel("partials/alerts.html", alerts_context),
    "alert_log": Panel("partials/alert_log.html", alert_log_context),
    "venues": Panel("partials/venues.html", venues_context),
}
"""Every live panel by name; the name is also its SSE event name and its ``/ui/<name>``
route."""

DASHBOARD_PANELS = ("status", "positions", "orders", "trades", "signals")
"""The live panels of the dashboard (``/``)."""
CONTROL_PANELS = ("status", "risk", "balance", "positions", "alerts", "alert_log", "venues")
"""The live panels of the control centre (``/control``)."""


def render(template: str, context: Mapping[str, Any]) -> str:
    """``template`` rendered with ``context`` (autoescaped HTML)."""
    return templates.get_template(template).render(context)


def oob(name: str, html: str) -> str:
    """``html`` as an out-of-band swap of the content of the element ``#name`` (a panel's
    container keeps its own attributes: its ``sse-swap``, its ``hx-get``)."""
    return f'<div id="{name}" hx-swap-oob="innerHTML">{html}</div>'


def render_panel(name: str, service: TradingService) -> str:
    """The HTML of panel ``name`` (a key of :data:`PANELS`) as it is now.

    Blocking (it takes the trading lock and reads storage): call it from a worker thread when
    on the event loop.
    """
    panel = PANELS[name]
    return render(panel.template, panel.context(service)).strip()


def equity_series(service: TradingService, limit: int = EQUITY_POINTS) -> list[list[int | float]]:
    """The last ``limit`` equity points as ``[[time_ms, equity], ...]`` in time order.

    Equity is a float (quote currency): the chart needs numbers, not decimal strings.
    """
    return [[p.time, float(p.equity)] for p in service.equity(limit=limit)]
