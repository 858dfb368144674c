"""The backtests page (``/backtests``) and its partials (issue 10, "Backtests from the panel").

The form (``POST /ui/backtests``) starts a backtest through the same
:class:`~service_layer.backtest_jobs.BacktestJobs` and the same body model as ``POST
/api/v1/backtests`` (a refusal shows next to its field); the strategy's parameters follow the
chosen strategy (``/ui/backtests/params``). The job's progress comes over the WebSocket
(``/api/v1/ws``, ``backtest`` messages, the session cookie authenticating it): nothing is
polled; ``web/static/backtests.js`` moves the bar and, once the job ends, loads its result
(``/ui/backtests/{id}``: metrics, equity and drawdown charts, per symbol a candlestick chart
whose bars and trade markers come from ``/ui/backtests/{id}/chart?symbol=``, the trades) and
the list again. The list (``/ui/backtests/list``) pages with the API's cursors;
two or more ticked backtests compare side by side (``/ui/backtests/compare?ids=…``). The
partials need the session cookie (401 without); the page without it shows the login form.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.backtest_schemas import BacktestIn
from api.deps import SESSION_COOKIE, BacktestsDep, ServiceDep, cookie_valid, require_session
from domain.errors import DomainError, UnknownSymbol
from domain.symbols import venue_symbol
from web.backtest_views import (
    LISTED,
    candle_chart,
    compare_context,
    form_context,
    list_rows,
    record_context,
    strategy_params,
)
from web.forms import FORM_ERROR, validated
from web.views import NO_STORE, render, templates

backtests = APIRouter(include_in_schema=False)
"""The page; :data:`partials` is included in it."""
partials = APIRouter(prefix="/ui/backtests", dependencies=[Depends(require_session)])

FIELDS = ("strategy", "timeframe", "start", "end", "cash", "fee", "slippage_bps", "leverage",
          "margin")  # fmt: skip
"""The form's single-value fields, as the API's body names them."""
PARAM_PREFIX = "param."
BacktestIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


def _html(*parts: str) -> HTMLResponse:
    return HTMLResponse("".join(parts).strip(), headers=NO_STORE)


@backtests.get("/backtests", response_class=HTMLResponse)
def backtests_page(request: Request, service: ServiceDep, jobs: BacktestsDep) -> Response:
    """The form, the running backtest, the past ones and the result area, with a valid
    session cookie; else the login page."""
    if not cookie_valid(request, request.cookies.get(SESSION_COOKIE)):
        return templates.TemplateResponse(
            request, "pages/login.html", {"error": None}, headers=NO_STORE
        )
    context = {"page": "backtests", "job": jobs.running()} | form_context(service.status().symbols)
    return templates.TemplateResponse(request, "pages/backtests.html", context, headers=NO_STORE)


@partials.get("/list", response_class=HTMLResponse)
def list_partial(
    jobs: BacktestsDep, cursor: Annotated[str | None, Query(max_length=200)] = None
) -> HTMLResponse:
    """A page of past and running backtests, newest first, with their headline metrics."""
    page = jobs.page(limit=LISTED, cursor=cursor)
    context = {"rows": list_rows(page.items), "next_cursor": page.next_cursor, "cursor": cursor}
    return _html(render("partials/backtest_list.html", context))


@partials.get("/params", response_class=HTMLResponse)
def params_partial(strategy: Annotated[str, Query(max_length=40)] = "") -> HTMLResponse:
    """The parameter inputs of ``strategy`` (none for an unknown one)."""
    return _html(render("partials/backtest_params.html", {"params": strategy_params(strategy)}))


@partials.get("/job", response_class=HTMLResponse)
def job_partial(jobs: BacktestsDep) -> HTMLResponse:
    """The backtest running now, or a line saying none is."""
    return _html(render("partials/backtest_job.html", {"job": jobs.running()}))


@partials.get("/compare", response_class=HTMLResponse)
def compare_partial(
    jobs: BacktestsDep,
    ids: Annotated[list[str] | None, Query()] = None,
) -> HTMLResponse:
    """The ticked backtests (2 to :data:`~service_layer.backtest_jobs.MAX_COMPARED`) side by
    side (``GET /api/v1/backtests/compare``), or why not."""
    try:
        records = jobs.compare([i for i in ids or [] if i])
    except DomainError as exc:
        return _html(f'<p class="field-error pad" data-field="ids">{escape(exc.message)}</p>')
    return _html(render("partials/backtest_compare.html", compare_context(records)))


@partials.get("/{backtest_id}", response_class=HTMLResponse)
def backtest_partial(backtest_id: BacktestIdPath, jobs: BacktestsDep) -> HTMLResponse:
    """One backtest: its result once done (from its stored view: the metrics, charts and
    first trades of ``GET /api/v1/backtests/{id}``), else its state. 404 for an unknown id."""
    return _html(render("partials/backtest_view.html", record_context(jobs.view(backtest_id))))


@partials.get("/{backtest_id}/chart")
def chart_data(
    backtest_id: BacktestIdPath,
    jobs: BacktestsDep,
    symbol: Annotated[str, Query(min_length=1, max_length=40)],
) -> JSONResponse:
    """The candlestick chart of ``symbol`` in backtest ``backtest_id``
    (:func:`web.backtest_views.candle_chart`): the stored bars it ran on, read again from the
    candle store, with its trades as entry and exit markers, in the JSON of ``/ui/chart/data``
    (``{"symbol", "timeframe", "backtest_timeframe", "tf_s", "precision", "bars": [{"time": s,
    "open", "high", "low", "close", "volume"}], "markers": [{"time": s, "at": ms, "price",
    "side", "kind", "trade", "direction", ...}], "trades", "first_time", "last_time"}``); no
    marker before it is done. 404 for an unknown id (field ``id``) or a symbol it did not
    backtest (field ``symbol``), 422 for a malformed id or symbol (the field named)."""
    record = jobs.view(backtest_id)  # without its result (megabytes): the trades alone
    try:
        venue = venue_symbol(symbol.strip())
    except ValueError as exc:
        raise UnknownSymbol(str(exc), field="symbol") from None
    bars = jobs.bars(record, venue)
    chart = candle_chart(venue, bars, record.timeframe, jobs.trades(backtest_id))
    return JSONResponse(chart, headers=NO_STORE)


def _ms(text: str, name: str, errors: dict[str, str]) -> int | None:
    """A ``YYYY-MM-DD`` day (UTC midnight) in ms UTC; None when empty or bad (then noted)."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        errors[name] = f"a day as YYYY-MM-DD, was {text!r}"
        return None
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def read_form(form: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The posted form as the values to show again, the API's body (``BacktestIn``'s fields;
    empty ones left out) and the errors found reading it (bad days)."""
    typed = {name: str(form.get(name, "")).strip() for name in FIELDS}
    symbols = [str(s).strip() for s in form.getlist("symbols") if str(s).strip()]
    params = {
        str(k)[len(PARAM_PREFIX) :]: str(v).strip()
        for k, v in form.multi_items()
        if str(k).startswith(PARAM_PREFIX) and str(v).strip()
    }
    errors: dict[str, str] = {}
    body: dict[str, Any] = {k: v for k, v in typed.items() if v and k not in ("start", "end")}
    body |= {"symbols": symbols, "params": params}
    for name in ("start", "end"):
        ms = _ms(typed[name], name, errors)
        if ms is not None:
            body[name] = ms
    return typed | {"symbols": symbols, "params": params}, body, errors


@partials.post("", response_class=HTMLResponse)
async def start(request: Request, service: ServiceDep, jobs: BacktestsDep) -> HTMLResponse:
    """Start a backtest (``POST /api/v1/backtests``, the same checks): the form again, with
    the refusal next to its field, or saying it started, with the job's bar out of band; its
    progress then comes over the WebSocket."""
    values, body, errors = read_form(await request.form())
    symbols = service.status().symbols
    parsed, invalid = validated(BacktestIn, body)
    errors |= invalid
    if parsed is None or errors:
        return _html(render("partials/backtest_form.html", form_context(symbols, values, errors)))
    try:
        job = await run_in_threadpool(jobs.start, parsed.request())
    except DomainError as exc:
        field = exc.field or FORM_ERROR
        known = field in FIELDS or field == "symbols" or field.startswith("params.")
        form = form_context(symbols, values, {field if known else FORM_ERROR: exc.message})
        return _html(render("partials/backtest_form.html", form))
    done = f"Backtest {job.id} started."
    bar = render("partials/backtest_job.html", {"job": job}).strip()
    return _html(
        render("partials/backtest_form.html", form_context(symbols, values, done=done)),
        f'<div id="bt-job" hx-swap-oob="innerHTML">{bar}</div>',
    )


backtests.include_router(partials)
