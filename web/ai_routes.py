"""The AI signal page (``/ai``) and its partials (issue 7, "Explanations" and "Registry";
issue 10, "AI signal panel").

Per traded symbol the ML's latest call, whether ML acts there and why not
(``/ui/ai/symbols``); the last ML signals with their outcomes (``/ui/ai/signals?symbol=``);
the strategy's own calls, with or without ML: per symbol its latest call and its last signals
with their outcomes (``/ui/ai/strategy``); the registry's models per symbol with their scores
and importances, and the buttons that activate one or roll back (``/ui/ai/models``,
``POST /ui/ai/models/{id}/activate``, ``POST /ui/ai/models/rollback``); the training form
(``POST /ui/ai/train``) and the training jobs (``/ui/ai/jobs``, ``/ui/ai/train/{job_id}``).
The views are built in :mod:`web.ai_views`, :mod:`web.ai_strategy_views` and
:mod:`web.model_views` from the service, the registry and the training jobs the API uses
(``/api/v1/signals``, ``/api/v1/models…``): the page and the API say the same thing.
Activations made here are stored as made by ``panel``.

The page shows the engine status over the SSE stream (``/ui/stream?page=ai``); each status
event, at most one refresh per couple of seconds, reloads the signal partials
(``web/static/ai.js``). A training job's progress comes over the WebSocket (``/api/v1/ws``,
``training`` messages, the session cookie authenticating it): the script moves the job's
progress bar and, once the job ends, loads its card from ``/ui/ai/train/{job_id}`` and the
models again. The partials need the session cookie (401 without); the page without it shows the
login form.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import (
    SESSION_COOKIE,
    RegistryDep,
    ServiceDep,
    TrainingDep,
    cookie_valid,
    require_session,
)
from api.model_schemas import ModelTrainIn
from domain.errors import DomainError, UnknownSymbol
from domain.symbols import venue_symbol
from web.ai_strategy_views import strategy_context
from web.ai_views import page_context, signals_context, symbols_context
from web.control import WHO
from web.forms import FORM_ERROR, validated
from web.model_views import job_view, jobs_context, models_context, train_form
from web.views import NO_STORE, render, templates

ai = APIRouter(include_in_schema=False)
"""The page; :data:`partials` is included in it."""
partials = APIRouter(prefix="/ui/ai", dependencies=[Depends(require_session)])

FORM_FIELDS = ("kind", "symbol", "days", "algo", "folds")
"""The training form's fields: the API's ``ModelTrainIn`` less ``params``."""
_API_FIELDS = {"model": "kind", "n_splits": "folds"}
"""The training request's field names → the form's, for errors."""


def _venue(symbol: str) -> str:
    """``symbol`` as the venue writes it; UnknownSymbol (404) when it is no symbol."""
    try:
        return venue_symbol(symbol.strip())
    except ValueError as exc:
        raise UnknownSymbol(str(exc), field="symbol") from None


def _html(*parts: str) -> HTMLResponse:
    return HTMLResponse("".join(parts).strip(), headers=NO_STORE)


@ai.get("/ai", response_class=HTMLResponse)
def ai_page(request: Request, service: ServiceDep) -> Response:
    """The AI signals of every traded symbol, the last ML signals with their outcomes, the
    models and the training form, with a valid session cookie; else the login page."""
    if not cookie_valid(request, request.cookies.get(SESSION_COOKIE)):
        return templates.TemplateResponse(
            request, "pages/login.html", {"error": None}, headers=NO_STORE
        )
    frame = page_context(service)
    context = {"page": "ai"} | frame | train_form(frame["symbols"])
    return templates.TemplateResponse(request, "pages/ai.html", context, headers=NO_STORE)


@partials.get("/symbols", response_class=HTMLResponse)
def symbols_partial(service: ServiceDep) -> HTMLResponse:
    """Per traded symbol: the ML's latest call (action, confidence, probability, explanation,
    top contributions, model, outcome) and whether ML is on, off or failed, and why."""
    return _html(render("partials/ai_symbols.html", symbols_context(service)))


@partials.get("/signals", response_class=HTMLResponse)
def signals_partial(
    service: ServiceDep, symbol: Annotated[str, Query(max_length=40)] = ""
) -> HTMLResponse:
    """The last ML signals (of ``symbol`` when given; empty: every symbol) with their outcome
    4 hours on: right, wrong or pending, and the move. 404 when ``symbol`` is not traded."""
    chosen = None
    if symbol.strip():
        chosen = _venue(symbol)
        if chosen not in service.status().symbols:
            raise UnknownSymbol(f"{symbol!r} is not traded", field="symbol")
    return _html(render("partials/ai_signals.html", signals_context(service, chosen)))


@partials.get("/strategy", response_class=HTMLResponse)
def strategy_partial(service: ServiceDep) -> HTMLResponse:
    """The strategy's own calls: per traded symbol its latest (buy, sell, hold, close or keep;
    confidence; reasons; outcome) and its last signals with their outcome 4 hours on."""
    return _html(render("partials/ai_strategy.html", strategy_context(service)))


def _models(service: ServiceDep, registry: RegistryDep, **message: Any) -> HTMLResponse:
    context = models_context(registry, service.status().symbols, **message)
    return _html(render("partials/ai_models.html", context))


@partials.get("/models", response_class=HTMLResponse)
def models_partial(service: ServiceDep, registry: RegistryDep) -> HTMLResponse:
    """The registry's models per symbol and kind (the active one marked), each with its holdout
    scores beside the baseline's and its global feature importances."""
    return _models(service, registry)


