"""Symbol rules parsed from real Binance exchangeInfo snapshots, spot and USDⓈ-M futures."""

from __future__ import annotations

import importlib.util
import json
import shutil
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

from adapters.marketdata.binance_csv import infer_market
from adapters.marketdata.exchange_info import (
    load_catalog,
    load_instruments,
    read_exchange_info,
)
from domain.errors import DataError, UnknownSymbol
from domain.model import MarketType, OrderType
from tests.fixtures.data import REPO_ROOT, sample_dir, shared_file

USDM = "binance_usdm_exchange_info_20251030.json"
SPOT = "binance_spot_exchange_info_20230813.json"


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


def shipped() -> list[Path]:
    """The exchange-info snapshots shipped in the sample: perpetual, then spot."""
    return [sample_dir() / USDM, sample_dir() / SPOT]


def test_spot_and_perpetual_btcusdt_have_their_own_tick_from_the_shipped_files() -> None:
    catalog = load_catalog(shipped())

    spot = catalog.get("BTCUSDT", market=MarketType.SPOT)
    perpetual = catalog.get("BTCUSDT", market=MarketType.PERPETUAL)

    assert (spot.tick_size, perpetual.tick_size) == (Decimal("0.01"), Decimal("0.10"))
    assert (spot.step_size, perpetual.step_size) == (Decimal("0.00001"), Decimal("0.001"))
    assert (spot.min_notional, perpetual.min_notional) == (Decimal("10"), Decimal("100"))
    assert spot.round_price(Decimal("29412.345"), up=False) == Decimal("29412.34")
    assert perpetual.round_price(Decimal("29412.345"), up=False) == Decimal("29412.3")
    assert (spot.venue, spot.market, perpetual.venue, perpetual.market) == (
        "binance",
        MarketType.SPOT,
        "binance",
        MarketType.PERPETUAL,
    )


def test_perpetual_market_orders_are_capped_by_market_lot_size_limit_orders_by_lot_size() -> None:
    btc = load_catalog(shipped()).get("BTCUSDT")

    assert btc.max_order_qty(OrderType.MARKET) == Decimal("120")
    assert btc.max_order_qty(OrderType.LIMIT) == Decimal("1000")
    assert (btc.max_qty, btc.market_max_qty) == (Decimal("1000"), Decimal("120"))


def test_spot_snapshot_gives_market_lot_size_quote_asset_and_precision() -> None:
    btc = load_catalog(shipped()).get("BTCUSDT", market="spot")

    assert btc.max_order_qty(OrderType.LIMIT) == Decimal("9000")
    assert btc.max_order_qty(OrderType.MARKET) == Decimal("169.00949758")
    assert (btc.quote_asset, btc.quote_precision) == ("USDT", 8)


def test_an_unknown_symbol_error_names_the_symbol() -> None:
    catalog = load_catalog(shipped())

    with pytest.raises(UnknownSymbol, match="'BTCUSDX'") as caught:
        catalog.get("BTCUSDX")
    assert caught.value.field == "symbol"
    assert "binance perpetual" in caught.value.message
    with pytest.raises(UnknownSymbol, match="ADAUSDT is known on binance perpetual"):
        catalog.get("ADAUSDT", market=MarketType.SPOT)  # not in the shipped spot cut


def test_the_market_is_told_from_the_content_not_the_file_name(tmp_path: Path) -> None:
    spot_named_plainly = tmp_path / "info-a.json"
    usdm_named_plainly = tmp_path / "info-b.json"
    shutil.copyfile(sample_dir() / SPOT, spot_named_plainly)
    shutil.copyfile(sample_dir() / USDM, usdm_named_plainly)

    spot, perpetual = read_exchange_info(spot_named_plainly), read_exchange_info(usdm_named_plainly)

    assert {i.market for i in spot} == {MarketType.SPOT}
    assert {i.market for i in perpetual} == {MarketType.PERPETUAL}
    assert len(spot) == 5 and len(perpetual) == 12


def test_a_later_file_overrides_an_earlier_one_of_the_same_market(tmp_path: Path) -> None:
    document = json.loads((sample_dir() / USDM).read_text())
    for f in document["symbols"][0]["filters"]:
        if f["filterType"] == "PRICE_FILTER":
            f["tickSize"] = "0.50"
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(document))

    catalog = load_catalog([*shipped(), newer])

    assert catalog.get("BTCUSDT").tick_size == Decimal("0.50")
    assert catalog.get("BTCUSDT", market="spot").tick_size == Decimal("0.01")


