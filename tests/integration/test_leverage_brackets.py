"""Leverage brackets read from Binance ``leverageBracket`` JSON files: the shipped sample and the
team's full 2024-10-24 snapshot (adapters/marketdata/leverage_brackets.py)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.marketdata.leverage_brackets import read_leverage_brackets
from domain.errors import DataError
from tests.fixtures.data import sample_dir, shared_file

D = Decimal
NAME = "binance_usdm_leverage_brackets_20241024.json"
SAMPLE_SYMBOLS = ["BNBUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]


def _raw(path: Path) -> list[dict[str, Any]]:
    """The file's entries parsed with plain ``json``, independently of the reader."""
    entries: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return entries


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "brackets.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _sample_entries() -> list[dict[str, Any]]:
    return _raw(sample_dir() / NAME)


def test_the_shipped_sample_holds_the_five_sample_symbols_in_file_order() -> None:
    brackets = read_leverage_brackets(sample_dir() / NAME)

    assert list(brackets) == SAMPLE_SYMBOLS
    assert [len(b.brackets) for b in brackets.values()] == [10, 12, 12, 10, 10]


def test_btcusdt_first_bracket_matches_the_json() -> None:
    entry = next(e for e in _sample_entries() if e["symbol"] == "BTCUSDT")["brackets"][0]

    first = read_leverage_brackets(sample_dir() / NAME)["BTCUSDT"].brackets[0]

    assert entry == {
        "bracket": 1,
        "initialLeverage": 125,
        "notionalCap": 50000.0,
        "notionalFloor": 0.0,
        "maintMarginRatio": 0.004,
        "cum": 0.0,
    }
    assert (first.bracket, first.initial_leverage) == (1, 125)
    assert (first.notional_floor, first.notional_cap) == (D(0), D(50000))
    assert (first.maint_margin_ratio, first.cum) == (D("0.004"), D(0))
    # Parsed from the JSON text, never through float: the ratio keeps its exact digits.
    assert str(first.maint_margin_ratio) == "0.004"


def test_every_sample_bracket_equals_its_json_entry() -> None:
    brackets = read_leverage_brackets(sample_dir() / NAME)

    for entry in _sample_entries():
        parsed = brackets[entry["symbol"]].brackets
        expected = [
            (
                row["bracket"],
                row["initialLeverage"],
                D(str(row["notionalFloor"])),
                D(str(row["notionalCap"])),
                D(str(row["maintMarginRatio"])),
                D(str(row["cum"])),
            )
            for row in entry["brackets"]
        ]
        assert [
            (
                b.bracket,
                b.initial_leverage,
                b.notional_floor,
                b.notional_cap,
                b.maint_margin_ratio,
                b.cum,
            )
            for b in parsed
        ] == expected


def test_the_sample_is_the_shared_snapshot_cut_to_the_sample_symbols() -> None:
    shared = _raw(shared_file(NAME))
    sample_text = (sample_dir() / NAME).read_text(encoding="utf-8")

    kept = [e for e in shared if e["symbol"] in SAMPLE_SYMBOLS]

    # Same entries, same order, same compact serialization as the source.
    assert sample_text == json.dumps(kept, separators=(",", ":"))


def test_the_full_shared_snapshot_reads_every_symbol() -> None:
    brackets = read_leverage_brackets(shared_file(NAME))

    assert len(brackets) == 318
    assert brackets["BTCUSDT"] == read_leverage_brackets(sample_dir() / NAME)["BTCUSDT"]
    assert brackets["1000BONKUSDT"].max_leverage(D(0)) == 75
    # The last tier of every symbol allows 1x at most, none allows more than 125x.
    assert {b.brackets[-1].initial_leverage for b in brackets.values()} == {1}
    assert max(b.brackets[0].initial_leverage for b in brackets.values()) == 125


