"""One request budget per venue, shared by every caller of the venue in the process (its
market data, its execution, the downloads), on any thread or event loop.

A REST request of weight ``w`` waits until it fits every window of the venue and takes its slot
then: ``w`` in the weight window (Binance USDⓈ-M publishes 2,400 weight a minute per IP), one
request in the request window (spec 001 Property 30: at most 1,200 requests in any minute), and,
for an order, its count in each order window (Binance USDⓈ-M: 300 orders per 10 s and 1,200 a
minute per account, :class:`OrderLimit`). Slots are handed out in the order requests ask, each
at or after the one before, so a burst from several callers queues instead of overrunning a
window; an order whose order windows are full waits for them without a slot, so the requests
asked meanwhile are not held up behind it. The venue's own answers move the budget too: a 429
with ``Retry-After`` holds every request until then (:meth:`VenueBudget.hold`), or only the
orders when the 429 was about the order count; a 418 bans the venue until the ban's end
(:meth:`VenueBudget.ban`): a request then fails at once with :class:`~domain.errors.VenueBanned`
instead of extending the ban. Time is the :class:`~domain.ports.Clock`'s (ms UTC).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from domain.errors import VenueBanned
from domain.ports import Clock
from domain.rate_limit import LIMIT, WINDOW_MS, RequestWindow

Sleep = Callable[[float], Awaitable[None]]
"""Waits a number of seconds."""


@dataclass(frozen=True, slots=True)
class OrderLimit:
    """At most ``limit`` orders in any window of ``window_ms`` (ms), e.g. Binance USDⓈ-M's
    ``rateLimits`` entry ``{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum":
    10, "limit": 300}`` is ``OrderLimit(300, 10_000)``.

    Raises
    ------
    ValueError
        On a ``limit`` or ``window_ms`` below 1.
    """

    limit: int
    window_ms: int

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_ms < 1:
            raise ValueError(
                f"limit and window_ms must be >= 1, were {self.limit}, {self.window_ms}"
            )


@dataclass(frozen=True, slots=True)
class BudgetState:
    """The budget at ``time`` (ms UTC): ``used`` of ``limit`` weight in the window of
    ``window_ms`` ending at the last slot handed out (now, unless requests queue: then their
    weight counts too), requests ``waited`` so far for room, and the end of a hold (after a
    429) or of a ban (after a 418) with the venue's words for it (``hold_reason``,
    ``ban_reason``), None when none is on. ``requests_used`` of ``request_limit``: requests in
    the minute ending at the same slot (``request_limit`` None: no cap); ``orders_used``: the
    orders in each of ``order_limits``' windows, in their order; ``orders_held_until``: the end
    of a hold of the orders alone (a 429 about the order count), None when none is on."""

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
    requests_used: int = 0
    request_limit: int | None = None
    orders_used: tuple[int, ...] = ()
    order_limits: tuple[OrderLimit, ...] = ()
    orders_held_until: int | None = None


class VenueBudget:
    """The request budget of one venue: weight, request count and order counts.

    Parameters
    ----------
    venue:
        Its name, e.g. ``"binance-usdm"`` (in errors and :meth:`state`).
    limit, window_ms:
        At most ``limit`` weight in any ``window_ms``.
    clock:
        Our time (ms UTC).
    request_limit:
        At most this many requests in any minute, whatever their weight (spec 001 Property 30:
        1,200); None: no cap beyond the weight.
    order_limits:
        The venue's order-count windows; an order (:meth:`acquire` with ``orders``) fits all of
        them. Empty: orders are not counted.
    sleep:
        Waits the given seconds (``asyncio.sleep``; tests pass one that moves a simulated
        clock).

    Raises
    ------
    ValueError
        On a ``limit``, ``window_ms`` or ``request_limit`` below 1.
    """

    def __init__(
        self,
        venue: str,
        *,
        limit: int,
        clock: Clock,
        window_ms: int = 60_000,
        request_limit: int | None = LIMIT,
        order_limits: Sequence[OrderLimit] = (),
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.venue = venue
        self._window = RequestWindow(limit, window_ms)
        self._requests = None if request_limit is None else RequestWindow(request_limit, WINDOW_MS)
        self._order_limits = tuple(order_limits)
        self._orders = [RequestWindow(o.limit, o.window_ms) for o in self._order_limits]
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last = 0  # the latest slot handed out (ms UTC)
        self._orders_seen = 0  # the latest time the order windows were read at (ms UTC)
        self._held_until: int | None = None
        self._orders_held_until: int | None = None
        self._banned_until: int | None = None
        self._hold_reason: str | None = None
        self._ban_reason: str | None = None
        self._waited = 0

    async def acquire(self, weight: int = 1, orders: Sequence[int] = ()) -> None:
        """Wait until a request of ``weight`` may be sent, and take its slot (``weight`` above
        the limit is cut to it: such a request could never be sent otherwise).

        ``orders``: for an order request, the orders it counts in each of the budget's order
        windows, in their order (Binance USDⓈ-M's batch of orders: 5 in 10 s, 1 in the
        minute); empty for any other request, or when the budget counts no orders. A count
        above its window's limit is cut to it, as the weight is. An order first waits, taking
        no slot, until its order windows have room and no order hold is on (so the requests
        asked after it do not queue behind it; the orders asked after it do), then takes its
        slot in every window as any request does.

        Raises
        ------
        VenueBanned
            While the venue bans us (after a 418), with the ban's end.
        ValueError
            When ``orders`` is given but does not have one count per order window.
        """
        counted = tuple(orders) if self._orders else ()
        if counted and len(counted) != len(self._orders):
            raise ValueError(
                f"orders must have one count per order window ({len(self._orders)}), was {counted}"
            )
        weight = min(max(1, weight), self._window.limit)
        order_takes = [
            (window, min(count, window.limit))
            for window, count in zip(self._orders, counted, strict=False)
            if count > 0
        ]
        woke = 0  # when the last wait for the order windows ended (ms UTC)
        while True:
            now = max(self._clock.now_ms(), woke)
            with self._lock:
                self._refuse_while_banned(now)
                ready = now
                if order_takes:
                    start = max(now, self._orders_held_until or 0, self._orders_seen)
                    ready = self._orders_seen = _first_fit(start, order_takes)
                if ready <= now:
                    takes = [(self._window, weight), *order_takes]
                    if self._requests is not None:
                        takes.append((self._requests, 1))
                    slot = _first_fit(max(now, self._last, self._held_until or 0), takes)
                    for window, taken in takes:
                        window.record(slot, taken)
                    self._last = slot
                    if order_takes:
                        self._orders_seen = slot
                    if woke or slot > now:
                        self._waited += 1
                    break
            await self._sleep((ready - now) / 1000)
            woke = ready
        if slot > now:
            await self._sleep((slot - now) / 1000)

    def _refuse_while_banned(self, now: int) -> None:
        banned = self._banned_until
        if banned is not None and now < banned:
            raise VenueBanned(
                f"{self.venue} bans this client until {banned} ms UTC: no request before",
                until_ms=banned,
            )

    def hold(self, until_ms: int, reason: str | None = None, *, orders_only: bool = False) -> None:
        """Send nothing before ``until_ms`` (ms UTC; a 429's ``Retry-After``); ``reason``: the
        venue's message (kept with the hold of every request that ends last). ``orders_only``:
        hold the orders alone (a 429 about the order count; the other requests go on)."""
        with self._lock:
            if orders_only:
                self._orders_held_until = max(until_ms, self._orders_held_until or 0)
            elif until_ms >= (self._held_until or 0):
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
            orders_held = self._orders_held_until
            at = max(now, self._last)
            return BudgetState(
                venue=self.venue,
                time=now,
                used=self._window.used(at),
                limit=self._window.limit,
                window_ms=self._window.window_ms,
                waited=self._waited,
                held_until=held if held_on else None,
                banned_until=banned if banned_on else None,
                hold_reason=self._hold_reason if held_on else None,
                ban_reason=self._ban_reason if banned_on else None,
                requests_used=0 if self._requests is None else self._requests.used(at),
                request_limit=None if self._requests is None else self._requests.limit,
                orders_used=tuple(window.used(at) for window in self._orders),
                order_limits=self._order_limits,
                orders_held_until=orders_held if orders_held and orders_held > now else None,
            )


def _first_fit(slot: int, takes: list[tuple[RequestWindow, int]]) -> int:
    """The first time at or after ``slot`` (ms UTC) when every window has room for its take
    (a later time only lets older requests leave, so the search ends)."""
    while True:
        delay = max(window.delay(slot, taken) for window, taken in takes)
        if delay == 0:
            return slot
        slot += delay
