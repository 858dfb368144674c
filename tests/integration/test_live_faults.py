"""Faults of the venue in the middle of a live run: the real server stack against the fake
Binance USDⓈ-M on loopback (see :mod:`tests.integration.test_live_trading`, whose harness these
tests use), with one fault injected at the bar that decides an entry (or, for a liquidation,
while the position is open).

After each: no order reached the venue twice (the fake counts accepted orders per client id),
our open orders and positions are the venue's, the engine still runs, and the fault shows in the
service's venue status (``GET /api/v1/venues``) and in the metrics it feeds
(:class:`~api.venue_metrics.VenueCollector`): the user-data stream's repeats, reorderings,
fills before acknowledgements and partial fills, which the adapter absorbs, as the status's
``user_events`` and ``lootcapital_venue_user_events_total{venue,kind}``. Every order the venue
acknowledged is timed once in ``lootcapital_order_latency_seconds{venue}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from adapters.clock import SimulatedClock
from api.venue_metrics import VenueCollector
from domain.candles import Candles
from domain.model import ExitReason, OrderStatus
from domain.orders import LIQUIDATION_TAG
from domain.venues import VenueStatus
from lootcapital.bootstrap import Container
from lootcapital.settings import Settings
from tests.fixtures.data import load_candles as file_candles
from tests.integration.live_harness import M5, OPEN, T0, settled, wait, wait_subscribed
from tests.integration.paper_harness import every
from tests.integration.test_live_trading import (
    STREAMS,
    SYMBOLS,
    _backtest,
    _play,
    _settings,
    _start,
    clock,
    fake,
)
from tests.venues.binance_fake import FakeBinanceUsdm

__all__ = ["clock", "fake"]  # the fixtures, shared with the live-trading tests

BARS = 45
ORDER = "/fapi/v1/order"
HELD_S = 1  # a 429's Retry-After (s): the resend waits it out in wall time


def fast_settings(tmp_path: Path, fake: FakeBinanceUsdm) -> Settings:
    """The live-trading tests' settings with a short REST timeout and receive window, so a
    lost answer is settled within a second of wall time."""
    settings = _settings(tmp_path, fake)
    fast = {"timeout_s": 0.5, "recv_window_ms": 300}
    venue = settings.venues.binance_usdm.model_copy(update=fast)
    venues = settings.venues.model_copy(update={"binance_usdm": venue})
    return settings.model_copy(update={"venues": venues})


def entry_bar(settings: Settings, bars: int = BARS) -> tuple[int, str]:
    """The bar whose close decides the first entry of the backtest of the first ``bars``
    bars after the slow average has warmed up, and its symbol."""
    candles: dict[str, Candles] = {
        s: file_candles(f"binance_usdm_{s}_5m.csv.gz").between(T0, T0 + bars * M5) for s in SYMBOLS
    }
    trade = min(_backtest(settings, candles), key=lambda t: t.entry_time)
    return (trade.entry_time - T0) // M5 - 1, trade.symbol


def start_before_entry(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> tuple[Container, int, str]:
    """A live run on :func:`fast_settings` with every bar before :func:`entry_bar`'s closed:
    the run, the entry bar's index ``k`` and its symbol."""
    settings = fast_settings(tmp_path, fake)
    k, symbol = entry_bar(settings)
    container = _start(settings, fake, clock)
    _play(fake, container, 0, k - 1)
    return container, k, symbol


def venue_status(container: Container) -> VenueStatus:
    (status,) = container.service.venues()
    return status


def metric(container: Container, name: str, **labels: str) -> float:
    """A sample of the venue metrics as Prometheus would scrape them now (0 when absent)."""
    collector = VenueCollector()
    collector.update(container.service.venues())
    registry = CollectorRegistry()
    registry.register(collector)
    return registry.get_sample_value(name, {"venue": "binance-usdm"} | labels) or 0.0


def assert_matches_the_venue(fake: FakeBinanceUsdm, container: Container) -> None:
    """Each order reached the venue at most once, ours are the venue's, and our open orders
    and positions are the venue's."""
    service = container.service
    orders = every(service.orders)
    ours = {o.id for o in orders if o.tag != LIQUIDATION_TAG}
    taken = {o.id for o in orders if o.venue_order_id is not None and o.tag != LIQUIDATION_TAG}
    placed = fake.account.placed
    assert set(placed.values()) == {1}, placed
    assert set(placed) == taken and taken <= ours
    venue_open = {
        o.client_id for o in fake.account.orders.values() if o.status in ("NEW", "PARTIALLY_FILLED")
    } | {a.client_id for a in fake.account.algos.values() if a.status == "NEW"}
    assert {o.id for o in service.orders(statuses=OPEN).items} == venue_open
    assert _held(container) == {s: p.qty for s, p in fake.account.positions.items() if p.qty}


def _status_of(container: Container, order_id: str) -> OrderStatus | None:
    stored = [o for o in every(container.service.orders) if o.id == order_id]
    return stored[0].status if stored else None


