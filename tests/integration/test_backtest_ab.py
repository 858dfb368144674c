"""``lootcapital backtest --strategy adaptive --ab``: the feature A/B on the shipped sample
(BTCUSDT, 60 days of 5m bars), its JSON document, console tables and HTML page, and the
options it refuses."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import pytest

from domain.model import Direction, Reason, Side, Signal, Trade
from lootcapital.ab_test import FEATURES, entry_signals, key_level_at_entry, regime_at_entry
from lootcapital.cli import EXIT_USAGE, main
from tests.fixtures.data import sample_dir

BTC = sample_dir() / "binance_usdm_BTCUSDT_5m.csv.gz"
METRICS = {
    "total_return_pct",
    "sharpe",
    "max_drawdown_pct",
    "win_rate_pct",
    "profit_factor",
    "trades",
}


class AbOutput(NamedTuple):
    code: int
    console: str
    document: dict
    html: str


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOOTCAPITAL_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


@pytest.fixture(scope="module")
def ab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AbOutput]:
    """One A/B on the sample's BTCUSDT, shared by the tests that read its outputs."""
    folder = tmp_path_factory.mktemp("ab")
    out_json, out_html = folder / "ab.json", folder / "ab.html"
    console = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(console):
        mp.setenv("LOOTCAPITAL_DATA_DIR", str(folder / "var"))
        code = main(
            ["backtest", "--strategy", "adaptive", "--ab", "--data", str(BTC),
             "--json", str(out_json), "--report", str(out_html)]
        )  # fmt: skip
    yield AbOutput(code, console.getvalue(), json.loads(out_json.read_text()), out_html.read_text())


def _run(document: dict, name: str) -> dict:
    (run,) = [r for r in document["runs"] if r["name"] == name]
    return run


def test_ab_json_has_the_all_run_and_one_run_per_disabled_feature(ab: AbOutput) -> None:
    runs = ab.document["runs"]

    assert ab.code == 0
    assert [r["name"] for r in runs] == ["all", *(f"no_{f}" for f in FEATURES)]
    for run in runs:
        assert set(run["metrics"]) >= METRICS
        off = run["name"].removeprefix("no_")
        assert all(run["params"][f] is (f != off) for f in FEATURES)


def test_ab_without_the_regime_feature_enters_more_often(ab: AbOutput) -> None:
    every, no_regime = _run(ab.document, "all"), _run(ab.document, "no_regime")

    # With the regime off, UNCERTAIN no longer blocks entries.
    assert no_regime["metrics"]["entries"] > every["metrics"]["entries"]
    assert no_regime["metrics"]["trades"] != every["metrics"]["trades"]


def test_ab_regime_rows_add_up_to_the_all_runs_trades(ab: AbOutput) -> None:
    trades = _run(ab.document, "all")["metrics"]["trades"]
    by_regime = ab.document["by_regime"]
    key_levels = ab.document["key_levels"]

    assert trades > 0
    assert sum(g["trades"] for g in by_regime.values()) == trades
    assert sum(g["trades"] for g in key_levels.values()) == trades
    assert "unknown" not in by_regime  # every trade's entry signal was found
    assert by_regime["UNCERTAIN"]["trades"] == 0  # UNCERTAIN takes no entry
    assert key_levels["at_key_level"]["trades"] > 0


def test_ab_console_prints_the_three_tables(ab: AbOutput) -> None:
    lines = ab.console.splitlines()

    assert "feature A/B: every feature on, then each one off" in lines
    assert "all features: trades by regime at entry" in lines
    assert "all features: trades by volume-profile key level at entry" in lines
    for name in ("all", *(f"no_{f}" for f in FEATURES)):
        assert any(re.match(rf"{name}\s+-?\d", line) for line in lines)


def test_ab_html_report_is_self_contained_with_the_tables(ab: AbOutput) -> None:
    page = ab.html

    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<table") == 4  # header, runs, by regime, key levels
    for text in ("no_volume_profile", "TRENDING_BULLISH", "at a key level", "<style>"):
        assert text in page
    assert "http" not in page
    assert not re.search(r"<(script|link|img)\b", page)


def test_ab_json_to_stdout_prints_only_the_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["backtest", "--strategy", "adaptive", "--ab", "--data", str(BTC),
         "--start", "2025-09-02", "--end", "2025-09-20", "--json", "-"]
    )  # fmt: skip

    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert len(document["runs"]) == 1 + len(FEATURES)


def test_ab_with_another_strategy_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "--strategy", "sma_cross", "--ab", "--data", str(BTC)])

    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "--ab" in err and "sma_cross" in err


def test_ab_refuses_a_param_that_sets_a_feature(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["backtest", "--strategy", "adaptive", "--ab", "--param", "regime=false",
         "--data", str(BTC)]
    )  # fmt: skip

    assert code == EXIT_USAGE
    assert "--param regime" in capsys.readouterr().err


def _signal(time: int, direction: Direction, *reasons: Reason) -> Signal:
    confidence = 0.0 if direction is Direction.FLAT else 0.7
    return Signal("BTCUSDT", "5m", time, direction, confidence, reasons, "adaptive")


def test_entry_signal_is_the_latest_non_flat_pipeline_signal_at_or_before_the_entry() -> None:
    regime = Reason("regime", "regime RANGING: entries allowed, size × 1")
    volatile = Reason("regime", "regime VOLATILE: entries allowed, size × 0.5")
    profile = Reason(
        "volume_profile", "price 1, POC 1, VAL 1, VAH 1: normal volume, at a key level"
    )
    signals = [
        _signal(1_000, Direction.LONG, regime, profile),
        _signal(2_000, Direction.LONG, volatile),
        _signal(3_000, Direction.FLAT, volatile),  # no entry
        _signal(3_000, Direction.LONG, Reason("exits", "trail")),  # an exit rule's signal
        _signal(9_000, Direction.SHORT, regime),  # after the entry
    ]
    one, zero = Decimal(1), Decimal(0)
    trade = Trade("t", "BTCUSDT", Side.BUY, one, 3_000, one, 4_000, one, zero, zero)

    (found,) = entry_signals([trade], signals)

    assert found is signals[1]
    assert regime_at_entry(found) == "VOLATILE"
    assert key_level_at_entry(found) == "unknown"  # no volume_profile reason
    assert key_level_at_entry(signals[0]) == "at_key_level"
    assert regime_at_entry(None) == "unknown"
