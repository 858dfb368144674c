"""Backtests on the server's stored bars: start one in the background, follow it over the
WebSocket, list the past ones, read one's result, compare several."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from api.backtest_schemas import (
    BacktestComparisonOut,
    BacktestIn,
    BacktestJobOut,
    BacktestOut,
    BacktestSummaryOut,
    backtest_out,
    comparison_out,
    job_out,
    summary_out,
)
from api.deps import BacktestsDep, CursorQuery, invalid, set_next_cursor
from api.errors import error_responses
from domain.errors import BacktestBusy, ConfigError, DomainError
from service_layer.backtest_jobs import MAX_COMPARED

router = APIRouter(tags=["backtests"])

BACKTEST_ID = r"^[0-9a-f]{1,64}$"
BacktestIdPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=BACKTEST_ID, description="A backtest id")
]


@router.post(
    "/backtests",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(400, 401, 409, 422),
)
def start_backtest(body: BacktestIn, backtests: BacktestsDep) -> BacktestJobOut:
    """Start a backtest of the server's stored bars in the background, as ``lootcapital
    backtest --symbol ...`` with the same options runs it (one at a time: 409
    ``backtest_running`` while another runs). The request is checked and its bars read first:
    a bad strategy, parameter (``params.<name>``), symbol, timeframe, leverage or a period
    without bars is a 422 naming the field. The answer is the job; follow it over the
    WebSocket (``backtest`` messages, ``progress`` 0 to 1) and read the result at
    ``GET /backtests/{id}`` once ``done``. The backtest is stored: it outlives the server."""
    try:
        job = backtests.start(body.request())
    except BacktestBusy:
        raise
    except DomainError as exc:
        raise invalid("body", exc.field or "body", exc.message, None) from None
    return job_out(job)


@router.get("/backtests", responses=error_responses(400, 401, 422))
def list_backtests(
    backtests: BacktestsDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: CursorQuery = None,
) -> list[BacktestSummaryOut]:
    """Past and running backtests, newest first, with their metrics once done (not their
    curves and trades); the ``X-Next-Cursor`` header reads the next (older) page."""
    page = backtests.page(limit=limit, cursor=cursor)
    set_next_cursor(response, page.next_cursor)
    running = backtests.running()
    return [summary_out(r, running) for r in page.items]


@router.get("/backtests/compare", responses=error_responses(401, 404, 422))
def compare_backtests(
    backtests: BacktestsDep,
    ids: Annotated[
        str,
        Query(
            min_length=1,
            max_length=1000,
            pattern=r"^[0-9a-f]{1,64}(,[0-9a-f]{1,64})*$",
            description=f"Backtest ids separated by commas (2 to {MAX_COMPARED})",
        ),
    ],
) -> BacktestComparisonOut:
    """The metrics of the backtests ``ids`` side by side, with each one's summary. 404 naming
    an unknown id; 422 for fewer than two or more than ten."""
    try:
        records = backtests.compare(ids.split(","))
    except ConfigError as exc:
        raise invalid("query", "ids", exc.message, ids) from None
    return comparison_out(records)


@router.get("/backtests/{backtest_id}", responses=error_responses(401, 404, 422))
def get_backtest(backtest_id: BacktestIdPath, backtests: BacktestsDep) -> BacktestOut:
    """One backtest: what ran, its status (``progress`` while it runs), and once done its
    metrics, equity and drawdown at every bar close, trades, breakdown and rejections; its
    error once failed. 404 for an unknown id."""
    return backtest_out(backtests.get(backtest_id), backtests.running())