def _held(container: Container) -> dict[str, Decimal]:
    """Our open positions: qty (base asset, signed) by symbol."""
    views = container.service.positions()
    return {v.position.symbol: v.position.qty for v in views if v.position.qty}


# ------------------------------------------------------------------ the faults


@dataclass(frozen=True)
class Fault:
    """``inject`` before the fault's bar closes; ``shown`` checks it is visible once the run
    went on past it."""

    inject: Callable[[FakeBinanceUsdm, Container], None]
    shown: Callable[[FakeBinanceUsdm, Container], None]


def _requests(container: Container, key: str) -> int:
    return venue_status(container).requests.get(key, 0)


def _status_shows(path_status: str) -> Callable[[FakeBinanceUsdm, Container], None]:
    endpoint, _, status = path_status.rpartition(" ")

    def shown(fake: FakeBinanceUsdm, container: Container) -> None:
        assert _requests(container, path_status) == 1
        labels = {"endpoint": endpoint, "status": status}
        assert metric(container, "lootcapital_venue_requests_total", **labels) == 1

    return shown


def _lookups_show(fake: FakeBinanceUsdm, container: Container) -> None:
    """The lost answer is counted as a request whose outcome is unknown."""
    assert _requests(container, f"{ORDER} unknown") == 1
    labels = {"endpoint": ORDER, "status": "unknown"}
    assert metric(container, "lootcapital_venue_requests_total", **labels) == 1


def _reconnect_shown(stream: str) -> Callable[[FakeBinanceUsdm, Container], None]:
    def shown(fake: FakeBinanceUsdm, container: Container) -> None:
        assert venue_status(container).reconnects[stream] >= 1
        assert metric(container, "lootcapital_ws_reconnects_total", stream=stream) >= 1

    return shown


def _user_events_shown(kind: str) -> Callable[[FakeBinanceUsdm, Container], None]:
    """The user-data events of ``kind`` the client absorbed are in the status and metrics."""

    def shown(fake: FakeBinanceUsdm, container: Container) -> None:
        counted = venue_status(container).user_events[kind]
        assert counted >= 1
        assert metric(container, "lootcapital_venue_user_events_total", kind=kind) == counted

    return shown


def _partial_shown(fake: FakeBinanceUsdm, container: Container) -> None:
    partial = [
        o for o in every(container.service.orders)
        if o.status is OrderStatus.EXPIRED and Decimal(0) < o.filled_qty < o.qty
    ]  # fmt: skip
    assert partial, "the venue filled half an entry and expired the rest"
    _user_events_shown("partial_fill")(fake, container)


def _set_partial(fake: FakeBinanceUsdm, container: Container) -> None:
    fake.account.fill_fraction = Decimal("0.5")


def _set_reversed(fake: FakeBinanceUsdm, container: Container) -> None:
    fake.account.trades_per_fill = 3
    fake.private.reverse_events(7)  # NEW, then (trade, account update) × 3, all backwards


