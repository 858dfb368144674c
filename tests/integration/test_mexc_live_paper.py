"""Paper trading on MEXC's live data (``--feed mexc``): the real server stack (bootstrap, SQLite,
the simulated venue) on the live feed of a fake MEXC futures on loopback streaming real 5m bars,
with its funding rates and fair prices (MEXC's marks) in the simulated venue's futures book, and
no API key.

As in ``test_live_paper.py``: the fake and the server share one simulated clock, bars close one
at a time, each once the engine has committed the previous one; the run is then compared with a
backtest over the bars it stored, funded with the rates and marks the fake served. One symbol:
BTCUSDT's lot step (0.001) is a whole number of MEXC's contracts (0.0001 BTC), so the run, whose
trading rules come from MEXC's contracts, and the backtest round quantities alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from adapters.venues.mexc.client import mexc_budget
from adapters.venues.mexc.funding_feed import MexcVenueFunding
from adapters.venues.mexc.settings import MexcSettings
from domain.candles import Candles
from domain.funding import FundingPayment
from domain.model import Trade
from domain.resample import resample
from lootcapital.bootstrap import bootstrap
from lootcapital.cli import EXIT_USAGE, main
from lootcapital.settings import Settings
from lootcapital.simulation import FundingFeed
from tests.integration.live_harness import (
    M5,
    T0,
    TOKEN,
    file_bars,
    live_settings,
    play_paper,
    priced_key,
    sma_cross_backtest,
    stored_bars,
    venue_section,
    wait_subscribed,
)
from tests.integration.paper_harness import every, free_port
from tests.venues.mexc_fake_funding import FUNDING_HISTORY, FakeMexcFunding, file_rates

H1 = 3_600_000  # funding at T0 + 8 * H1 and T0 + 16 * H1, within the 200 bars
SYMBOL = "BTCUSDT"
CONTRACT = "BTC_USDT"
STREAMS = {f"{CONTRACT}@Min5"}
PARAMS = {"fast": 5, "slow": 20}
BARS = 200
MEXC = "mexc"
FAIR_PRICE = f"/api/v1/contract/kline/fair_price/{CONTRACT}"


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0 + 60_000)  # one minute into the bar opening at T0


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeMexcFunding]:
    with FakeMexcFunding(clock=clock, symbols=(CONTRACT,)) as venue:
        yield venue


def _settings(tmp_path: Path, fake: FakeMexcFunding) -> Settings:
    return live_settings(
        tmp_path,
        {"mexc": venue_section(fake)},  # no API key
        symbols=[SYMBOL],
        strategy_params=PARAMS,
        leverage=3,
        feed=MEXC,
        exchange=MEXC,  # the candle store's bars that backtests read: those the feed stores
    )  # no funding file in its sample folder: the venue's rates are the only ones


def _fair_prices(bars: Candles) -> Candles:
    """The fake's hourly fair-price bars of ``bars`` (5m)."""
    return resample(bars, M5, H1)


def _backtest(settings: Settings) -> tuple[list[FundingPayment], list[Trade]]:
    """A backtest of the bars paper stored, funded with the rates and marks the fake served."""
    bars = stored_bars(settings)
    feeds = {SYMBOL: FundingFeed(file_rates(CONTRACT), _fair_prices(bars[SYMBOL]))}
    result = sma_cross_backtest(
        settings,
        bars,
        params=PARAMS,
        fee=settings.fee_taker,
        slippage_bps=settings.slippage_bps,
        funding=feeds,
    )
    return result.fundings, result.trades


def _payment(p: FundingPayment) -> tuple:
    return (p.time_ms, p.symbol, p.qty, p.mark, p.rate, p.amount)


def _private_requests(fake: FakeMexcFunding) -> list[str]:
    return [path for path, _ in fake.requests if path.startswith("/api/v1/private")]


