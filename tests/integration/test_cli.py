"""The ``lootcapital`` CLI on real files: backtest, data import/list, and its error messages."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest

from lootcapital.cli import main
from tests.fixtures.data import sample_dir

BTC = sample_dir() / "binance_usdm_BTCUSDT_5m.csv.gz"


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOOTCAPITAL_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


def test_backtest_prints_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "--strategy", "sma_cross", "--data", str(BTC), "--timeframe", "5m"])

    out = capsys.readouterr().out
    assert code == 0
    for label in (
        "total return %",
        "annualized return %",
        "Sharpe",
        "Sortino",
        "max drawdown %",
        "win rate %",
        "profit factor",
        "trades",
        "fees paid",
        "exposure %",
    ):
        assert label in out


def test_backtest_json_has_metrics_trades_and_equity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "result.json"
    code = main(
        [
            "backtest",
            "--strategy",
            "sma_cross",
            "--param",
            "fast=10",
            "--param",
            "slow=30",
            "--data",
            str(BTC),
            "--timeframe",
            "5m",
            "--start",
            "2025-10-01",
            "--end",
            "2025-10-15",
            "--cash",
            "5000",
            "--fee",
            "0.0004",
            "--slippage-bps",
            "1",
            "--json",
            str(out_file),
        ]
    )

    result = json.loads(out_file.read_text())
    assert code == 0
    assert result["metrics"]["start_equity"] == 5000
    assert result["metrics"]["trades"] == len(result["trades"]) > 0
    first = result["trades"][0]
    assert set(first) == {
        "symbol",
        "side",
        "qty",
        "entry_time",
        "entry_price",
        "exit_time",
        "exit_price",
        "pnl",
        "fees",
    }
    assert first["symbol"] == "BTCUSDT"
    start, end = 1759276800000, 1760486400000
    assert all(start < t <= end for t, _ in result["equity"])
    assert (
        abs(sum(float(t["pnl"]) for t in result["trades"]) + 5000 - result["equity"][-1][1]) < 1e-6
    )


def test_backtest_json_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "--strategy", "trend_follow", "--data", str(BTC), "--json", "-"])

    assert code == 0
    assert set(json.loads(capsys.readouterr().out)) == {"metrics", "trades", "equity", "rejections"}


def test_data_import_then_list(capsys: pytest.CaptureFixture[str]) -> None:
    imported = main(["data", "import", str(BTC)])
    listed = main(["data", "list"])

    out = capsys.readouterr().out
    assert imported == listed == 0
    assert "binance-usdm BTCUSDT 5m 17,280 rows" in out
    assert "2025-09-02 00:00" in out
    assert "2025-10-31 23:55" in out


def test_backtest_from_the_store_by_symbol(capsys: pytest.CaptureFixture[str]) -> None:
    main(["data", "import", str(BTC)])
    code = main(["backtest", "--strategy", "sma_cross", "--symbol", "BTCUSDT"])

    assert code == 0
    assert "17,280" in capsys.readouterr().out


def test_bad_row_names_file_and_row_and_writes_nothing(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with gzip.open(BTC, "rt") as src:
        lines = [next(src) for _ in range(10)]
    fields = lines[5].split(",")
    fields[2], fields[3] = fields[3], fields[2]  # high below low on data row 5
    lines[5] = ",".join(fields)
    bad = tmp_path / "binance_usdm_BTCUSDT_5m.csv"
    bad.write_text("".join(lines))

    code = main(["data", "import", str(bad)])

    err = capsys.readouterr().err
    assert code == 2
    assert str(bad) in err
    assert "row 5" in err
    assert not (data_dir / "candles").exists() or not any((data_dir / "candles").rglob("*.parquet"))


def test_unknown_strategy_parameter_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "--strategy", "sma_cross", "--param", "fastest=3", "--data", str(BTC)])

    assert code == 2
    assert "unknown parameter 'fastest'" in capsys.readouterr().err


def test_invalid_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOOTCAPITAL_PORT", "eighty")

    code = main(["serve"])

    err = capsys.readouterr().err
    assert code == 2
    assert "invalid setting port (LOOTCAPITAL_PORT)" in err


def test_toml_settings_file_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "lootcapital.toml"
    config.write_text("speed = -1\n")

    code = main(["--config", str(config), "serve"])

    assert code == 2
    assert "invalid setting speed" in capsys.readouterr().err


def test_missing_data_file_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "--strategy", "sma_cross", "--data", "nope_BTCUSDT_5m.csv"])

    assert code == 2
    assert "nope_BTCUSDT_5m.csv" in capsys.readouterr().err


def test_server_logs_never_show_the_websocket_token() -> None:
    import logging

    from lootcapital.cli import RedactTokens

    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/api/v1/ws?token=s3cret&x=1"),
        None,
    )

    assert RedactTokens().filter(record)
    assert "s3cret" not in record.getMessage()
    assert "/api/v1/ws?token=***&x=1" in record.getMessage()


def test_backtest_refuses_a_file_of_another_timeframe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["backtest", "--strategy", "sma_cross", "--data", str(BTC), "--timeframe", "1m"])

    err = capsys.readouterr().err
    assert code == 2
    assert str(BTC) in err
    assert "not 1m data" in err


def _rejection_lines(out: str) -> tuple[int, list[str]]:
    """The count after ``rejected orders:`` and the reason lines printed below it."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("rejected orders: "))
    reasons = [line for line in lines[at + 1 :] if line.startswith("  - ")]
    return int(lines[at].removeprefix("rejected orders: ")), reasons


