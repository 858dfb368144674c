"""Analytics: performance attribution of the run's closed trades."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.analytics_schemas import AttributionOut, attribution_out
from api.deps import EndQuery, NumbersDep, ServiceDep, StartQuery, SymbolQuery, check_range
from api.errors import error_responses
from domain.attribution import Dimension
from domain.model import ExitReason, Side
from domain.trade_history import TradeQuery
from service_layer.analytics import attribution

router = APIRouter(tags=["analytics"])

SideQuery = Annotated[
    Literal["long", "short"] | None,
    Query(description="Trades of long (opened by a buy) or short positions."),
]
ExitReasonQuery = Annotated[ExitReason | None, Query(description="Trades closed for this reason.")]
_SIDES = {"long": Side.BUY, "short": Side.SELL}


def trade_query(
    symbol: SymbolQuery = None,
    side: SideQuery = None,
    exit_reason: ExitReasonQuery = None,
    start: StartQuery = None,
    end: EndQuery = None,
) -> TradeQuery:
    """The trade filters of a request (422 naming ``end`` when it is before ``start``)."""
    check_range(start, end)
    return TradeQuery(
        symbol=symbol,
        side=None if side is None else _SIDES[side],
        exit_reason=exit_reason,
        start=start,
        end=end,
    )


TradeQueryDep = Annotated[TradeQuery, Depends(trade_query)]


@router.get("/analytics/attribution", responses=error_responses(401, 422))
def get_attribution(
    service: ServiceDep,
    n: NumbersDep,
    by: Annotated[
        Dimension,
        Query(
            description="Group by strategy, model (the ML model id of the entry signal), "
            "symbol, regime (of the entry signal), exit_reason, hour or weekday (of the "
            "entry, UTC)."
        ),
    ],
    query: TradeQueryDep,
) -> AttributionOut:
    """PnL (net of fees), trade count, win rate, profit factor and average win and loss of the
    run's closed trades per group, filtered by symbol, side, exit reason and exit time
    (``start``/``end``, ms UTC inclusive). Hours, weekdays and exit reasons list every group,
    empty ones included, in their order; the other groups come largest PnL first."""
    return attribution_out(by, attribution(service.uow_factory, by, query), n, query)
