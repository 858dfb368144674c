"""MEXC's API key and secret from files readable by their owner alone (mode 600), as Binance's:
the live start's order-entry probe is signed with them and accepted by the fake MEXC, which
checks the key and the signature; a file others may read, or a key given both ways, is refused
naming the path and mode, never the content."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.clock import SimulatedClock
from adapters.venues.mexc.settings import MexcSettings
from domain.errors import ConfigError
from lootcapital.live import LiveStart, check_live_start
from tests.integration.live_harness import T0, live_settings, venue_section
from tests.venues.mexc_fake import API_KEY, API_SECRET, FakeMexc

MEXC = "mexc"


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0 + 60_000)


@pytest.fixture
def fake(clock: SimulatedClock) -> Iterator[FakeMexc]:
    with FakeMexc(clock=clock, symbols=("BTC_USDT",)) as venue:
        yield venue


def _key_files(tmp_path: Path, key: str, secret: str) -> tuple[Path, Path]:
    key_file, secret_file = tmp_path / "mexc.key", tmp_path / "mexc.secret"
    key_file.write_text(key + "\n")
    secret_file.write_text(secret)
    key_file.chmod(0o600)
    secret_file.chmod(0o600)
    return key_file, secret_file


def _start(tmp_path: Path, fake: FakeMexc, clock: SimulatedClock, files: tuple[Path, Path]) -> None:
    venue = venue_section(fake, api_key_file=str(files[0]), api_secret_file=str(files[1]))
    values = {"symbols": ["BTCUSDT"], "live_confirm": True}
    settings = live_settings(tmp_path, {"mexc": venue}, **values)
    check_live_start(settings, LiveStart(MEXC, real_money=True), clock)


def test_keys_from_owner_only_files_sign_the_live_start_probe(
    tmp_path: Path, fake: FakeMexc, clock: SimulatedClock
) -> None:
    _start(tmp_path, fake, clock, _key_files(tmp_path, API_KEY, API_SECRET))

    assert len(fake.orders) == 1  # the zero-quantity probe, signed and accepted


def test_a_wrong_secret_in_its_file_fails_the_probe(
    tmp_path: Path, fake: FakeMexc, clock: SimulatedClock
) -> None:
    with pytest.raises(ConfigError) as refused:
        _start(tmp_path, fake, clock, _key_files(tmp_path, API_KEY, "not-the-secret"))

    assert "Signature verification failed!" in str(refused.value)
    assert "not-the-secret" not in str(refused.value)


def test_keys_come_from_owner_only_files(tmp_path: Path) -> None:
    key, secret = _key_files(tmp_path, API_KEY, API_SECRET)
    secret.chmod(0o640)

    with pytest.raises(ValueError) as loose:
        MexcSettings(api_key_file=key, api_secret_file=secret)
    secret.chmod(0o600)
    settings = MexcSettings(api_key_file=key, api_secret_file=secret)

    assert f"{secret} must be readable by its owner only (600), is 640" in str(loose.value)
    assert API_SECRET not in str(loose.value)
    assert settings.api_key is not None and settings.api_key.get_secret_value() == API_KEY
    assert settings.api_secret is not None and settings.api_secret.get_secret_value() == API_SECRET
    assert settings.secrets() == (API_KEY, API_SECRET)


def test_a_key_given_both_ways_or_an_empty_key_file_is_refused(tmp_path: Path) -> None:
    key, secret = _key_files(tmp_path, API_KEY, API_SECRET)

    with pytest.raises(ValidationError, match="set api_key or api_key_file, not both"):
        MexcSettings(api_key=API_KEY, api_key_file=key)  # type: ignore[arg-type]
    secret.write_text("\n")
    with pytest.raises(ValidationError, match=f"secret file {secret} is empty"):
        MexcSettings(api_key_file=key, api_secret_file=secret)
