"""Live trading: the real server stack (bootstrap, SQLite, the kernel) with its orders at a fake
Binance USDⓈ-M on loopback (its demo URLs pointed at the fake), which streams real 5m bars and
fills the orders with its matching engine.

The fake and the server share one simulated clock. Each bar closes at exactly its close time,
once the engine has committed the previous one and its orders have filled: a market order then
reaches the fake at the close of the bar it was decided on and fills at the open of the next
one, at that time, as the simulated venue fills it with no slippage. So the run's trades are
compared field by field with a backtest of the bars the run stored (entry and exit times,
sides, quantities, prices, fees and PnL: the fake charges Binance's taker fee, the backtest's
``fee_taker``).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from adapters.clock import SimulatedClock
from domain.candles import Candles
from domain.errors import ConfigError, VenueError
from domain.model import Trade
from lootcapital.bootstrap import Container, bootstrap
from lootcapital.cli import main
from lootcapital.live import LiveStart
from lootcapital.settings import Settings
from service_layer.risk_service import RiskControl
from tests.integration.live_harness import (
    M5,
    OPEN,
    T0,
    TOKEN,
    costed_key,
    file_bars,
    kline_streams,
    live_settings,
    play_live,
    settled,
    sma_cross_backtest,
    start_run,
    stored_bars,
    venue_section,
    wait,
    wait_subscribed,
)
from tests.integration.paper_harness import (
    CrashPlan,
    crash_during_run,
    every,
    paper_settings,
    read_run,
    trimmed_sample,
    wait_stopped,
)
from tests.venues.binance_fake import FakeBinanceUsdm
from tests.venues.binance_fake_private import API_KEY, API_SECRET
from tests.venues.mexc_fake import API_KEY as MEXC_KEY
from tests.venues.mexc_fake import API_SECRET as MEXC_SECRET
from tests.venues.mexc_fake import FakeMexc

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
STREAMS = kline_streams(SYMBOLS)
PARAMS = {"fast": 5, "slow": 20}  # sma_cross: about 25 round trips on 200 bars of the two
BARS = 200
VENUE = "binance-usdm"


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0 + 60_000)  # one minute into the bar opening at T0


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=clock, symbols=tuple(SYMBOLS)) as venue:
        # The account holds ten times the run's initial_cash: the strategy sizes on its own
        # capital (all of it, as margin) and the venue's margin check, whose arithmetic is the
        # venue's, never decides a trade.
        venue.account.wallet = Decimal(100_000)
        yield venue


def _settings(tmp_path: Path, fake: FakeBinanceUsdm, **extra: object) -> Settings:
    venue = venue_section(fake, demo=True, api_key=API_KEY, api_secret=API_SECRET)
    values = {"symbols": SYMBOLS, "strategy_params": PARAMS}
    return live_settings(tmp_path, {"binance_usdm": venue}, **(values | extra))


def _start(settings: Settings, fake: FakeBinanceUsdm, clock: SimulatedClock) -> Container:
    return start_run(settings, fake, clock, STREAMS, live=LiveStart(VENUE))


def _play(fake: FakeBinanceUsdm, container: Container, first: int, last: int) -> None:
    """Close bars ``first..last`` one at a time, each at exactly its close time."""
    play_live(fake, container, first, last, n_symbols=len(SYMBOLS))


def _file_bars(symbol: str) -> Candles:
    return file_bars(symbol, T0, T0 + BARS * M5)


def _backtest(settings: Settings, candles: dict[str, Candles]) -> list[Trade]:
    """The backtest's round trips on ``candles`` with no slippage, those closed before the
    data ends (the backtest closes open positions at the last close; the live run keeps
    them)."""
    result = sma_cross_backtest(
        settings, candles, params=PARAMS, fee=settings.fee_taker, slippage_bps=Decimal(0)
    )
    return result.trades


def _assert_stored_bars_are_the_files(settings: Settings) -> None:
    for symbol, bars in stored_bars(settings).items():
        expected = _file_bars(symbol)
        np.testing.assert_array_equal(bars.open_time, expected.open_time)
        np.testing.assert_array_equal(bars.close, expected.close)


def _assert_each_order_sent_once(fake: FakeBinanceUsdm, container: Container) -> None:
    ids = {o.id for o in every(container.service.orders)}
    assert set(fake.account.placed) == ids
    assert set(fake.account.placed.values()) == {1}
    assert set(fake.private.attempts.values()) == {1}


def test_a_live_run_places_its_orders_at_the_venue_and_trades_as_a_backtest_of_its_bars(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake)
    container = _start(settings, fake, clock)

    _play(fake, container, 0, BARS - 1)
    container.service.stop()
    container.close()
    live = every(container.service.trades)
    expected = _backtest(settings, stored_bars(settings))
    status = container.service.status()

    _assert_stored_bars_are_the_files(settings)
    assert len(expected) > 15
    assert sorted(map(costed_key, live)) == sorted(map(costed_key, expected))
    _assert_each_order_sent_once(fake, container)
    assert len(fake.account.trades) == len(every(container.service.fills))
    assert status.mode == "live" and status.candles_processed == BARS * len(SYMBOLS)
    assert read_run(settings.database, mode="live").run.mode == "live"
    (venue,) = container.service.venues()
    assert venue.venue == VENUE and venue.last_reconciliation == T0 + BARS * M5
    assert venue.drift == {}  # reconciled after every bar: nothing differed
    assert {s: c.leverage for s, c in fake.account.positions.items()} == dict.fromkeys(SYMBOLS, 1)
    assert {c.margin_type for c in fake.account.positions.values()} == {"ISOLATED"}


def test_the_risk_gate_counts_the_venues_fills_as_a_backtests_gate_counts_the_simulated_ones(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    losses = {"enabled": True, "count": 2, "cooldown_ms": 6 * 3_600_000, "state": "halted"}
    settings = _settings(tmp_path, fake, risk={"consecutive_losses": losses})
    container = _start(settings, fake, clock)

    _play(fake, container, 0, BARS - 1)
    container.service.stop()
    container.close()
    live = every(container.service.trades)
    expected = _backtest(settings, stored_bars(settings))
    unguarded = _backtest(settings.model_copy(update={"risk": _settings(tmp_path, fake).risk}),
                          stored_bars(settings))  # fmt: skip
    trips = [r.event for r in RiskControl(container.service).events()]

    assert len(expected) < len(unguarded)  # the losing streaks halted the backtest's entries
    assert sorted(map(costed_key, live)) == sorted(map(costed_key, expected))
    assert any("consecutive" in str(e).lower() for e in trips), trips


def test_a_restart_after_a_crash_between_storing_and_sending_looks_the_order_up_and_sends_it_once(
    tmp_path: Path,
    fake: FakeBinanceUsdm,
    clock: SimulatedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("threading.excepthook", lambda args: None)  # the simulated kill
    settings = _settings(tmp_path, fake)
    crashing = bootstrap(settings, live=LiveStart(VENUE), wall_clock=clock)
    plan = CrashPlan(after_commits=BARS // 2)
    crash_during_run(crashing, plan)
    crashing.service.start()
    wait_subscribed(fake, STREAMS)
    k = 0
    while not plan.fired.is_set():
        fake.advance_to(T0 + (k + 1) * M5)
        settled(crashing, k, len(SYMBOLS), plan)
        k += 1
    wait_stopped(crashing)
    crashing.close()
    wait(lambda: fake.connections == 0, "the crashed run's kline streams closed")
    unsent = [o for o in read_run(settings.database, mode="live").orders if o.status is OPEN[0]]
    lookups_before = fake.requests[("/fapi/v1/order", 400)]

    restarted = _start(settings, fake, clock)
    wait(lambda: not restarted.service.orders(statuses=OPEN).items, "the unsent orders filled")
    _play(fake, restarted, k, BARS - 1)
    restarted.service.stop()
    restarted.close()
    live = every(restarted.service.trades)

    assert unsent, "the crash came after orders were stored, before they were sent"
    assert fake.requests[("/fapi/v1/order", 400)] > lookups_before  # looked up: unknown
    assert all(fake.account.placed[o.id] == 1 for o in unsent)
    assert sorted(map(costed_key, live)) == sorted(
        map(costed_key, _backtest(settings, stored_bars(settings)))
    )
    _assert_each_order_sent_once(fake, restarted)


def test_fills_missed_while_the_user_data_stream_is_down_are_fetched_when_it_reconnects(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake)
    expected = _backtest(settings, {s: _file_bars(s) for s in SYMBOLS})
    entry = sorted(t.entry_time for t in expected)[len(expected) // 2]
    k = (entry - T0) // M5 - 1  # the bar whose close decides that entry
    container = _start(settings, fake, clock)
    _play(fake, container, 0, k - 1)

    fake.drop_user_streams(refuse=True)
    fake.advance_to(T0 + (k + 1) * M5)
    wait(lambda: container.service.status().candles_processed >= (k + 1) * len(SYMBOLS), "bar")
    missed = container.service.orders(statuses=OPEN).items
    fake.private.refusing = False
    wait(lambda: not container.service.orders(statuses=OPEN).items, "the missed fills")
    _play(fake, container, k + 1, BARS - 1)
    container.service.stop()
    assert container.venue is not None and container.venue.client is not None
    opened = container.venue.client.stream_opens
    container.close()

    assert missed, "the entry filled at the venue while its stream was down"
    assert opened >= 2  # the stream reconnected
    assert sorted(map(costed_key, every(container.service.trades))) == sorted(
        map(costed_key, expected)
    )
    _assert_each_order_sent_once(fake, container)


def test_the_start_stops_with_the_venues_reason_when_it_refuses_the_margin_mode(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    fake.account.positions["BTCUSDT"].qty = Decimal("0.010")  # cross-margined, open

    with pytest.raises(VenueError) as refused:
        bootstrap(_settings(tmp_path, fake), live=LiveStart(VENUE), wall_clock=clock)

    assert "Margin type cannot be changed if there exists position" in str(refused.value)
    assert fake.private.streams == 0  # the client closed what it opened
    assert fake.account.placed == {}


def test_a_data_directory_holding_a_paper_run_is_refused_for_a_live_run(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    sample = trimmed_sample(tmp_path / "replay-sample", SYMBOLS, bars=60)
    paper = paper_settings(tmp_path / "data", sample, SYMBOLS, strategy="sma_cross")
    bootstrap(paper)  # stores its run

    with pytest.raises(ConfigError) as refused:
        bootstrap(_settings(tmp_path, fake), live=LiveStart(VENUE), wall_clock=clock)

    assert refused.value.field == "data_dir"
    assert "holds a paper run" in refused.value.message
    assert "LOOTCAPITAL_DATA_DIR" in refused.value.message
    assert fake.private.listen_keys == []  # the venue never heard of it


def test_a_data_directory_holding_a_live_run_is_refused_for_paper_trading(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake)
    bootstrap(settings, live=LiveStart(VENUE), wall_clock=clock).close()  # stores its run

    with pytest.raises(ConfigError) as refused:
        bootstrap(settings.model_copy(update={"feed": VENUE}), wall_clock=clock)

    assert refused.value.field == "data_dir"
    assert "holds a live run" in refused.value.message


# ------------------------------------------------------------------ refusals at the CLI


def _serve_live(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *options: str,
    **env: str,
) -> tuple[int, str]:
    """``lootcapital serve --mode live --symbols BTCUSDT *options`` with ``env`` (names after
    ``LOOTCAPITAL_``); its exit status and stderr."""
    monkeypatch.setenv("LOOTCAPITAL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOOTCAPITAL_API_TOKEN", TOKEN)
    for name, value in env.items():
        monkeypatch.setenv(f"LOOTCAPITAL_{name}", value)
    code = main(["serve", "--mode", "live", "--symbols", "BTCUSDT", *options])
    return code, capsys.readouterr().err


KEYS = {
    "VENUES__BINANCE_USDM__API_KEY": API_KEY,
    "VENUES__BINANCE_USDM__API_SECRET": API_SECRET,
}


@pytest.mark.parametrize(
    ("options", "confirm", "missing"),
    [
        ((), "false", "missing: --live and live_confirm = true in the settings"),
        (("--live",), "false", "missing: live_confirm = true in the settings "
         "(LOOTCAPITAL_LIVE_CONFIRM=true)"),
        ((), "true", "missing: --live (or --demo"),
    ],
)  # fmt: skip
def test_real_money_is_refused_without_both_live_and_live_confirm(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    options: tuple[str, ...],
    confirm: str,
    missing: str,
) -> None:
    code, err = _serve_live(
        tmp_path, monkeypatch, capsys, "--venue", VENUE, *options, LIVE_CONFIRM=confirm, **KEYS
    )

    assert code == 2
    assert err.startswith("error: live trading on binance-usdm trades real money"), err
    assert missing in err
    assert not (tmp_path / "data").exists()  # refused before anything was stored


@pytest.mark.parametrize(
    ("options", "env", "said"),
    [
        (("--venue", VENUE, "--demo", "--live"), {},
         "--live asks for real money, but venues.binance_usdm.demo is true"),
        (("--venue", VENUE, "--demo"),
         {"VENUES__BINANCE_USDM__REST_URL": "https://fapi.binance.com"},
         "venues.binance_usdm.demo is true but rest_url is Binance's production endpoint"),
        (("--venue", "mexc", "--demo"), {}, "--demo: mexc has no demo environment"),
        ((), {}, "--mode live needs --venue (binance-usdm or mexc)"),
    ],
)  # fmt: skip
def test_live_options_that_do_not_go_together_are_refused_before_anything_is_stored(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    options: tuple[str, ...],
    env: dict[str, str],
    said: str,
) -> None:
    code, err = _serve_live(tmp_path, monkeypatch, capsys, *options, **env, **KEYS)

    assert code == 2
    assert err.startswith(f"error: {said}"), err
    assert not (tmp_path / "data").exists()


def test_a_live_start_without_the_api_key_is_refused_naming_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _serve_live(tmp_path, monkeypatch, capsys, "--venue", VENUE, "--demo")

    assert code == 2
    assert "needs the account's API key and secret" in err
    assert "LOOTCAPITAL_VENUES__BINANCE_USDM__API_KEY" in err
    assert "LOOTCAPITAL_VENUES__BINANCE_USDM__API_SECRET" in err


@pytest.mark.parametrize(
    ("order_entry", "said"),
    [
        (False, "mexc refuses order entry through the API for this account on BTCUSDT: "
         "order entry was refused"),
    ],
)  # fmt: skip
def test_live_mode_on_mexc_is_refused_with_the_order_entry_probes_answer(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    order_entry: bool,
    said: str,
) -> None:
    with FakeMexc(clock=SimulatedClock(T0), symbols=("BTC_USDT",)) as mexc:
        mexc.order_entry = order_entry
        code, err = _serve_live(
            tmp_path, monkeypatch, capsys, "--venue", "mexc", "--live", LIVE_CONFIRM="true",
            VENUES__MEXC__REST_URL=mexc.rest_url, VENUES__MEXC__WS_URL=mexc.ws_url,
            VENUES__MEXC__API_KEY=MEXC_KEY, VENUES__MEXC__API_SECRET=MEXC_SECRET,
        )  # fmt: skip
        probes = len(mexc.orders)

    assert code == 2
    assert err.startswith(f"error: {said}"), err
    assert "live mode is refused" in err
    assert probes == 1  # the zero-quantity probe, nothing else
    if not order_entry:
        assert "Contract not allow place order!" in err
