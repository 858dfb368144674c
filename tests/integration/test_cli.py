"""The ``lootcapital`` CLI on real files: backtest, data import/list, and its error messages."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from lootcapital.cli import main
from tests.fixtures.data import REPO_ROOT, sample_dir

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
    assert Decimal(result["metrics"]["start_equity"]) == 5000
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
        "fee_currency",
        "exit_reason",
    }
    assert first["symbol"] == "BTCUSDT"
    start, end = 1759276800000, 1760486400000
    assert all(start < t <= end for t, _ in result["equity"])
    funding = Decimal(result["metrics"]["funding_paid"])
    end = sum(Decimal(t["pnl"]) for t in result["trades"]) + 5000 - funding
    assert end == Decimal(result["equity"][-1][1]) == Decimal(result["metrics"]["end_equity"])


def test_backtest_json_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "--strategy", "trend_follow", "--data", str(BTC), "--json", "-"])

    assert code == 0
    assert set(json.loads(capsys.readouterr().out)) == {
        "metrics",
        "trades",
        "equity",
        "rejections",
        "header",
        "breakdown",
        "units",
        "models",
    }


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
    from lootcapital.report import print_rejections, rejections_json

    reasons = [f"reason {i % 7}" for i in range(30)]

    print_rejections(reasons)
    print_rejections([])

    count, shown = _rejection_lines(capsys.readouterr().out)
    assert count == 30
    assert shown == [f"  - reason {i}" for i in range(5)]
    assert rejections_json(reasons) == {"count": 30, "first": [f"reason {i}" for i in range(7)]}
    assert rejections_json([]) == {"count": 0, "first": []}


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


# -- a CLI that explains itself ---------------------------------------------------------------


def _backtest_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code = main(["backtest", *args, "--json", "-"])
    assert code == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _first_open_last_close(path: Path) -> tuple[float, float]:
    with gzip.open(path, "rt") as src:
        rows = [line.split(",") for line in src if line[0].isdigit()]
    return float(rows[0][1]), float(rows[-1][4])


def test_every_option_has_help_and_optional_ones_say_their_default() -> None:
    from lootcapital.cli import build_parser

    def options(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    found += [(f"{name} {o}", a) for o, a in options(child)]
            elif not isinstance(action, argparse._HelpAction):
                found.append((action.dest, action))
        return found

    everything = options(build_parser())

    assert len(everything) > 20
    for name, action in everything:
        assert action.help, f"{name} has no help"
        optional = action.option_strings and not action.required
        if optional and not isinstance(action, argparse._StoreTrueAction | argparse._AppendAction):
            assert "default" in action.help, f"{name}: {action.help!r} gives no default"


def test_backtest_help_gives_the_servers_fee_and_slippage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["backtest", "--help"])

    out = " ".join(capsys.readouterr().out.split())
    assert "default: 0.0005, the server's fee_taker setting" in out
    assert "default: 2, the server's slippage_bps setting" in out
    assert "--trades" in out


def test_strategies_lists_every_parameter_with_type_default_and_meaning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["strategies"])

    out = capsys.readouterr().out
    assert code == 0
    assert "sma_cross: Stop-and-reverse on SMA(fast) / SMA(slow) crossovers" in out
    assert "trend_follow: " in out
    rows = [line.split() for line in out.splitlines() if line[:2] == "  " and line[2] != " "]
    lines = {row[0]: row[1:3] for row in rows}
    assert lines["fast"] == ["int", "50"]
    assert lines["risk"] == ["float", "0.01"]
    assert lines["trend_timeframe"] == ["str", "1h"]
    assert "fraction of equity lost when the stop is hit" in out


def test_strategies_json_matches_the_parameters_in_effect(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from domain.strategies import build_strategy

    code = main(["strategies", "--json"])

    listed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(listed) == {"sma_cross", "trend_follow", "adaptive", "ml_mean_reversion"}
    for name, entry in listed.items():
        defaults = {k: p["default"] for k, p in entry["params"].items()}
        assert defaults == build_strategy(name, {}, "5m").params()
        assert all(p["meaning"] and p["type"] for p in entry["params"].values())
    assert listed["trend_follow"]["params"]["max_exposure"]["type"] == "float"


def test_backtest_prints_a_header_with_the_servers_costs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["backtest", "--strategy", "sma_cross", "--data", str(BTC)])

    out = capsys.readouterr().out
    header = out[: out.index("\n\n")].splitlines()
    assert code == 0
    assert header == [
        "strategy      sma_cross",
        "parameters    fast=50 slow=200",
        "symbols       BTCUSDT (perpetual)",
        "period (UTC)  2025-09-02 00:00 → 2025-11-01 00:00 (60.0 days)",
        "timeframe     5m",
        "bars          BTCUSDT 17,280",
        "cash          10,000.00 USDT",
        "fee           taker 0.0005 (0.05 %), maker 0.0002 (0.02 %)",
        "slippage      2 bps",
        "margin        isolated, BTCUSDT 1x",
        "funding       BTCUSDT binance_usdm_BTCUSDT_funding.csv.gz",
    ]
    assert out.index("slippage") < out.index("total return %")


def test_backtest_defaults_are_the_servers_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lootcapital.settings import Settings

    args = ("--strategy", "sma_cross", "--param", "fast=10", "--param", "slow=30", "--data",
            str(BTC), "--end", "2025-09-20")  # fmt: skip
    server = Settings()
    by_default = _backtest_json(capsys, *args)
    costs = ("--fee", str(server.fee_taker), "--slippage-bps", str(server.slippage_bps))
    explicit = _backtest_json(capsys, *args, *costs, "--cash", str(server.initial_cash))
    monkeypatch.setenv("LOOTCAPITAL_SLIPPAGE_BPS", "7")
    configured = _backtest_json(capsys, *args)

    assert by_default["header"]["slippage_bps"] == str(server.slippage_bps) == "2"
    assert by_default["header"]["fee_taker"] == str(server.fee_taker)
    assert by_default["header"]["fee_maker"] == str(server.fee_maker)
    assert by_default["trades"] == explicit["trades"] and len(by_default["trades"]) > 5
    assert configured["header"]["slippage_bps"] == "7"
    assert configured["trades"] != by_default["trades"]


def test_backtest_breakdown_adds_up_and_benchmarks_buy_and_hold(
    capsys: pytest.CaptureFixture[str],
) -> None:
    eth = sample_dir() / "binance_usdm_ETHUSDT_5m.csv.gz"

    result = _backtest_json(capsys, "--strategy", "trend_follow", "--data", str(BTC), str(eth))

    report, trades = result["breakdown"], result["trades"]
    by_symbol, by_side = report["by_symbol"], report["by_side"]
    total_pnl = sum(Decimal(t["pnl"]) for t in trades)
    assert list(by_symbol) == ["BTCUSDT", "ETHUSDT"] and set(by_side) == {"long", "short"}
    assert sum(s["trades"] for s in by_symbol.values()) == result["metrics"]["trades"] > 10
    assert {t["side"] for t in trades} == {"long", "short"}
    assert by_side["long"]["trades"] == sum(t["side"] == "long" for t in trades)
    assert Decimal(by_side["long"]["pnl"]) + Decimal(by_side["short"]["pnl"]) == total_pnl
    assert Decimal(report["total"]["pnl"]) == total_pnl
    losers = [Decimal(t["pnl"]) for t in trades if Decimal(t["pnl"]) < 0]
    assert Decimal(report["total"]["average_loss"]) == pytest.approx(sum(losers) / len(losers))
    assert 1 <= report["longest_losing_streak"] <= len(losers)
    returns = {}
    for symbol, path in (("BTCUSDT", BTC), ("ETHUSDT", eth)):
        first_open, last_close = _first_open_last_close(path)
        returns[symbol] = 100 * (last_close / first_open - 1)
    hold = report["buy_and_hold_return_pct"]
    assert hold["symbols"] == pytest.approx(returns)
    assert hold["basket"] == pytest.approx((returns["BTCUSDT"] + returns["ETHUSDT"]) / 2)


def test_backtest_json_money_prices_and_quantities_at_their_precision(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = _backtest_json(capsys, "--strategy", "sma_cross", "--data", str(BTC))

    trades = result["trades"]
    assert trades
    for t in trades:  # BTCUSDT perpetual: tick 0.10, lot step 0.001, USDT money to 8 places
        assert re.fullmatch(r"\d+\.\d", t["entry_price"]) and re.fullmatch(
            r"\d+\.\d", t["exit_price"]
        )
        assert re.fullmatch(r"\d+\.\d{3}", t["qty"])
        assert re.fullmatch(r"-?\d+\.\d{8}", t["pnl"]) and re.fullmatch(r"\d+\.\d{8}", t["fees"])
        assert t["fee_currency"] == "USDT"
    assert result["header"]["cash"] == "10000.00000000"
    assert result["breakdown"]["by_symbol"]["BTCUSDT"]["fee_currency"] == "USDT"


MONEY_KEYS = {
    "metrics": {"start_equity", "end_equity", "fees_paid"},
    "trades": {"pnl", "fees"},
    "header": {"cash"},
    "breakdown": {"pnl", "fees", "gross_profit", "gross_loss", "average_win", "average_loss"},
}
"""Where money (quote currency, USDT here) is in the ``--json`` document: section → keys;
also the second item of every ``equity`` point."""
PRICE_KEYS = {"entry_price", "exit_price"}
QTY_KEYS = {"qty"}
RATIO_KEYS = {"total_return_pct", "annualized_return_pct", "sharpe", "sortino",
              "max_drawdown_pct", "win_rate_pct", "profit_factor", "exposure_pct", "days",
              "basket"}  # fmt: skip
"""The only keys whose values may be JSON floats (besides buy-and-hold per symbol and the
strategy's own parameters)."""


def _leaves(node: object, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple, object]]:
    """Every scalar of a JSON document with its path of keys and indices."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for k, value in enumerate(node):
            yield from _leaves(value, (*path, k))
    else:
        yield path, node


def test_backtest_json_has_no_float_for_money_prices_or_quantities(
    capsys: pytest.CaptureFixture[str],
) -> None:
    eth = sample_dir() / "binance_usdm_ETHUSDT_5m.csv.gz"
    decimals = {"BTCUSDT": {"price": 1, "qty": 3}, "ETHUSDT": {"price": 2, "qty": 3}}

    result = _backtest_json(capsys, "--strategy", "trend_follow", "--data", str(BTC), str(eth))

    leaves = list(_leaves(result))
    money = [
        (path, value)
        for path, value in leaves
        if path[-1] in MONEY_KEYS.get(str(path[0]), ()) or (path[0] == "equity" and path[-1] == 1)
    ]
    stats = 1 + 2 + 2  # breakdown total, by symbol (2), by side (2): 6 money keys each
    assert len(money) == len(result["equity"]) + 2 * len(result["trades"]) + 3 + 1 + 6 * stats
    assert len(result["equity"]) == 17_280 and len(result["trades"]) > 10
    for path, value in money:
        assert isinstance(value, str) or (value is None and "average" in str(path[-1])), path
        assert value is None or re.fullmatch(r"-?\d+\.\d{8}", value), (path, value)
    for t in result["trades"]:
        for key, kind in [("entry_price", "price"), ("exit_price", "price"), ("qty", "qty")]:
            places = decimals[t["symbol"]][kind]
            assert re.fullmatch(rf"\d+\.\d{{{places}}}", t[key]), (t["symbol"], key, t[key])
    for path, value in leaves:
        assert not (isinstance(value, float) and path[-1] in PRICE_KEYS | QTY_KEYS), path
        if isinstance(value, float):
            hold = path[:3] == ("breakdown", "buy_and_hold_return_pct", "symbols")
            strategy_param = path[:2] == ("header", "params")
            assert path[-1] in RATIO_KEYS or hold or strategy_param, (path, value)
    assert isinstance(result["metrics"]["sharpe"], float)
    assert isinstance(result["metrics"]["trades"], int)
    units = result["units"]
    assert units["currency"] == "USDT"
    assert {"$.metrics.end_equity", "$.equity[*][1]", "$.breakdown..pnl"} <= set(units["money"])
    assert units["price"] == ["$.trades[*].entry_price", "$.trades[*].exit_price"]
    assert units["qty"] == ["$.trades[*].qty"]


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    # Buffered stdout as in a terminal pipeline; the JSON (~600 kB) overfills the pipe.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    command = [sys.executable, "-m", "lootcapital.cli", "backtest", "--strategy", "sma_cross",
               "--data", str(BTC), "--json", "-"]  # fmt: skip
    with subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        head = process.stdout.read(100)  # like `| head -c 100`
        process.stdout.close()
        err = process.stderr.read().decode()
        code = process.wait(timeout=120)

    assert head.startswith(b'{"metrics": {')
    assert code == 1
    assert err == ""


def test_backtest_trades_prints_the_trade_table(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--strategy", "sma_cross", "--data", str(BTC), "--end", "2025-09-20"]
    trades = _backtest_json(capsys, *args)["trades"]

    code = main(["backtest", *args, "--trades"])

    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+\d+\s+BTCUSDT ", line)]
    assert code == 0
    assert len(rows) == len(trades) > 3
    for row, t in zip(rows, trades, strict=True):
        assert row[2] == t["side"] and row[3] == t["qty"]
        assert row[6] == t["entry_price"] and row[9] == t["exit_price"]
    assert "buy" not in {r[2] for r in rows}


def test_backtest_prints_the_breakdown_beside_the_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["backtest", "--strategy", "sma_cross", "--data", str(BTC)])

    out = capsys.readouterr().out
    first_open, last_close = _first_open_last_close(BTC)
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert code == 0
    assert rows["BTCUSDT"][-1] == f"{100 * (last_close / first_open - 1):.2f}" == "0.34"
    assert rows["long"][1].isdigit() and rows["short"][1].isdigit()
    assert int(rows["long"][1]) + int(rows["short"][1]) == int(rows["all"][1])
    for label in ("average win", "average loss", "longest losing streak", "buy & hold % (basket)"):
        assert label in out
    assert out.index("exposure %") < out.index("longest losing streak")


def test_backtest_from_the_store_resamples_5m_bars_to_1h(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    main(["data", "import", str(BTC)])
    five = pd.read_csv(BTC, index_col="open_time")
    five.index = pd.to_datetime(five.index, unit="ms")
    hourly = five.resample("1h", origin="epoch").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    hourly.index = (hourly.index - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)
    hourly_file = tmp_path / "binance_usdm_BTCUSDT_1h.csv"
    hourly.to_csv(hourly_file, index_label="open_time")
    args = ["--strategy", "sma_cross", "--param", "fast=10", "--param", "slow=30"]
    capsys.readouterr()

    stored = _backtest_json(capsys, *args, "--symbol", "BTC/USDT:USDT", "--timeframe", "1h")
    from_file = _backtest_json(capsys, *args, "--data", str(hourly_file), "--timeframe", "1h")

    assert stored["header"]["resampled_from"] == {"BTCUSDT": "5m"}
    assert stored["header"]["bars"] == {"BTCUSDT": 17_280 // 12}
    assert stored["trades"] == from_file["trades"] and len(stored["trades"]) > 10
    assert main(["backtest", *args, "--symbol", "BTCUSDT", "--timeframe", "1h"]) == 0
    assert "timeframe     1h (resampled from 5m)" in capsys.readouterr().out


def test_backtest_from_the_store_drops_incomplete_hours(capsys: pytest.CaptureFixture[str]) -> None:
    main(["data", "import", str(BTC)])
    capsys.readouterr()

    result = _backtest_json(capsys, "--strategy", "sma_cross", "--symbol", "BTCUSDT",
                            "--timeframe", "1h", "--start", "2025-10-01T00:05",
                            "--end", "2025-10-20T23:30")  # fmt: skip

    header = result["header"]
    assert header["start"] == 1759280400000  # 2025-10-01 01:00: the 00:00 hour lacks 00:00
    assert header["end"] == 1761001200000  # 2025-10-20 23:00: the 23:00 hour is incomplete
    assert header["bars"] == {"BTCUSDT": 19 * 24 + 22}  # 01:00 on the 1st to 22:00 on the 20th


def test_backtest_names_the_symbol_when_no_timeframe_can_be_built(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["data", "import", str(BTC)])
    capsys.readouterr()

    code = main(["backtest", "--strategy", "sma_cross", "--symbol", "BTCUSDT", "--timeframe",
                 "1m"])  # fmt: skip

    err = capsys.readouterr().err
    assert code == 2
    assert "--symbol BTCUSDT: no 1m candles stored" in err
    assert "only 5m" in err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--symbol", "BTC/USDT:BUSD", "--symbol: 'BTC/USDT:BUSD' settles in BUSD"),
        ("--fee", "-0.001", "--fee must be at least 0 and below 1, was '-0.001'"),
        ("--slippage-bps", "abc", "--slippage-bps must be a number, was 'abc'"),
        ("--cash", "0", "--cash must be > 0, was '0'"),
        ("--leverage", "21", "--leverage must be a whole number from 1 to 20"),
        ("--leverage", "2.5", "--leverage must be a whole number from 1 to 20"),
        ("--funding", "missing.csv", "--funding missing.csv: no such file"),
    ],
)
def test_bad_backtest_input_is_one_message_naming_the_option(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["backtest", "--strategy", "sma_cross", "--data", str(BTC), option, value])

    out, err = capsys.readouterr()
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert out == ""


def test_backtest_with_leverage_reports_the_ledger_and_each_trades_exit_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["backtest", "--strategy", "sma_cross", "--data", str(BTC), "--leverage", "3",
                 "--json", "-"])  # fmt: skip

    document = json.loads(capsys.readouterr().out)
    metrics = {k: document["metrics"][k] for k in ("realized_pnl", "fees_paid", "funding_paid",
                                                   "final_balance", "end_equity")}  # fmt: skip
    money = {k: Decimal(v) for k, v in metrics.items()}
    assert code == 0
    assert (
        money["final_balance"]
        == money["end_equity"]
        == (Decimal(10_000) + money["realized_pnl"] - money["fees_paid"] - money["funding_paid"])
    )
    assert money["funding_paid"] != 0  # the sample's funding file sits beside its bars
    assert isinstance(document["metrics"]["liquidations"], int)
    assert document["header"]["leverage"] == {"BTCUSDT": 3}
    assert document["header"]["margin"] == "isolated"
    assert {t["exit_reason"] for t in document["trades"]} <= {"signal", "end"}
    # all the equity up as margin at 3x: the first trade's notional is about 3 × the cash
    first = document["trades"][0]
    notional = Decimal(first["qty"]) * Decimal(first["entry_price"])
    assert Decimal(29_000) < notional <= Decimal(30_100)


def test_backtest_without_funding_pays_none(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "--strategy", "sma_cross", "--data", str(BTC), "--funding", "none",
                 "--json", "-"])  # fmt: skip

    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert Decimal(document["metrics"]["funding_paid"]) == 0
    assert document["header"]["funding"] == {"BTCUSDT": None}


def test_analyze_prints_every_component_and_its_json_matches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "analysis.json"

    code = main(
        ["analyze", "--symbol", "BTCUSDT", "--data", str(BTC), "--at", "2025-10-10T21:17",
         "--json", str(out)]
    )  # fmt: skip

    printed = capsys.readouterr().out
    assert code == 0
    assert "BTCUSDT at 2025-10-10 21:15 UTC" in printed  # the last 5m bar closed by 21:17
    for line in ("thresholds", "regime", "timeframes", "volume", "allocation", "signal"):
        assert f"  {line}" in printed
    body = json.loads(out.read_text())
    assert body["time"] == 1_760_130_900_000
    assert {"thresholds", "regime", "timeframes", "volume_profile", "allocation", "signal"} <= set(
        body
    )


def test_analyze_from_the_store_to_stdout_and_its_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["data", "import", str(BTC)])
    capsys.readouterr()

    code = main(["analyze", "--symbol", "BTC/USDT:USDT", "--json", "-"])
    body = json.loads(capsys.readouterr().out)
    too_early = main(["analyze", "--symbol", "BTCUSDT", "--at", "2001-01-01"])
    early_err = capsys.readouterr().err
    bad_date = main(["analyze", "--symbol", "BTCUSDT", "--at", "soon"])

    assert code == 0 and body["symbol"] == "BTCUSDT"
    assert too_early == 2 and "no 5m bar of BTCUSDT closed by 2001-01-01T00:00:00Z" in early_err
    assert bad_date == 2 and "at must be an ISO date/time" in capsys.readouterr().err
