"""The alert log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.alert_schemas import AlertOut, alert_out
from api.deps import CursorQuery, EndQuery, ServiceDep, StartQuery, check_range, set_next_cursor
from api.errors import error_responses
from domain.alerts import AlertRule
from service_layer.alerts import alert_log

router = APIRouter(tags=["alerts"])


@router.get("/alerts", responses=error_responses(400, 401, 422))
def list_alerts(
    service: ServiceDep,
    response: Response,
    rule: Annotated[AlertRule | None, Query(description="Only the alerts of this rule.")] = None,
    start: StartQuery = None,
    end: EndQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[AlertOut]:
    """The run's alerts as they fired (trade executed, PnL or drawdown beyond a threshold,
    trading halted or a breaker tripped, ML predictor disabled, venue or feed down, engine
    stopped on an error), newest first, with the channels that took or refused each, filtered
    by rule and time (``start``/``end``, ms UTC inclusive); the ``X-Next-Cursor`` header reads
    the next (older) page."""
    check_range(start, end)
    page = alert_log(
        service.uow_factory, rule=rule, start=start, end=end, limit=limit, cursor=cursor
    )
    set_next_cursor(response, page.next_cursor)
    return [alert_out(r) for r in page.items]
