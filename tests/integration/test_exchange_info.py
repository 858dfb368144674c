"""Symbol rules parsed from real Binance exchangeInfo snapshots."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.marketdata.exchange_info import load_instruments
from domain.errors import DataError
from tests.fixtures.data import sample_dir, shared_file

USDM = "binance_usdm_exchange_info_20251030.json"


def test_usdm_snapshot_gives_tick_step_notional_and_max_qty_as_decimals() -> None:
    instruments = load_instruments(sample_dir() / USDM)

    btc, sol = instruments["BTCUSDT"], instruments["SOLUSDT"]

    assert len(instruments) == 12
    assert (btc.tick_size, btc.step_size, btc.min_notional, btc.max_qty) == (
        Decimal("0.10"),
        Decimal("0.001"),
        Decimal("100"),
        Decimal("1000"),
    )
    assert (sol.tick_size, sol.step_size, sol.min_notional) == (
        Decimal("0.01"),
        Decimal("0.01"),
        Decimal("5"),
    )
    assert btc.round_price(Decimal("109557.27"), up=False) == Decimal("109557.2")


def test_spot_snapshot_reads_the_notional_filter() -> None:
    instruments = load_instruments(shared_file("binance_spot_exchange_info_20230813.json"))

    assert instruments["BTCUSDT"].min_notional == Decimal("10")
    assert instruments["BTCUSDT"].step_size == Decimal("0.00001")


def test_a_symbol_without_price_filter_is_named(tmp_path: Path) -> None:
    document = json.loads((sample_dir() / USDM).read_text())
    entry = document["symbols"][1]
    entry["filters"] = [f for f in entry["filters"] if f["filterType"] != "PRICE_FILTER"]
    path = tmp_path / "info.json"
    path.write_text(json.dumps(document))

    with pytest.raises(DataError, match=r"ETHUSDT: PRICE_FILTER\.tickSize is missing"):
        load_instruments(path)


def test_a_file_that_is_not_json_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "info.json"
    path.write_text("<html>rate limited</html>")

    with pytest.raises(DataError, match="cannot read exchange info"):
        load_instruments(path)
