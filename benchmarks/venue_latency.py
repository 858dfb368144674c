"""Live-trading latency against the fake Binance USDⓈ-M on loopback: bar close -> order
acknowledged.

Target: p99 < 25 ms in process, excluding the fake's own latency (issue 9's benchmark).

The real live stack runs in this process as ``tests/integration/test_live_trading.py`` starts
it: ``bootstrap(settings, live=LiveStart("binance-usdm"), wall_clock=clock)`` on a temporary data
directory (SQLite), its demo URLs pointed at :class:`tests.venues.binance_fake.FakeBinanceUsdm`,
which streams the real 5m bars of ``../shared/data/binance_usdm_BTCUSDT_5m.csv.gz`` from
2025-05-05 00:00 UTC. The fake and the server share one :class:`SimulatedClock`; the script
closes bar after bar (``fake.advance_to(close)``), waiting for the engine to process each bar
and for its orders to fill before closing the next, so a run of 300 bars takes seconds.

The strategy is ``sma_cross`` with its shortest periods, ``fast=2, slow=3`` (an SMA needs 2
bars): a cross is a change of sign of ``close[t] + close[t-1] - 2 close[t-2]``, so about one
bar in three reverses the position with one market order (104 of the first 300 bars; the
shipped strategy that trades most). A bar's sample is its first order: 300 bars give about
100 samples, so p99 is about the second-largest; ``--bars 900`` gives about 300.

Timestamps (``time.perf_counter``, one monotonic clock for every thread of the process):

- ``K`` the fake is about to send the bar's closed kline (``x: true``) on the websocket (its
  ``_send``);
- ``Q`` the bar reached the live feed's queue, parsed (its inbox ``put``, streaming thread);
  from there the engine thread takes it at its next look at the queue (every
  ``live_feed.POLL_S``, 5 ms, through the service's between-bars wait: the rest of that wait,
  then the between-bars work after it, are timed apart) and writes it to the candle store
  (Parquet; timed apart) before ``engine.process``;
- ``P0``/``P1`` ``engine.process`` entered / returned on the engine thread (the decision: the
  strategy, the risk gate, the orders as ``pending_new``);
- ``S`` ``engine.send`` entered: the orders and the bar are committed to SQLite before
  (store, then send);
- ``R`` the fake's ``POST /fapi/v1/order`` handler entered (the request parsed by uvicorn);
- ``N`` the fake is about to write the order's ``ORDER_TRADE_UPDATE`` ``NEW`` event to the
  user-data websocket (inside the handler: the fake publishes before it answers; the write
  itself counts as ours, so ``A - N`` is never negative);
- ``F`` the fake's handler returned its answer;
- ``A`` our execution client has applied that ``NEW`` event (``VenueOrders.on_user_event``
  returned: the tracker acknowledged the order and queued ``accepted`` for the engine);
- ``E`` ``engine.send`` returned: the REST answer is in and the engine's ledger has applied
  ``accepted`` (and the fill).

The headline figure is ``(A - K) - (N - R)``: kline sent to the stream's acknowledgement
applied, less the fake's handling of the order (request received to event sent). ``(E - K) -
(F - R)`` (the engine's ledger has the acknowledgement, less the fake's handling to its
answer) is printed beside it. Neither subtracts the fake's other work (its matching and
publishing of the bar's fills run on its thread and share the GIL), nor loopback transit.

The run starts with no stored history (``--history-days 0``, as the live-trading tests). The
candle store rewrites a symbol's whole Parquet file for every bar, so that write grows with the
stored bars: ``--history-days 14`` (the server's default warm-up, 4,032 bars) shows it.

Usage: ``.venv/bin/python benchmarks/venue_latency.py [--bars 300] [--history-days 0]``
"""

from __future__ import annotations

import argparse
import bisect
import math
import os
import queue
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ``tests.`` (the fake venue)

from adapters.clock import SimulatedClock
from domain.model import OrderStatus
from lootcapital.bootstrap import Container, bootstrap
from lootcapital.live import LiveStart
from lootcapital.settings import Settings
from tests.venues.binance_fake import FakeBinanceUsdm
from tests.venues.binance_fake_private import API_KEY, API_SECRET

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC: the first bar traded
SYMBOL = "BTCUSDT"
STRATEGY, PARAMS = "sma_cross", {"fast": 2, "slow": 3}
TARGET_P99_MS = 25.0
WAIT_S = 15.0


