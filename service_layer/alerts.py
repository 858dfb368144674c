"""Alert delivery: rules applied to bus events, each alert stored in the run's alert log, then
sent to every channel that takes its rule, with retries, beside the engine.

The engine's thread (any bus publisher) only evaluates the rules and enqueues: storing and
sending run on the dispatcher's own thread and asyncio loop, started with the first alert. At
most ``queue_size`` alerts wait or are in delivery; more are dropped (logged and counted). Each
channel is tried up to ``attempts`` times, with exponential backoff between tries (tenacity)
while it fails with :class:`~domain.errors.TransientDeliveryError` or a timeout; a
:class:`~domain.errors.PermanentDeliveryError` ends its tries at once. A channel that never
works costs its tries and nothing else: the other channels, later alerts and the engine go on.
What every try came to is reported through ``on_result(channel, result)`` (the metrics
counter): ``delivered``, ``retried``, ``failed`` or ``dropped``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from domain.alerts import Alert, AlertRecord, AlertRule
from domain.errors import DeliveryError, TransientDeliveryError
from domain.ports import Notifier, Page, UnitOfWork
from service_layer.alert_rules import AlertRules

logger = logging.getLogger(__name__)

DELIVERED, RETRIED, FAILED, DROPPED = "delivered", "retried", "failed", "dropped"
"""The ``result`` label values of ``lootcapital_alerts_total``."""


@dataclass(frozen=True, slots=True)
class Route:
    """A channel and the rules whose alerts it takes (None: every rule)."""

    notifier: Notifier
    rules: frozenset[AlertRule] | None = None

    def takes(self, alert: Alert) -> bool:
        """Whether ``alert`` goes to this channel."""
        return self.rules is None or alert.rule in self.rules


@dataclass(frozen=True, slots=True)
class Delivery:
    """How channels are tried: ``attempts`` tries each, waiting ``backoff_s`` × 2^(n−1)
    seconds (at most ``backoff_max_s``) after the n-th failed one, each try cut at
    ``timeout_s``; ``queue_size`` alerts at most waiting or in delivery, ``workers`` of them
    delivered at once.

    Raises
    ------
    ValueError
        When ``attempts``, ``queue_size`` or ``workers`` is < 1, a backoff is negative or
        ``timeout_s`` is not > 0.
    """

    attempts: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    timeout_s: float = 10.0
    queue_size: int = 1000
    workers: int = 4

    def __post_init__(self) -> None:
        for name in ("attempts", "queue_size", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, was {getattr(self, name)}")
        if self.backoff_s < 0 or self.backoff_max_s < 0:
            raise ValueError(f"backoffs must be >= 0, were {self.backoff_s}, {self.backoff_max_s}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, was {self.timeout_s}")


def alert_log(
    uow_factory: Callable[[], UnitOfWork],
    *,
    rule: str | None = None,
    start: int | None = None,
    end: int | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[AlertRecord]:
    """The run's stored alerts (of ``rule``, fired from ``start`` to ``end`` ms UTC inclusive,
    each when given), newest first, one page with what became of their delivery.

    Raises
    ------
    ConfigError
        For a malformed ``cursor`` or ``limit < 1``.
    """
    with uow_factory() as uow:
        return uow.alerts.page(rule=rule, start=start, end=end, limit=limit, cursor=cursor)


class AlertDispatcher:
    """Applies ``rules`` to bus events (:meth:`handle`) and delivers the alerts to ``routes``
    after storing them through ``uow_factory`` (see the module docstring). ``sleep`` waits
    between tries (tests pass a fast one)."""

    def __init__(
        self,
        *,
        rules: AlertRules,
        routes: Sequence[Route],
        uow_factory: Callable[[], UnitOfWork],
        delivery: Delivery | None = None,
        on_result: Callable[[str, str], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rules = rules
        self.routes = tuple(routes)
        self.uow_factory = uow_factory
        self.delivery = delivery or Delivery()
        self._on_result = on_result
        self._sleep = sleep
        self._rules_lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._slots = asyncio.Semaphore(self.delivery.workers)  # binds to the loop on use
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the publisher's side (any thread) ---------------------------------------------------
    def handle(self, event: object) -> None:
        """Bus handler: enqueue the alerts ``event`` raises (never waits for a delivery)."""
        with self._rules_lock:
            alerts = self.rules.evaluate(event)
        for alert in alerts:
            self.submit(alert)

    def submit(self, alert: Alert) -> bool:
        """Enqueue ``alert`` for storing and delivery; False when it was dropped (the queue
        is full, or the dispatcher is closed)."""
        with self._idle:
            if self._closed or self._pending >= self.delivery.queue_size:
                logger.warning("alert dropped (%d waiting): %s", self._pending, alert.title)
                for route in self._routes_of(alert):
                    self._count(route.notifier.name, DROPPED)
                return False
            self._pending += 1
            loop = self._start()
        loop.call_soon_threadsafe(self._accept, alert)
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until every enqueued alert is stored and its
        delivery finished; False when some still are not."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, wait_s: float = 2.0) -> None:
        """Refuse new alerts, give those under way ``wait_s`` seconds, cancel the rest and
        stop the dispatcher's thread."""
        with self._idle:
            self._closed = True
        self.wait_idle(wait_s)
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._cancel_all(), loop).result(wait_s + 5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(wait_s + 5)

    def _start(self) -> asyncio.AbstractEventLoop:
        """The dispatcher's loop, its thread started on first use (call holding ``_idle``)."""
        if self._loop is None:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._run, args=(loop,), name="alerts", daemon=True
            )
            self._loop = loop
            self._thread.start()
        return self._loop

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.close()

    # -- the dispatcher's loop ---------------------------------------------------------------
    def _accept(self, alert: Alert) -> None:
        """Store ``alert`` (in the order alerts came) and start its delivery."""
        routes = self._routes_of(alert)
        names = [r.notifier.name for r in routes]
        try:
            with self.uow_factory() as uow:
                record = uow.alerts.add(alert, names)
                uow.commit()
        except Exception:
            logger.exception("alert not stored (still sent): %s", alert.title)
            record = AlertRecord(0, alert, tuple(names))
        task = asyncio.get_running_loop().create_task(self._deliver(record, routes))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, record: AlertRecord, routes: Sequence[Route]) -> None:
        try:
            async with self._slots:
                sent = await asyncio.gather(*(self._send(r.notifier, record) for r in routes))
            delivered = tuple(r.notifier.name for r, ok in zip(routes, sent, strict=True) if ok)
            failed = tuple(r.notifier.name for r, ok in zip(routes, sent, strict=True) if not ok)
            if record.id:
                self._record(replace(record, delivered=delivered, failed=failed))
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _record(self, record: AlertRecord) -> None:
        try:
            with self.uow_factory() as uow:
                uow.alerts.record(record.id, record.delivered, record.failed)
                uow.commit()
        except Exception:
            logger.exception("the delivery of alert %d was not stored", record.id)

    async def _send(self, notifier: Notifier, record: AlertRecord) -> bool:
        """Try ``notifier`` with retries; True when it took the alert."""
        d, name = self.delivery, notifier.name
        retrying = AsyncRetrying(
            stop=stop_after_attempt(d.attempts),
            wait=wait_exponential(multiplier=d.backoff_s, max=d.backoff_max_s),
            retry=retry_if_exception_type(TransientDeliveryError),
            sleep=self._sleep,
            before_sleep=lambda state: self._retrying(name, record, state),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._once(notifier, record)
        except DeliveryError as exc:
            logger.warning("alert %d not delivered to %s: %s", record.id, name, exc)
            self._count(name, FAILED)
            return False
        except Exception as exc:  # a broken channel must not stop the others
            logger.error("alert %d: channel %s failed: %s", record.id, name, type(exc).__name__)
            self._count(name, FAILED)
            return False
        self._count(name, DELIVERED)
        return True

    async def _once(self, notifier: Notifier, record: AlertRecord) -> None:
        try:
            await asyncio.wait_for(notifier.send(record), self.delivery.timeout_s)
        except TimeoutError:
            raise TransientDeliveryError(
                f"{notifier.name}: no answer within {self.delivery.timeout_s} s"
            ) from None

    def _retrying(self, name: str, record: AlertRecord, state: RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        logger.warning(
            "alert %d: %s failed (try %d: %s); retrying in %.1f s",
            record.id, name, state.attempt_number, error, wait,
        )  # fmt: skip
        self._count(name, RETRIED)

    async def _cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _routes_of(self, alert: Alert) -> list[Route]:
        return [r for r in self.routes if r.takes(alert)]

    def _count(self, channel: str, result: str) -> None:
        if self._on_result is not None:
            self._on_result(channel, result)
