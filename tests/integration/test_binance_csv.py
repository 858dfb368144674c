"""Reading real Binance kline and funding files, in every layout, and rejecting bad rows."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from adapters.marketdata.binance_csv import (
    ARCHIVE_COLUMNS,
    infer_symbol_timeframe,
    read_klines,
)
from domain.candles import find_gaps
from domain.errors import DataError
from tests.fixtures.data import shared_file

M5 = 300_000
NORMALIZED_HEADER = "open_time,open,high,low,close,volume"


def _rows(name: str, count: int) -> tuple[str, list[list[str]]]:
    """Header and the first ``count`` data rows of a shared gzip CSV, as text fields."""
    lines = gzip.decompress(shared_file(name).read_bytes()).decode().splitlines()
    return lines[0], [line.split(",") for line in lines[1 : count + 1]]


def _write(path: Path, header: str | None, rows: list[list[str]]) -> Path:
    text = "\n".join(([header] if header else []) + [",".join(r) for r in rows]) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _archive_rows(count: int, scale: int) -> list[list[str]]:
    """Real spot rows laid out as the Binance archive (12 columns), times multiplied by scale."""
    _, rows = _rows("binance_spot_BTCUSDT_5m.csv.gz", count)
    return [[str(int(r[0]) * scale), *r[1:6], str(int(r[6]) * scale), *r[7:11], "0"] for r in rows]


def test_reads_the_normalized_file_with_its_zero_volume_maintenance_bars() -> None:
    path = shared_file("binance_usdm_BTCUSDT_5m.csv.gz")

    candles = read_klines(path)

    assert len(candles) == 87_840
    assert candles.extra == {}
    assert candles.open_time[0] == 1_735_603_200_000
    maintenance = candles.between(1_756_448_400_000, 1_756_449_300_000)  # 08-29 06:20..06:35
    assert maintenance.volume.tolist() == [0.0, 0.0, 0.0]
    assert find_gaps(candles.open_time, M5) == []


def test_reads_the_normalized_file_with_extra_columns() -> None:
    candles = read_klines(shared_file("binance_spot_BTCUSDT_5m.csv.gz"))

    assert len(candles) == 16_992
    assert set(candles.extra) == {"quote_volume", "trades", "taker_buy_base", "taker_buy_quote"}
    assert candles.extra["trades"][0] == 7448
    assert candles.extra["quote_volume"][0] == pytest.approx(4301907.4838205)


def test_reads_a_headerless_archive_file_with_microsecond_timestamps(tmp_path: Path) -> None:
    path = _write(tmp_path / "BTCUSDT-5m-2025-01.csv", None, _archive_rows(200, 1000))
    expected = read_klines(shared_file("binance_spot_BTCUSDT_5m.csv.gz")).slice(0, 200)

    candles = read_klines(path)

    np.testing.assert_array_equal(candles.open_time, expected.open_time)
    assert candles.open_time[0] == 1_735_689_600_000  # ms, not µs
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(candles, column), getattr(expected, column))
    for name, values in expected.extra.items():
        np.testing.assert_array_equal(candles.extra[name], values)


def test_reads_an_archive_file_with_header_row_and_ms_timestamps(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "BTCUSDT-5m-2025-01.csv.gz", ",".join(ARCHIVE_COLUMNS), _archive_rows(50, 1)
    )

    candles = read_klines(path)

    assert len(candles) == 50
    assert candles.open_time[1] - candles.open_time[0] == M5
    assert set(candles.extra) == {"quote_volume", "trades", "taker_buy_base", "taker_buy_quote"}


def test_gaps_are_kept_not_filled(tmp_path: Path) -> None:
    header, rows = _rows("binance_usdm_BTCUSDT_5m.csv.gz", 40)
    path = _write(tmp_path / "gappy.csv", header, rows[:10] + rows[13:])

    candles = read_klines(path)

    assert len(candles) == 37
    assert find_gaps(candles.open_time, M5)[0].first_missing == int(rows[10][0])
    assert find_gaps(candles.open_time, M5)[0].bars == 3


def _set(row: int, column: int, value: str) -> Callable[[list[list[str]]], None]:
    def mutate(rows: list[list[str]]) -> None:
        rows[row - 1][column] = value

    return mutate


def _append_field(row: int) -> Callable[[list[list[str]]], None]:
    return lambda rows: rows[row - 1].append("1")


def _drop_field(row: int) -> Callable[[list[list[str]]], None]:
    return lambda rows: rows[row - 1].pop()


def _copy_time(row: int, from_row: int) -> Callable[[list[list[str]]], None]:
    def mutate(rows: list[list[str]]) -> None:
        rows[row - 1][0] = rows[from_row - 1][0]

    return mutate


def _low_above_body(row: int) -> Callable[[list[list[str]]], None]:
    """Low raised to the body's top: still <= high, but above min(open, close)."""

    def mutate(rows: list[list[str]]) -> None:
        r = rows[row - 1]
        r[3] = max(r[1], r[4], key=float)
        assert float(r[1]) != float(r[4])

    return mutate


