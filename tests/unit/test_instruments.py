"""The instrument catalog: one instrument per venue, market and symbol."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import UnknownSymbol
from domain.instruments import InstrumentCatalog, instrument_key
from domain.model import Instrument, MarketType

PERP_BTC = Instrument("BTCUSDT", tick_size=Decimal("0.1"), step_size=Decimal("0.001"))
SPOT_BTC = Instrument(
    "BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.00001"), market=MarketType.SPOT
)
PERP_ETH = Instrument("ETHUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"))
OTHER_VENUE_BTC = Instrument("BTCUSDT", tick_size=Decimal("0.5"), venue="bybit")


def catalog() -> InstrumentCatalog:
    return InstrumentCatalog([PERP_BTC, SPOT_BTC, PERP_ETH, OTHER_VENUE_BTC])


def test_one_symbol_on_two_markets_keeps_each_markets_rules() -> None:
    found = catalog()

    assert found.get("BTCUSDT", market=MarketType.SPOT) is SPOT_BTC
    assert found.get("BTCUSDT", market=MarketType.PERPETUAL) is PERP_BTC
    assert found.get("BTCUSDT", venue="bybit") is OTHER_VENUE_BTC


def test_the_default_is_the_binance_perpetual() -> None:
    assert catalog().get("BTCUSDT") is PERP_BTC


def test_the_market_may_be_given_by_its_value() -> None:
    assert catalog().get("BTCUSDT", market="spot") is SPOT_BTC
    with pytest.raises(ValueError, match="'futures' is not a valid MarketType"):
        catalog().get("BTCUSDT", market="futures")


def test_an_unknown_symbol_names_symbol_venue_and_market_and_what_is_known() -> None:
    with pytest.raises(UnknownSymbol) as caught:
        catalog().get("DOGEUSDT")

    error = caught.value
    assert error.field == "symbol"
    assert error.code == "unknown_symbol"
    assert error.message == (
        "unknown symbol 'DOGEUSDT': no instrument for binance perpetual DOGEUSDT; "
        "known binance perpetual symbols: BTCUSDT, ETHUSDT"
    )


def test_a_symbol_known_on_another_market_says_where() -> None:
    with pytest.raises(UnknownSymbol, match=r"ETHUSDT is known on binance perpetual$"):
        catalog().get("ETHUSDT", market=MarketType.SPOT)


def test_a_market_with_no_instruments_says_so() -> None:
    with pytest.raises(UnknownSymbol, match="has no binance stock instruments at all"):
        catalog().get("AAPL", market=MarketType.STOCK)


def test_the_known_symbols_listed_are_capped() -> None:
    many = InstrumentCatalog(Instrument(f"S{i:02d}USDT") for i in range(25))

    with pytest.raises(UnknownSymbol) as caught:
        many.get("XUSDT")

    shown = ", ".join(f"S{i:02d}USDT" for i in range(10))
    assert caught.value.message.endswith(f"known binance perpetual symbols: {shown}, ...")


def test_find_is_get_without_the_error() -> None:
    assert catalog().find("BTCUSDT", market="spot") is SPOT_BTC
    assert catalog().find("DOGEUSDT") is None


def test_two_instruments_with_one_key_in_one_source_are_refused() -> None:
    with pytest.raises(ValueError, match="two instruments for binance spot BTCUSDT"):
        InstrumentCatalog([SPOT_BTC, PERP_BTC, SPOT_BTC])


def test_merge_lets_a_later_source_override_and_changes_no_source() -> None:
    older = InstrumentCatalog([PERP_BTC, PERP_ETH])
    newer_btc = Instrument("BTCUSDT", tick_size=Decimal("1"))
    newer = InstrumentCatalog([newer_btc, SPOT_BTC])

    merged = older.merge(newer)

    assert merged.get("BTCUSDT") is newer_btc
    assert merged.get("ETHUSDT") is PERP_ETH
    assert merged.get("BTCUSDT", market="spot") is SPOT_BTC
    assert len(merged) == 3
    assert older.get("BTCUSDT") is PERP_BTC
    assert len(older) == len(newer) == 2


def test_merge_of_several_sources_in_order() -> None:
    first = InstrumentCatalog([Instrument("BTCUSDT", tick_size=Decimal("1"))])
    last = InstrumentCatalog([PERP_BTC])

    assert InstrumentCatalog().merge(first, InstrumentCatalog(), last).get("BTCUSDT") is PERP_BTC


def test_for_market_is_the_symbol_mapping_of_one_market() -> None:
    found = catalog()

    assert found.for_market() == {"BTCUSDT": PERP_BTC, "ETHUSDT": PERP_ETH}
    assert found.for_market(market="spot") == {"BTCUSDT": SPOT_BTC}
    assert found.for_market(venue="kraken") == {}


def test_container_protocol() -> None:
    found = catalog()

    assert len(found) == 4
    assert list(found) == [PERP_BTC, SPOT_BTC, PERP_ETH, OTHER_VENUE_BTC]
    assert ("binance", MarketType.SPOT, "BTCUSDT") in found
    assert instrument_key(SPOT_BTC) == ("binance", MarketType.SPOT, "BTCUSDT")
    assert ("binance", MarketType.SPOT, "ETHUSDT") not in found
    assert found.markets_of("BTCUSDT") == [
        ("binance", MarketType.PERPETUAL),
        ("binance", MarketType.SPOT),
        ("bybit", MarketType.PERPETUAL),
    ]
    assert repr(found) == (
        "InstrumentCatalog(4 instruments: binance perpetual, binance spot, bybit perpetual)"
    )