@dataclass
class Marks:
    """Timestamps (perf_counter s) by bar open time (ms) or by order client id."""

    kline_sent: dict[int, float] = field(default_factory=dict)  # K
    queued: dict[int, float] = field(default_factory=dict)  # Q
    stored: dict[int, float] = field(default_factory=dict)  # the candle store's write (s)
    sleeps: list[tuple[float, float, float]] = field(default_factory=list)  # between bars
    process: dict[int, tuple[float, float]] = field(default_factory=dict)  # P0, P1
    send: dict[int, tuple[float, float]] = field(default_factory=dict)  # S, E
    bar_orders: dict[int, list[str]] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)  # R
    new_sent: dict[str, float] = field(default_factory=dict)  # N
    answered: dict[str, float] = field(default_factory=dict)  # F
    acked: dict[str, float] = field(default_factory=dict)  # A
    rest_first: int = 0  # orders whose REST answer the client applied before the NEW event


def settings_for(root: Path, fake: FakeBinanceUsdm, history_days: float) -> Settings:
    sample = root / "sample"  # no kline or funding file: nothing replayed
    sample.mkdir()
    venue = {
        "rest_url": fake.rest_url, "ws_url": fake.ws_url, "demo": True, "api_key": API_KEY,
        "api_secret": API_SECRET, "poll_s": 0.02, "backoff_s": 0.01, "max_backoff_s": 0.05,
    }  # fmt: skip
    return Settings(
        data_dir=root / "data", sample_dir=sample, symbols=[SYMBOL], strategy=STRATEGY,
        strategy_params=PARAMS, api_token="benchmark-token-0123456789abcdef", autostart=False,
        history_days=history_days, venues={"binance_usdm": venue},
    )  # type: ignore[arg-type]  # fmt: skip


# -- the fake's side -------------------------------------------------------------------------
def instrument_fake(fake: FakeBinanceUsdm, marks: Marks) -> None:
    """Time the closed klines sent, the order requests and the ``NEW`` events (before the
    fake serves: its routes bind the handlers at ``__enter__``)."""
    clock = time.perf_counter
    send_kline, private = fake._send, fake.private
    order_endpoint, send_event = private._order, private._send

    async def kline(conn: Any, event: dict[str, Any]) -> None:
        k = event.get("k", {})
        if k.get("x"):
            marks.kline_sent.setdefault(int(k["t"]), clock())
        await send_kline(conn, event)

    async def order(request: Any) -> Any:
        received = clock()
        response = await order_endpoint(request)
        answered = clock()
        if request.method == "POST":
            client_id = dict(parse_qsl((await request.body()).decode())).get("newClientOrderId")
            client_id = client_id or request.query_params.get("newClientOrderId")
            if client_id:
                marks.received.setdefault(client_id, received)
                marks.answered.setdefault(client_id, answered)
        return response

    async def user_event(event: dict[str, Any]) -> None:
        o = event.get("o", {})
        if event.get("e") == "ORDER_TRADE_UPDATE" and o.get("x") == "NEW":
            marks.new_sent.setdefault(o["c"], clock())
        await send_event(event)

    fake._send = kline  # type: ignore[method-assign]
    private._order = order  # type: ignore[method-assign]
    private._send = user_event  # type: ignore[method-assign]


# -- our side --------------------------------------------------------------------------------
class _TimedInbox(queue.SimpleQueue):  # type: ignore[type-arg]
    """The live feed's queue, noting when each bar arrives."""

    def __init__(self, marks: Marks) -> None:
        self.marks = marks

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        bars = getattr(item, "bars", None)
        if bars is not None and len(bars):
            self.marks.queued.setdefault(int(bars.open_time[0]), time.perf_counter())
        super().put(item, block, timeout)


def time_between_bars(service: Any, feed: Any, marks: Marks) -> None:
    """Time the feed's waits between two looks at its queue (start, end of the command
    queue's wait in it, end): the rest of each is the between-bars work (a live venue's
    events applied, and whatever else runs there)."""
    clock, waited = time.perf_counter, [0.0]
    wait, sleep = service.commands.wait, feed._sleep

    def timed_wait(seconds: float) -> Any:
        result = wait(seconds)
        waited[0] = clock()
        return result

    def timed_sleep(seconds: float) -> Any:
        started = clock()
        result = sleep(seconds)
        marks.sleeps.append((started, max(started, waited[0]), clock()))
        return result

    service.commands.wait = timed_wait
    feed._sleep = timed_sleep