def test_symbols_that_do_not_trade_and_delivery_contracts_are_skipped(tmp_path: Path) -> None:
    document = json.loads((sample_dir() / USDM).read_text())
    document["symbols"][1]["status"] = "SETTLING"  # ETHUSDT
    document["symbols"][2]["contractType"] = "CURRENT_QUARTER"  # XRPUSDT
    path = tmp_path / "info.json"
    path.write_text(json.dumps(document))

    symbols = {i.symbol for i in read_exchange_info(path)}

    assert "BTCUSDT" in symbols
    assert not {"ETHUSDT", "XRPUSDT"} & symbols
    assert len(symbols) == 10


def test_spot_symbols_of_older_snapshots_read_min_notional_filter(tmp_path: Path) -> None:
    document = json.loads((sample_dir() / SPOT).read_text())
    for entry in document["symbols"]:
        entry["filters"] = [
            {"filterType": "MIN_NOTIONAL", "minNotional": "7.5", "applyToMarket": True}
            if f["filterType"] == "NOTIONAL"
            else f
            for f in entry["filters"]
        ]
        del entry["quoteAssetPrecision"]
        entry["quotePrecision"] = 6
    path = tmp_path / "old_spot.json"
    path.write_text(json.dumps(document))

    eth = read_exchange_info(path).get("ETHUSDT", market="spot")

    assert (eth.min_notional, eth.quote_precision) == (Decimal("7.5"), 6)


def test_a_document_of_neither_layout_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "info.json"
    path.write_text(json.dumps({"symbols": [{"symbol": "BTCUSDT", "filters": []}]}))

    with pytest.raises(DataError, match=r"neither Binance spot .* nor USDⓈ-M futures"):
        read_exchange_info(path)


def test_a_symbol_listed_twice_is_a_data_error(tmp_path: Path) -> None:
    document = json.loads((sample_dir() / SPOT).read_text())
    document["symbols"].append(document["symbols"][0])
    path = tmp_path / "info.json"
    path.write_text(json.dumps(document))

    with pytest.raises(DataError, match="two instruments for binance spot BTCUSDT"):
        read_exchange_info(path)


def test_the_shipped_spot_file_is_the_exchanges_snapshot_cut_to_the_sample_symbols() -> None:
    source = json.loads(shared_file(SPOT).read_text())
    shipped_spot = json.loads((sample_dir() / SPOT).read_text())
    by_symbol = {entry["symbol"]: entry for entry in source["symbols"]}

    symbols = [entry["symbol"] for entry in shipped_spot["symbols"]]
    assert {"BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"} <= set(symbols)
    assert all(entry == by_symbol[entry["symbol"]] for entry in shipped_spot["symbols"])
    assert {k: v for k, v in shipped_spot.items() if k != "symbols"} == {
        k: v for k, v in source.items() if k != "symbols"
    }


def _make_sample() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_sample", REPO_ROOT / "scripts" / "make_sample.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_sample_regenerates_the_shipped_spot_file_byte_for_byte(tmp_path: Path) -> None:
    script = _make_sample()
    out = tmp_path / SPOT

    kept = script.cut_exchange_info(shared_file(SPOT), out, script.SPOT_INFO_SYMBOLS)

    assert kept == len(script.SPOT_INFO_SYMBOLS)
    assert out.read_bytes() == (sample_dir() / SPOT).read_bytes()


@pytest.mark.parametrize(
    ("name", "market"),
    [
        ("../shared/data/binance_spot_BTCUSDT_5m.csv.gz", MarketType.SPOT),
        ("binance_usdm_BTCUSDT_5m.csv.gz", MarketType.PERPETUAL),
        ("us_stock_AAPL_1d.csv.gz", MarketType.STOCK),
        ("BTCUSDT-5m-2025-01.csv", None),
        ("BTC_USDT_USDT-5m-futures.feather", None),
    ],
)
def test_the_market_of_a_kline_file_comes_from_its_name(
    name: str, market: MarketType | None
) -> None:
    assert infer_market(name) == market
