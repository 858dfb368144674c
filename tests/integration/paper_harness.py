"""Helpers to run the real paper-trading stack (bootstrap, SQLite, replay feed) in tests."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

from lootcapital.bootstrap import Container, bootstrap
from lootcapital.settings import Settings
from tests.fixtures.data import sample_dir

EXCHANGE_INFO = "binance_usdm_exchange_info_20251030.json"


def trimmed_sample(target: Path, symbols: list[str], bars: int) -> Path:
    """A sample folder holding the first ``bars`` real 5m bars of each symbol."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(sample_dir() / EXCHANGE_INFO, target / EXCHANGE_INFO)
    for symbol in symbols:
        name = f"binance_usdm_{symbol}_5m.csv.gz"
        with gzip.open(sample_dir() / name, "rt") as src:
            lines = [next(src) for _ in range(bars + 1)]
        with gzip.open(target / name, "wt") as dst:
            dst.writelines(lines)
    return target


def paper_settings(data_dir: Path, sample: Path, symbols: list[str], **extra: object) -> Settings:
    """Settings for a fast, non-autostarting paper run on ``sample``."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "sample_dir": sample,
        "symbols": symbols,
        "api_token": "test-token-0123456789",
        "speed": 10_000_000.0,
        "autostart": False,
    }
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


def run_until(container: Container, *, candles: int | None = None, timeout: float = 60.0) -> None:
    """Wait until the engine stopped (end of data) or processed ``candles`` bars, then stop."""
    service = container.service
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = service.status()
        if not status.running or (candles is not None and status.candles_processed >= candles):
            break
        time.sleep(0.01)
    else:
        raise TimeoutError(f"paper run did not finish in {timeout} s")
    service.stop()


def start(settings: Settings) -> Container:
    """Bootstrap and start the engine."""
    container = bootstrap(settings)
    container.service.start()
    return container