FAULTS = {
    "timeout after acceptance": Fault(
        lambda f, c: f.private.hang_next(ORDER, seconds=1.0, process=True), _lookups_show
    ),
    "answer lost, order never taken": Fault(
        lambda f, c: f.private.hang_next(ORDER, seconds=1.0, process=False), _lookups_show
    ),
    "5xx on submission": Fault(lambda f, c: f.fail_next(ORDER, 503), _status_shows(f"{ORDER} 503")),
    "429 with Retry-After": Fault(
        lambda f, c: f.fail_next(ORDER, 429, retry_after_s=HELD_S), _status_shows(f"{ORDER} 429")
    ),
    "user-data stream dropped": Fault(
        lambda f, c: f.drop_user_streams(), _reconnect_shown("user-data")
    ),
    "user events duplicated": Fault(
        lambda f, c: f.private.duplicate_events(20), _user_events_shown("duplicate")
    ),
    "user events reversed": Fault(_set_reversed, _user_events_shown("out_of_order")),
    "fill before acknowledgement": Fault(
        lambda f, c: (f.private.reverse_events(2), f.private.delay_answer(ORDER, 0.3)),
        _user_events_shown("fill_before_ack"),
    ),
    "partial fills": Fault(_set_partial, _partial_shown),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_live_run_survives_the_fault_sends_no_order_twice_and_ends_as_the_venue(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock, name: str
) -> None:
    fault = FAULTS[name]
    container, k, _ = start_before_entry(tmp_path, fake, clock)

    fault.inject(fake, container)
    _play(fake, container, k, k)
    fake.account.fill_fraction, fake.account.trades_per_fill = None, 1
    wait_subscribed(fake, STREAMS)
    _play(fake, container, k + 1, BARS - 1)
    status = container.service.status()
    fault.shown(fake, container)
    assert_matches_the_venue(fake, container)
    timed = metric(container, "lootcapital_order_latency_seconds_count")
    container.service.stop()
    container.close()

    assert status.running, status.stopped_reason
    assert status.candles_processed == BARS * len(SYMBOLS)
    assert fake.account.trades, "the run traded"
    assert timed == len(fake.account.placed)  # each acknowledged order timed once


def test_a_ban_halts_the_venue_with_its_end_in_the_status_and_trading_resumes_after_it(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    container, k, _ = start_before_entry(tmp_path, fake, clock)

    fake.fail_next(ORDER, 418)
    _play(fake, container, k, k)
    banned = venue_status(container)
    refused = [o for o in every(container.service.orders) if o.status is OrderStatus.REJECTED]
    _play(fake, container, k + 1, BARS - 1)
    status = container.service.status()
    after = venue_status(container)
    assert_matches_the_venue(fake, container)
    container.service.stop()
    container.close()

    close = T0 + (k + 1) * M5
    assert banned.banned_until is not None and banned.banned_until > close
    assert banned.requests[f"{ORDER} 418"] == 1
    assert [o.reject_reason for o in refused] and "ban" in str(refused[0].reject_reason).lower()
    assert after.banned_until is None  # the ban ended: the venue is asked again
    assert status.running, status.stopped_reason
    assert any(o.created_time > close for o in every(container.service.orders))


def test_a_position_liquidated_by_the_venue_mid_run_closes_as_a_liquidation(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    container, k, symbol = start_before_entry(tmp_path, fake, clock)
    _play(fake, container, k, k)  # the entry filled at the next bar's open

    autoclose = fake.liquidate(symbol)
    wait(lambda: _status_of(container, autoclose) is OrderStatus.FILLED, "the liquidation")
    wait(  # shown at once, not at the next bar
        lambda: symbol not in {v.position.symbol for v in container.service.positions()},
        "the liquidated position gone from the positions shown",
    )
    _play(fake, container, k + 1, BARS - 1)
    status = container.service.status()
    assert_matches_the_venue(fake, container)
    trades = every(container.service.trades)
    container.service.stop()
    container.close()

    liquidated = [t for t in trades if t.exit_reason is ExitReason.LIQUIDATION]
    assert [t.symbol for t in liquidated] == [symbol]
    assert status.running, status.stopped_reason


def test_market_streams_dropped_mid_run_reconnect_and_the_bar_missed_meanwhile_is_fetched(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    container, k, _ = start_before_entry(tmp_path, fake, clock)

    fake.drop_websockets(refuse=True)
    fake.advance_to(T0 + (k + 1) * M5)  # bar k closes while the streams are down
    fake.accept_websockets()
    wait_subscribed(fake, STREAMS)
    _play(fake, container, k + 1, BARS - 1)  # its close shows the hole: bar k over REST
    status = container.service.status()
    assert_matches_the_venue(fake, container)
    venue = venue_status(container)
    stream = "BTCUSDT@kline_5m"
    reconnects = metric(container, "lootcapital_ws_reconnects_total", stream=stream)
    container.service.stop()
    container.close()

    assert status.running, status.stopped_reason
    assert status.candles_processed == BARS * len(SYMBOLS)
    assert venue.connected and venue.reconnects[stream] == 1 and reconnects == 1
    assert venue.requests["/fapi/v1/klines 200"] >= len(SYMBOLS)  # the missed bar, fetched


def test_a_ban_on_the_market_data_backfill_is_waited_out_and_the_missed_bar_traded_after_it(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    container, k, _ = start_before_entry(tmp_path, fake, clock)

    fake.fail_next("/fapi/v1/klines", 418)  # the backfill of the bar missed below
    fake.drop_websockets(refuse=True)
    fake.advance_to(T0 + (k + 1) * M5)  # bar k closes while the streams are down
    fake.accept_websockets()
    wait_subscribed(fake, STREAMS)
    wait(lambda: venue_status(container).banned_until is not None, "the ban seen")
    banned = venue_status(container)
    # Past the ban's end (2 minutes of venue time). A symbol whose bar k came before the ban
    # was traded without the other's after the aligner's wait, and the other's, fetched
    # after the ban, was then dropped: at most one bar fewer.
    for j in range(k + 1, BARS):
        fake.advance_to(T0 + (j + 1) * M5)
        wait(lambda j=j: _processed(container) >= (j + 1) * len(SYMBOLS) - 1, f"bar {j}")
    settled(container, BARS - 2, len(SYMBOLS))  # and the fills decided at the last close
    status = container.service.status()
    assert_matches_the_venue(fake, container)
    after = venue_status(container)
    container.service.stop()
    container.close()

    assert status.running, status.stopped_reason
    assert status.candles_processed >= BARS * len(SYMBOLS) - 1
    assert banned.ban_reason is not None and "418" in banned.ban_reason
    assert after.banned_until is None and after.ban_reason is None


def _processed(container: Container) -> int:
    status = container.service.status()
    assert status.running, f"the engine stopped: {status.stopped_reason}"
    return status.candles_processed
