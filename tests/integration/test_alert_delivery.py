"""Alert delivery against a real local webhook receiver and a real SMTP server (aiosmtpd), with
the alert log in real SQLite (and PostgreSQL when reachable): every rule fires, is delivered and
stored; failures are retried with backoff, counted and logged without secrets; a channel that
never works blocks nothing."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from email import message_from_string, policy

import pytest
from sqlalchemy.engine import Connection

from adapters.notifiers.smtp import EmailNotifier
from adapters.notifiers.webhook import WebhookFormat, WebhookNotifier
from adapters.storage.sql.migrations import upgrade_to_head
from adapters.storage.sql.unit_of_work import SqlUnitOfWork, make_engine, make_session_factory
from domain.alerts import AlertRaised, AlertRecord, AlertRule
from domain.ports import Notifier
from service_layer.alert_rules import AlertRules, RuleConfig
from service_layer.alerts import AlertDispatcher, Delivery, Route, alert_log
from tests.integration.alert_receivers import (
    INITIAL,
    SMTP_PASSWORD,
    SMTP_USER,
    Mailbox,
    free_port,
    one_event_per_rule,
    smtp_server,
    stale_feed,
    webhook_receiver,
)

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
NewUow = Callable[..., SqlUnitOfWork]
WAIT_S = 20.0
FAST = Delivery(attempts=3, backoff_s=0.01, backoff_max_s=0.05, timeout_s=5.0)


class Results:
    """The ``on_result`` counter: ``(channel, result) -> count``."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, channel: str, result: str) -> None:
        with self._lock:
            self.counts[(channel, result)] += 1


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Connection]]:
    """Connections to one SQLite file migrated to head, for the module's delivery tests."""
    url = f"sqlite:///{tmp_path_factory.mktemp('alerts') / 'lootcapital.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def uow_factory(
    sessions: Callable[[], Connection], request: pytest.FixtureRequest
) -> Callable[[], SqlUnitOfWork]:
    """Units of work of a run of this test's own (the storage is shared by the module)."""
    return lambda: SqlUnitOfWork(sessions, request.node.name)


@pytest.fixture
def dispatchers() -> Iterator[list[AlertDispatcher]]:
    """Dispatchers made by a test, closed after it."""
    made: list[AlertDispatcher] = []
    yield made
    for dispatcher in made:
        dispatcher.close(wait_s=0.1)


def _dispatcher(
    made: list[AlertDispatcher],
    new_uow: NewUow,
    notifiers: Sequence[Notifier],
    results: Results,
    delivery: Delivery = FAST,
) -> AlertDispatcher:
    dispatcher = AlertDispatcher(
        rules=AlertRules(RuleConfig(), INITIAL),
        routes=[Route(n) for n in notifiers],
        uow_factory=new_uow,
        delivery=delivery,
        on_result=results,
    )
    made.append(dispatcher)
    return dispatcher


def _email(mailbox: Mailbox, password: str = SMTP_PASSWORD) -> EmailNotifier:
    return EmailNotifier(
        host=mailbox.host, port=mailbox.port, sender="bot@lootcapital.test",
        to=["trader@lootcapital.test"], username=SMTP_USER, password=password,
        security="none", timeout_s=5.0,
    )  # fmt: skip


def _log(new_uow: NewUow) -> list[AlertRecord]:
    return alert_log(new_uow, limit=100).items


def test_every_rule_fires_and_reaches_the_webhook_the_mailbox_and_the_log(
    uow_factory: NewUow, dispatchers: list[AlertDispatcher]
) -> None:
    results = Results()
    pushed: list[object] = []
    with webhook_receiver() as hook, smtp_server() as mailbox:

        class Hub:
            name = "websocket"

            async def send(self, record: AlertRecord) -> None:
                pushed.append(AlertRaised(record))

        channels = [WebhookNotifier(hook.url), _email(mailbox), Hub()]
        dispatcher = _dispatcher(dispatchers, uow_factory, channels, results)
        for _, events in one_event_per_rule():
            for event in events:
                dispatcher.handle(event)
        dispatcher.handle(stale_feed())
        assert dispatcher.wait_idle(WAIT_S)

    rules = [rule.value for rule, _ in one_event_per_rule()] + ["venue"]
    stored = _log(uow_factory)[::-1]  # oldest first: the order they fired in
    assert [r.alert.rule.value for r in stored] == rules
    assert all(r.delivered == ("webhook", "email", "websocket") for r in stored)
    assert all(r.failed == () and r.pending == () for r in stored)
    bodies = sorted(hook.bodies, key=lambda b: b["id"])  # delivered side by side
    assert [(b["id"], b["rule"]) for b in bodies] == [(r.id, r.alert.rule) for r in stored]
    assert sorted(p.record.id for p in pushed) == [r.id for r in stored]  # type: ignore[attr-defined]
    mails = [message_from_string(text, policy=policy.default) for _, _, text in mailbox.mails]
    assert sorted(m["Subject"] for m in mails) == sorted(
        f"[LootCapital {r.alert.severity.upper()}] {r.alert.title}" for r in stored
    )
    assert all(to == ["trader@lootcapital.test"] for _, to, _ in mailbox.mails)
    assert results.counts == Counter(
        {(c, "delivered"): len(rules) for c in ("webhook", "email", "websocket")}
    )


