"""API latency while the engine replays at full speed: ``GET /api/v1/status`` and ``/positions``.

Target: p99 < 10 ms at 200 req/s for each endpoint while the engine replays at full speed.

For each endpoint a fresh ``lootcapital serve --speed 10000000`` (autostart on, the default
``trend_follow``) runs as a subprocess on a free loopback port, with a temporary data directory
whose candle store holds the five 305-day 5m USD-M files of ``../shared/data`` (BTC, ETH, SOL,
BNB, XRP: 439,200 candles, so the replay outlasts the measurement; each server gets its own
SQLite database, so each replays from the first bar). Requests go only to 127.0.0.1, with
bearer-token auth, open-loop: request ``k`` is sent at ``t0 + k / rate`` whatever the earlier
ones did (asyncio, keep-alive HTTP/1.1 connections with a minimal client: httpx costs over 1 ms
of CPU per request, which on a small machine competes with the server), and its latency runs
from that scheduled time to the end of its response, so a slow server cannot hide queueing (the
client's own lag in sending is printed apart). One second of warm-up requests is not counted;
failed requests (no answer within ``--timeout`` s, or not sent because 100 are already in
flight) count as infinitely slow. The engine is checked to be running (``candles_processed``
increasing, read with httpx) across the window. Before the open-loop window, requests one at a
time for a few seconds give the service time without queueing; before everything, a server
whose engine is not started gives the idle reference.

Usage: ``python benchmarks/api_latency.py [--rate 200] [--seconds 20] [--idle-seconds 5]
[--closed-seconds 5] [--timeout 2] [--pin]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from lootcapital.bootstrap import import_data
from lootcapital.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
ENDPOINTS = ("/api/v1/status", "/api/v1/positions")
TOKEN = "benchmark-token-0123456789abcdef"
HOST = "127.0.0.1"
TARGET_P99_MS = 10.0
WARMUP_S = 1.0
MAX_IN_FLIGHT = 100
START_TIMEOUT_S = 90.0


@dataclass
class Window:
    """One measured window: latency (s) from each request's scheduled send time to the end of
    its response (inf when it failed or timed out), and the client's lag in sending it."""

    latency: np.ndarray
    lag: np.ndarray
    seconds: float
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        ms = self.latency * 1000
        with np.errstate(invalid="ignore"):  # percentiles among failures (inf) are inf
            p50, p99 = (_ms(v) for v in np.percentile(ms, [50, 99]))
        done = ms[np.isfinite(ms)]
        top = _ms(done.max()) if len(done) else "-"
        lag99 = np.nanpercentile(self.lag, 99) * 1000 if np.isfinite(self.lag).any() else 0.0
        failed = f", {len(self.errors)} failed ({_first(self.errors)})" if self.errors else ""
        return (
            f"{len(done):,} ok{failed}: p50 {p50}  p99 {p99}  max ok {top}  "
            f"({len(ms) / self.seconds:.0f} req/s scheduled; client send lag p99 {lag99:.1f} ms)"
        )

    @property
    def p99_ms(self) -> float:
        with np.errstate(invalid="ignore"):
            return float(np.percentile(self.latency, 99) * 1000)


def _ms(value: float) -> str:
    return f"{value:8.2f} ms" if np.isfinite(value) else "   failed (> timeout or not sent)"


def _first(errors: list[str]) -> str:
    kinds = dict.fromkeys(errors)
    return "; ".join(list(kinds)[:2])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def serve_command() -> list[str]:
    """``lootcapital`` of this interpreter's environment (or the same entry point via -c)."""
    script = Path(sys.executable).with_name("lootcapital")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from lootcapital.cli import main; sys.exit(main())"]


