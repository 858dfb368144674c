"""Reading the real funding-rate and mark-price files, and a year of funding for a held position.

The shared files are Binance USDⓈ-M perpetuals, 2024-12-31 00:00 to 2025-10-31 23:59 UTC:
915 funding events (00:00/08:00/16:00 UTC) and 7,320 hourly mark bars per symbol.
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from types import ModuleType

import pytest

from adapters.marketdata.binance_csv import read_klines
from adapters.marketdata.funding_csv import read_funding, read_mark_prices
from domain.account import MONEY_QUANTUM
from domain.errors import DataError
from domain.funding import (
    HOUR_MS,
    FundingPayment,
    MarkSource,
    funding_mark,
    funding_payment,
    funding_schedule_times,
    mark_at,
)
from tests.fixtures.data import REPO_ROOT, sample_dir, shared_file

D = Decimal
H8 = 8 * HOUR_MS
M5 = 300_000
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
FIRST = 1_735_603_200_000  # 2024-12-31 00:00 UTC
JAN_1_2025 = 1_735_689_600_000
JAN_1_2026 = 1_767_225_600_000


def _funding(symbol: str) -> Path:
    return shared_file(f"binance_usdm_{symbol}_funding.csv.gz")


def _lines(path: Path) -> list[str]:
    return gzip.decompress(path.read_bytes()).decode().splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


# -- the real files ---------------------------------------------------------------------------


def test_btcusdt_funding_is_915_events_on_the_8h_grid_with_exact_decimal_rates() -> None:
    path = _funding("BTCUSDT")

    rates = read_funding(path)

    assert len(rates) == 915
    assert rates[0] == (FIRST, D("0.0001"))
    assert rates.times[-1] == _ms("2025-10-31T16:00")
    assert all(b - a == H8 for a, b in pairwise(rates.times))  # no funding missing
    text = [line.split(",") for line in _lines(path)[1:]]
    assert list(rates.rates) == [D(rate) for _, rate in text]  # the file's digits, no float


def test_btcusdt_funding_over_2025_is_912_events_at_a_mean_of_0_00466_percent() -> None:
    events = read_funding(_funding("BTCUSDT")).between(JAN_1_2025 - 1, JAN_1_2026)

    total = sum(e.rate for e in events)

    assert len(events) == 912  # 2025-01-01 00:00 .. 2025-10-31 16:00, 3 a day for 304 days
    assert [e.time_ms for e in events] == funding_schedule_times(JAN_1_2025 - 1, events[-1].time_ms)
    assert total == D("0.04255164")
    assert total / len(events) == D("0.0000466575")  # 5.1 % a year at 3 fundings a day


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_every_symbol_reads_whole_with_rates_far_inside_the_bound(symbol: str) -> None:
    rates = read_funding(_funding(symbol))
    marks = read_mark_prices(shared_file(f"binance_usdm_{symbol}_mark_1h.csv.gz"))

    assert len(rates) == 915
    assert max(abs(r) for r in rates.rates) <= D("0.00302761")  # SOLUSDT's, the largest
    assert len(marks) == 7_320
    assert all(b - a == HOUR_MS for a, b in pairwise(marks.open_time.tolist()))
    assert all(mark_at(marks, t) is not None for t in rates.times)


def test_mark_prices_read_as_bars_without_volume() -> None:
    path = shared_file("binance_usdm_BTCUSDT_mark_1h.csv.gz")

    marks = read_mark_prices(path)

    first = _lines(path)[1].split(",")
    assert marks.open_time[0] == FIRST
    assert [marks.open[0], marks.high[0], marks.low[0], marks.close[0]] == [
        float(v) for v in first[1:]
    ]
    assert not marks.volume.any()
    assert marks.extra == {}
    assert mark_at(marks, FIRST) == D(first[1])  # 92760.05741135, the file's text
    with pytest.raises(DataError, match="missing column"):
        read_klines(path)  # why mark prices need their own reader


def test_a_1_btc_long_held_for_305_days_pays_4566_70_usdt_of_funding() -> None:
    rates = read_funding(_funding("BTCUSDT"))
    marks = read_mark_prices(shared_file("binance_usdm_BTCUSDT_mark_1h.csv.gz"))
    candles = read_klines(shared_file("binance_usdm_BTCUSDT_5m.csv.gz"))

    prices = [funding_mark(e.time_ms, candles, M5, marks) for e in rates]
    payments = [
        FundingPayment.settle(e, "BTCUSDT", D(1), p.price)
        for e, p in zip(rates, prices, strict=True)
    ]
    total = sum(p.amount for p in payments)

    assert {p.source for p in prices} == {MarkSource.MARK}
    assert total == D("4566.70082105")
    exact = sum(
        funding_payment(D(1), p.price, e.rate, None) for e, p in zip(rates, prices, strict=True)
    )
    assert abs(total - exact) <= len(payments) * MONEY_QUANTUM / 2
    short = sum(
        FundingPayment.settle(e, "BTCUSDT", D(-1), p.price).amount
        for e, p in zip(rates, prices, strict=True)
    )
    assert short == -total  # what the long pays, the short receives


def test_the_last_close_fallback_changes_a_year_of_funding_by_under_a_thousandth() -> None:
    rates = read_funding(_funding("BTCUSDT"))
    marks = read_mark_prices(shared_file("binance_usdm_BTCUSDT_mark_1h.csv.gz"))
    candles = read_klines(shared_file("binance_usdm_BTCUSDT_5m.csv.gz"))
    events = rates.between(FIRST, JAN_1_2026)  # the first has no 5m bar before it

    at_mark = sum(
        funding_payment(D(1), funding_mark(e.time_ms, candles, M5, marks).price, e.rate)
        for e in events
    )
    at_close = sum(
        funding_payment(D(1), funding_mark(e.time_ms, candles, M5).price, e.rate) for e in events
    )

    assert len(events) == 914
    assert abs(at_close - at_mark) < D("0.001") * at_mark


# -- the shipped sample -----------------------------------------------------------------------


def _make_sample() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_sample", REPO_ROOT / "scripts" / "make_sample.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("symbol", ("BTCUSDT", "ETHUSDT", "SOLUSDT"))
@pytest.mark.parametrize(("kind", "rows"), [("funding", 180), ("mark_1h", 1_440)])
def test_the_sample_funding_and_mark_files_are_the_shared_rows_of_its_60_days(
    tmp_path: Path, symbol: str, kind: str, rows: int
) -> None:
    name = f"binance_usdm_{symbol}_{kind}.csv.gz"
    start, end = _ms("2025-09-02"), _ms("2025-11-01")

    kept = _make_sample().cut_period(shared_file(name), tmp_path / name, start, end)

    assert kept == rows
    assert (tmp_path / name).read_bytes() == (sample_dir() / name).read_bytes()


@pytest.mark.parametrize("symbol", ("BTCUSDT", "ETHUSDT", "SOLUSDT"))
def test_every_sample_funding_time_has_a_sample_mark(symbol: str) -> None:
    rates = read_funding(sample_dir() / f"binance_usdm_{symbol}_funding.csv.gz")
    marks = read_mark_prices(sample_dir() / f"binance_usdm_{symbol}_mark_1h.csv.gz")

    assert rates.times[0] == marks.open_time[0] == _ms("2025-09-02")
    assert all(mark_at(marks, t) is not None for t in rates.times)


# -- layouts and bad rows ---------------------------------------------------------------------


def test_the_binance_archive_layout_floors_settlement_stamps_to_the_grid(tmp_path: Path) -> None:
    normalized = read_funding(_funding("BTCUSDT"))
    rows = [line.split(",") for line in _lines(_funding("BTCUSDT"))[1:7]]
    archive = [f"{int(t) + 3},8,{rate}" for t, rate in rows]  # calc_time is a few ms late
    path = _write(
        tmp_path / "f.csv", ["calc_time,funding_interval_hours,last_funding_rate", *archive]
    )

    rates = read_funding(path)

    assert rates.times == normalized.times[:6]
    assert rates.rates == normalized.rates[:6]


def test_a_row_of_the_archive_layout_may_name_a_4h_interval(tmp_path: Path) -> None:
    header = "calc_time,funding_interval_hours,last_funding_rate"
    lines = [
        header,
        f"{FIRST},8,0.0001",
        f"{FIRST + H8},4,0.0002",
        f"{FIRST + H8 + 4 * HOUR_MS},4,0.0003",
    ]

    rates = read_funding(_write(tmp_path / "f.csv", lines))

    assert rates.times == (FIRST, FIRST + H8, FIRST + H8 + 4 * HOUR_MS)


def test_a_4h_file_reads_when_told_its_interval(tmp_path: Path) -> None:
    lines = ["funding_time,funding_rate", *(f"{FIRST + i * 4 * HOUR_MS},0.0001" for i in range(6))]
    path = _write(tmp_path / "f.csv", lines)

    assert len(read_funding(path, interval_hours=4)) == 6
    with pytest.raises(DataError, match="not on the 8 h funding grid") as caught:
        read_funding(path)
    assert caught.value.row == 2


def test_a_headerless_file_is_funding_time_and_rate(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.csv.gz", [])
    path.write_bytes(gzip.compress(f"{FIRST},-0.00001\n{FIRST + H8},2.5e-05\n".encode()))

    assert list(read_funding(path).rates) == [D("-0.00001"), D("0.000025")]


@pytest.mark.parametrize(
    ("row", "line", "message"),
    [
        (3, f"{FIRST + 2 * H8},x", "funding_rate is not a number: 'x'"),
        (3, f"{FIRST + 2 * H8},nan", "funding_rate is not a number: 'nan'"),
        (3, f"{FIRST + 2 * H8},0.01", None),  # 1 % per 8 h: high but under the bound
        (4, f"{FIRST + 3 * H8},1.5", r"funding_rate 1.5 is beyond ±0.03 per interval"),
        (4, f"{FIRST + 3 * H8},-0.05", r"funding_rate -0.05 is beyond ±0.03"),
        (3, f"{FIRST + H8},0.0001", f"funding_time {FIRST + H8} duplicates the previous"),
        (3, f"{FIRST},0.0001", f"funding_time {FIRST} is before the previous"),
        (3, f"{FIRST + 2 * H8 + 120_000},0.0001", r"\(2024-12-31 16:02:00 UTC\) is not on the 8 h"),
        (3, f"{FIRST + 2 * H8}.5,0.0001", r"funding_time is not an integer: '1735660800000.5'"),
        (3, f"{FIRST + 2 * H8},0.0001,7", "expected 2 columns, found 3"),
    ],
)
def test_a_bad_funding_row_is_refused_naming_file_and_row(
    tmp_path: Path, row: int, line: str, message: str | None
) -> None:
    lines = _lines(_funding("BTCUSDT"))[:6]
    lines[row] = line
    path = _write(tmp_path / "funding.csv", lines)

    if message is None:
        assert read_funding(path).rates[row - 1] == D("0.01")
        return
    with pytest.raises(DataError, match=message) as caught:
        read_funding(path)

    assert caught.value.source == str(path)
    assert caught.value.row == row
    assert str(caught.value).startswith(f"{path}, row {row}: ")


def test_a_custom_rate_bound_is_applied(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.csv", ["funding_time,funding_rate", f"{FIRST},0.004"])

    with pytest.raises(DataError, match=r"beyond ±0.003 per interval"):
        read_funding(path, max_abs_rate=D("0.003"))


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["funding_time,funding_rate"], "no data rows"),
        (
            ["funding_time,rate", f"{FIRST},0.0001"],
            "missing column funding_rate or last_funding_rate",
        ),
        (
            ["calc_time,funding_interval_hours,last_funding_rate", f"{FIRST},5,0.0001"],
            "must divide 24, was 5",
        ),
    ],
)
def test_a_malformed_funding_file_is_refused(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    with pytest.raises(DataError, match=message):
        read_funding(_write(tmp_path / "f.csv", lines))


@pytest.mark.parametrize(
    ("row", "edit", "message"),
    [
        (2, lambda c: [c[0], c[1], str(float(c[3]) - 1), *c[3:]], r"high \S+ < low"),
        (3, lambda c: [str(int(c[0]) - HOUR_MS), *c[1:]], "duplicates the previous row"),
        (2, lambda c: [c[0], "0", *c[2:]], "prices must be > 0"),
        (4, lambda c: [c[0], "abc", *c[2:]], "open is not a number: 'abc'"),
    ],
)
def test_a_bad_mark_row_is_refused_naming_file_and_row(
    tmp_path: Path, row: int, edit: Callable[[list[str]], list[str]], message: str
) -> None:
    lines = _lines(shared_file("binance_usdm_BTCUSDT_mark_1h.csv.gz"))[:6]
    lines[row] = ",".join(edit(lines[row].split(",")))
    path = _write(tmp_path / "mark.csv", lines)

    with pytest.raises(DataError, match=message) as caught:
        read_mark_prices(path)

    assert caught.value.source == str(path)
    assert caught.value.row == row