def test_a_single_symbol_answer_is_read_too(tmp_path: Path) -> None:
    # Binance answers one object, not a list, when the request names a symbol.
    entry = next(e for e in _sample_entries() if e["symbol"] == "SOLUSDT")
    entry["notionalCoef"] = 1.0

    brackets = read_leverage_brackets(_write(tmp_path, entry))

    assert list(brackets) == ["SOLUSDT"]
    assert brackets["SOLUSDT"].maintenance_margin(D(100000)) == D(620)  # 100000 × 0.01 − 380


def _broken(tmp_path: Path, symbol: str, index: int, **row: object) -> Path:
    """The sample with bracket ``index`` (0-based) of ``symbol`` updated by ``row`` (a value of
    None drops the key)."""
    entries = _sample_entries()
    bracket = next(e for e in entries if e["symbol"] == symbol)["brackets"][index]
    for key, value in row.items():
        if value is None:
            del bracket[key]
        else:
            bracket[key] = value
    return _write(tmp_path, entries)


@pytest.mark.parametrize(
    ("symbol", "index", "row", "message"),
    [
        ("ETHUSDT", 1, {"cum": 49.0}, r"symbol ETHUSDT bracket 2: cum must be 50"),
        (
            "SOLUSDT",
            0,
            {"maintMarginRatio": None},
            r"symbol SOLUSDT bracket 1: maintMarginRatio is",
        ),
        (
            "XRPUSDT",
            2,
            {"notionalFloor": 25000.0},
            r"symbol XRPUSDT bracket 3: notional_floor 25000",
        ),
        (
            "BTCUSDT",
            0,
            {"maintMarginRatio": 0.4},
            r"symbol BTCUSDT bracket 1: maint_margin_ratio 0.4",
        ),
        (
            "BNBUSDT",
            3,
            {"initialLeverage": "25"},
            r"symbol BNBUSDT bracket 4: initialLeverage must",
        ),
        (
            "BTCUSDT",
            1,
            {"cum": "fifty"},
            r"symbol BTCUSDT bracket 2: cum is not a decimal: 'fifty'",
        ),
        ("ETHUSDT", 0, {"bracket": 2}, r"symbol ETHUSDT: .*position 1 holds bracket 2"),
    ],
)
def test_a_bad_bracket_is_a_data_error_naming_file_symbol_and_bracket(
    tmp_path: Path, symbol: str, index: int, row: dict[str, object], message: str
) -> None:
    path = _broken(tmp_path, symbol, index, **row)

    with pytest.raises(DataError, match=message) as caught:
        read_leverage_brackets(path)

    assert str(caught.value).startswith(f"{path}: ")
    assert caught.value.source == str(path)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"rateLimits": []}, r"entry 1 has no 'symbol' string"),
        ("BTCUSDT", r"must be a JSON list of symbol entries, was str"),
        ([{"symbol": "BTCUSDT"}], r"symbol BTCUSDT: no 'brackets' list"),
        ([{"symbol": "BTCUSDT", "brackets": []}], r"symbol BTCUSDT: no leverage brackets"),
        ([42], r"entry 1 is not an object: 42"),
    ],
)
def test_a_file_of_the_wrong_shape_is_a_data_error(
    tmp_path: Path, document: object, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        read_leverage_brackets(_write(tmp_path, document))


def test_a_symbol_listed_twice_is_a_data_error(tmp_path: Path) -> None:
    entries = _sample_entries()
    path = _write(tmp_path, [*entries, entries[1]])

    with pytest.raises(DataError, match=r"symbol BTCUSDT is listed twice"):
        read_leverage_brackets(path)


def test_a_file_that_is_not_json_or_missing_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "brackets.json"
    path.write_text("<html>rate limited</html>", encoding="utf-8")

    with pytest.raises(DataError, match=r"brackets.json: cannot read leverage brackets"):
        read_leverage_brackets(path)
    with pytest.raises(DataError, match=r"missing.json: cannot read leverage brackets"):
        read_leverage_brackets(tmp_path / "missing.json")
