"""Paper trading on live data: the real server stack (bootstrap, SQLite, the simulated venue)
on the live feed of a fake Binance USDⓈ-M on loopback streaming real 5m bars.

The fake and the server share one simulated clock. Bars are closed one at a time, each once the
engine has committed the previous one (as fast as the stack goes, and deterministic: a bar
time's grace for stragglers never runs out while the clock stands still). Each run is then
compared with a backtest over the bars it stored in the candle store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from adapters.clock import SimulatedClock
from api.deps import SESSION_COOKIE, session_value
from domain.candles import Candles
from domain.errors import ConfigError
from domain.events import FeedStale
from domain.model import Trade
from lootcapital.bootstrap import Container, bootstrap, build_app
from lootcapital.cli import main
from lootcapital.settings import Settings
from lootcapital.simulation import candle_store
from tests.e2e.web_fixtures import live_server
from tests.integration.live_harness import (
    M5,
    T0,
    TOKEN,
    file_bars,
    kline_streams,
    live_settings,
    play_paper,
    priced_key,
    processed,
    sma_cross_backtest,
    start_run,
    stored_bars,
    venue_section,
    wait,
    wait_subscribed,
)
from tests.integration.paper_harness import (
    every,
    free_port,
    paper_settings,
    run_until,
    trimmed_sample,
)
from tests.venues.binance_fake import FakeBinanceUsdm

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
STREAMS = kline_streams(SYMBOLS)
PARAMS = {"fast": 5, "slow": 20}  # sma_cross: about 25 trades on 200 bars of the two
BARS = 200
VENUE = "binance-usdm"
CLOSE_GRACE_MS = 3_001  # just past BinanceUsdmSettings.close_grace_s


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0 + 60_000)  # one minute into the bar opening at T0


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=clock, symbols=tuple(SYMBOLS)) as venue:
        yield venue


def _settings(tmp_path: Path, fake: FakeBinanceUsdm, **extra: object) -> Settings:
    values = {"symbols": SYMBOLS, "strategy_params": PARAMS, "feed": VENUE}
    return live_settings(tmp_path, {"binance_usdm": venue_section(fake)}, **(values | extra))


def _start(settings: Settings, fake: FakeBinanceUsdm, clock: SimulatedClock) -> Container:
    return start_run(settings, fake, clock, STREAMS)


def _play(fake: FakeBinanceUsdm, container: Container, first: int, last: int) -> None:
    """Close bars ``T0 + k * M5`` for ``k`` in ``first..last``, each once the engine has the
    previous."""
    play_paper(fake, container, first, last, SYMBOLS)


def _backtest_of_stored(settings: Settings) -> list[Trade]:
    """The backtest's trades over the candle store's bars, those closed before the data ends
    (the backtest closes open positions at the last close; paper keeps them open)."""
    fee, slippage = settings.fee_taker, settings.slippage_bps
    result = sma_cross_backtest(
        settings, stored_bars(settings), params=PARAMS, fee=fee, slippage_bps=slippage
    )
    return result.trades


def _assert_same_bars(got: Candles, expected: Candles) -> None:
    np.testing.assert_array_equal(got.open_time, expected.open_time)
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


def _feed_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("live-feed")]


def test_paper_on_the_live_feed_trades_as_a_backtest_of_the_bars_it_stored(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake)
    container = _start(settings, fake, clock)

    _play(fake, container, 0, BARS - 1)
    container.service.stop()
    paper = every(container.service.trades)
    stored = stored_bars(settings)
    expected = _backtest_of_stored(settings)

    for symbol in SYMBOLS:
        _assert_same_bars(stored[symbol], file_bars(symbol, T0, T0 + BARS * M5))
    assert len(expected) > 15
    assert sorted(map(priced_key, paper)) == sorted(map(priced_key, expected))
    assert container.service.status().candles_processed == BARS * len(SYMBOLS)
    assert container.service.status().stopped_reason == "stopped by user"
    assert _feed_threads() == []


def test_a_dropped_websocket_is_backfilled_over_rest_and_trades_the_same(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake)
    container = _start(settings, fake, clock)
    half, away = BARS // 2, 6

    _play(fake, container, 0, half - 1)
    klines_before = fake.requests[("/fapi/v1/klines", 200)]
    fake.drop_websockets(refuse=True)
    # Six bars close while the venue is away, the last one the stream's close grace ago:
    # REST serves a bar only once that grace is over.
    fake.advance_to(T0 + (half + away) * M5 + CLOSE_GRACE_MS)
    processed(container, dict.fromkeys(SYMBOLS, T0 + (half + away - 1) * M5))
    klines_while_away = fake.requests[("/fapi/v1/klines", 200)] - klines_before
    fake.accept_websockets()
    wait_subscribed(fake, STREAMS)
    _play(fake, container, half + away, BARS - 1)
    container.service.stop()
    paper = every(container.service.trades)
    stored = stored_bars(settings)

    for symbol in SYMBOLS:
        _assert_same_bars(stored[symbol], file_bars(symbol, T0, T0 + BARS * M5))
    assert klines_while_away >= len(SYMBOLS)  # each symbol's missed bars over REST
    assert fake.handshakes >= 2  # reconnected
    assert sorted(map(priced_key, paper)) == sorted(map(priced_key, _backtest_of_stored(settings)))
    assert container.service.status().candles_processed == BARS * len(SYMBOLS)


def test_a_new_run_warms_up_on_history_days_of_bars_fetched_and_stored_but_never_traded(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake, history_days=1)
    day = 288

    container = bootstrap(settings, wall_clock=clock)
    before = container.service.status()
    window = {s: container.service.recent_candles(s) for s in SYMBOLS}
    stored = stored_bars(settings)

    assert before.candles_processed == 0
    assert before.feed_venue == VENUE
    for symbol in SYMBOLS:
        expected = file_bars(symbol, T0 - day * M5, T0)
        _assert_same_bars(window[symbol], expected)
        _assert_same_bars(stored[symbol], expected)


def test_a_restarted_run_catches_up_on_the_bars_closed_while_it_was_down(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake)
    first = _start(settings, fake, clock)
    _play(fake, first, 0, 99)
    first.service.stop()
    fake.advance_to(T0 + 110 * M5 + CLOSE_GRACE_MS)  # ten bars close while the server is down

    second = _start(settings, fake, clock)
    processed(second, dict.fromkeys(SYMBOLS, T0 + 109 * M5))
    _play(fake, second, 110, BARS - 1)
    second.service.stop()
    paper = every(second.service.trades)
    stored = stored_bars(settings)

    for symbol in SYMBOLS:
        _assert_same_bars(stored[symbol], file_bars(symbol, T0, T0 + BARS * M5))
    assert second.service.status().candles_processed == BARS * len(SYMBOLS)
    assert sorted(map(priced_key, paper)) == sorted(map(priced_key, _backtest_of_stored(settings)))


def test_a_silent_symbol_is_stale_in_status_metrics_and_alerts_and_the_others_trade_on(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    holes = [T0 + k * M5 for k in range(3, 7)]  # the venue has no ETHUSDT bar for 20 minutes
    fake.omit("ETHUSDT", holes)
    settings = _settings(tmp_path, fake)
    container = bootstrap(settings, wall_clock=clock)
    published: list[FeedStale] = []
    container.bus.subscribe(FeedStale, published.append)
    headers = {"Authorization": f"Bearer {TOKEN}"}

    with live_server(build_app(container)) as url, httpx.Client(base_url=url) as client:
        container.service.start()
        wait_subscribed(fake, STREAMS)
        _play(fake, container, 0, 2)
        for k in range(3, 7):  # BTCUSDT's bars close, each traded after the grace without
            fake.advance_to(T0 + (k + 1) * M5 + 1)  # ETHUSDT's, which do not
            processed(container, {"BTCUSDT": T0 + k * M5}, ticking=fake)
        wait(lambda: published, "a FeedStale event")
        assert container.alerts.wait_idle(10)
        stale = client.get("/api/v1/status", headers=headers).json()
        stale_metrics = client.get("/metrics").text
        alerts = client.get("/api/v1/alerts", headers=headers, params={"rule": "venue"}).json()
        ethusdt_then = container.service.current_run().last_bar_time["ETHUSDT"]
        _play(fake, container, 7, 8)  # ETHUSDT's bars again from 7 on
        fresh = client.get("/api/v1/status", headers=headers).json()
        fresh_metrics = client.get("/metrics").text
    stored = stored_bars(settings)

    assert [(e.symbol, e.last_bar_time) for e in published] == [("ETHUSDT", T0 + 2 * M5)]
    assert stale["feed_venue"] == VENUE
    assert [(f["symbol"], f["last_bar_time"]) for f in stale["stale_feeds"]] == [
        ("ETHUSDT", T0 + 2 * M5)
    ]
    assert 'lootcapital_feed_stale{symbol="ETHUSDT",venue="binance-usdm"} 1.0' in stale_metrics
    assert 'lootcapital_feed_stale{symbol="BTCUSDT",venue="binance-usdm"} 0.0' in stale_metrics
    assert [a["title"] for a in alerts] == ["Feed of ETHUSDT stale"]
    assert ethusdt_then == T0 + 2 * M5
    assert fresh["stale_feeds"] == []
    assert 'lootcapital_feed_stale{symbol="ETHUSDT",venue="binance-usdm"} 0.0' in fresh_metrics
    _assert_same_bars(stored["BTCUSDT"], file_bars("BTCUSDT", T0, T0 + 9 * M5))
    expected_eth = file_bars("ETHUSDT", T0, T0 + 9 * M5)
    kept = ~np.isin(expected_eth.open_time, holes)
    np.testing.assert_array_equal(stored["ETHUSDT"].open_time, expected_eth.open_time[kept])


def test_the_venue_connection_is_shown_with_its_requests_weight_reconnects_and_clock(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake)
    container = bootstrap(settings, wall_clock=clock)
    headers = {"Authorization": f"Bearer {TOKEN}"}

    with live_server(build_app(container)) as url, httpx.Client(base_url=url) as client:
        container.service.start()
        wait_subscribed(fake, STREAMS)
        _play(fake, container, 0, 4)
        fake.drop_websockets(refuse=False)
        wait(lambda: fake.handshakes >= 2, "a reconnection")
        wait_subscribed(fake, STREAMS)
        _play(fake, container, 5, 6)
        (venue,) = client.get("/api/v1/venues", headers=headers).json()
        metrics = client.get("/metrics").text
        container.service.stop()

    answered = {k: v for k, v in fake.requests.items() if k[1] == 200}
    answered[("/fapi/v1/exchangeInfo", 200)] -= 1  # the start's trading rules, before the feed
    assert venue["venue"] == VENUE and venue["connected"] is True
    assert venue["requests"] == {f"{path} {status}": n for (path, status), n in answered.items()}
    assert venue["weight_limit"] == 2_400  # (the requests were sent over half an hour ago)
    assert venue["weight_used"] == 0 and venue["held_until"] is None
    assert venue["clock_offset_ms"] == 0  # the fake's clock is ours
    assert venue["banned_until"] is None and venue["last_reconciliation"] is None
    assert set(venue["reconnects"]) == {f"{s}@kline_5m" for s in SYMBOLS}
    assert sum(venue["reconnects"].values()) >= 1
    assert venue["capabilities"]["closed_flag_in_stream"] is True and venue["stale"] == []
    opened = answered[("/fapi/v1/exchangeInfo", 200)]  # the warm-up's and the stream's
    assert opened == 2
    assert (
        'lootcapital_venue_requests_total{endpoint="/fapi/v1/exchangeInfo",status="200",'
        'venue="binance-usdm"} 2.0'
    ) in metrics
    assert 'lootcapital_venue_connected{venue="binance-usdm"} 1.0' in metrics
    assert 'lootcapital_venue_clock_offset_seconds{venue="binance-usdm"} 0.0' in metrics
    assert 'lootcapital_venue_weight_limit{venue="binance-usdm"} 2400.0' in metrics
    assert "lootcapital_ws_reconnects_total{" in metrics


def test_a_data_directory_holding_a_replay_run_is_refused_for_the_live_feed(
    tmp_path: Path, clock: SimulatedClock
) -> None:
    sample = trimmed_sample(tmp_path / "replay-sample", SYMBOLS, bars=100)
    replay = paper_settings(
        tmp_path / "data", sample, SYMBOLS, strategy="sma_cross", strategy_params=PARAMS
    )
    replayed = bootstrap(replay)
    replayed.service.start()
    run_until(replayed)
    stored_before = candle_store(replay).list()
    clock.advance_to(1_760_918_400_000)  # 2025-10-20, seven weeks after the replayed bars
    with FakeBinanceUsdm(clock=clock, symbols=tuple(SYMBOLS)) as fake:
        live = _settings(tmp_path, fake, data_dir=tmp_path / "data")

        with pytest.raises(ConfigError) as refused:
            bootstrap(live, wall_clock=clock)

    assert refused.value.field == "data_dir"
    assert "LOOTCAPITAL_DATA_DIR" in refused.value.message
    assert candle_store(live).list() == stored_before


def test_serve_says_which_venue_it_cannot_reach_and_exits_with_status_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOOTCAPITAL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOOTCAPITAL_API_TOKEN", TOKEN)
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("LOOTCAPITAL_VENUES__BINANCE_USDM__REST_URL", nobody)
    monkeypatch.setenv("LOOTCAPITAL_VENUES__BINANCE_USDM__RETRIES", "0")

    code = main(["serve", "--mode", "paper", "--feed", "binance-usdm", "--symbols", "BTCUSDT"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: binance-usdm: "), err


def test_the_control_centre_shows_the_venue_connection(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake)
    container = bootstrap(settings, wall_clock=clock)

    with live_server(build_app(container)) as url, httpx.Client(base_url=url) as client:
        container.service.start()
        wait_subscribed(fake, STREAMS)
        _play(fake, container, 0, 2)
        client.cookies.set(SESSION_COOKIE, session_value(TOKEN))
        html = client.get("/ui/venues").text
        container.service.stop()

    assert 'data-venue="binance-usdm" data-connected="true"' in html
    assert ">connected</span>" in html and "/ 2400" in html and "0 ms" in html
