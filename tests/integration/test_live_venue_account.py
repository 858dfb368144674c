"""A live (and a paper-on-live) run's account comes from the venue: the real server stack
(bootstrap, SQLite, the kernel) against a fake Binance USDⓈ-M on loopback, which serves the
exchange's ``exchangeInfo`` and ``leverageBracket`` from the shipped snapshots, its account's
balances and its leverage endpoint with Binance's checks.

The shipped catalogue is replaced in these runs by files that do not hold the traded
perpetuals (the spot snapshot, no bracket file), so every perpetual rule the run has came from
the venue.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.clock import SimulatedClock
from adapters.marketdata.exchange_info import load_instruments
from adapters.marketdata.leverage_brackets import read_leverage_brackets
from domain.errors import InvalidOrder, UnknownSymbol
from lootcapital.bootstrap import Container, bootstrap
from lootcapital.live import LiveStart
from lootcapital.settings import Settings
from tests.fixtures.data import shared_file
from tests.integration.live_harness import T0, live_settings, venue_section
from tests.venues.binance_fake import EXCHANGE_INFO, LEVERAGE_BRACKETS, FakeBinanceUsdm
from tests.venues.binance_fake_private import API_KEY, API_SECRET

SYMBOLS = ["BTCUSDT", "SOLUSDT"]  # SOLUSDT: at most 100x in its first bracket
VENUE = "binance-usdm"
SPOT_INFO = "binance_spot_exchange_info_20230813.json"


@pytest.fixture
def fake() -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=SimulatedClock(T0 + 60_000), symbols=tuple(SYMBOLS)) as venue:
        venue.account.wallet = Decimal(100_000)
        yield venue


def _settings(tmp_path: Path, fake: FakeBinanceUsdm, **extra: object) -> Settings:
    venue = venue_section(fake, demo=True, api_key=API_KEY, api_secret=API_SECRET)
    values: dict[str, object] = {
        "symbols": SYMBOLS,
        "instruments_files": [shared_file(SPOT_INFO)],  # no USDⓈ-M perpetual in it
        "leverage_brackets_file": None,
        "max_leverage": 125,
    }
    return live_settings(tmp_path, {"binance_usdm": venue}, **(values | extra))


@pytest.fixture
def live(tmp_path: Path, fake: FakeBinanceUsdm) -> Iterator[Container]:
    container = bootstrap(_settings(tmp_path, fake), live=LiveStart(VENUE), wall_clock=fake.clock)
    yield container
    container.close()


def test_live_run_trades_by_the_venues_tick_step_min_notional_and_brackets(
    live: Container, fake: FakeBinanceUsdm
) -> None:
    rules = live.service.engine.instruments
    snapshot = load_instruments(shared_file(EXCHANGE_INFO))
    brackets = read_leverage_brackets(shared_file(LEVERAGE_BRACKETS))
    for symbol in SYMBOLS:
        assert rules[symbol].tick_size == snapshot[symbol].tick_size
        assert rules[symbol].step_size == snapshot[symbol].step_size
        assert rules[symbol].min_notional == snapshot[symbol].min_notional
        assert rules[symbol].brackets == brackets[symbol]
    assert fake.requests[("/fapi/v1/leverageBracket", 200)] == 1


def test_paper_on_live_reads_the_venues_rules_and_keeps_the_shipped_brackets(
    tmp_path: Path, fake: FakeBinanceUsdm
) -> None:
    shipped = shared_file(LEVERAGE_BRACKETS)
    settings = _settings(tmp_path, fake, feed=VENUE, leverage_brackets_file=shipped)
    container = bootstrap(settings, wall_clock=fake.clock)
    rules = container.service.engine.instruments
    snapshot = load_instruments(shared_file(EXCHANGE_INFO))
    assert rules["BTCUSDT"].tick_size == snapshot["BTCUSDT"].tick_size
    assert rules["SOLUSDT"].min_notional == snapshot["SOLUSDT"].min_notional
    assert rules["SOLUSDT"].brackets == read_leverage_brackets(shipped)["SOLUSDT"]
    assert fake.requests[("/fapi/v1/leverageBracket", 200)] == 0


def test_a_symbol_the_venue_does_not_list_is_refused_at_start_by_name(
    tmp_path: Path, fake: FakeBinanceUsdm
) -> None:
    settings = _settings(tmp_path, fake, symbols=["BTCUSDT", "NOPEUSDT"])
    with pytest.raises(UnknownSymbol, match="NOPEUSDT") as refused:
        bootstrap(settings, live=LiveStart(VENUE), wall_clock=fake.clock)
    assert refused.value.field == "symbols"
    assert "BTCUSDT" not in refused.value.message


def test_balance_is_the_venues_wallet_available_and_margin(
    live: Container, fake: FakeBinanceUsdm
) -> None:
    account = fake.account.account_info()
    report = live.service.balance()
    assert report.wallet == Decimal(account["totalWalletBalance"]) == Decimal(100_000)
    assert report.available == Decimal(account["availableBalance"])
    assert report.margin_in_use == Decimal(account["totalInitialMargin"])
    assert report.margin_balance == Decimal(account["totalMarginBalance"])


def test_the_strategy_sizes_on_the_venues_available_balance_below_its_capital(
    tmp_path: Path, fake: FakeBinanceUsdm
) -> None:
    fake.account.wallet = Decimal(4_321)  # less than initial_cash (10,000)
    container = bootstrap(_settings(tmp_path, fake), live=LiveStart(VENUE), wall_clock=fake.clock)
    try:
        assert container.service.engine.portfolio().cash == Decimal(4_321)
    finally:
        container.close()


def test_a_leverage_change_is_made_at_the_venue_and_then_recorded(
    live: Container, fake: FakeBinanceUsdm
) -> None:
    leverage = live.service.set_leverage("SOLUSDT", 7)
    assert leverage == 7
    assert fake.account.positions["SOLUSDT"].leverage == 7
    assert live.service.leverages() == {"BTCUSDT": 1, "SOLUSDT": 7}


def test_a_leverage_the_venue_refuses_is_refused_with_its_reason_and_not_recorded(
    live: Container, fake: FakeBinanceUsdm
) -> None:
    with pytest.raises(InvalidOrder, match="Leverage 110 is not valid") as refused:
        live.service.set_leverage("SOLUSDT", 110)  # above its bracket's 100x
    assert refused.value.field == "leverage"
    assert fake.account.positions["SOLUSDT"].leverage == 1
    assert live.service.leverages() == {"BTCUSDT": 1, "SOLUSDT": 1}


def test_the_balance_stays_the_last_one_read_while_the_venue_cannot_be_asked(
    live: Container, fake: FakeBinanceUsdm
) -> None:
    tries = live.settings.venues.binance_usdm.retries + 1
    fake.fail_next("/fapi/v3/account", 503, times=tries)
    fake.account.wallet = Decimal(1)  # not seen: the account cannot be read

    live.service.set_leverage("BTCUSDT", 3)  # a new snapshot of the account

    assert fake.requests[("/fapi/v3/account", 503)] == tries
    assert live.service.balance().wallet == Decimal(100_000)
    assert live.service.leverages() == {"BTCUSDT": 3, "SOLUSDT": 1}
