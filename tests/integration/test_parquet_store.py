"""The Parquet candle store on real bars: round trip, merge, atomic writes, listing gaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from adapters.marketdata.binance_csv import read_klines
from adapters.marketdata.parquet_store import ParquetCandleStore
from domain.candles import Candles, Gap
from domain.errors import ConfigError, DataError, UnknownSymbol
from tests.fixtures.data import sample_dir, shared_file

M5 = 300_000


@pytest.fixture(scope="module")
def btc() -> Candles:
    return read_klines(sample_dir() / "binance_usdm_BTCUSDT_5m.csv.gz")


def _assert_same(got: Candles, expected: Candles) -> None:
    for column in ("open_time", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(got, column), getattr(expected, column))
    assert got.extra.keys() == expected.extra.keys()
    for name, values in expected.extra.items():
        np.testing.assert_array_equal(got.extra[name], values)


def test_round_trip_keeps_every_bar(tmp_path: Path, btc: Candles) -> None:
    store = ParquetCandleStore(tmp_path)

    stored = store.write("binance_usdm", "BTCUSDT", "5m", btc)
    back = store.read("binance_usdm", "BTCUSDT", "5m")

    _assert_same(back, btc)
    assert (tmp_path / "candles" / "binance_usdm" / "BTCUSDT" / "5m.parquet").is_file()
    assert (stored.rows, stored.gaps) == (17_280, ())
    assert (stored.first_open_time, stored.last_open_time) == (
        int(btc.open_time[0]),
        int(btc.open_time[-1]),
    )


def test_read_returns_the_half_open_range(tmp_path: Path, btc: Candles) -> None:
    store = ParquetCandleStore(tmp_path)
    store.write("binance_usdm", "BTCUSDT", "5m", btc)
    start, end = int(btc.open_time[100]), int(btc.open_time[110])

    part = store.read("binance_usdm", "BTCUSDT", "5m", start, end)

    _assert_same(part, btc.slice(100, 110))


def test_merge_replaces_bars_with_the_same_open_time(tmp_path: Path) -> None:
    store = ParquetCandleStore(tmp_path)
    perp = read_klines(shared_file("binance_usdm_BTCUSDT_5m.csv.gz")).slice(288, 1288)
    spot = read_klines(shared_file("binance_spot_BTCUSDT_5m.csv.gz")).slice(500, 1500)
    store.write("binance", "BTCUSDT", "5m", perp)

    stored = store.write("binance", "BTCUSDT", "5m", spot)
    merged = store.read("binance", "BTCUSDT", "5m")

    assert spot.open_time[0] == perp.open_time[500]  # both start 2025-01-01 00:00 + 500 bars
    assert stored.rows == len(merged) == 1500
    np.testing.assert_array_equal(merged.close[:500], perp.close[:500])
    np.testing.assert_array_equal(merged.close[500:], spot.close)
    assert merged.extra == {}  # only the spot bars had extra columns


def test_merge_sorts_an_earlier_write_in_front(tmp_path: Path, btc: Candles) -> None:
    store = ParquetCandleStore(tmp_path)
    store.write("binance_usdm", "BTCUSDT", "5m", btc.slice(1000, 2000))

    store.write("binance_usdm", "BTCUSDT", "5m", btc.slice(0, 1000))

    _assert_same(store.read("binance_usdm", "BTCUSDT", "5m"), btc.slice(0, 2000))


def test_extra_columns_survive_a_round_trip(tmp_path: Path) -> None:
    store = ParquetCandleStore(tmp_path)
    spot = read_klines(shared_file("binance_spot_BTCUSDT_5m.csv.gz")).slice(0, 500)

    store.write("binance_spot", "BTCUSDT", "5m", spot)

    _assert_same(store.read("binance_spot", "btcusdt", "5m"), spot)


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, btc: Candles) -> None:
    ParquetCandleStore(tmp_path).write("binance_usdm", "BTCUSDT", "5m", btc.slice(0, 100))

    def disk_full(table: pa.Table, where: str) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("No space left on device")

    failing = ParquetCandleStore(tmp_path, write_table=disk_full)
    with pytest.raises(OSError, match="No space"):
        failing.write("binance_usdm", "BTCUSDT", "5m", btc.slice(100, 200))

    _assert_same(
        ParquetCandleStore(tmp_path).read("binance_usdm", "BTCUSDT", "5m"), btc.slice(0, 100)
    )
    folder = tmp_path / "candles" / "binance_usdm" / "BTCUSDT"
    assert [p.name for p in folder.iterdir()] == ["5m.parquet"]


def test_list_reports_every_series_with_its_gaps(tmp_path: Path, btc: Candles) -> None:
    store = ParquetCandleStore(tmp_path)
    store.write("binance_usdm", "ETHUSDT", "5m", btc.slice(0, 10).concat(btc.slice(13, 20)))
    store.write("binance_usdm", "BTCUSDT", "5m", btc)

    series = store.list()

    assert [(s.symbol, s.timeframe, s.rows) for s in series] == [
        ("BTCUSDT", "5m", 17_280),
        ("ETHUSDT", "5m", 17),
    ]
    assert series[0].gaps == ()
    missing = int(btc.open_time[10])
    assert series[1].gaps == (Gap(missing, missing + 2 * M5, 3),)


def test_list_of_an_empty_store_is_empty(tmp_path: Path) -> None:
    assert ParquetCandleStore(tmp_path / "nothing").list() == []


def test_reading_an_unknown_series_names_it(tmp_path: Path) -> None:
    store = ParquetCandleStore(tmp_path)

    with pytest.raises(UnknownSymbol, match="binance_usdm/DOGEUSDT/1h"):
        store.read("binance_usdm", "DOGEUSDT", "1h")


def test_unsafe_names_are_refused(tmp_path: Path, btc: Candles) -> None:
    store = ParquetCandleStore(tmp_path)

    with pytest.raises(ConfigError, match="symbol"):
        store.write("binance_usdm", "../../etc", "5m", btc.slice(0, 5))


def test_unordered_bars_are_refused(tmp_path: Path, btc: Candles) -> None:
    store = ParquetCandleStore(tmp_path)
    backwards = btc.slice(0, 5).concat(btc.slice(0, 5))

    with pytest.raises(DataError, match="strictly increasing"):
        store.write("binance_usdm", "BTCUSDT", "5m", backwards)