class Server:
    """``lootcapital serve`` in a subprocess, logging to a file; stopped with SIGINT."""

    def __init__(
        self, data_dir: Path, name: str, *, autostart: bool, cpus: set[int] | None
    ) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log = data_dir / f"{name}.log"
        env = {
            **os.environ,
            "LOOTCAPITAL_DATA_DIR": str(data_dir),
            "LOOTCAPITAL_API_TOKEN": TOKEN,
            "LOOTCAPITAL_DATABASE_URL": f"sqlite:///{data_dir / name}.db",
            "LOOTCAPITAL_AUTOSTART": "true" if autostart else "false",
        }
        args = ["serve", "--host", HOST, "--port", str(self.port), "--speed", "10000000"]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [*serve_command(), *args, "--symbols", *SYMBOLS],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
            )

    def wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.url}/api/v1/healthz", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class Connections:
    """Keep-alive HTTP/1.1 connections to the server, one request at a time on each.

    A minimal client (prebuilt request bytes, ``Content-Length`` bodies) so that the load
    generator costs a small fraction of what the server does: httpx spends over 1 ms of CPU per
    request, which on a small machine competes with the server being measured.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def get(self, path: str, timeout: float) -> str | None:
        """GET ``path`` within ``timeout`` s; None on 200, else why it failed."""
        try:
            return await asyncio.wait_for(self._get(path), timeout)
        except TimeoutError:
            return f"timed out after {timeout:g} s"
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            return type(exc).__name__

    async def _get(self, path: str) -> str | None:
        while self.idle:
            reader, writer = self.idle.pop()
            if not reader.at_eof():  # the server closes connections idle for 5 s
                try:
                    return await self._request(reader, writer, path)
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    if getattr(exc, "partial", b""):  # closed mid-response: a real failure
                        raise
            writer.close()  # closed by the server before this request: use another
        reader, writer = await asyncio.open_connection(HOST, self.port)
        return await self._request(reader, writer, path)

    async def _request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
    ) -> str | None:
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            await reader.readexactly(int(fields["content-length"]))
        except BaseException:  # cancelled or broken mid-request: the connection is unusable
            writer.close()
            raise
        if fields.get("connection") == "close":
            writer.close()
        else:
            self.idle.append((reader, writer))
        return None if status == 200 else f"HTTP {status}"

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def measure(
    conns: Connections, path: str, rate: float, seconds: float, timeout: float
) -> Window:
    """GET ``path`` open-loop at ``rate``/s for ``seconds`` after ``WARMUP_S`` not counted.

    A request due while :data:`MAX_IN_FLIGHT` are still unanswered is not sent and counts as
    failed (the server is then far past the target; this keeps the client from flooding it
    with connections); a request unanswered after ``timeout`` s fails.
    """
    warm, n = int(rate * WARMUP_S), int(rate * seconds)
    latency, lag = np.full(n, np.inf), np.full(n, np.nan)
    window = Window(latency, lag, seconds)
    in_flight: set[asyncio.Task] = set()

    async def one(k: int, due: float) -> None:
        sent = time.perf_counter()
        failed = await conns.get(path, timeout)
        done = time.perf_counter()
        if k < warm:
            return
        lag[k - warm] = sent - due
        if failed is None:
            latency[k - warm] = done - due
        else:
            window.errors.append(failed)

    t0 = time.perf_counter() + 0.05
    for k in range(warm + n):
        due = t0 + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= MAX_IN_FLIGHT:
            if k >= warm:
                window.errors.append(f"not sent: {MAX_IN_FLIGHT} requests in flight")
            continue
        task = asyncio.create_task(one(k, due))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(set(in_flight))
    return window


async def closed_loop(conns: Connections, path: str, seconds: float, timeout: float) -> str:
    """One request at a time for ``seconds``: the service time without queueing."""
    took: list[float] = []
    end = time.perf_counter() + seconds
    while (now := time.perf_counter()) < end:
        failed = await conns.get(path, timeout)
        took.append((time.perf_counter() - now) * 1000 if failed is None else np.inf)
    with np.errstate(invalid="ignore"):
        p50, p99 = np.percentile(took, [50, 99])
    return f"{len(took) / seconds:,.0f} req/s, p50 {_ms(p50)}  p99 {_ms(p99)}"


async def status(client: httpx.AsyncClient) -> tuple[float, dict]:
    response = await client.get("/api/v1/status", timeout=60.0)
    response.raise_for_status()
    return time.perf_counter(), response.json()


async def wait_engine(client: httpx.AsyncClient) -> dict:
    """The status once the engine has processed its first candles (or stopped)."""
    deadline = time.perf_counter() + START_TIMEOUT_S
    while True:
        _, body = await status(client)
        if body["candles_processed"] > 0 or not body["running"]:
            return body
        if time.perf_counter() > deadline:
            return body
        await asyncio.sleep(0.1)


def client_for(server: Server) -> httpx.AsyncClient:
    """An httpx client for the status checks and the engine control (not the measured load)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60.0, trust_env=False)


async def bench_idle(server: Server, args: argparse.Namespace) -> None:
    """Each endpoint at ``rate`` with the engine not started: the reference."""
    async with client_for(server) as client:
        _, body = await status(client)
    print(f"  idle reference (engine not started: running={body['running']}):")
    conns = Connections(server.port)
    try:
        for path in ENDPOINTS:
            if args.closed_seconds > 0:
                line = await closed_loop(conns, path, args.closed_seconds / 2, args.timeout)
                print(f"    {path:<18} one request at a time: {line}")
            idle = await measure(conns, path, args.rate, args.idle_seconds, args.timeout)
            print(f"    {path:<18} {args.idle_seconds:g} s at {args.rate:g} req/s: {idle.line()}")
    finally:
        conns.close()


