"""The real ``lootcapital serve`` in a subprocess, its venue URLs pointed at a fake Binance
USDⓈ-M on loopback, seen over HTTP: shared by the end-to-end tests of the live and the
paper-on-a-live-feed modes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.integration.paper_harness import free_port
from tests.venues.binance_fake import FakeBinanceUsdm

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-token-0123456789abcdef"
STATUS_WAIT_S = 60  # a bound, not a speed: the subprocess imports ccxt and the app first


@dataclass(frozen=True)
class Server:
    """A running ``serve``: ``client`` asks its ``/api/v1`` with the API token; its stderr
    goes to ``log``."""

    client: httpx.Client
    proc: subprocess.Popen[bytes]
    log: Path
    port: int

    def until(self, done: Callable[[dict], bool]) -> dict:
        """Poll ``GET /status`` until ``done(status)`` and return that status.

        Raises:
            AssertionError: the server exited (with its log).
            TimeoutError: no such status within ``STATUS_WAIT_S`` seconds.
        """
        deadline = time.monotonic() + STATUS_WAIT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"serve exited with {self.proc.returncode}:\n{self.log.read_text()}"
                )
            try:
                status = self.client.get("/status").json()
            except httpx.TransportError:
                status = None
            if status is not None and done(status):
                return status
            time.sleep(0.02)
        raise TimeoutError(f"no such status in {STATUS_WAIT_S} s:\n{self.log.read_text()[-3000:]}")

    def play(
        self, fake: FakeBinanceUsdm, symbols: Sequence[str], end_ms: int, bars: int
    ) -> tuple[dict, dict]:
        """Wait until the run is running and ``fake`` has the 5m kline streams of ``symbols``
        subscribed, stream its bars up to ``end_ms`` (venue time, ms) and wait until ``bars``
        bars of each symbol are processed: the status at the start and the one at the end.

        Raises:
            AssertionError, TimeoutError: as :meth:`until`.
        """
        started = self.until(lambda s: s["running"])
        streams = {f"{s.lower()}@kline_5m" for s in symbols}
        self.until(lambda _: streams <= fake.subscribed())
        fake.play(end_ms, pause_s=0.005)
        status = self.until(lambda s: s["candles_processed"] == bars * len(symbols))
        return started, status


def start_serve(
    tmp_path: Path,
    fake: FakeBinanceUsdm,
    port: int,
    args: Sequence[str],
    env: Mapping[str, str],
) -> subprocess.Popen[bytes]:
    """Start ``python -m lootcapital.cli *args`` on ``port`` with ``sma_cross``, its data under
    ``tmp_path``, an empty sample folder, the fake's URLs, no ``LOOTCAPITAL_`` variable of this
    process and ``env`` over those; its stderr goes to ``tmp_path / "serve.log"``."""
    sample = tmp_path / "sample"  # no kline or funding file: nothing replayed, nothing funded
    sample.mkdir()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LOOTCAPITAL_")}
    environ.update(
        LOOTCAPITAL_DATA_DIR=str(tmp_path / "data"),
        LOOTCAPITAL_SAMPLE_DIR=str(sample),
        LOOTCAPITAL_API_TOKEN=TOKEN,
        LOOTCAPITAL_PORT=str(port),
        LOOTCAPITAL_LOG_LEVEL="WARNING",
        LOOTCAPITAL_STRATEGY="sma_cross",
        LOOTCAPITAL_VENUES__BINANCE_USDM__REST_URL=fake.rest_url,
        LOOTCAPITAL_VENUES__BINANCE_USDM__WS_URL=fake.ws_url,
    )
    environ.update(env)
    with (tmp_path / "serve.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "lootcapital.cli", *args],
            cwd=REPO_ROOT,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


@contextmanager
def serving(
    tmp_path: Path, fake: FakeBinanceUsdm, args: Sequence[str], env: Mapping[str, str]
) -> Iterator[Server]:
    """:func:`start_serve` on a free port and the client to ask it; the server is terminated
    (and waited for, at most 15 s) on the way out."""
    port = free_port()
    log = tmp_path / "serve.log"
    proc = start_serve(tmp_path, fake, port, args, env)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers=headers) as client:
            yield Server(client, proc, log, port)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
