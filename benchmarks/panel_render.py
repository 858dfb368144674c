"""Server time of the panel's pages, the backtests' result and comparison views above all.

Target (issue 10): every panel page renders in < 300 ms of server time.

A real app (:func:`lootcapital.bootstrap.bootstrap` and ``build_app``, its lifespan on) in a
temporary data directory, with the shipped sample (``data/sample``: 60 days of 5m bars of
BTCUSDT, ETHUSDT and SOLUSDT) as its candle store, served in process through Starlette's
``TestClient``. The paper engine (started by the lifespan) first replays for
``--replay-seconds`` seconds, so that the pages have fills, trades and signals, and is then
stopped so that it does not compete for the CPU. Two large backtests are run through ``POST
/api/v1/backtests`` on every bar of the sample's three symbols: the server's default strategy
and ``sma_cross(fast=5, slow=20)`` (thousands of trades), so that their result views and their
comparison are the largest the panel shows. Then each page is fetched ``--repeat`` times after
one warm-up fetch, with the session cookie. The server time of a fetch is the app's: from the
ASGI call to its return, the whole body sent (an ASGI wrapper around the app measures it; the
client's own work is not counted). The median and 95th percentile in ms are printed per page,
with the median round trip as the client sees it (``TestClient``: no network), the body's size,
and which pages are over the target (the exit status is then 1).

Usage: ``python benchmarks/panel_render.py [--repeat 20] [--replay-seconds 5]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import SESSION_COOKIE, session_value
from lootcapital.bootstrap import bootstrap, build_app
from lootcapital.settings import Settings

TOKEN = "benchmark-token-0123456789abcdef"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
TARGET_MS = 300.0
PAGES = ("/", "/control", "/analysis", "/ai", "/chart", "/trades", "/backtests",
         "/ui/backtests/list")  # fmt: skip
BACKTEST_TIMEOUT_S = 600.0


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


def run_backtest(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    """Start a backtest through the API and wait until it is done; its result."""
    response = client.post("/api/v1/backtests", json=body)
    response.raise_for_status()
    backtest_id = str(response.json()["id"])
    deadline = time.monotonic() + BACKTEST_TIMEOUT_S
    while (state := client.get(f"/api/v1/backtests/{backtest_id}").json())["status"] == "running":
        if time.monotonic() > deadline:
            raise RuntimeError(f"backtest {backtest_id} still running after {BACKTEST_TIMEOUT_S} s")
        time.sleep(0.5)
    if state["status"] != "done":
        raise RuntimeError(f"backtest {backtest_id} {state['status']}: {state.get('error')}")
    return dict(state)


def time_page(
    client: TestClient, timer: ServerTimer, path: str, repeat: int
) -> tuple[np.ndarray, np.ndarray]:
    """``repeat`` server times and round trips (ms) of ``GET path`` after one warm-up fetch."""
    client.get(path).raise_for_status()
    server, trip = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        trip.append((time.perf_counter() - started) * 1000)
        server.append(timer.last_ms)
    return np.array(server), np.array(trip)


def backtests(client: TestClient, strategy: str) -> list[str]:
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
    return [str(r["id"]) for r in results]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--replay-seconds", type=float, default=5.0)
    args = parser.parse_args()
    over = 0
    with tempfile.TemporaryDirectory(prefix="panel-render-") as tmp:
        settings = Settings(data_dir=Path(tmp), api_token=TOKEN, speed=6000.0, symbols=SYMBOLS)
        container = bootstrap(settings)
        timer = ServerTimer(build_app(container))
        with TestClient(timer) as client:
            client.headers["Authorization"] = f"Bearer {TOKEN}"
            client.cookies.set(SESSION_COOKIE, session_value(TOKEN))
            time.sleep(args.replay_seconds)
            container.service.stop()
            first, second = backtests(client, settings.strategy)
            paths = [*PAGES, f"/ui/backtests/{first}", f"/ui/backtests/{second}",
                     f"/ui/backtests/compare?ids={first}&ids={second}"]  # fmt: skip
            print(f"{'page':<62} {'median':>8} {'p95':>8} {'trip p50':>8} {'kB':>6}  "
                  f"(ms, {args.repeat} fetches)")  # fmt: skip
            for path in paths:
                server, trip = time_page(client, timer, path, args.repeat)
                size = len(client.get(path).content) / 1000
                median, p95 = np.percentile(server, [50, 95])
                flag = "  OVER" if p95 >= TARGET_MS else ""
                over += bool(flag)
                print(f"{path:<62} {median:8.1f} {p95:8.1f} {np.median(trip):8.1f} "
                      f"{size:6.0f}{flag}")  # fmt: skip
    print(f"{over} page(s) with p95 >= {TARGET_MS:.0f} ms")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
