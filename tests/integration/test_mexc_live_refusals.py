"""A live start on MEXC that the venue refuses while leverage and margin mode are set: the real
server stack against the fake MEXC on loopback (see :mod:`tests.integration.test_mexc_live`).
The start stops with MEXC's own reason, before any order is sent.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from adapters.clock import SimulatedClock
from domain.errors import VenueError
from lootcapital.bootstrap import bootstrap
from lootcapital.live import LiveStart
from tests.integration.test_mexc_live import CONTRACT, MEXC, _settings, clock, fake
from tests.venues.mexc_fake import FakeMexc
from tests.venues.mexc_fake_trading import _Position

__all__ = ["clock", "fake"]

CROSS = 2  # MEXC's openType; the settings ask for isolated margin


def _refusal(tmp_path: Path, fake: FakeMexc, clock: SimulatedClock, **extra: object) -> str:
    with pytest.raises(VenueError) as refused:
        bootstrap(
            _settings(tmp_path, fake, **extra), live=LiveStart(MEXC, real_money=True),
            wall_clock=clock,
        )  # fmt: skip
    return str(refused.value)


def test_a_live_start_is_refused_with_the_venues_reason_when_it_cannot_change_the_margin_mode(
    tmp_path: Path, fake: FakeMexc, clock: SimulatedClock
) -> None:
    fake.book.positions[CONTRACT] = _Position(vol=Decimal(10), avg=Decimal(95_000))  # by hand
    fake.book.leverage = {(CONTRACT, 1): (20, CROSS), (CONTRACT, 2): (20, CROSS)}

    message = _refusal(tmp_path, fake, clock)

    assert "There is an open position, the margin mode cannot be changed" in message
    assert "2019" in message
    assert fake.book.leverage == {(CONTRACT, 1): (20, CROSS), (CONTRACT, 2): (20, CROSS)}
    assert not fake.book.submitted  # no order sent


def test_a_live_start_is_refused_with_the_venues_reason_when_it_cannot_take_the_leverage(
    tmp_path: Path, fake: FakeMexc, clock: SimulatedClock
) -> None:
    fake.book.max_leverage = 3  # the contract's risk limit level allows 3x at most

    message = _refusal(tmp_path, fake, clock, leverage=5, max_leverage=Decimal(5))

    assert "Leverage ratio error" in message and "2006" in message
    assert fake.book.leverage == {}  # nothing changed
    assert not fake.book.submitted