# Columns: 0 open_time, 1 open, 2 high, 3 low, 4 close, 5 volume.
BAD_ROWS = [
    ("extra column", 4, _append_field(4), "expected 6 columns, found 7"),
    ("missing column", 9, _drop_field(9), "expected 6 columns, found 5"),
    ("text in high", 7, _set(7, 2, "abc"), "high is not a number: 'abc'"),
    ("empty close", 3, _set(3, 4, ""), "close is not a number"),
    ("duplicate open_time", 5, _copy_time(5, 4), "duplicates the previous"),
    ("time going back", 6, _copy_time(6, 2), "is before the previous"),
    ("zero price", 8, _set(8, 3, "0"), "prices must be > 0"),
    ("negative price", 2, _set(2, 1, "-1.5"), "prices must be > 0"),
    ("high below low", 10, _set(10, 2, "1000.0"), "high 1000.0 < low"),
    ("high below close", 11, _set(11, 4, "200000.0"), "< max(open"),
    ("low above the body", 12, _low_above_body(12), "> min(open"),
    ("negative volume", 13, _set(13, 5, "-0.001"), "volume must be >= 0, was -0.001"),
]


@pytest.mark.parametrize(
    ("row", "mutate", "message"),
    [case[1:] for case in BAD_ROWS],
    ids=[case[0] for case in BAD_ROWS],
)
def test_bad_row_is_named_with_file_and_row(
    tmp_path: Path, row: int, mutate: Callable[[list[list[str]]], None], message: str
) -> None:
    header, rows = _rows("binance_usdm_BTCUSDT_5m.csv.gz", 20)
    mutate(rows)
    path = _write(tmp_path / "bad.csv.gz", header, rows)

    with pytest.raises(DataError) as caught:
        read_klines(path)

    assert caught.value.source == str(path)
    assert caught.value.row == row
    assert f"{path}, row {row}: " in str(caught.value)
    assert message in str(caught.value)


def test_the_earliest_bad_row_wins_whatever_its_problem(tmp_path: Path) -> None:
    header, rows = _rows("binance_usdm_BTCUSDT_5m.csv.gz", 20)
    rows[14].append("1")  # row 15: wrong width
    rows[11][0] = rows[10][0]  # row 12: duplicate time
    rows[7][2] = "1.0"  # row 8: high < low
    path = _write(tmp_path / "bad.csv", header, rows)

    with pytest.raises(DataError) as caught:
        read_klines(path)

    assert caught.value.row == 8


def test_missing_column_is_named(tmp_path: Path) -> None:
    _, rows = _rows("binance_usdm_BTCUSDT_5m.csv.gz", 5)
    path = _write(
        tmp_path / "no_volume.csv", "open_time,open,high,low,close", [r[:5] for r in rows]
    )

    with pytest.raises(DataError, match=r"missing column.*volume"):
        read_klines(path)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read file"):
        read_klines(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("binance_usdm_BTCUSDT_5m.csv.gz", ("BTCUSDT", "5m")),
        ("/data/binance_spot_ETHUSDT_1m.csv.gz", ("ETHUSDT", "1m")),
        ("BTCUSDT-5m-2025-01.csv", ("BTCUSDT", "5m")),
        ("SOLUSDT-1h-2025-06-30.csv.gz", ("SOLUSDT", "1h")),
        ("BTC_USDT_USDT-5m-futures.csv", ("BTCUSDT", "5m")),
        ("ETH_USDT-4h.feather", ("ETHUSDT", "4h")),
        ("binance_usdm_BTCUSDT_funding.csv.gz", ("BTCUSDT", None)),
        ("prices.csv", (None, None)),
    ],
)
def test_infers_symbol_and_timeframe_from_the_file_name(
    name: str, expected: tuple[str | None, str | None]
) -> None:
    assert infer_symbol_timeframe(name) == expected
