"""Server time of every panel page and of every GET fragment the pages load.

Target (issue 10): every panel page renders in < 300 ms of server time.

A real app (:func:`lootcapital.bootstrap.bootstrap` and ``build_app``, its lifespan on) in a
temporary data directory, with the shipped sample (``data/sample``: 60 days of 5m bars of
BTCUSDT, ETHUSDT and SOLUSDT) as its candle store, served in process through Starlette's
``TestClient``. The paper engine (started by the lifespan, ``--strategy``: the server's default
unless told) replays the whole sample after its history at full speed, so that the pages have
the fills, trades, signals and pipeline state of 46 days (the run's trade count is printed); it
then stops, so that it does not compete for the CPU. A small training job (trend, BTCUSDT, 30
days, 2 folds) gives the AI page a model and a job card. Two large backtests are run through
``POST /api/v1/backtests`` on every bar of the sample's three symbols: the server's default
strategy and ``sma_cross(fast=5, slow=20)`` (thousands of trades), so that their result views
and their comparison are the largest the panel shows.

The URLs are enumerated from the app's routes: every GET route of the ``web`` package (pages
and ``/ui/*`` fragments) is fetched at its path, or at the URLs of :data:`VARIANTS` (path
parameters filled, query variants: each symbol, each timeframe, each attribution dimension...);
a route with a path parameter and no variant stops the benchmark, so none is forgotten. Only
:data:`SKIPPED` routes are left out, each with its reason. Each URL is fetched ``--repeat``
times after one warm-up fetch, with the session cookie. The server time of a fetch is the
app's: from the ASGI call to its return, the whole body sent (an ASGI wrapper around the app
measures it; the client's own work is not counted). The median and 95th percentile in ms are
printed per URL, with the median round trip as the client sees it (``TestClient``: no network)
and the body's size, then the verdict: the exit status is 1 when a URL's p95 reaches the target.

Usage: ``python benchmarks/panel_render.py [--repeat 20] [--strategy NAME]``
"""

from __future__ import annotations

import argparse
import inspect
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import SESSION_COOKIE, session_value
from lootcapital.bootstrap import Container, bootstrap, build_app
from lootcapital.settings import Settings
from web.trades_views import DIMENSIONS

TOKEN = "benchmark-token-0123456789abcdef"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
TIMEFRAMES = ("5m", "15m", "1h", "4h")
TARGET_MS = 300.0
REPLAY_SPEED = 10_000_000.0
"""The highest speed the settings allow: the replay runs as fast as the engine goes."""
REPLAY_TIMEOUT_S = 300.0
BACKTEST_TIMEOUT_S = 600.0
DEFAULT_STRATEGY = str(Settings.model_fields["strategy"].default)
TRAINING = {"kind": "trend", "symbol": "BTCUSDT", "days": 30, "folds": 2}


@dataclass(frozen=True)
class State:
    """What the URLs of a route need: the backtests' ids and the training job's id."""

    backtests: tuple[str, str]
    job_id: str


Variants = Callable[[State], list[str]]

VARIANTS: dict[str, Variants] = {
    "/chart": lambda _: ["/chart", "/chart?timeframe=4h"],
    "/chart/{symbol}": lambda _: [f"/chart/{s}" for s in SYMBOLS],
    "/ui/chart/data": lambda _: [
        f"/ui/chart/data?symbol={s}&timeframe={tf}" for s in SYMBOLS for tf in TIMEFRAMES
    ],
    "/trades": lambda _: ["/trades", f"/trades?symbol={SYMBOLS[0]}"],
    "/ui/trades/table": lambda _: [
        "/ui/trades/table",
        "/ui/trades/table?page=3",
        f"/ui/trades/table?symbol={SYMBOLS[0]}",
    ],
    "/ui/trades/stats": lambda _: ["/ui/trades/stats", f"/ui/trades/stats?symbol={SYMBOLS[0]}"],
    "/ui/trades/attribution": lambda _: [f"/ui/trades/attribution?by={d}" for d in DIMENSIONS],
    "/ui/analysis/symbol/{symbol}": lambda _: [f"/ui/analysis/symbol/{s}" for s in SYMBOLS],
    "/ui/analysis/symbol/{symbol}/chart.json": lambda _: [
        f"/ui/analysis/symbol/{s}/chart.json" for s in SYMBOLS
    ],
    "/ui/ai/signals": lambda _: ["/ui/ai/signals", f"/ui/ai/signals?symbol={SYMBOLS[0]}"],
    "/ui/ai/train/{job_id}": lambda state: [f"/ui/ai/train/{state.job_id}"],
    "/ui/backtests/params": lambda _: [
        "/ui/backtests/params?strategy=adaptive",
        "/ui/backtests/params?strategy=sma_cross",
    ],
    "/ui/backtests/compare": lambda state: [
        f"/ui/backtests/compare?ids={state.backtests[0]}&ids={state.backtests[1]}"
    ],
    "/ui/backtests/{backtest_id}": lambda state: [f"/ui/backtests/{i}" for i in state.backtests],
    "/ui/backtests/{backtest_id}/chart": lambda state: [
        f"/ui/backtests/{i}/chart?symbol={s}" for i in state.backtests for s in SYMBOLS
    ],
}
"""The URLs fetched for a route (its path as FastAPI writes it); a route not here is fetched
at its path."""

