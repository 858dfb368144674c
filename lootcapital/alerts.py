"""The alerts' part of the composition root: settings to rules, channels and the dispatcher."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from adapters.notifiers.smtp import EmailNotifier
from adapters.notifiers.webhook import WebhookNotifier
from adapters.notifiers.websocket import WebSocketNotifier
from domain.alerts import AlertRule
from domain.ports import UnitOfWork
from lootcapital.alert_settings import AlertSettings, RuleFilter
from service_layer.alert_rules import AlertRules, RuleConfig
from service_layer.alerts import AlertDispatcher, Delivery, Route


def _rules(settings: AlertSettings) -> RuleConfig:
    r = settings.rules
    return RuleConfig(
        trade_executed=r.trade_executed.enabled,
        pnl=r.pnl.enabled,
        pnl_gain=r.pnl.gain,
        pnl_loss=r.pnl.loss,
        drawdown=r.drawdown.enabled,
        drawdown_limit=r.drawdown.limit,
        risk=r.risk.enabled,
        ml_disabled=r.ml_disabled.enabled,
        venue=r.venue.enabled,
        health=r.health.enabled,
    )


def _only(rules: RuleFilter) -> frozenset[AlertRule] | None:
    return None if rules is None else frozenset(rules)


def alert_routes(settings: AlertSettings, push: Callable[[object], None]) -> list[Route]:
    """The channels the settings turn on: the WebSocket (through ``push``, the event hub's
    handler), the webhook when its URL is set, e-mail when enabled."""
    routes: list[Route] = []
    if settings.websocket.enabled:
        routes.append(Route(WebSocketNotifier(push), _only(settings.websocket.rules)))
    hook = settings.webhook
    if hook.url is not None:
        notifier = WebhookNotifier(
            hook.url.get_secret_value(), format=hook.format, timeout_s=settings.timeout_s
        )
        routes.append(Route(notifier, _only(hook.rules)))
    mail = settings.email
    if mail.enabled:
        email = EmailNotifier(
            host=mail.host,
            port=mail.port,
            sender=mail.sender,
            to=mail.to,
            username=mail.username,
            password=None if mail.password is None else mail.password.get_secret_value(),
            security=mail.security,
            timeout_s=settings.timeout_s,
        )
        routes.append(Route(email, _only(mail.rules)))
    return routes


def alert_dispatcher(
    settings: AlertSettings,
    *,
    initial_equity: Decimal,
    uow_factory: Callable[[], UnitOfWork],
    push: Callable[[object], None],
    on_result: Callable[[str, str], None],
) -> AlertDispatcher:
    """The run's alert dispatcher (subscribe its ``handle`` to the bus when
    ``settings.enabled``).

    Raises
    ------
    ValueError
        For e-mail enabled without a recipient.
    """
    delivery = Delivery(
        attempts=settings.attempts,
        backoff_s=settings.backoff_s,
        backoff_max_s=settings.backoff_max_s,
        timeout_s=settings.timeout_s,
        queue_size=settings.queue_size,
    )
    return AlertDispatcher(
        rules=AlertRules(_rules(settings), initial_equity),
        routes=alert_routes(settings, push),
        uow_factory=uow_factory,
        delivery=delivery,
        on_result=on_result,
    )
