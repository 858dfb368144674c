"""The ``alerts`` settings: read from the environment, turned into channels, checked, and never
shown with their secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from domain.alerts import AlertRule
from lootcapital.alerts import alert_routes
from lootcapital.settings import Settings, describe_error

PASSWORD = "smtp-pa55-w0rd-never-shown"
HOOK = "https://hooks.slack.test/services/T000/B000/secret-token"


def test_alert_settings_come_from_the_environment_and_make_the_channels(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {
        "LOOTCAPITAL_ALERTS__WEBHOOK__URL": HOOK,
        "LOOTCAPITAL_ALERTS__WEBHOOK__FORMAT": "slack",
        "LOOTCAPITAL_ALERTS__EMAIL__ENABLED": "true",
        "LOOTCAPITAL_ALERTS__EMAIL__TO": "a@example.org, b@example.org",
        "LOOTCAPITAL_ALERTS__EMAIL__PASSWORD": PASSWORD,
        "LOOTCAPITAL_ALERTS__EMAIL__RULES": '["risk", "health"]',
        "LOOTCAPITAL_ALERTS__RULES__DRAWDOWN__LIMIT": "0.2",
        "LOOTCAPITAL_ALERTS__RULES__TRADE_EXECUTED__ENABLED": "false",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    alerts = Settings(data_dir=tmp_path).alerts
    routes = alert_routes(alerts, push=lambda event: None)

    assert [r.notifier.name for r in routes] == ["websocket", "webhook", "email"]
    assert routes[2].rules == {AlertRule.RISK, AlertRule.HEALTH}
    assert routes[0].rules is None
    assert alerts.email.to == ["a@example.org", "b@example.org"]
    assert str(alerts.rules.drawdown.limit) == "0.2"
    assert alerts.rules.trade_executed.enabled is False
    assert PASSWORD not in repr(alerts) and HOOK not in repr(alerts)


def test_by_default_alerts_go_to_the_websocket_and_the_log_only(tmp_path: Path) -> None:
    alerts = Settings(data_dir=tmp_path).alerts

    assert alerts.enabled is True
    assert [r.notifier.name for r in alert_routes(alerts, lambda e: None)] == ["websocket"]


def test_email_without_a_recipient_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(data_dir=tmp_path, alerts={"email": {"enabled": True}})

    assert "alerts.email" in describe_error(caught.value)
    assert "alerts.email.to" in describe_error(caught.value)


def test_an_invalid_secret_is_named_but_not_shown(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(data_dir=tmp_path, alerts={"email": {"password": ["not", PASSWORD]}})

    message = describe_error(caught.value)
    assert "LOOTCAPITAL_ALERTS__EMAIL__PASSWORD" in message
    assert PASSWORD not in message and "***" in message


def test_a_venue_section_that_fails_its_check_is_named_without_its_secrets(tmp_path: Path) -> None:
    """A section-level check (here: a key given both inline and as a file) fails on the whole
    section: the message names the section and the keys set, never their values."""
    key_file = tmp_path / "key"
    key_file.write_text("file-held-key-never-shown")
    key_file.chmod(0o600)
    venue = {"api_key": "inline-key-never-shown", "api_key_file": str(key_file)}
    with pytest.raises(ValidationError) as caught:
        Settings(data_dir=tmp_path, venues={"binance_usdm": venue})

    message = describe_error(caught.value)
    assert "venues.binance_usdm" in message and "api_key, api_key_file" in message
    assert "never-shown" not in message
