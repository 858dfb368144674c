"""Helpers to run the real server stack (bootstrap, SQLite, the kernel) live, or paper on the live
feed, against a fake venue on loopback (``tests/venues``) that shares the test's simulated clock
and streams real 5m bars from ``T0`` on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple, Protocol

from adapters.clock import SimulatedClock
from domain.candles import Candles
from domain.funding import FundingPayment
from domain.model import OrderStatus, Trade
from lootcapital.bootstrap import Container, bootstrap
from lootcapital.live import LiveStart
from lootcapital.settings import Settings
from lootcapital.simulation import FundingFeed, backtest, load_candles
from tests.fixtures.data import load_candles as file_candles
from tests.integration.paper_harness import CrashPlan

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC: the first bar traded (history_days 0)
TOKEN = "test-token-0123456789"
OPEN = [OrderStatus.PENDING_NEW, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED]


class LoopbackVenue(Protocol):
    """What these helpers use of a fake venue (``FakeBinanceUsdm``, ``FakeMexc``)."""

    clock: SimulatedClock

    @property
    def rest_url(self) -> str: ...

    @property
    def ws_url(self) -> str: ...

    def advance_to(self, ms: int) -> None: ...

    def subscribed(self) -> set[str]: ...


def venue_section(fake: LoopbackVenue, **extra: object) -> dict[str, object]:
    """A venue's settings section pointing at ``fake``, polling every 20 ms and backing off
    10 to 50 ms; ``extra`` adds to it (API key and secret, ``demo``)."""
    section: dict[str, object] = {
        "rest_url": fake.rest_url,
        "ws_url": fake.ws_url,
        "poll_s": 0.02,
        "backoff_s": 0.01,
        "max_backoff_s": 0.05,
    }
    return section | extra


def live_settings(
    tmp_path: Path, venues: dict[str, dict[str, object]], **values: object
) -> Settings:
    """Settings for a non-autostarting ``sma_cross`` run with no history days, its data in
    ``tmp_path / "data"``, an empty sample folder (no kline or funding file: nothing replayed,
    nothing funded) and the venue sections ``venues`` (by settings name, ``"binance_usdm"``);
    ``values`` (``symbols`` among them) add to these or replace them."""
    sample = tmp_path / "sample"
    sample.mkdir(exist_ok=True)
    defaults: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "sample_dir": sample,
        "strategy": "sma_cross",
        "api_token": TOKEN,
        "autostart": False,
        "history_days": 0,
        "venues": venues,
    }
    return Settings(**(defaults | values))  # type: ignore[arg-type]


def wait(done: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    """Poll ``done`` every 2 ms until it is truthy.

    Raises:
        TimeoutError: naming ``what``, once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.002)


def kline_streams(symbols: Iterable[str]) -> set[str]:
    """Binance USDⓈ-M's 5m kline stream names of ``symbols`` (``"btcusdt@kline_5m"``)."""
    return {f"{s.lower()}@kline_5m" for s in symbols}


def wait_subscribed(fake: LoopbackVenue, streams: set[str]) -> None:
    """Wait until ``fake`` has all of ``streams`` subscribed on open connections."""
    wait(lambda: streams <= fake.subscribed(), "the kline streams subscribed")


def start_run(
    settings: Settings,
    fake: LoopbackVenue,
    clock: SimulatedClock,
    streams: set[str],
    live: LiveStart | None = None,
) -> Container:
    """Bootstrap ``settings`` on ``clock`` (live on ``live``, else paper), start the engine and
    wait until its kline ``streams`` are subscribed at ``fake``."""
    container = bootstrap(settings, live=live, wall_clock=clock)
    container.service.start()
    wait_subscribed(fake, streams)
    return container