def between_bars(marks: Marks, queued: float) -> tuple[float, float, float]:
    """The engine thread's wait that was running when a bar was queued: (end, the rest of
    its command wait, the between-bars work after it), in s; NaNs when none was."""
    starts = [s for s, _, _ in marks.sleeps]
    i = bisect.bisect_right(starts, queued) - 1
    if i < 0 or marks.sleeps[i][2] < queued:
        return (math.nan,) * 3
    _, waited, end = marks.sleeps[i]
    return end, max(0.0, waited - queued), end - max(waited, queued)


def instrument_server(container: Container, marks: Marks) -> None:
    """Time the feed's queue, the engine's decision and send, and the client's ``NEW``."""
    clock = time.perf_counter
    service = container.service
    feed = getattr(service, "_feed", None)
    if feed is not None and hasattr(feed, "_inbox"):
        feed._inbox = _TimedInbox(marks)
    if feed is not None and hasattr(feed, "_sleep"):
        time_between_bars(service, feed, marks)
    store = getattr(feed, "_store", None)
    if store is not None:
        write = store.write

        def timed_write(exchange: str, symbol: str, timeframe: str, bars: Any) -> Any:
            started = clock()
            written = write(exchange, symbol, timeframe, bars)
            marks.stored[int(bars.open_time[0])] = clock() - started
            return written

        store.write = timed_write
    engine = service.engine
    process, send = engine.process, engine.send
    current: list[int] = []

    def timed_process(batch: Any) -> Any:
        started = clock()
        outcome = process(batch)
        bars = batch.get(SYMBOL)
        if bars is not None and len(bars):
            current[:] = [int(bars.open_time[0])]
            marks.process[current[0]] = (started, clock())
        return outcome

    def timed_send(orders: Any) -> Any:
        started = clock()
        changes = send(orders)
        if current:
            marks.send.setdefault(current[0], (started, clock()))
            marks.bar_orders.setdefault(current[0], [o.id for o in orders])
        return changes

    engine.process = timed_process  # type: ignore[method-assign]
    engine.send = timed_send  # type: ignore[method-assign]
    client = container.venue.client if container.venue is not None else None
    desks = getattr(client, "_orders", None)
    if desks is None:
        raise RuntimeError("the live venue's execution client did not start")
    on_user_event, tracker = desks.on_user_event, desks.tracker
    on_view = tracker.on_view

    def timed_user_event(message: dict[str, Any]) -> None:
        on_user_event(message)
        o = message.get("o", {})
        if message.get("e") == "ORDER_TRADE_UPDATE" and o.get("x") == "NEW":
            marks.acked.setdefault(o["c"], clock())

    def timed_view(view: Any) -> Any:
        if view.client_id not in marks.acked:
            marks.rest_first += 1
        return on_view(view)

    desks.on_user_event = timed_user_event  # type: ignore[method-assign]
    tracker.on_view = timed_view  # type: ignore[method-assign]


