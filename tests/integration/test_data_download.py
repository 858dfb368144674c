"""``lootcapital data download`` against the fake Binance USDⓈ-M on loopback, real 5m bars.

The command runs in process, as a user runs it, with the venue's URLs from the environment
(``LOOTCAPITAL_VENUES__BINANCE_USDM__*``) and the store in a temporary data directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from adapters.marketdata.parquet_store import ParquetCandleStore
from domain.candles import Candles
from lootcapital.cli import main
from lootcapital.report import fmt_ms
from tests.fixtures.data import load_candles
from tests.venues.binance_fake import FakeBinanceUsdm

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC; the venue's clock is one minute later
START = T0 - 1_500 * M5
MIDDLE = T0 - 300 * M5


@pytest.fixture
def fake() -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=SimulatedClock(T0 + 60_000), symbols=("BTCUSDT",)) as venue:
        yield venue


@pytest.fixture
def data_dir(tmp_path: Path, fake: FakeBinanceUsdm, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LOOTCAPITAL_CONFIG", raising=False)
    monkeypatch.setenv("LOOTCAPITAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOOTCAPITAL_VENUES__BINANCE_USDM__REST_URL", fake.rest_url)
    monkeypatch.setenv("LOOTCAPITAL_VENUES__BINANCE_USDM__WS_URL", fake.ws_url)
    monkeypatch.setenv("LOOTCAPITAL_VENUES__BINANCE_USDM__BACKOFF_S", "0.01")
    return tmp_path


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _download(*options: str) -> int:
    return main(["data", "download", "--venue", "binance-usdm", "--symbol", "BTCUSDT", *options])


def _stored(data_dir: Path) -> Candles:
    return ParquetCandleStore(data_dir).read("binance-usdm", "BTCUSDT", "5m")


def _file_bars(start: int, end: int, *, without: tuple[int, ...] = ()) -> Candles:
    bars = load_candles("binance_usdm_BTCUSDT_5m.csv.gz").between(start, end)
    keep = ~np.isin(bars.open_time, without)
    columns = ("open_time", "open", "high", "low", "close", "volume")
    return Candles(*(getattr(bars, c)[keep] for c in columns))


def _assert_same_bars(got: Candles, expected: Candles) -> None:
    np.testing.assert_array_equal(got.open_time, expected.open_time)
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


def test_download_stores_the_venues_bars_and_reports_the_gap_it_left(
    fake: FakeBinanceUsdm, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hole = tuple(START + k * M5 for k in range(400, 403))
    fake.omit("BTCUSDT", hole)

    period = ("--start", _iso(START), "--end", _iso(MIDDLE))

    code = _download("--timeframe", "5m", *period, "--progress")

    out, err = capsys.readouterr()
    assert code == 0, err
    _assert_same_bars(_stored(data_dir), _file_bars(START, MIDDLE, without=hole))
    assert f"gap: 3 bars missing {fmt_ms(hole[0])} → {fmt_ms(hole[-1])}" in out
    assert "1,197 bars" in out
    assert err.startswith("\rdownload [") and err.endswith("100 %\n")


def test_a_second_run_resumes_after_the_last_stored_bar(
    fake: FakeBinanceUsdm, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _download("--start", _iso(START), "--end", _iso(MIDDLE)) == 0
    first_run_requests = len(fake.queries)

    code = _download("--start", _iso(START))

    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"resumed after {fmt_ms(MIDDLE - M5)}" in out
    resumed = fake.queries[first_run_requests:]
    assert [int(q["startTime"]) for q in resumed] == [MIDDLE]
    _assert_same_bars(_stored(data_dir), _file_bars(START, T0))  # up to the last closed bar


def test_an_interrupted_download_keeps_what_it_fetched_and_a_rerun_completes_it(
    fake: FakeBinanceUsdm, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.fail_next("/fapi/v1/klines", 418, after=1, retry_after_s=60)  # banned at page 2
    period = ("--start", _iso(START), "--end", _iso(MIDDLE))

    interrupted = _download(*period)

    _, err = capsys.readouterr()
    assert interrupted == 1
    assert "banned this client until" in err and "HTTP 418" in err
    _assert_same_bars(_stored(data_dir), _file_bars(START, START + 1_000 * M5))  # page 1
    assert _download(*period) == 0
    out, _ = capsys.readouterr()
    assert f"resumed after {fmt_ms(START + 999 * M5)}" in out
    _assert_same_bars(_stored(data_dir), _file_bars(START, MIDDLE))


def test_bad_input_is_refused_naming_the_option(
    fake: FakeBinanceUsdm, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {
        "--start": ["--start", "last tuesday"],
        "--end": ["--start", _iso(MIDDLE), "--end", _iso(START)],
        "--timeframe": ["--start", _iso(START), "--timeframe", "1w"],
        "--symbol": ["--start", _iso(START), "--symbol", "NOSUCHUSDT"],
    }
    refused = {}
    for option, arguments in cases.items():
        code = _download(*arguments)
        refused[option] = (code, capsys.readouterr().err)

    for option, (code, err) in refused.items():
        assert code == 2 and err.startswith(f"error: {option}"), (option, err)
    assert not (data_dir / "candles").exists()
