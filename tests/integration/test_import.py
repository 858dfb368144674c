"""Importing real kline files into the Parquet store through the market-data use cases."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from adapters.marketdata.binance_csv import infer_symbol_timeframe, read_klines
from adapters.marketdata.parquet_store import ParquetCandleStore
from domain.candles import Gap
from domain.errors import ConfigError, DataError
from service_layer.market_data import import_files, list_series
from tests.fixtures.data import sample_dir, shared_file

M5 = 300_000
SAMPLE_FILES = [f"binance_usdm_{s}_5m.csv.gz" for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")]


def _copy_lines(source: Path, dest: Path, keep: slice, drop: range = range(0)) -> list[str]:
    """Write the header and rows ``keep`` (minus ``drop``) of a gzip CSV; returns the rows."""
    lines = gzip.decompress(source.read_bytes()).decode().splitlines()
    rows = [r for i, r in enumerate(lines[1:][keep]) if i not in drop]
    dest.write_text("\n".join([lines[0], *rows]) + "\n")
    return rows


def test_imports_the_shipped_sample_inferring_symbol_and_timeframe(tmp_path: Path) -> None:
    store = ParquetCandleStore(tmp_path)
    paths = [sample_dir() / name for name in SAMPLE_FILES]

    reports = import_files(
        paths,
        reader=read_klines,
        store=store,
        exchange="binance_usdm",
        infer=infer_symbol_timeframe,
    )

    assert [(r.symbol, r.timeframe, r.rows, r.gaps) for r in reports] == [
        ("BTCUSDT", "5m", 17_280, ()),
        ("ETHUSDT", "5m", 17_280, ()),
        ("SOLUSDT", "5m", 17_280, ()),
    ]
    assert reports[0].first_open_time == 1_756_771_200_000  # 2025-09-02 00:00 UTC
    assert reports[0].last_open_time == 1_761_954_900_000  # 2025-10-31 23:55 UTC
    assert [s.symbol for s in list_series(store)] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def test_gaps_in_a_file_are_reported_not_filled(tmp_path: Path) -> None:
    source = shared_file("binance_usdm_BTCUSDT_1m.csv.gz")
    path = tmp_path / "binance_usdm_BTCUSDT_1m.csv"
    rows = _copy_lines(source, path, slice(0, 600), drop=range(100, 105))
    store = ParquetCandleStore(tmp_path / "store")

    (report,) = import_files(
        [path],
        reader=read_klines,
        store=store,
        exchange="binance_usdm",
        infer=infer_symbol_timeframe,
    )

    first_missing = int(rows[99].split(",")[0]) + 60_000  # rows[99] is the last before the gap
    assert report.gaps == (Gap(first_missing, first_missing + 4 * 60_000, 5),)
    assert report.stored.rows == report.rows == 595
    assert report.stored.gaps == report.gaps


def test_an_archive_file_imports_with_explicit_symbol_and_timeframe(tmp_path: Path) -> None:
    source = shared_file("binance_spot_BTCUSDT_5m.csv.gz")
    path = tmp_path / "download.csv"
    _copy_lines(source, path, slice(0, 288))
    store = ParquetCandleStore(tmp_path / "store")

    (report,) = import_files(
        [path],
        reader=read_klines,
        store=store,
        exchange="binance_spot",
        symbol="btcusdt",
        timeframe="5m",
    )

    assert (report.symbol, report.rows) == ("BTCUSDT", 288)
    assert "trades" in store.read("binance_spot", "BTCUSDT", "5m").extra


def test_reimporting_merges_into_the_stored_series(tmp_path: Path) -> None:
    source = shared_file("binance_usdm_ETHUSDT_5m.csv.gz")
    first, second = (
        tmp_path / "a" / "binance_usdm_ETHUSDT_5m.csv",
        tmp_path / "b" / "binance_usdm_ETHUSDT_5m.csv",
    )
    first.parent.mkdir()
    second.parent.mkdir()
    _copy_lines(source, first, slice(0, 300))
    _copy_lines(source, second, slice(200, 500))
    store = ParquetCandleStore(tmp_path / "store")

    reports = import_files(
        [first, second],
        reader=read_klines,
        store=store,
        exchange="binance_usdm",
        infer=infer_symbol_timeframe,
    )

    assert [r.rows for r in reports] == [300, 300]
    assert reports[-1].stored.rows == 500


def test_a_bad_file_writes_nothing_and_names_file_and_row(tmp_path: Path) -> None:
    good = tmp_path / "binance_usdm_BTCUSDT_5m.csv.gz"
    shutil.copyfile(sample_dir() / good.name, good)
    bad = tmp_path / "binance_usdm_ETHUSDT_5m.csv"
    rows = _copy_lines(shared_file(f"{bad.name}.gz"), bad, slice(0, 50))
    fields = rows[41].split(",")
    fields[2] = str(float(fields[3]) - 1)  # row 42: high below low
    bad.write_text(bad.read_text().replace(rows[41], ",".join(fields)))
    store = ParquetCandleStore(tmp_path / "store")

    with pytest.raises(DataError) as caught:
        import_files(
            [good, bad],
            reader=read_klines,
            store=store,
            exchange="binance_usdm",
            infer=infer_symbol_timeframe,
        )

    assert (caught.value.source, caught.value.row) == (str(bad), 42)
    assert list_series(store) == []


def test_a_name_without_symbol_or_timeframe_needs_them_given(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    _copy_lines(shared_file("binance_usdm_BTCUSDT_5m.csv.gz"), path, slice(0, 10))
    store = ParquetCandleStore(tmp_path / "store")

    with pytest.raises(ConfigError, match=r"symbol and timeframe of .*prices\.csv"):
        import_files(
            [path],
            reader=read_klines,
            store=store,
            exchange="binance_usdm",
            infer=infer_symbol_timeframe,
        )


@pytest.mark.parametrize(
    ("timeframe", "message"),
    [("1m", "no two bars are 60000 ms apart"), ("15m", "not a multiple of the 15m timeframe")],
)
def test_bar_spacing_must_fit_the_timeframe(tmp_path: Path, timeframe: str, message: str) -> None:
    path = tmp_path / "binance_usdm_BTCUSDT_5m.csv"
    _copy_lines(shared_file(path.name + ".gz"), path, slice(0, 30))
    store = ParquetCandleStore(tmp_path / "store")

    with pytest.raises(DataError, match=message):
        import_files(
            [path],
            reader=read_klines,
            store=store,
            exchange="binance_usdm",
            timeframe=timeframe,
            symbol="BTCUSDT",
        )

    assert list_series(store) == []
