"""Funding a live run pays at the venue: the real server stack against the fake Binance USDⓈ-M
on loopback (see :mod:`tests.integration.test_live_trading`, whose helpers these tests use),
which charges the account's positions funding at 00:00, 08:00 and 16:00 UTC from the real
funding files and lists each payment in its income history (``GET /fapi/v1/income``).

The run's bars go from 2025-05-05 00:00 to 16:40 UTC: its positions pay at 08:00 and 16:00. The
run books what the venue charged (its amounts, to the 8 decimals of the wallet) at the
reconciliation after each funding time, once per symbol and time, across a restart too.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.clock import SimulatedClock
from lootcapital.bootstrap import Container
from tests.integration.test_live_trading import (
    M5,
    SYMBOLS,
    T0,
    _play,
    _settings,
    _start,
    clock,
)
from tests.integration.test_reconciliation import _reconciled_at, _shut_down
from tests.venues.binance_fake import FakeBinanceUsdm

__all__ = ["clock"]  # the fixture, shared with the live-trading tests

BARS = 200
HOUR = 3_600_000
WALLET = Decimal(100_000)
CASH = Decimal(10_000)  # the run's initial_cash (the settings' default)

Payment = tuple[str, int, Decimal]


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeBinanceUsdm]:
    with FakeBinanceUsdm(clock=clock, symbols=tuple(SYMBOLS), charge_funding=True) as venue:
        venue.account.wallet = WALLET  # as in the live-trading tests: margin never decides
        yield venue


def _charged(fake: FakeBinanceUsdm) -> list[Payment]:
    """What the venue charged: (symbol, time, amount paid), oldest first."""
    rows = fake.account.income
    return sorted((r["symbol"], r["time"], -Decimal(r["income"])) for r in rows)


def _booked(container: Container) -> list[Payment]:
    """The run's stored funding payments: (symbol, time, amount paid), oldest first."""
    return sorted((p.symbol, p.time_ms, p.amount) for p in container.service.fundings())


def _assert_cash_is_the_venues_wallet(container: Container, fake: FakeBinanceUsdm) -> None:
    """The ledger's cash moved as the venue's wallet did (fees, PnL and funding), to the
    cent."""
    moved = container.service.engine.ledger.cash - CASH
    assert round(moved, 2) == round(fake.account.wallet - WALLET, 2)


def test_a_live_run_books_each_funding_payment_the_venue_charged_once(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    container = _start(_settings(tmp_path, fake), fake, clock)

    _play(fake, container, 0, BARS - 1)
    _reconciled_at(container, fake, T0 + BARS * M5 + 60_000)
    _shut_down(container, fake)
    charged, booked = _charged(fake), _booked(container)

    assert {t for _, t, _ in charged} == {T0 + 8 * HOUR, T0 + 16 * HOUR}
    assert booked == charged
    payments = container.service.fundings()
    assert all(round(p.qty * p.mark * p.rate, 8) == p.amount for p in payments)  # the venue's qty
    assert container.service.engine.ledger.account.funding_paid == sum(a for *_, a in charged)
    _assert_cash_is_the_venues_wallet(container, fake)


def test_funding_charged_while_the_server_was_down_is_booked_at_start_and_none_twice(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    settings = _settings(tmp_path, fake)
    first = _start(settings, fake, clock)
    _play(fake, first, 0, 100)  # past 08:00
    _reconciled_at(first, fake, T0 + 101 * M5 + 60_000)
    _shut_down(first, fake)
    before = _booked(first)
    fake.advance_to(T0 + 193 * M5)  # 16:05: the 16:00 funding charged, the server down

    second = _start(settings, fake, clock)
    at_start = _booked(second)
    _play(fake, second, 193, BARS - 1)
    _reconciled_at(second, fake, T0 + BARS * M5 + 60_000)
    _shut_down(second, fake)
    charged, booked = _charged(fake), _booked(second)

    assert before == [c for c in charged if c[1] == T0 + 8 * HOUR] != []
    assert at_start == booked == charged
    assert any(t == T0 + 16 * HOUR for _, t, _ in charged)
    _assert_cash_is_the_venues_wallet(second, fake)
