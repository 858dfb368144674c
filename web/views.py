"""The panel's views: what each partial shows, read from the same service the API uses.

A *panel* is a partial template plus the function that reads its context from the
:class:`~service_layer.trading.TradingService`. The HTMX routes and the SSE stream render panels
through :func:`render_panel`, so a panel looks the same however it is refreshed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates

from service_layer.trading import TradingService
from web.formatting import register_filters

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"

ORDERS_SHOWN = 20
TRADES_SHOWN = 20
SIGNALS_SHOWN = 10
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
}
"""Every panel by name; the name is also its SSE event name and its ``/ui/<name>`` route."""


def render(template: str, context: Mapping[str, Any]) -> str:
    """``template`` rendered with ``context`` (autoescaped HTML)."""
    return templates.get_template(template).render(context)


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