def test_a_webhook_answering_500_then_200_is_retried_and_counted(
    uow_factory: NewUow, dispatchers: list[AlertDispatcher], caplog: pytest.LogCaptureFixture
) -> None:
    results = Results()
    with webhook_receiver(statuses=[500, 503]) as hook:
        dispatcher = _dispatcher(dispatchers, uow_factory, [WebhookNotifier(hook.url)], results)
        dispatcher.handle(one_event_per_rule()[0][1][0])
        assert dispatcher.wait_idle(WAIT_S)

    assert hook.answered == [500, 503, 200]
    assert len(hook.bodies) == 3 and hook.bodies[0] == hook.bodies[2]  # the same alert again
    assert results.counts == Counter({("webhook", "retried"): 2, ("webhook", "delivered"): 1})
    (record,) = _log(uow_factory)
    assert (record.delivered, record.failed) == (("webhook",), ())
    assert "webhook: answered HTTP 500" in caplog.text


@pytest.mark.parametrize("fmt", ["slack", "discord"])
def test_slack_and_discord_webhooks_get_their_payload_shape(
    uow_factory: NewUow, dispatchers: list[AlertDispatcher], fmt: WebhookFormat
) -> None:
    results = Results()
    with webhook_receiver() as hook:
        notifier = WebhookNotifier(hook.url, format=fmt)
        dispatcher = _dispatcher(dispatchers, uow_factory, [notifier], results)
        dispatcher.handle(one_event_per_rule()[-1][1][0])  # the engine stopped on an error
        assert dispatcher.wait_idle(WAIT_S)

    (body,) = hook.bodies
    key, bold = ("text", "*") if fmt == "slack" else ("content", "**")
    assert list(body) == [key]
    assert body[key].startswith(f"{bold}[CRITICAL] Engine stopped on an error{bold}\n")
    assert "RuntimeError: strategy broke" in body[key]


def test_a_channel_that_never_works_blocks_neither_the_publisher_nor_the_other_channels(
    uow_factory: NewUow, dispatchers: list[AlertDispatcher]
) -> None:
    results = Results()
    hold = threading.Event()
    dead = WebhookNotifier(f"http://127.0.0.1:{free_port()}/hook", name="dead")
    with webhook_receiver(hold=hold) as slow, webhook_receiver() as fine:
        channels = [dead, WebhookNotifier(slow.url, name="slow"), WebhookNotifier(fine.url)]
        dispatcher = _dispatcher(dispatchers, uow_factory, channels, results)
        for _, events in one_event_per_rule():
            for event in events:
                dispatcher.handle(event)  # returns while "slow" holds every request

        assert not dispatcher.wait_idle(0.2)
        hold.set()
        assert dispatcher.wait_idle(WAIT_S)

    assert len(fine.bodies) == len(slow.bodies) == 7
    assert results.counts[("dead", "failed")] == 7
    assert results.counts[("dead", "retried")] == 7 * (FAST.attempts - 1)
    assert all(r.failed == ("dead",) for r in _log(uow_factory))
    assert all(set(r.delivered) == {"slow", "webhook"} for r in _log(uow_factory))


def test_a_refused_answer_is_not_retried(
    uow_factory: NewUow, dispatchers: list[AlertDispatcher]
) -> None:
    results = Results()
    with webhook_receiver(statuses=[404]) as hook:
        dispatcher = _dispatcher(dispatchers, uow_factory, [WebhookNotifier(hook.url)], results)
        dispatcher.handle(one_event_per_rule()[0][1][0])
        assert dispatcher.wait_idle(WAIT_S)

    assert hook.answered == [404]
    assert results.counts == Counter({("webhook", "failed"): 1})