SKIPPED = {
    "/ui/stream": "Server-Sent Events: one endless response, not a render",
}
"""Panel GET routes not timed, with the reason."""


class ServerTimer:
    """``app`` with the time (ms) of its last HTTP call kept in :attr:`last_ms`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last_ms = float("nan")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.last_ms = (time.perf_counter() - started) * 1000


def panel_routes(app: FastAPI) -> list[str]:
    """The paths of the app's GET routes served by the ``web`` package, in routing order."""
    paths = []
    for route in iter_route_contexts(app.routes):
        module = inspect.getmodule(route.endpoint) if route.endpoint else None
        if "GET" in (route.methods or ()) and module and module.__name__.startswith("web."):
            paths.append(str(route.path))
    return paths


def check_routes(app: FastAPI) -> None:
    """Refuse to start when a panel route has a path parameter and no :data:`VARIANTS`.

    Raises:
        RuntimeError: naming the routes.
    """
    missing = [p for p in panel_routes(app) if "{" in p and p not in VARIANTS and p not in SKIPPED]
    if missing:
        raise RuntimeError(f"routes with a path parameter, add their URLs to VARIANTS: {missing}")


def panel_urls(app: FastAPI, state: State) -> list[str]:
    """Every URL to time: :data:`VARIANTS` or the path of each panel route not skipped."""
    urls = []
    for path in panel_routes(app):
        if path not in SKIPPED:
            urls += VARIANTS[path](state) if path in VARIANTS else [path]
    return urls


