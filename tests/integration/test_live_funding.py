"""Funding on the live feed: the venue's funding rates and 1 h mark prices (a fake Binance
USDⓈ-M on loopback serving the real files of ``shared/data``) feed the simulated venue's futures
book in paper trading on live bars, as the files do in a backtest.

As in ``test_live_paper.py``: the fake and the server share one simulated clock, bars close one
at a time, each once the engine has committed the previous one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from adapters.marketdata.funding_csv import read_funding, read_mark_prices
from adapters.venues.binance_usdm.funding_feed import VenueFunding
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.budget import VenueBudget
from domain.candles import Candles
from domain.funding import FundingPayment
from domain.model import Trade
from lootcapital.bootstrap import Container, bootstrap
from lootcapital.settings import Settings
from lootcapital.simulation import read_funding_feeds
from tests.fixtures.data import shared_file
from tests.integration.live_harness import (
    T0,
    kline_streams,
    live_settings,
    play_paper,
    priced_key,
    sma_cross_backtest,
    stored_bars,
    venue_section,
    wait_subscribed,
)
from tests.integration.paper_harness import every
from tests.venues.binance_fake import FakeBinanceUsdm

H1 = 3_600_000  # funding at T0 + 8 * H1 and T0 + 16 * H1, within the 200 bars
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
PARAMS = {"fast": 5, "slow": 20}
BARS = 200


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0 + 60_000)


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=clock, symbols=tuple(SYMBOLS)) as venue:
        yield venue


def _settings(tmp_path: Path, fake: FakeBinanceUsdm) -> Settings:
    return live_settings(
        tmp_path,
        {"binance_usdm": venue_section(fake)},
        symbols=SYMBOLS,
        strategy_params=PARAMS,
        leverage=3,
        feed="binance-usdm",
    )  # no funding file in its sample folder: the venue's rates are the only ones


def _play(fake: FakeBinanceUsdm, container: Container, bars: int) -> None:
    wait_subscribed(fake, kline_streams(SYMBOLS))
    play_paper(fake, container, 0, bars - 1, SYMBOLS)


def _backtest_with_files(settings: Settings) -> tuple[list[FundingPayment], list[Trade]]:
    """A backtest of the bars paper stored, funded from the venue's files."""
    files = {s: shared_file(f"binance_usdm_{s}_funding.csv.gz") for s in SYMBOLS}
    result = sma_cross_backtest(
        settings,
        stored_bars(settings),
        params=PARAMS,
        fee=settings.fee_taker,
        slippage_bps=settings.slippage_bps,
        funding=read_funding_feeds(files),
    )
    return result.fundings, result.trades


def _payment(p: FundingPayment) -> tuple:
    return (p.time_ms, p.symbol, p.qty, p.mark, p.rate, p.amount)


def test_paper_on_the_live_feed_pays_the_funding_a_backtest_with_the_venues_files_pays(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake)
    container = bootstrap(settings, wall_clock=clock)
    container.service.start()

    _play(fake, container, BARS)
    container.service.stop()
    paper = container.service.fundings()
    trades = every(container.service.trades)
    expected, expected_trades = _backtest_with_files(settings)

    assert {p.time_ms for p in paper} == {T0 + 8 * H1, T0 + 16 * H1}
    assert len(paper) == 4  # both symbols held a position at each
    for p in paper:  # each at the open of the venue's mark bar of its hour
        marks = read_mark_prices(shared_file(f"binance_usdm_{p.symbol}_mark_1h.csv.gz"))
        assert float(p.mark) == marks.open[np.flatnonzero(marks.open_time == p.time_ms)[0]]
    assert sorted(map(_payment, paper)) == sorted(map(_payment, expected))
    assert sorted(map(priced_key, trades)) == sorted(map(priced_key, expected_trades))
    assert fake.requests[("/fapi/v1/fundingRate", 200)] >= len(SYMBOLS)
    assert fake.requests[("/fapi/v1/markPriceKlines", 200)] >= len(SYMBOLS)


def _funding(fake: FakeBinanceUsdm, clock: SimulatedClock, **venue: object) -> VenueFunding:
    settings = BinanceUsdmSettings(**venue_section(fake, **venue))  # type: ignore[arg-type]
    budget = VenueBudget("binance-usdm", limit=2400, clock=clock)
    return VenueFunding(settings, symbols=SYMBOLS, clock=clock, budget=budget)


def test_rates_and_closed_marks_are_the_files_and_the_forming_mark_keeps_its_open_only(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    close = T0 + 8 * H1  # the funding time: its hour's mark bar has just opened
    clock.advance_to(close + 1)
    funding = _funding(fake, clock)

    funding.refresh(close)
    funding.close()

    for symbol in SYMBOLS:
        file_rates = read_funding(shared_file(f"binance_usdm_{symbol}_funding.csv.gz"))
        events = file_rates.between(close - 86_400_000 - 1, close)
        assert list(funding.rates(symbol)) == events
        assert funding.rates(symbol).rate_at(close) == file_rates.rate_at(close)
        file_marks = read_mark_prices(shared_file(f"binance_usdm_{symbol}_mark_1h.csv.gz"))
        day = file_marks.between(close - 86_400_000, close)
        marks = funding.marks(symbol)
        closed = Candles(
            *(
                getattr(marks, n)[:-1]
                for n in ("open_time", "open", "high", "low", "close", "volume")
            )
        )
        np.testing.assert_array_equal(closed.open_time, day.open_time)
        for name in ("open", "high", "low", "close"):
            np.testing.assert_array_equal(getattr(closed, name), getattr(day, name))
        at = int(np.flatnonzero(file_marks.open_time == close)[0])
        assert int(marks.open_time[-1]) == close
        assert marks.open[-1] == file_marks.open[at]
        assert (marks.high[-1], marks.low[-1]) == (np.inf, -np.inf)


def test_a_refresh_waits_for_the_next_hour_and_a_failed_request_is_retried(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    clock.advance_to(T0 + 2 * H1 + 1)
    funding = _funding(fake, clock)
    fake.fail_next("/fapi/v1/fundingRate", 503)

    funding.refresh(T0 + H1)
    asked = fake.requests[("/fapi/v1/fundingRate", 200)]
    funding.refresh(T0 + H1 + 30 * 60_000)  # the same hour: nothing asked
    same_hour = fake.requests[("/fapi/v1/fundingRate", 200)]
    funding.refresh(T0 + 2 * H1)
    funding.close()

    assert fake.requests[("/fapi/v1/fundingRate", 503)] == 1
    assert asked == len(SYMBOLS) and same_hour == asked
    assert fake.requests[("/fapi/v1/fundingRate", 200)] == 2 * len(SYMBOLS)
    file_rates = read_funding(shared_file("binance_usdm_BTCUSDT_funding.csv.gz"))
    assert funding.rates("BTCUSDT")[-1] == (T0, file_rates.rate_at(T0))


def test_a_resumed_run_catching_up_on_old_bars_keeps_the_rates_published_since(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    clock.advance_to(T0 + 20 * H1)  # the venue is hours past the bars being caught up on
    funding = _funding(fake, clock)

    funding.refresh(T0 + H1)
    funding.refresh(T0 + 2 * H1)
    funding.refresh(T0 + 9 * H1)
    funding.close()

    assert [e.time_ms for e in funding.rates("BTCUSDT")][-3:] == [T0, T0 + 8 * H1, T0 + 16 * H1]
    assert int(funding.marks("BTCUSDT").open_time[-1]) == T0 + 9 * H1  # none past the bars
    assert fake.requests[("/fapi/v1/fundingRate", 200)] == 3 * len(SYMBOLS)