def settled(container: Container, k: int, n_symbols: int, crash: CrashPlan | None = None) -> None:
    """Wait until the engine has processed bar ``k`` (opening at ``T0 + k * M5``) of each of its
    ``n_symbols`` symbols, sent the orders it decided there, and applied their fills (no order is
    open), or until ``crash`` has fired."""
    service = container.service

    def crashed() -> bool:
        return crash is not None and crash.fired.is_set()

    def processed() -> bool:
        status = service.status()
        if crashed():  # (it fires before the engine thread ends)
            return True
        assert status.running, f"the engine stopped: {status.stopped_reason}"
        return status.candles_processed >= (k + 1) * n_symbols

    wait(processed, f"bar {k} processed")
    wait(lambda: crashed() or not service.orders(statuses=OPEN).items, f"bar {k}'s fills")


def play_live(
    fake: LoopbackVenue, container: Container, first: int, last: int, n_symbols: int
) -> None:
    """Close bars ``first..last`` one at a time, each at exactly its close time once the
    previous one has :func:`settled`."""
    for k in range(first, last + 1):
        fake.advance_to(T0 + (k + 1) * M5)
        settled(container, k, n_symbols)


def processed(
    container: Container, through: Mapping[str, int], *, ticking: LoopbackVenue | None = None
) -> None:
    """Wait until the engine has committed each symbol's bar at ``through[symbol]``; with
    ``ticking``, its clock moves on a second at a time meanwhile (a bar time held for a
    straggler goes once its grace is over)."""

    def done() -> bool:
        status = container.service.status()
        assert status.running, f"the engine stopped: {status.stopped_reason}"
        last = container.service.current_run().last_bar_time
        if ticking is not None:
            ticking.advance_to(ticking.clock.now_ms() + 1_000)
        return all(last.get(s, -1) >= t for s, t in through.items())

    wait(done, f"bars through {through}")


def play_paper(
    fake: LoopbackVenue, container: Container, first: int, last: int, symbols: list[str]
) -> None:
    """Close bars ``T0 + k * M5`` for ``k`` in ``first..last`` (1 ms past their close), each
    once the engine has committed the previous one of every symbol."""
    for k in range(first, last + 1):
        fake.advance_to(T0 + (k + 1) * M5 + 1)
        processed(container, dict.fromkeys(symbols, T0 + k * M5))


def priced_key(t: Trade) -> tuple:
    """A trade's symbol, side, quantity, entry and exit times and prices."""
    return (t.symbol, t.side, t.qty, t.entry_time, t.entry_price, t.exit_time, t.exit_price)


def costed_key(t: Trade) -> tuple:
    """:func:`priced_key` with the trade's fees and PnL."""
    return (*priced_key(t), t.fees, t.pnl)


def file_bars(symbol: str, start: int, end: int) -> Candles:
    """The shipped 5m bars of ``symbol`` opening in ``[start, end)``."""
    return file_candles(f"binance_usdm_{symbol}_5m.csv.gz").between(start, end)


def stored_bars(settings: Settings) -> dict[str, Candles]:
    """The 5m bars the run of ``settings`` stored in its candle store, by symbol."""
    return load_candles(
        settings, data=[], symbols=settings.symbols, timeframe="5m", start_ms=None, end_ms=None
    )


class Backtested(NamedTuple):
    """A backtest's round trips closed before its data ends and all its funding payments."""

    trades: list[Trade]
    fundings: list[FundingPayment]


def sma_cross_backtest(
    settings: Settings,
    candles: dict[str, Candles],
    *,
    params: Mapping[str, object],
    fee: Decimal,
    slippage_bps: Decimal,
    funding: Mapping[str, FundingFeed] | None = None,
) -> Backtested:
    """A 5m ``sma_cross`` backtest with ``params`` on ``candles`` from ``settings``' initial
    cash, paying ``fee`` and ``slippage_bps`` (and ``funding``); its trades are those closed
    before the data ends (the backtest closes open positions at the last close, a run on the
    live feed keeps them)."""
    result = backtest(
        settings,
        strategy="sma_cross",
        params={k: str(v) for k, v in params.items()},
        candles=candles,
        timeframe="5m",
        cash=settings.initial_cash,
        fee=fee,
        slippage_bps=slippage_bps,
        funding=funding,
    )
    end = max(int(c.open_time[-1]) for c in candles.values()) + M5
    return Backtested([t for t in result.trades if t.exit_time < end], result.fundings)
