"""``lootcapital``: serve the trading server, backtest, and manage market data.

Errors in input (a bad setting, file, row or parameter) print one clear message and exit with
status 2; nothing is half-written.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from pydantic import ValidationError

from domain.errors import DomainError
from domain.metrics import PerformanceMetrics
from lootcapital.settings import Settings, describe_error, load_settings

EXIT_USAGE = 2
SHOWN_REJECTIONS = 5
"""Distinct rejection reasons printed after a backtest's summary."""
JSON_REJECTIONS = 10
"""Distinct rejection reasons in a backtest's ``--json`` output (``rejections.first``)."""


class RedactTokens(logging.Filter):
    """Keeps ``token=...`` query values (the WebSocket's API token) out of server logs."""

    _pattern = re.compile(r"(token=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message and arguments; never drops a record."""
        if isinstance(record.msg, str):
            record.msg = self._pattern.sub(r"\1***", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._pattern.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def _iso_ms(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DomainError(f"{name} must be an ISO date/time, was {text!r}", field=name) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _decimal(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise DomainError(f"{name} must be a number, was {text!r}", field=name) from None
    if not value.is_finite():
        raise DomainError(f"{name} must be finite, was {text!r}", field=name)
    return value


def _params(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DomainError(f"--param must look like key=value, was {item!r}", field="param")
        out[key.strip()] = value.strip()
    return out


def _settings(args: argparse.Namespace, **overrides: object) -> Settings:
    config = Path(args.config) if args.config else None
    return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the server on the replayed sample (paper trading)."""
    import uvicorn

    from lootcapital.bootstrap import bootstrap, build_app

    settings = _settings(
        args,
        host=args.host,
        port=args.port,
        speed=args.speed,
        symbols=args.symbols,
        strategy=args.strategy,
    )
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s")
    for name in ("uvicorn.access", "uvicorn.error"):  # WebSocket handshakes log via .error
        logging.getLogger(name).addFilter(RedactTokens())
    container = bootstrap(settings)
    url = f"http://{settings.host}:{settings.port}"
    print(f"LootCapital paper trading {','.join(settings.symbols)} with {settings.strategy}")
    print(f"  control panel: {url}/   API: {url}/api/v1   docs: {url}/docs")
    if settings.api_token is None:
        print(f"  API token: {container.api_token}  (saved in {settings.data_dir / 'api_token'})")
    else:
        print("  API token: from LOOTCAPITAL_API_TOKEN")
    sys.stdout.flush()
    # The engine thread is CPU-bound; a shorter GIL switch interval lets the event loop answer
    # API reads promptly, and the objects built at start-up are frozen out of the GC's scans.
    sys.setswitchinterval(0.001)
    gc.freeze()
    uvicorn.run(
        build_app(container),
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=5,  # open SSE streams of the panel must not hold shutdown
    )
    return 0


def _print_metrics(m: PerformanceMetrics, bars: int) -> None:
    pf = "inf" if m.profit_factor == float("inf") else f"{m.profit_factor:.2f}"
    rows = [
        ("bars", f"{bars:,}"),
        ("period (days)", f"{m.days:.1f}"),
        ("start equity", f"{m.start_equity:,.2f}"),
        ("end equity", f"{m.end_equity:,.2f}"),
        ("total return %", f"{m.total_return_pct:.2f}"),
        ("annualized return %", f"{m.annualized_return_pct:.2f}"),
        ("Sharpe", f"{m.sharpe:.2f}"),
        ("Sortino", f"{m.sortino:.2f}"),
        ("max drawdown %", f"{m.max_drawdown_pct:.2f}"),
        ("win rate %", f"{m.win_rate_pct:.2f}"),
        ("profit factor", pf),
        ("trades", f"{m.trades}"),
        ("fees paid", f"{m.fees_paid:,.2f}"),
        ("exposure %", f"{m.exposure_pct:.2f}"),
    ]
    for name, value in rows:
        print(f"{name:<22}{value:>16}")


def _distinct(reasons: Sequence[object], limit: int) -> list[str]:
    """The first ``limit`` distinct reasons, as text, in the order they happened."""
    return list(dict.fromkeys(str(r) for r in reasons))[:limit]


def _rejections_json(reasons: Sequence[object]) -> dict[str, object]:
    """``{"count": N, "first": [...]}``: every rejected order counted, the first
    :data:`JSON_REJECTIONS` distinct reasons listed."""
    return {"count": len(reasons), "first": _distinct(reasons, JSON_REJECTIONS)}


def _print_rejections(reasons: Sequence[object]) -> None:
    """``rejected orders: N`` and, when N > 0, the first :data:`SHOWN_REJECTIONS` distinct
    reasons (e.g. why every order of a backtest was refused and it made no trade)."""
    print(f"rejected orders: {len(reasons)}")
    for reason in _distinct(reasons, SHOWN_REJECTIONS):
        print(f"  - {reason}")


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run a backtest and print its summary (and JSON with ``--json``)."""
    from lootcapital.bootstrap import backtest, data_markets, load_candles

    if not args.data and not args.symbol:
        raise DomainError("give --data FILE or --symbol S", field="data")
    settings = _settings(args)
    candles = load_candles(
        settings,
        data=[Path(p) for p in args.data],
        symbols=args.symbol,
        timeframe=args.timeframe,
        start_ms=_iso_ms(args.start, "start"),
        end_ms=_iso_ms(args.end, "end"),
    )
    for symbol, bars in candles.items():
        if not len(bars):
            raise DomainError(f"no {args.timeframe} bars for {symbol} in the period", field="start")
    result = backtest(
        settings,
        strategy=args.strategy,
        params=_params(args.param),
        candles=candles,
        timeframe=args.timeframe,
        cash=_decimal(args.cash, "cash"),
        fee=_decimal(args.fee, "fee"),
        slippage_bps=_decimal(args.slippage_bps, "slippage-bps"),
        markets=data_markets(settings, data=[Path(p) for p in args.data], symbols=args.symbol),
    )
    document = {**result.to_json(), "rejections": _rejections_json(result.rejections)}
    if args.json == "-":
        json.dump(document, sys.stdout)
        print()
        return 0
    _print_metrics(result.metrics, result.bars)
    _print_rejections(result.rejections)
    if args.json:
        Path(args.json).write_text(json.dumps(document))
        print(f"wrote {args.json}")
    return 0


def _fmt_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def cmd_data_import(args: argparse.Namespace) -> int:
    """Import kline files into the candle store."""
    from lootcapital.bootstrap import import_data

    reports = import_data(
        _settings(args),
        args.paths,
        exchange=args.exchange,
        symbol=args.symbol,
        timeframe=args.timeframe,
    )
    for r in reports:
        print(
            f"{r.path}: {r.exchange} {r.symbol} {r.timeframe} {r.rows:,} rows "
            f"{_fmt_ms(r.first_open_time)} → {_fmt_ms(r.last_open_time)} UTC, "
            f"{len(r.gaps)} gaps"
        )
        for g in r.gaps:
            print(f"  gap: {g.bars} bars missing {_fmt_ms(g.first_missing)} → "
                  f"{_fmt_ms(g.last_missing)}")  # fmt: skip
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    """List the stored candle series."""
    from lootcapital.bootstrap import list_data

    series = list_data(_settings(args))
    if not series:
        print("no candles stored; import some with `lootcapital data import FILE`")
        return 0
    print(f"{'exchange':<14}{'symbol':<12}{'tf':<5}{'first (UTC)':<18}{'last (UTC)':<18}"
          f"{'rows':>9}{'gaps':>6}")  # fmt: skip
    for s in series:
        print(
            f"{s.exchange:<14}{s.symbol:<12}{s.timeframe:<5}{_fmt_ms(s.first_open_time):<18}"
            f"{_fmt_ms(s.last_open_time):<18}{s.rows:>9,}{len(s.gaps):>6}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="lootcapital", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="TOML settings file (keys: setting names)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server and paper-trade the replayed data")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--speed", type=float, help="market seconds per wall second (300)")
    serve.add_argument("--symbols", nargs="+")
    serve.add_argument("--strategy")
    serve.set_defaults(func=cmd_serve)

    bt = sub.add_parser("backtest", help="backtest a strategy on historical bars")
    bt.add_argument("--strategy", required=True)
    bt.add_argument("--param", action="append", default=[], metavar="K=V")
    bt.add_argument("--data", nargs="+", default=[], metavar="FILE")
    bt.add_argument("--symbol", nargs="+", default=[])
    bt.add_argument("--timeframe", default="5m")
    bt.add_argument("--start", help="ISO date/time, UTC unless it has an offset")
    bt.add_argument("--end", help="ISO date/time (exclusive)")
    bt.add_argument("--cash", default="10000")
    bt.add_argument("--fee", default="0.0005", help="taker fee as a fraction of notional")
    bt.add_argument("--slippage-bps", default="0")
    bt.add_argument("--json", metavar="OUT", help="write the result as JSON (- for stdout)")
    bt.set_defaults(func=cmd_backtest)

    data = sub.add_parser("data", help="market data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    imp = data_sub.add_parser("import", help="import Binance kline files")
    imp.add_argument("paths", nargs="+")
    imp.add_argument("--exchange", default="binance-usdm")
    imp.add_argument("--symbol")
    imp.add_argument("--timeframe")
    imp.set_defaults(func=cmd_data_import)
    lst = data_sub.add_parser("list", help="list stored candle series")
    lst.set_defaults(func=cmd_data_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ValidationError as exc:
        print(describe_error(exc), file=sys.stderr)
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
    except FileNotFoundError as exc:
        print(f"error: no such file: {exc.filename}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
