"""The ``lootcapital`` CLI on real files: backtest, data import/list, and its error messages."""

from __future__ import annotations

import gzip
import json
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
    assert set(json.loads(capsys.readouterr().out)) == {"metrics", "trades", "equity"}


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
