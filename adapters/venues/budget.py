"""One request-weight budget per venue, shared by every caller of the venue in the process (its
market data, its execution, the downloads), on any thread or event loop.

A REST request of weight ``w`` waits until ``w`` fits the venue's window (spec 001 Property 30:
the weight sent in any minute never exceeds the limit; Binance USDⓈ-M publishes 2,400 weight a
minute per IP) and takes its slot then. Slots are handed out in the order requests ask, each
at or after the one before, so a burst from several callers queues instead of overrunning the
window. The venue's own answers move the budget too: a 429 with ``Retry-After`` holds every
request until then (:meth:`VenueBudget.hold`), a 418 bans the venue until the ban's end
(:meth:`VenueBudget.ban`): a request then fails at once with :class:`~domain.errors.VenueBanned`
instead of extending the ban. Time is the :class:`~domain.ports.Clock`'s (ms UTC).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from domain.errors import VenueBanned
from domain.ports import Clock
from domain.rate_limit import RequestWindow

Sleep = Callable[[float], Awaitable[None]]
"""Waits a number of seconds."""


@dataclass(frozen=True, slots=True)
class BudgetState:
    """The budget at ``time`` (ms UTC): ``used`` of ``limit`` weight in the window of
    ``window_ms`` ending at the last slot handed out (now, unless requests queue: then their
    weight counts too), requests ``waited`` so far for room, and the end of a hold (after a
    429) or of a ban (after a 418) with the venue's words for it (``hold_reason``,
    ``ban_reason``), None when none is on."""

    venue: str
    time: int
    used: int
    limit: int
    window_ms: int
    waited: int
    held_until: int | None
    banned_until: int | None
    hold_reason: str | None = None
    ban_reason: str | None = None


class VenueBudget:
    """The request-weight budget of one venue.

    Parameters
    ----------
    venue:
        Its name, e.g. ``"binance-usdm"`` (in errors and :meth:`state`).
    limit, window_ms:
        At most ``limit`` weight in any ``window_ms``.
    clock:
        Our time (ms UTC).
    sleep:
        Waits the given seconds (``asyncio.sleep``; tests pass one that moves a simulated
        clock).

    Raises
    ------
    ValueError
        On a ``limit`` or ``window_ms`` below 1.
    """

    def __init__(
        self,
        venue: str,
        *,
        limit: int,
        clock: Clock,
        window_ms: int = 60_000,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.venue = venue
        self._window = RequestWindow(limit, window_ms)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last = 0  # the latest slot handed out (ms UTC)
        self._held_until: int | None = None
        self._banned_until: int | None = None
        self._hold_reason: str | None = None
        self._ban_reason: str | None = None
        self._waited = 0

    async def acquire(self, weight: int = 1) -> None:
        """Wait until a request of ``weight`` may be sent, and take its slot (``weight`` above
        the limit is cut to it: such a request could never be sent otherwise).

        Raises
        ------
        VenueBanned
            While the venue bans us (after a 418), with the ban's end.
        """
        now = self._clock.now_ms()
        with self._lock:
            banned = self._banned_until
            if banned is not None and now < banned:
                raise VenueBanned(
                    f"{self.venue} bans this client until {banned} ms UTC: no request before",
                    until_ms=banned,
                )
            weight = min(max(1, weight), self._window.limit)
            slot = max(now, self._last, self._held_until or 0)
            slot += self._window.delay(slot, weight)
            self._window.record(slot, weight)
            self._last = slot
            if slot > now:
                self._waited += 1
        if slot > now:
            await self._sleep((slot - now) / 1000)

    def hold(self, until_ms: int, reason: str | None = None) -> None:
        """Send nothing before ``until_ms`` (ms UTC; a 429's ``Retry-After``); ``reason``: the
        venue's message (kept with the hold that ends last)."""
        with self._lock:
            if until_ms >= (self._held_until or 0):
                self._held_until, self._hold_reason = until_ms, reason

    def ban(self, until_ms: int, reason: str | None = None) -> None:
        """The venue banned us until ``until_ms`` (ms UTC; a 418): every request fails until
        then; ``reason``: the venue's message (kept with the ban that ends last)."""
        with self._lock:
            if until_ms >= (self._banned_until or 0):
                self._banned_until, self._ban_reason = until_ms, reason

    def state(self) -> BudgetState:
        """The budget now (holds and bans that ended read as None)."""
        now = self._clock.now_ms()
        with self._lock:
            held, banned = self._held_until, self._banned_until
            held_on = held is not None and held > now
            banned_on = banned is not None and banned > now
            return BudgetState(
                venue=self.venue,
                time=now,
                used=self._window.used(max(now, self._last)),
                limit=self._window.limit,
                window_ms=self._window.window_ms,
                waited=self._waited,
                held_until=held if held_on else None,
                banned_until=banned if banned_on else None,
                hold_reason=self._hold_reason if held_on else None,
                ban_reason=self._ban_reason if banned_on else None,
            )