@partials.post("/models/{model_id}/activate", response_class=HTMLResponse)
def activate(
    model_id: Annotated[str, Path(min_length=1, max_length=200)],
    service: ServiceDep,
    registry: RegistryDep,
) -> HTMLResponse:
    """Activate ``model_id`` (``POST /api/v1/models/{id}/activate``, checked first); the models
    again, saying what was done or why it was refused."""
    try:
        model = registry.activate(model_id, WHO)
    except DomainError as exc:
        return _models(service, registry, error=exc.message)
    done = f"{model.meta.model_id} is the active {model.meta.kind} model on " + ", ".join(
        model.active_on
    )
    return _models(service, registry, done=done)


@partials.post("/models/rollback", response_class=HTMLResponse)
def rollback(
    kind: Annotated[str, Form(max_length=40)],
    symbol: Annotated[str, Form(max_length=40)],
    service: ServiceDep,
    registry: RegistryDep,
) -> HTMLResponse:
    """Re-activate the model of ``kind`` that was active on ``symbol`` before
    (``POST /api/v1/models/rollback``); the models again, saying what was done or why not."""
    try:
        model = registry.rollback(kind, symbol, WHO)
    except DomainError as exc:
        return _models(service, registry, error=exc.message)
    done = f"Rolled back: {model.meta.model_id} is the active {kind} model on {symbol} again"
    return _models(service, registry, done=done)


@partials.get("/jobs", response_class=HTMLResponse)
def jobs_partial(training: TrainingDep) -> HTMLResponse:
    """The latest training jobs, newest first: progress while running, then the result."""
    return _html(render("partials/ai_jobs.html", jobs_context(training)))


@partials.get("/train/{job_id}", response_class=HTMLResponse)
def job_partial(
    job_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")],
    training: TrainingDep,
) -> HTMLResponse:
    """One training job's card: its progress, then the model id and verdict, or the error.
    404 for an unknown job."""
    return _html(render("partials/ai_job.html", job_view(training.get(job_id))))


@partials.post("/train", response_class=HTMLResponse)
def train(
    service: ServiceDep,
    training: TrainingDep,
    kind: Annotated[str, Form(max_length=40)] = "",
    symbol: Annotated[str, Form(max_length=40)] = "",
    days: Annotated[str, Form(max_length=10)] = "",
    algo: Annotated[str, Form(max_length=10)] = "",
    folds: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse:
    """Start a training job (``POST /api/v1/models/train``, the same checks): the form again,
    with the refusal next to its field, or with the new job's card added to the job list out
    of band; its progress then comes over the WebSocket."""
    typed = {"kind": kind, "symbol": symbol, "days": days, "algo": algo, "folds": folds}
    symbols = service.status().symbols
    body, errors = validated(ModelTrainIn, {k: v.strip() for k, v in typed.items()})
    if body is None:
        return _html(render("partials/ai_train_form.html", train_form(symbols, typed, errors)))
    try:
        job = training.start(
            kind=body.kind, symbol=body.symbol, days=body.days, algo=body.algo, folds=body.folds
        )
    except DomainError as exc:
        field = _API_FIELDS.get(exc.field or "", exc.field or FORM_ERROR)
        field = field if field in FORM_FIELDS else FORM_ERROR
        form = train_form(symbols, typed, {field: exc.message})
        return _html(render("partials/ai_train_form.html", form))
    done = f"Training job {job.job_id} started: {job.kind} {job.algo} on {job.symbol}."
    card = render("partials/ai_job.html", job_view(job)).strip()
    return _html(
        render("partials/ai_train_form.html", train_form(symbols, typed, done=done)),
        f'<div hx-swap-oob="afterbegin:#training-jobs">{card}</div>',
    )


ai.include_router(partials)