async def bench_loaded(server: Server, path: str, args: argparse.Namespace) -> bool:
    """Measure ``path`` while the engine replays; print; True when the target is met."""
    conns = Connections(server.port)
    async with client_for(server) as client:
        first = await wait_engine(client)
        if not first["running"]:
            print(f"  {path}: the engine is not running: {first['stopped_reason']}")
            return False
        print(f"  {path} while the engine replays at full speed ({first['strategy']}):")
        try:
            if args.closed_seconds > 0:
                line = await closed_loop(conns, path, args.closed_seconds, args.timeout)
                print(f"    one request at a time, {args.closed_seconds:g} s: {line}")
            t0, before = await status(client)
            loaded = await measure(conns, path, args.rate, args.seconds, args.timeout)
            t1, after = await status(client)
        finally:
            conns.close()
    done = after["candles_processed"] - before["candles_processed"]
    engine_ok = after["running"] and done > 0
    print(f"    open loop, {args.rate:g} req/s for {args.seconds:g} s: {loaded.line()}")
    print(
        f"    engine: candles_processed {before['candles_processed']:,} -> "
        f"{after['candles_processed']:,} ({done / (t1 - t0):,.0f} candles/s over the window), "
        f"running at the end: {after['running']}"
        + ("" if engine_ok else "  (NOT RUNNING THROUGHOUT: the figures are not under load)")
    )
    met = engine_ok and loaded.p99_ms < TARGET_P99_MS
    print(
        f"    p99 under load {_ms(loaded.p99_ms).strip()} (target < {TARGET_P99_MS:g} ms): "
        f"{'ok' if met else 'MISSED'}"
    )
    return met


def import_candles(data_dir: Path) -> None:
    started = time.perf_counter()
    files = [DATA / f"binance_usdm_{s}_5m.csv.gz" for s in SYMBOLS]
    reports = import_data(Settings(data_dir=data_dir), files, exchange="binance-usdm")
    rows = sum(r.rows for r in reports)
    print(
        f"imported {len(files)} files ({rows:,} candles) into {data_dir} in "
        f"{time.perf_counter() - started:.1f} s"
    )


def split_cpus(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(client CPUs, server CPUs): the first CPU for the client and the others for the server
    when ``pin`` and there are at least two, so the load generator does not take the server's
    CPU; (None, None) otherwise."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def with_server(
    data_dir: Path,
    name: str,
    autostart: bool,
    server_cpus: set[int] | None,
    run: Callable[[Server], Awaitable[object]],
) -> bool:
    """Start a server, ``asyncio.run(run(server))``, stop it; False when it did not start."""
    server = Server(data_dir, name, autostart=autostart, cpus=server_cpus)
    try:
        if not server.wait_ready():
            print(f"  server {name} did not start; its log:\n{server.log_tail()}")
            return False
        return bool(asyncio.run(run(server)))
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured s per endpoint")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="0: no idle reference")
    parser.add_argument("--closed-seconds", type=float, default=5.0, help="0: no closed loop")
    parser.add_argument("--timeout", type=float, default=2.0, help="httpx timeouts (s)")
    parser.add_argument(
        "--pin", action="store_true", help="client on the first CPU, server on the others"
    )
    args = parser.parse_args()
    client_cpus, server_cpus = split_cpus(args.pin)
    if client_cpus and server_cpus:
        os.sched_setaffinity(0, client_cpus)
        print(f"client pinned to CPU {sorted(client_cpus)}, server to CPUs {sorted(server_cpus)}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on "
          f"{os.cpu_count()} CPUs (other processes inflate the tails)")  # fmt: skip
    data_dir = Path(tempfile.mkdtemp(prefix="lootcapital-api-bench-"))
    results = {}
    try:
        import_candles(data_dir)
        if args.idle_seconds > 0:
            with_server(data_dir, "idle", False, server_cpus, lambda srv: bench_idle(srv, args))
        for k, path in enumerate(ENDPOINTS):
            results[path] = with_server(
                data_dir,
                f"loaded{k}",
                True,
                server_cpus,
                lambda srv, p=path: bench_loaded(srv, p, args),
            )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    met = all(results.get(p, False) for p in ENDPOINTS)
    print(f"verdict: p99 < {TARGET_P99_MS:g} ms on both endpoints: {'ok' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