# -- the run ---------------------------------------------------------------------------------
def wait(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {WAIT_S} s for {what}")
        time.sleep(0.001)


def run(bars: int, history_days: float) -> Marks:
    """Play ``bars`` bars through a live run on the fake (``history_days`` of warm-up fetched
    and stored first); the marks taken."""
    marks = Marks()
    clock = SimulatedClock(T0 + 60_000)  # one minute into the first bar
    fake = FakeBinanceUsdm(clock=clock, symbols=(SYMBOL,))
    instrument_fake(fake, marks)
    with fake, tempfile.TemporaryDirectory(prefix="lootcapital-bench-") as tmp:
        fake.account.wallet = Decimal(100_000)
        settings = settings_for(Path(tmp), fake, history_days)
        container = bootstrap(settings, live=LiveStart("binance-usdm"), wall_clock=clock)
        try:
            instrument_server(container, marks)
            service = container.service
            service.start()
            stream = f"{SYMBOL.lower()}@kline_5m"
            wait(lambda: stream in fake.subscribed(), "the kline stream subscribed")
            open_statuses = [OrderStatus.PENDING_NEW, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED]
            for k in range(bars):
                fake.advance_to(T0 + (k + 1) * M5)
                wait(lambda k=k: service.status().candles_processed >= k + 1, f"bar {k}")
                wait(lambda: not service.orders(statuses=open_statuses).items, f"bar {k} fills")
            service.stop()
        finally:
            container.close()
    return marks


@dataclass
class Sample:
    """One bar's stages (ms)."""

    headline: float
    engine: float
    stages: dict[str, float]


def samples(marks: Marks) -> list[Sample]:
    out = []
    for t, ids in sorted(marks.bar_orders.items()):
        oid = ids[0] if ids else None
        needed = (marks.kline_sent, marks.process, marks.send)
        if oid is None or any(t not in m for m in needed):
            continue
        if any(oid not in m for m in (marks.received, marks.new_sent, marks.answered)):
            continue
        if oid not in marks.acked:
            continue
        k, (p0, p1), (s, e) = marks.kline_sent[t], marks.process[t], marks.send[t]
        r, n, f, a = (marks.received[oid], marks.new_sent[oid], marks.answered[oid],
                      marks.acked[oid])  # fmt: skip
        q = marks.queued.get(t, math.nan)
        taken, poll, work = between_bars(marks, q)
        ms = 1000.0
        stages = {
            "kline sent -> bar queued by the feed": (q - k) * ms,
            "bar queued -> engine.process": (p0 - q) * ms,
            "  the rest of the 5 ms poll wait": poll * ms,
            "  between-bars work after the wait": work * ms,
            "  taken -> engine.process (store, align)": (p0 - taken) * ms,
            "    of which the candle store's write": marks.stored.get(t, math.nan) * ms,
            "engine.process (decision)": (p1 - p0) * ms,
            "decided -> engine.send (SQLite commit)": (s - p1) * ms,
            "engine.send -> request at the fake": (r - s) * ms,
            "fake: request -> NEW sent (excluded)": (n - r) * ms,
            "NEW sent -> NEW applied by the client": (a - n) * ms,
            "fake: request -> answer (excluded)": (f - r) * ms,
            "answer -> engine.send returned": (e - f) * ms,
        }
        out.append(Sample(((a - k) - (n - r)) * ms, ((e - k) - (f - r)) * ms, stages))
    return out


def report(marks: Marks, bars: int, wall_s: float) -> None:
    got = samples(marks)
    orders = sum(len(ids) for ids in marks.bar_orders.values())
    print(
        f"{bars} bars of {SYMBOL} 5m from 2025-05-05 in {wall_s:.1f} s; {STRATEGY} {PARAMS}: "
        f"{len(marks.bar_orders)} bars sent orders ({orders} orders); {len(got)} samples "
        f"(each bar's first order); REST answer before the stream's NEW: "
        f"{marks.rest_first} orders"
    )
    if not got:
        print("no samples: no bar sent an order")
        return

    def line(name: str, values: np.ndarray) -> str:
        values = values[~np.isnan(values)]
        if not len(values):
            return f"  {name:<46} not measured"
        p50, p99 = np.percentile(values, [50, 99])
        return (f"  {name:<46} p50 {p50:7.2f}  p99 {p99:7.2f}  max {values.max():7.2f}  "
                f"mean {values.mean():7.2f}")  # fmt: skip

    head = np.array([s.headline for s in got])
    print("bar close -> order acknowledged, ms, excluding the fake's handling of the order:")
    print(line("kline sent -> NEW applied (headline)", head))
    print(line("kline sent -> engine's ledger has it", np.array([s.engine for s in got])))
    print("breakdown, ms (each bar's first order):")
    for name in got[0].stages:
        print(line(name, np.array([s.stages[name] for s in got])))
    p99 = float(np.percentile(head, 99))
    verdict = "ok" if p99 < TARGET_P99_MS else "MISSED"
    print(f"verdict: p99 {p99:.2f} ms (n = {len(head)}) vs target < {TARGET_P99_MS:.0f} ms: "
          f"{verdict}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=300, help="5m bars closed (default 300)")
    parser.add_argument(
        "--history-days", type=float, default=0.0,
        help="warm-up fetched over REST and stored before the first bar (default 0, as the "
        "live-trading tests; the server's default is 14): the candle store's write grows with it",
    )  # fmt: skip
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on "
          f"{os.cpu_count()} CPUs (other processes inflate the tails)")  # fmt: skip
    started = time.perf_counter()
    marks = run(args.bars, args.history_days)
    report(marks, args.bars, time.perf_counter() - started)


if __name__ == "__main__":
    main()
