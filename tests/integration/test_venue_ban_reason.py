"""A venue's ban (HTTP 418) and hold (HTTP 429) carry the venue's reason, not only their end:
in the shared budget, the service's venue status, ``GET /api/v1/venues`` and the control
panel's Venues panel, against the fake Binance USDⓈ-M on loopback (the live-trading harness of
:mod:`tests.integration.test_live_trading`); never a key or a secret."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from adapters.clock import SimulatedClock
from adapters.venues.binance_usdm.market_data import BinanceUsdmMarketData
from adapters.venues.binance_usdm.settings import BinanceUsdmSettings
from adapters.venues.budget import VenueBudget
from api.deps import SESSION_COOKIE, session_value
from domain.errors import VenueBanned
from lootcapital.bootstrap import build_app
from tests.e2e.web_fixtures import live_server
from tests.integration.test_live_faults import ORDER, start_before_entry, venue_status
from tests.integration.test_live_trading import M5, T0, TOKEN, _play, clock, fake
from tests.venues.binance_fake import FakeBinanceUsdm
from tests.venues.binance_fake_private import API_KEY, API_SECRET

__all__ = ["clock", "fake"]  # the fixtures, shared with the live-trading tests

KLINES = "/fapi/v1/klines"


def _market_data(
    fake: FakeBinanceUsdm, clock: SimulatedClock, budget: VenueBudget
) -> BinanceUsdmMarketData:
    settings = BinanceUsdmSettings(
        rest_url=fake.rest_url,  # type: ignore[arg-type]
        ws_url=fake.ws_url,  # type: ignore[arg-type]
        backoff_s=0.01,
        max_backoff_s=0.05,
    )
    return BinanceUsdmMarketData(settings, clock=clock, budget=budget, sleep=_no_wait)


async def _no_wait(seconds: float) -> None:
    """The retries' and the budget's waits: the simulated clock stands still meanwhile."""


def _budget(clock: SimulatedClock) -> VenueBudget:
    return VenueBudget("binance-usdm", limit=2_400, clock=clock, sleep=_no_wait)


def _backfill(fake: FakeBinanceUsdm, clock: SimulatedClock, budget: VenueBudget) -> None:
    """Backfill BTCUSDT's 5m bars through ``budget``; raises what the market data raises."""

    async def main() -> None:
        async with _market_data(fake, clock, budget) as md:
            await md.backfill("BTCUSDT", "5m", T0 - 50 * M5)

    asyncio.run(main())


def test_a_418_bans_the_budget_with_the_venues_reason_until_its_end(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    budget = _budget(clock)
    fake.fail_next(KLINES, 418, retry_after_s=600)

    with pytest.raises(VenueBanned) as raised:
        _backfill(fake, clock, budget)
    refused = raised.value
    during = budget.state()
    clock.advance_to(refused.until_ms)
    after = budget.state()

    assert during.banned_until == refused.until_ms
    assert during.ban_reason == str(refused)
    assert f"banned this client until {refused.until_ms} (HTTP 418)" in str(during.ban_reason)
    assert (after.banned_until, after.ban_reason) == (None, None)  # the ban is over


def test_a_429_holds_the_budget_with_the_venues_reason(
    fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    budget = _budget(clock)
    fake.fail_next(KLINES, 429, retry_after_s=30)

    _backfill(fake, clock, budget)  # retried after the hold
    held = budget.state()

    assert held.held_until == clock.now_ms() + 30_000
    assert held.hold_reason is not None
    assert "rate limit hit (HTTP 429, retry after 30000 ms)" in held.hold_reason
    assert held.ban_reason is None


def test_a_ban_mid_run_shows_its_reason_in_status_api_and_panel(
    tmp_path: Path, fake: FakeBinanceUsdm, clock: SimulatedClock
) -> None:
    container, k, _ = start_before_entry(tmp_path, fake, clock)
    fake.fail_next(ORDER, 418)  # the entry's order is refused with a ban

    with live_server(build_app(container)) as url, httpx.Client(base_url=url) as client:
        _play(fake, container, k, k)
        status = venue_status(container)
        (api,) = client.get("/api/v1/venues", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        client.cookies.set(SESSION_COOKIE, session_value(TOKEN))
        panel = client.get("/ui/venues").text
        container.service.stop()
    container.close()

    reason = status.ban_reason
    assert status.banned_until is not None and reason is not None
    assert f"banned this client until {status.banned_until} (HTTP 418)" in reason
    assert (api["banned_until"], api["ban_reason"]) == (status.banned_until, reason)
    assert api["hold_reason"] is None
    assert ">banned until " in panel and 'data-key="ban-reason"' in panel
    assert f"banned this client until {status.banned_until} (HTTP 418)" in panel
    for secret in (API_KEY, API_SECRET):
        assert secret not in reason and secret not in str(api) and secret not in panel
