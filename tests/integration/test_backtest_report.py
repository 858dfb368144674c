"""``lootcapital backtest --report FILE.html`` on the shipped sample: one self-contained file
(no external URL, uPlot inlined) holding the metrics and every trade, that opens in headless
Chromium with its charts drawn; the console's progress bar (``--progress``); and the progress
callback, which changes nothing in the result. Periods are a day or two of 5m bars."""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import time
from decimal import Decimal
from pathlib import Path

import pytest

from lootcapital.cli import main
from lootcapital.progress_bar import ProgressBar
from lootcapital.settings import Settings
from lootcapital.simulation import backtest
from tests.e2e.devtools import CHROMIUM, chromium_page
from tests.fixtures.data import load_sample_candles, sample_dir

BTC = sample_dir() / "binance_usdm_BTCUSDT_5m.csv.gz"
ETH = sample_dir() / "binance_usdm_ETHUSDT_5m.csv.gz"
PERIOD = ["--start", "2025-10-01", "--end", "2025-10-03"]
SMA_CROSS = ["backtest", "--strategy", "sma_cross", "--param", "fast=5", "--param", "slow=20"]
"""Fast averages: crossings (the kernel's events, which move its clock) all through the days."""
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
UPLOT = (Path(__file__).resolve().parents[2] / "web/static/vendor/uPlot.iife.min.js").read_text()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOOTCAPITAL_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A two-symbol report and the ``--json`` document of the same run."""
    out = tmp_path_factory.mktemp("report")
    page, document = out / "report.html", out / "run.json"
    code = main(
        [*SMA_CROSS, "--data", str(BTC), str(ETH), *PERIOD, "--report", str(page), "--json",
         str(document)]
    )  # fmt: skip
    assert code == 0
    return page, json.loads(document.read_text())


def test_the_report_is_one_file_with_nothing_to_fetch(report: tuple[Path, dict]) -> None:
    text = report[0].read_text(encoding="utf-8")

    assert EXTERNAL.search(text) is None
    assert '<link rel="stylesheet"' not in text and "<script src" not in text
    assert UPLOT in text  # the vendored uPlot, inlined as it is


def test_the_report_holds_the_metrics_and_every_trade(report: tuple[Path, dict]) -> None:
    page, document = report
    text = page.read_text(encoding="utf-8")
    metrics, trades = document["metrics"], document["trades"]

    rows = re.findall(r'<tr class="bt-trade">(.*?)</tr>', text, re.DOTALL)
    assert len(rows) == len(trades) == metrics["trades"] > 0
    assert f"{metrics['total_return_pct']:.2f} %" in text
    assert f"{float(metrics['fees_paid']):,.2f}" in text
    for row, trade in zip(rows, trades, strict=True):
        assert trade["symbol"] in row and trade["entry_price"] in row and trade["exit_price"] in row


@pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="needs Chromium (Debian package: chromium; `make test` installs it)",
)
def test_the_report_opens_in_a_browser_with_its_charts_drawn(
    report: tuple[Path, dict], tmp_path: Path
) -> None:
    charts = "document.querySelectorAll('.bt-chart[data-drawn=true] canvas').length"
    with chromium_page(tmp_path / "chromium") as page:
        page.send("Page.navigate", url=report[0].as_uri())
        deadline = time.monotonic() + 20
        while page.evaluate(charts) != 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        drawn = page.evaluate(charts)
        symbols = page.evaluate(
            "[...document.querySelectorAll('[data-chart=price]')].map(e => e.dataset.symbol)"
        )
        problems = page.problems()

    assert drawn == 4  # equity, drawdown and one price chart per symbol
    assert symbols == ["BTCUSDT", "ETHUSDT"]
    assert problems == []


def test_progress_draws_a_bar_on_stderr_up_to_100_percent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main([*SMA_CROSS, "--data", str(BTC), *PERIOD, "--progress"])

    captured = capsys.readouterr()
    shown = [int(p) for p in re.findall(r"\rbacktest \[[#-]{30}\] +(\d+) %", captured.err)]
    assert code == 0
    assert shown == sorted(shown) and len(shown) > 10 and shown[-1] == 100
    assert captured.err.endswith("100 %\n") and captured.err.count("100 %") == 1
    assert "\r" not in captured.out


def test_without_progress_nothing_is_drawn_when_stderr_is_no_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main([*SMA_CROSS, "--data", str(BTC), *PERIOD])

    assert code == 0
    assert "backtest [" not in capsys.readouterr().err


def test_the_bar_redraws_only_on_a_new_percent_and_starts_again_after_100() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, width=10)

    for fraction in (0.0, 0.001, 0.5, 0.504, 1.0, 0.0, 1.2):
        bar(fraction)

    assert stream.getvalue() == (
        "\rbacktest [----------]   0 %\rbacktest [#####-----]  50 %"
        "\rbacktest [##########] 100 %\n\rbacktest [----------]   0 %"
        "\rbacktest [##########] 100 %\n"
    )


def test_the_progress_callback_changes_nothing_in_the_result() -> None:
    candles = {
        "BTCUSDT": load_sample_candles("BTCUSDT").between(1_759_276_800_000, 1_759_449_600_000)
    }
    run = dict(strategy="sma_cross", params={"fast": "5", "slow": "20"}, candles=candles,
               timeframe="5m", cash=Decimal(10_000), fee=Decimal("0.0005"),
               slippage_bps=Decimal(2))  # fmt: skip
    told: list[float] = []

    quiet = backtest(Settings(), **run)  # type: ignore[arg-type]
    watched = backtest(Settings(), **run, progress=told.append)  # type: ignore[arg-type]

    assert watched.metrics == quiet.metrics and watched.trades == quiet.trades
    assert watched.equity.tolist() == quiet.equity.tolist()
    assert told == sorted(told) and told[-1] == 1.0 and len(told) > 10
    assert all(b - a >= 0.01 for a, b in itertools.pairwise(told[:-1]))
