"""The alert rules: which bus events become alerts, once per crossing, each behind its toggle;
and the webhook payload shapes (plain JSON, Slack, Discord)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from adapters.notifiers.smtp import email_message
from adapters.notifiers.webhook import DISCORD_LIMIT, webhook_payload
from domain.alerts import Alert, AlertRecord, AlertRule, Severity
from domain.events import CandleClosed, EngineStopped, EquityUpdated, OrderFilled
from domain.model import EquityPoint
from domain.pipeline_events import ML_ERROR, PipelineEvent
from domain.risk import AlertKind, RiskAlert, StateChange, TradingState
from service_layer.alert_rules import AlertRules, RuleConfig
from tests.integration.alert_receivers import INITIAL, T0, fill, one_event_per_rule, stale_feed


def _equity(time: int, value: int | str) -> EquityUpdated:
    return EquityUpdated(EquityPoint(time, Decimal(value), Decimal(value)))


def _fired(rules: AlertRules, events: list[object]) -> list[Alert]:
    return [a for e in events for a in rules.evaluate(e)]


def test_each_rule_fires_once_on_its_event() -> None:
    rules = AlertRules(RuleConfig(), INITIAL)

    fired = [(rule, _fired(rules, events)) for rule, events in one_event_per_rule()]

    assert [(rule, [a.rule for a in alerts]) for rule, alerts in fired] == [
        (rule, [rule]) for rule, _ in fired
    ]
    by_rule = {rule: alerts[0] for rule, alerts in fired}
    assert by_rule[AlertRule.TRADE_EXECUTED].title == "BUY 0.5 BTCUSDT at 65000.5"
    assert by_rule[AlertRule.TRADE_EXECUTED].data["fee"] == "16.25"
    assert by_rule[AlertRule.PNL].data["pnl"] == pytest.approx(0.12)
    assert by_rule[AlertRule.DRAWDOWN].data["drawdown"] == pytest.approx(0.15)
    assert by_rule[AlertRule.DRAWDOWN].data["peak"] == "11200"
    risk = by_rule[AlertRule.RISK]
    assert risk.severity is Severity.CRITICAL
    assert risk.title == "Trading halted on account (circuit breaker consecutive_losses tripped)"
    assert "accuracy 41.0%" in by_rule[AlertRule.ML_DISABLED].message
    assert by_rule[AlertRule.VENUE].title == "Venue binance-usdm disconnected"
    assert by_rule[AlertRule.HEALTH].data["error"] == "RuntimeError: strategy broke"


def test_a_stale_feed_is_a_venue_alert() -> None:
    rules = AlertRules(RuleConfig(), INITIAL)

    (alert,) = rules.evaluate(stale_feed())

    assert (alert.rule, alert.severity) == (AlertRule.VENUE, Severity.CRITICAL)
    assert alert.title == "Feed of SOLUSDT stale"
    assert "900 s" in alert.message


def test_a_threshold_alerts_once_per_crossing_and_again_after_coming_back() -> None:
    rules = AlertRules(
        RuleConfig(trade_executed=False, drawdown=False, pnl_loss=Decimal("0.05")), INITIAL
    )
    path = [9_600, 9_400, 9_300, 9_800, 9_450, 10_000]  # -4 %, -6 %, -7 %, -2 %, -5.5 %, 0 %

    fired = [rules.evaluate(_equity(T0 + i, v)) for i, v in enumerate(path)]

    assert [len(a) for a in fired] == [0, 1, 0, 0, 1, 0]
    assert fired[1][0].severity is Severity.WARNING
    assert fired[1][0].title == "PnL -6.00%: loss threshold -5.00% reached"


def test_drawdown_is_measured_from_the_peak_and_alerts_once() -> None:
    rules = AlertRules(RuleConfig(pnl=False, drawdown_limit=Decimal("0.1")), INITIAL)
    path = [10_000, 12_000, 11_000, 10_700, 10_500, 12_500, 11_200]

    fired = [rules.evaluate(_equity(T0 + i, v)) for i, v in enumerate(path)]

    assert [len(a) for a in fired] == [0, 0, 0, 1, 0, 0, 1]
    assert fired[3][0].data["peak"] == "12000"
    assert fired[6][0].data["peak"] == "12500"


def test_a_rule_switched_off_stays_quiet() -> None:
    off = RuleConfig(
        trade_executed=False, pnl=False, drawdown=False, risk=False, ml_disabled=False,
        venue=False, health=False,
    )  # fmt: skip
    rules = AlertRules(off, INITIAL)

    fired = [_fired(rules, events) for _, events in one_event_per_rule()]

    assert fired == [[]] * len(fired)
    assert rules.evaluate(stale_feed()) == []


def test_quiet_events_raise_nothing() -> None:
    rules = AlertRules(RuleConfig(), INITIAL)
    resume = StateChange("account", TradingState.HALTED, TradingState.ACTIVE, "by hand", T0)
    ml_error = PipelineEvent(T0, "BTCUSDT", ML_ERROR, {"model_id": "m", "error": "boom"})
    stopped = EngineStopped("stopped by user", T0)
    candle = CandleClosed("BTCUSDT", "5m", None)  # type: ignore[arg-type]

    assert [rules.evaluate(e) for e in (resume, ml_error, stopped, candle)] == [[]] * 4


def test_risk_alerts_say_what_the_breakers_asked() -> None:
    rules = AlertRules(RuleConfig(), INITIAL)
    close_all = RiskAlert("account", AlertKind.CLOSE_ALL, "daily loss 5.2%: closing all", T0, 0.052)
    reducing = StateChange(
        "BTCUSDT", TradingState.ACTIVE, TradingState.REDUCING, "ATR 97th pct", T0,
        "volatility_spike",
    )  # fmt: skip

    (first,) = rules.evaluate(close_all)
    (second,) = rules.evaluate(reducing)

    assert (first.severity, first.message) == (Severity.CRITICAL, "daily loss 5.2%: closing all")
    assert second.severity is Severity.WARNING
    assert second.title == (
        "Trading reducing only on BTCUSDT (circuit breaker volatility_spike tripped)"
    )


def test_rules_refuse_bad_thresholds() -> None:
    with pytest.raises(ValueError, match="drawdown_limit must be < 1"):
        RuleConfig(drawdown_limit=Decimal(1))
    with pytest.raises(ValueError, match="initial_equity must be > 0"):
        AlertRules(RuleConfig(), Decimal(0))


def _record() -> AlertRecord:
    (alert,) = AlertRules(RuleConfig(), INITIAL).evaluate(OrderFilled(fill()))
    return AlertRecord(7, alert, ("webhook",))


def test_webhook_payloads_in_plain_json_slack_and_discord_shapes() -> None:
    record = _record()

    plain = webhook_payload(record, "json")
    slack = webhook_payload(record, "slack")
    discord = webhook_payload(record, "discord")

    assert plain["id"] == 7 and plain["rule"] == "trade_executed" and plain["time"] == T0
    assert plain["data"]["symbol"] == "BTCUSDT"
    assert slack == {"text": f"*[INFO] BUY 0.5 BTCUSDT at 65000.5*\n{record.alert.message}"}
    assert discord == {"content": f"**[INFO] BUY 0.5 BTCUSDT at 65000.5**\n{record.alert.message}"}


def test_a_discord_message_is_cut_to_its_limit() -> None:
    record = _record()
    long = replace(record, alert=replace(record.alert, message="x" * 5_000))

    assert len(webhook_payload(long, "discord")["content"]) == DISCORD_LIMIT


def test_an_alert_email_has_its_subject_date_and_facts() -> None:
    mail = email_message(_record(), "bot@example.org", ["a@example.org", "b@example.org"])

    assert mail["Subject"] == "[LootCapital INFO] BUY 0.5 BTCUSDT at 65000.5"
    assert mail["To"] == "a@example.org, b@example.org"
    assert mail["Date"] == "Tue, 02 Sep 2025 00:00:00 +0000"
    assert "order_id: o-1" in mail.get_content()