def test_backtest_says_how_many_orders_were_rejected_and_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A billion USDT buys ~10,000 BTC: every order is over the instrument's maximum quantity.
    code = main(["backtest", "--strategy", "sma_cross", "--cash", "1000000000", "--data", str(BTC)])

    out = capsys.readouterr().out
    count, reasons = _rejection_lines(out)
    assert code == 0
    assert count > 0
    assert 1 <= len(reasons) <= 5
    assert len(set(reasons)) == len(reasons)
    assert all(reason.strip(" -") for reason in reasons)
    assert out.index("exposure %") < out.index("rejected orders: ")


def test_backtest_json_counts_rejections_and_lists_the_first_reasons(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "backtest",
            "--strategy",
            "sma_cross",
            "--cash",
            "1000000000",
            "--data",
            str(BTC),
            "--json",
            "-",
        ]
    )

    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"metrics", "trades", "equity", "rejections"} <= set(result)
    rejections = result["rejections"]
    assert set(rejections) == {"count", "first"}
    assert rejections["count"] > 0
    assert 1 <= len(rejections["first"]) <= min(10, rejections["count"])
    assert len(set(rejections["first"])) == len(rejections["first"])
    assert all(isinstance(reason, str) and reason for reason in rejections["first"])


def test_rejection_report_shows_the_first_distinct_reasons(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lootcapital.cli import _print_rejections, _rejections_json

    reasons = [f"reason {i % 7}" for i in range(30)]

    _print_rejections(reasons)
    _print_rejections([])

    count, shown = _rejection_lines(capsys.readouterr().out)
    assert count == 30
    assert shown == [f"  - reason {i}" for i in range(5)]
    assert _rejections_json(reasons) == {"count": 30, "first": [f"reason {i}" for i in range(7)]}
    assert _rejections_json([]) == {"count": 0, "first": []}


def test_a_spot_file_trades_with_the_spot_tick_not_the_perpetuals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spot = tmp_path / "binance_spot_BTCUSDT_5m.csv.gz"
    with gzip.open(BTC, "rt") as src, gzip.open(spot, "wt") as dst:
        dst.writelines(line for k, line in enumerate(src) if k < 3001)

    code = main(["backtest", "--strategy", "sma_cross", "--param", "fast=5", "--param",
                 "slow=20", "--slippage-bps", "3", "--data", str(spot), "--json", "-"])  # fmt: skip

    prices = [t["entry_price"] for t in json.loads(capsys.readouterr().out)["trades"]]
    assert code == 0 and len(prices) > 10
    cents = [p for p in prices if (Decimal(p) * 100) % 10 != 0]
    assert cents, "every slipped price lands on 0.1: the perpetual's tick was used"
    assert all((Decimal(p) * 100) % 1 == 0 for p in prices)