def wait_for(client: TestClient, url: str, done: Callable[[dict[str, Any]], bool]) -> dict:
    """Poll ``GET url`` until ``done(body)``; the body.

    Raises:
        RuntimeError: not done within :data:`BACKTEST_TIMEOUT_S`.
    """
    deadline = time.monotonic() + BACKTEST_TIMEOUT_S
    while not done(body := client.get(url).json()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not done after {BACKTEST_TIMEOUT_S} s: {body}")
        time.sleep(0.5)
    return dict(body)


def run_backtest(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    """Start a backtest through the API and wait until it is done; its result."""
    response = client.post("/api/v1/backtests", json=body)
    response.raise_for_status()
    url = f"/api/v1/backtests/{response.json()['id']}"
    state = wait_for(client, url, lambda s: s["status"] != "running")
    if state["status"] != "done":
        raise RuntimeError(f"backtest {state['id']} {state['status']}: {state.get('error')}")
    return state


def replay(client: TestClient, container: Container, strategy: str) -> None:
    """Let the paper engine replay the sample to its end (stopped at :data:`REPLAY_TIMEOUT_S`
    if it has not); print the bars processed and the trades and signals stored."""
    started = time.perf_counter()
    deadline = time.monotonic() + REPLAY_TIMEOUT_S
    while (status := client.get("/api/v1/status").json())["running"]:
        if time.monotonic() > deadline:
            container.service.stop()
            break
        time.sleep(0.5)
    counts = {}
    for kind in ("trades", "signals"):
        n, cursor = 0, None
        while True:
            params = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
            response = client.get(f"/api/v1/{kind}", params=params)
            n += len(response.json())
            if not (cursor := response.headers.get("X-Next-Cursor")):
                break
        counts[kind] = n
    print(f"paper replay ({strategy}): "
          f"{status['candles_processed']} bars in {time.perf_counter() - started:.1f} s, "
          f"{counts['trades']} trades, {counts['signals']} signals")  # fmt: skip


def train(client: TestClient) -> str:
    """Train a small model through the API; the job's id."""
    response = client.post("/api/v1/models/train", json=TRAINING)
    response.raise_for_status()
    job_id = str(response.json()["job_id"])
    job = wait_for(client, f"/api/v1/models/train/{job_id}", lambda j: j["status"] != "running")
    print(f"training job {job_id}: {job['status']}")
    return job_id


def backtests(client: TestClient, strategy: str) -> tuple[str, str]:
    """Run the two large backtests; their ids (printed with their sizes)."""
    started = time.perf_counter()
    results = [
        run_backtest(client, {"strategy": strategy, "symbols": SYMBOLS}),
        run_backtest(
            client,
            {"strategy": "sma_cross", "params": {"fast": 5, "slow": 20}, "symbols": SYMBOLS},
        ),
    ]
    print(f"two backtests of {len(SYMBOLS)} symbols x 60 days of 5m bars: "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    for r in results:
        print(f"  {r['id']} {r['strategy']}: {len(r['trades'])} trades, "
              f"{len(r['equity'])} equity points")  # fmt: skip
    return str(results[0]["id"]), str(results[1]["id"])


def time_url(
    client: TestClient, timer: ServerTimer, url: str, repeat: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """``repeat`` server times and round trips (ms) of ``GET url`` after one warm-up fetch, and
    the body's size in bytes.

    Raises:
        httpx.HTTPStatusError: a fetch did not answer 2xx.
    """
    size = len(client.get(url).raise_for_status().content)
    server, trip = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url).raise_for_status()
        trip.append((time.perf_counter() - started) * 1000)
        server.append(timer.last_ms)
    return np.array(server), np.array(trip), size


def report(client: TestClient, timer: ServerTimer, urls: list[str], repeat: int) -> int:
    """Print each URL's server time (median, p95), median round trip and size; the number of
    URLs whose p95 reaches :data:`TARGET_MS`."""
    print(f"{'URL':<64} {'median':>8} {'p95':>8} {'trip p50':>8} {'kB':>6}  "
          f"(ms, server time of {repeat} fetches)")  # fmt: skip
    over, worst = 0, ("", 0.0)
    for url in urls:
        server, trip, size = time_url(client, timer, url, repeat)
        median, p95 = np.percentile(server, [50, 95])
        flag = "  OVER" if p95 >= TARGET_MS else ""
        over += bool(flag)
        worst = max(worst, (url, float(p95)), key=lambda w: w[1])
        print(f"{url:<64} {median:8.1f} {p95:8.1f} {np.median(trip):8.1f} "
              f"{size / 1000:6.0f}{flag}")  # fmt: skip
    for path, why in SKIPPED.items():
        print(f"{path:<64} {'skipped':>8}  ({why})")
    verdict = "FAIL" if over else "PASS"
    print(f"{verdict}: {over} of {len(urls)} URLs with p95 >= {TARGET_MS:.0f} ms "
          f"(slowest p95: {worst[1]:.1f} ms, {worst[0]})")  # fmt: skip
    return over


def main() -> int:
    """Replay, train and backtest on the shipped sample, time every page and fragment, print
    the table and the verdict; 1 when a URL's p95 reaches :data:`TARGET_MS`, else 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--strategy", default=DEFAULT_STRATEGY, help="the paper run's")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="panel-render-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            api_token=TOKEN,
            speed=REPLAY_SPEED,
            symbols=SYMBOLS,
            strategy=args.strategy,
        )
        container = bootstrap(settings)
        app = build_app(container)
        check_routes(app)
        timer = ServerTimer(app)
        with TestClient(timer) as client:
            client.headers["Authorization"] = f"Bearer {TOKEN}"
            client.cookies.set(SESSION_COOKIE, session_value(TOKEN))
            replay(client, container, settings.strategy)
            state = State(backtests(client, DEFAULT_STRATEGY), train(client))
            over = report(client, timer, panel_urls(app, state), args.repeat)
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