def test_paper_on_the_mexc_live_feed_trades_and_pays_funding_as_a_backtest_of_its_bars(
    tmp_path: Path, fake: FakeMexcFunding, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake)
    container = bootstrap(settings, wall_clock=clock)
    container.service.start()
    wait_subscribed(fake, STREAMS)

    play_paper(fake, container, 0, BARS - 1, [SYMBOL])
    container.service.stop()
    paper = every(container.service.trades)
    fundings = container.service.fundings()
    status = container.service.status()
    stored = stored_bars(settings)[SYMBOL]
    expected_fundings, expected = _backtest(settings)

    np.testing.assert_array_equal(stored.open_time, file_bars(SYMBOL, T0, T0 + BARS * M5).open_time)
    np.testing.assert_array_equal(stored.close, file_bars(SYMBOL, T0, T0 + BARS * M5).close)
    assert len(expected) > 5
    assert sorted(map(priced_key, paper)) == sorted(map(priced_key, expected))
    assert {p.time_ms for p in fundings} == {T0 + 8 * H1, T0 + 16 * H1}
    for p in fundings:  # at the fair price of its hour: the open of the bar opening then
        assert p.mark == fake.fair_price(CONTRACT, p.time_ms)
    assert sorted(map(_payment, fundings)) == sorted(map(_payment, expected_fundings))
    assert status.feed_venue == MEXC
    assert status.candles_processed == BARS
    assert settings.venues.mexc.api_key is None and _private_requests(fake) == []
    assert fake.requests[(FUNDING_HISTORY, 200)] >= 1
    assert fake.requests[(FAIR_PRICE, 200)] >= 1


def _funding(fake: FakeMexcFunding, clock: SimulatedClock) -> MexcVenueFunding:
    settings = MexcSettings(**venue_section(fake))  # type: ignore[arg-type]
    return MexcVenueFunding(settings, symbols=[SYMBOL], clock=clock, budget=mexc_budget(clock))


def test_mexc_rates_and_closed_fair_prices_are_the_venues_and_the_forming_one_keeps_its_open(
    fake: FakeMexcFunding, clock: SimulatedClock
) -> None:
    close = T0 + 8 * H1  # the funding time: its hour's fair-price bar has just opened
    clock.advance_to(close + 1)
    funding = _funding(fake, clock)

    funding.refresh(close)
    funding.close()

    rates = file_rates(CONTRACT)
    assert list(funding.rates(SYMBOL)) == rates.between(close - 86_400_000 - 1, close)
    assert funding.rates(SYMBOL).rate_at(close) == rates.rate_at(close)
    marks = funding.marks(SYMBOL)
    day = _fair_prices(file_bars(SYMBOL, close - 86_400_000, close))
    np.testing.assert_array_equal(marks.open_time[:-1], day.open_time)
    for name in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(marks, name)[:-1], getattr(day, name))
    assert int(marks.open_time[-1]) == close
    assert marks.open[-1] == float(fake.fair_price(CONTRACT, close))
    assert (marks.high[-1], marks.low[-1]) == (np.inf, -np.inf)


def test_a_failed_rates_request_is_retried_and_pages_are_read_back_to_the_time_wanted(
    fake: FakeMexcFunding, clock: SimulatedClock
) -> None:
    clock.advance_to(T0 + 20 * H1)  # the venue is hours past the bars being caught up on
    funding = _funding(fake, clock)
    fake.fail_next(FUNDING_HISTORY, 503)

    funding.refresh(T0 + H1)  # a day back from T0 + 1 h: rates from T0 - 23 h on
    funding.close()

    assert fake.requests[(FUNDING_HISTORY, 503)] == 1
    times = [e.time_ms for e in funding.rates(SYMBOL)]
    assert times == [T0 - 16 * H1, T0 - 8 * H1, T0, T0 + 8 * H1, T0 + 16 * H1]


def test_serve_paper_on_the_mexc_feed_is_accepted_and_says_when_mexc_cannot_be_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOOTCAPITAL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOOTCAPITAL_API_TOKEN", TOKEN)
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("LOOTCAPITAL_VENUES__MEXC__REST_URL", nobody)
    monkeypatch.setenv("LOOTCAPITAL_VENUES__MEXC__RETRIES", "0")

    code = main(["serve", "--mode", "paper", "--feed", "mexc", "--symbols", SYMBOL])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: mexc: "), err


def test_an_unknown_feed_is_refused_naming_the_option_or_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOOTCAPITAL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOOTCAPITAL_API_TOKEN", TOKEN)

    with pytest.raises(SystemExit) as option:
        main(["serve", "--mode", "paper", "--feed", "kraken"])
    option_err = capsys.readouterr().err
    monkeypatch.setenv("LOOTCAPITAL_FEED", "kraken")
    setting_code = main(["serve", "--mode", "paper"])
    setting_err = capsys.readouterr().err

    assert option.value.code == 2
    assert "--feed: invalid choice: 'kraken'" in option_err
    assert "'mexc'" in option_err
    assert setting_code == EXIT_USAGE
    assert "invalid setting feed (LOOTCAPITAL_FEED)" in setting_err
    assert "'mexc'" in setting_err and "'kraken'" in setting_err
    assert Settings(feed="mexc").feed == MEXC