def test_alerts_beyond_the_queue_are_dropped_and_counted(
    uow_factory: NewUow, dispatchers: list[AlertDispatcher]
) -> None:
    results = Results()
    hold = threading.Event()
    with webhook_receiver(hold=hold) as hook:
        small = Delivery(attempts=1, timeout_s=5.0, queue_size=2)
        notifier = WebhookNotifier(hook.url)
        dispatcher = _dispatcher(dispatchers, uow_factory, [notifier], results, small)
        taken = [dispatcher.submit(a) for a in _alerts(4)]
        hold.set()
        assert dispatcher.wait_idle(WAIT_S)

    assert taken == [True, True, False, False]
    assert results.counts == Counter({("webhook", "delivered"): 2, ("webhook", "dropped"): 2})
    assert len(hook.bodies) == 2


def _alerts(n: int) -> list:
    rules = AlertRules(RuleConfig(), INITIAL)
    fill_event = one_event_per_rule()[0][1][0]
    return [rules.evaluate(fill_event)[0] for _ in range(n)]


def test_secrets_never_reach_the_logs_or_the_alert_log(
    uow_factory: NewUow, dispatchers: list[AlertDispatcher], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    results = Results()
    token = "T000-hook-token-B000-XXXX"
    with smtp_server() as mailbox, webhook_receiver(statuses=[500] * 3, path=f"/{token}") as hook:
        wrong = "wrong-" + SMTP_PASSWORD
        channels = [_email(mailbox, wrong), WebhookNotifier(hook.url)]
        dispatcher = _dispatcher(dispatchers, uow_factory, channels, results)
        dispatcher.handle(one_event_per_rule()[0][1][0])
        assert dispatcher.wait_idle(WAIT_S)

    assert mailbox.mails == []
    assert results.counts[("email", "failed")] == 1
    assert results.counts[("email", "retried")] == 0  # a refused login is not retried
    assert results.counts[("webhook", "failed")] == 1
    assert "email via 127.0.0.1" in caplog.text and "login refused" in caplog.text
    stored = json.dumps([str(r) for r in _log(uow_factory)])
    for secret in (wrong, SMTP_PASSWORD, token):
        assert secret not in caplog.text
        assert secret not in stored


def test_the_alert_log_pages_newest_first_per_run(new_uow: NewUow) -> None:
    alerts = [a for _, events in one_event_per_rule() for e in events for a in _evaluate(e)]
    with new_uow() as uow:
        records = [uow.alerts.add(a, ["webhook", "email"]) for a in alerts]
        uow.alerts.record(records[0].id, ["webhook"], ["email"])
        uow.commit()
    with new_uow("other-run") as uow:
        uow.alerts.add(alerts[0], [])
        uow.commit()

    first = alert_log(new_uow, limit=4)
    rest = alert_log(new_uow, limit=4, cursor=first.next_cursor)
    risk = alert_log(new_uow, rule=AlertRule.RISK.value).items
    late = alert_log(new_uow, start=alerts[5].time).items

    every = first.items + rest.items
    assert [r.id for r in every] == [r.id for r in records][::-1]
    assert rest.next_cursor is None
    assert every[-1].alert == alerts[0]
    assert (every[-1].delivered, every[-1].failed, every[-1].pending) == (
        ("webhook",), ("email",), ()
    )  # fmt: skip
    assert every[0].pending == ("webhook", "email")
    assert [r.alert.rule for r in risk] == [AlertRule.RISK]
    assert [r.alert.rule.value for r in late] == ["health", "venue"]
    assert len(alert_log(lambda: new_uow("other-run")).items) == 1


_RULES = AlertRules(RuleConfig(), INITIAL)


def _evaluate(event: object) -> list:
    return _RULES.evaluate(event)


def test_close_cancels_a_delivery_under_way(
    uow_factory: NewUow, dispatchers: list[AlertDispatcher]
) -> None:
    results = Results()

    class Stuck:
        name = "stuck"

        async def send(self, record: AlertRecord) -> None:
            await asyncio.sleep(3600)

    dispatcher = _dispatcher(dispatchers, uow_factory, [Stuck()], results)
    dispatcher.handle(one_event_per_rule()[0][1][0])

    dispatcher.close(wait_s=0.1)

    assert dispatcher.wait_idle(1.0)
    assert dispatcher.submit(_alerts(1)[0]) is False
    assert [r.delivered + r.failed for r in _log(uow_factory)] == [()]
