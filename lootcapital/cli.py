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
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from pydantic import ValidationError

from api.numbers import Numbers
from domain.candles import Candles
from domain.errors import DomainError
from domain.metrics import PerformanceMetrics
from domain.model import Trade
from domain.report import Breakdown, TradeStats, breakdown, direction
from domain.resample import resample
from domain.strategies import STRATEGIES, build_strategy
from domain.strategies.params import param_specs
from domain.symbols import venue_symbol
from domain.timeframes import timeframe_ms
from lootcapital.settings import Settings, describe_error, load_settings
from service_layer.backtest import BacktestResult, breakdown_json, source_timeframe

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


_RANGES = {
    "cash": ("> 0", lambda v: v > 0),
    "fee": ("at least 0 and below 1", lambda v: 0 <= v < 1),
    "slippage-bps": ("between 0 and 1000", lambda v: 0 <= v <= 1000),
}
"""Allowed values of the backtest's money options (the same as the settings they default to)."""


def _decimal(text: str | None, name: str, default: Decimal) -> Decimal:
    """``--name``'s ``text`` as a Decimal in its :data:`_RANGES` (``default`` when not given)."""
    if text is None:
        return default
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise DomainError(f"--{name} must be a number, was {text!r}", field=name) from None
    if not value.is_finite():
        raise DomainError(f"--{name} must be finite, was {text!r}", field=name)
    rule, ok = _RANGES[name]
    if not ok(value):
        raise DomainError(f"--{name} must be {rule}, was {text!r}", field=name)
    return value


def _venue_symbols(values: Sequence[str] | None, option: str) -> list[str]:
    """Each symbol in the venue's spelling (``BTC/USDT:USDT`` → ``BTCUSDT``)."""
    out = []
    for text in values or ():
        try:
            out.append(venue_symbol(text))
        except ValueError as exc:
            raise DomainError(f"{option}: {exc}", field=option.lstrip("-")) from None
    return out


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
        symbols=_venue_symbols(args.symbols, "--symbols") or None,
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


def _maker_fee(settings: Settings, taker: Decimal) -> Decimal:
    """The maker rate :func:`lootcapital.bootstrap.backtest` uses: the settings' maker/taker
    ratio applied to ``taker``."""
    if not settings.fee_taker:
        return taker
    return taker * settings.fee_maker / settings.fee_taker


def _stored_candles(
    settings: Settings, symbols: Sequence[str], timeframe: str, start: int | None, end: int | None
) -> tuple[dict[str, Candles], dict[str, str]]:
    """Bars of ``symbols`` from the candle store on ``timeframe``, resampled (epoch-aligned,
    complete buckets only, as the API's candles) from the longest stored timeframe dividing it
    when ``timeframe`` itself is not stored. Also returns the timeframe each was read at."""
    from lootcapital.bootstrap import list_data, load_candles

    stored = list_data(settings)
    out: dict[str, Candles] = {}
    sources: dict[str, str] = {}
    target = timeframe_ms(timeframe)
    for symbol in symbols:
        have = [
            s.timeframe for s in stored if (s.exchange, s.symbol) == (settings.exchange, symbol)
        ]
        source = source_timeframe(timeframe, have)
        if source is None:
            found = f"only {', '.join(sorted(have, key=timeframe_ms))}" if have else "none"
            raise DomainError(
                f"--symbol {symbol}: no {timeframe} candles stored on {settings.exchange}, nor a "
                f"timeframe that divides it ({found}); import some with "
                "`lootcapital data import FILE`",
                field="symbol",
            )
        bars = load_candles(
            settings, data=[], symbols=[symbol], timeframe=source, start_ms=start, end_ms=end
        )[symbol]
        out[symbol] = bars if source == timeframe else resample(bars, timeframe_ms(source), target)
        sources[symbol] = source
    return out, sources


@dataclass(frozen=True, slots=True)
class Header:
    """What a backtest ran: strategy and parameters in effect, symbols and their markets, the
    period (``start`` first bar open, ``end`` last bar close, ms UTC), the timeframe (and the
    stored one each symbol was resampled from), bars per symbol, cash (quote currency), taker
    and maker fees (fractions of notional) and slippage (basis points)."""

    strategy: str
    params: dict[str, float | int | str | bool]
    markets: dict[str, str]
    timeframe: str
    resampled_from: dict[str, str]
    start: int
    end: int
    bars: dict[str, int]
    cash: Decimal
    currency: str
    fee_taker: Decimal
    fee_maker: Decimal
    slippage_bps: Decimal

    def to_json(self, numbers: Numbers) -> dict[str, object]:
        """``--json``'s ``header`` (cash at the quote asset's precision, costs as strings)."""
        return {
            "strategy": self.strategy,
            "params": self.params,
            "symbols": list(self.markets),
            "markets": self.markets,
            "timeframe": self.timeframe,
            "resampled_from": self.resampled_from,
            "start": self.start,
            "end": self.end,
            "bars": self.bars,
            "cash": numbers.money(self.cash),
            "currency": self.currency,
            "fee_taker": str(self.fee_taker),
            "fee_maker": str(self.fee_maker),
            "slippage_bps": str(self.slippage_bps),
        }

    def print(self) -> None:
        """The header of the text report, one labelled row per item."""
        days = (self.end - self.start) / 86_400_000
        timeframe = self.timeframe
        if self.resampled_from:
            timeframe += f" (resampled from {', '.join(sorted(set(self.resampled_from.values())))})"
        taker, maker = self.fee_taker, self.fee_maker
        rows = [
            ("strategy", self.strategy),
            ("parameters", " ".join(f"{k}={v}" for k, v in self.params.items()) or "(none)"),
            ("symbols", ", ".join(f"{s} ({m})" for s, m in self.markets.items())),
            ("period (UTC)", f"{_fmt_ms(self.start)} → {_fmt_ms(self.end)} ({days:.1f} days)"),
            ("timeframe", timeframe),
            ("bars", ", ".join(f"{s} {n:,}" for s, n in self.bars.items())),
            ("cash", f"{self.cash:,.2f} {self.currency}"),
            ("fee", f"taker {taker} ({_pct(taker)} %), maker {maker} ({_pct(maker)} %)"),
            ("slippage", f"{self.slippage_bps} bps"),
        ]
        for name, value in rows:
            lines = textwrap.wrap(value, 76) or [""]
            print(f"{name:<14}{lines[0]}")
            for line in lines[1:]:
                print(f"{'':<14}{line}")
        print()


def _pct(fraction: Decimal) -> str:
    """``fraction`` in percent without trailing zeros (0.0005 → 0.05)."""
    return format((fraction * 100).normalize(), "f")


def _money(x: Decimal | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _stats_row(name: str, x: TradeStats, extra: str = "") -> str:
    return (
        f"{name:<12}{x.trades:>7}{100 * x.win_rate:>8.2f}{_money(x.pnl):>14}{_money(x.fees):>12}"
        f"{_money(x.average_win):>12}{_money(x.average_loss):>12}{extra}"
    )


def _print_breakdown(report: Breakdown) -> None:
    """Per-symbol and long/short statistics, averages, the losing streak and buy-and-hold."""
    head = f"{'trades':>7}{'win %':>8}{'net pnl':>14}{'fees':>12}{'avg win':>12}{'avg loss':>12}"
    print()
    print(f"{'symbol':<12}{head}{'buy&hold %':>12}")
    for symbol, x in report.by_symbol.items():
        print(_stats_row(symbol, x, f"{100 * report.buy_and_hold.symbols[symbol]:>12.2f}"))
    basket = f"{100 * report.buy_and_hold.basket:>12.2f}"
    print(_stats_row("all", report.total, basket))
    print(f"{'side':<12}{head}")
    for side, x in report.by_direction.items():
        print(_stats_row(str(side), x))
    rows = [
        ("average win", _money(report.total.average_win)),
        ("average loss", _money(report.total.average_loss)),
        ("longest losing streak", f"{report.longest_losing_streak}"),
        ("buy & hold % (basket)", f"{100 * report.buy_and_hold.basket:.2f}"),
    ]
    for name, value in rows:
        print(f"{name:<22}{value:>16}")


def _print_trades(trades: Sequence[Trade], numbers: Numbers) -> None:
    """The trade table: one round trip a line, times UTC, money in quote currency."""
    print()
    print(f"{'#':>4}  {'symbol':<10}{'side':<6}{'qty':>12}  {'entry (UTC)':<17}{'entry price':>13}"
          f"  {'exit (UTC)':<17}{'exit price':>13}{'pnl':>12}{'fees':>10}")  # fmt: skip
    for k, t in enumerate(trades, 1):
        print(
            f"{k:>4}  {t.symbol:<10}{direction(t):<6}{numbers.qty(t.symbol, t.qty):>12}  "
            f"{_fmt_ms(t.entry_time):<17}{numbers.price(t.symbol, t.entry_price):>13}  "
            f"{_fmt_ms(t.exit_time):<17}{numbers.price(t.symbol, t.exit_price):>13}"
            f"{_money(t.pnl):>12}{_money(t.fees):>10}"
        )


def _backtest_bars(
    settings: Settings, args: argparse.Namespace, symbols: list[str], timeframe: str
) -> tuple[dict[str, Candles], dict[str, str]]:
    """The bars to backtest (``--data`` files, else the candle store, resampled when needed)
    and the timeframe each symbol's bars were read at.

    Raises
    ------
    DomainError
        A bad date, a file or stored series that cannot be read, or no bar in the period.
    """
    from lootcapital.bootstrap import load_candles

    start, end = _iso_ms(args.start, "start"), _iso_ms(args.end, "end")
    if args.data:
        data = [Path(p) for p in args.data]
        candles = load_candles(
            settings, data=data, symbols=symbols, timeframe=timeframe, start_ms=start, end_ms=end
        )
        sources = dict.fromkeys(candles, timeframe)
    else:
        candles, sources = _stored_candles(settings, symbols, timeframe, start, end)
    for symbol, bars in candles.items():
        if not len(bars):
            raise DomainError(f"no {timeframe} bars for {symbol} in the period", field="start")
    return candles, sources


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run a backtest and print its header, summary and breakdown (JSON with ``--json``)."""
    from lootcapital.bootstrap import backtest, data_markets

    if not args.data and not args.symbol:
        raise DomainError("give --data FILE or --symbol S", field="data")
    settings = _settings(args)
    timeframe = args.timeframe or settings.timeframe
    step = timeframe_ms(timeframe)
    symbols = _venue_symbols(args.symbol, "--symbol")
    params = _params(args.param)
    in_effect = build_strategy(args.strategy, params, timeframe).params()
    cash = _decimal(args.cash, "cash", settings.initial_cash)
    fee = _decimal(args.fee, "fee", settings.fee_taker)
    slippage = _decimal(args.slippage_bps, "slippage-bps", settings.slippage_bps)
    candles, sources = _backtest_bars(settings, args, symbols, timeframe)
    result = backtest(
        settings,
        strategy=args.strategy,
        params=params,
        candles=candles,
        timeframe=timeframe,
        cash=cash,
        fee=fee,
        slippage_bps=slippage,
        markets=data_markets(settings, data=[Path(p) for p in args.data], symbols=symbols),
    )
    rules = result.instruments
    header = Header(
        strategy=args.strategy,
        params=in_effect,
        markets={s: str(rules[s].market) for s in candles},
        timeframe=timeframe,
        resampled_from={s: f for s, f in sources.items() if f != timeframe},
        start=min(int(c.open_time[0]) for c in candles.values()),
        end=max(int(c.open_time[-1]) for c in candles.values()) + step,
        bars={s: len(c) for s, c in candles.items()},
        cash=cash,
        currency=",".join(sorted({r.quote_asset for r in rules.values()})),
        fee_taker=fee,
        fee_maker=_maker_fee(settings, fee),
        slippage_bps=slippage,
    )
    _report(args, result, header, breakdown(result.trades, candles))
    return 0


def _report(
    args: argparse.Namespace, result: BacktestResult, header: Header, report: Breakdown
) -> None:
    """Print the backtest's header, summary, breakdown, trades (``--trades``) and rejections,
    and write the JSON document where ``--json`` says (only it, for ``-``)."""
    rules = result.instruments
    numbers = Numbers(rules, max(r.quote_precision for r in rules.values()))
    document = _document(result, numbers, header, report)
    if args.json == "-":
        json.dump(document, sys.stdout)
        print()
        return
    header.print()
    _print_metrics(result.metrics, result.bars)
    _print_breakdown(report)
    if args.trades:
        _print_trades(result.trades, numbers)
    print()
    _print_rejections(result.rejections)
    if args.json:
        Path(args.json).write_text(json.dumps(document))
        print(f"wrote {args.json}")


def _document(
    result: BacktestResult, numbers: Numbers, header: Header, report: Breakdown
) -> dict[str, object]:
    """The ``--json`` document: ``metrics``, ``trades``, ``equity``, ``rejections`` (as
    before), ``header`` and ``breakdown``."""
    return {
        **result.to_json(numbers),
        "rejections": _rejections_json(result.rejections),
        "header": header.to_json(numbers),
        "breakdown": breakdown_json(report, numbers, result.instruments),
    }


def _fmt_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def cmd_data_import(args: argparse.Namespace) -> int:
    """Import kline files into the candle store."""
    from lootcapital.bootstrap import import_data

    reports = import_data(
        _settings(args),
        args.paths,
        exchange=args.exchange,
        symbol=_venue_symbols([args.symbol], "--symbol")[0] if args.symbol else None,
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


def _strategy_description(name: str) -> str:
    """The first line of strategy ``name``'s class docstring, without reST markup."""
    doc = STRATEGIES[name].__doc__ or ""
    return doc.strip().splitlines()[0].replace("``", "") if doc.strip() else ""


def cmd_strategies(args: argparse.Namespace) -> int:
    """List the strategies: name, what it does, and each parameter's type, default and meaning
    (``--json``: the same as one JSON object keyed by strategy name)."""
    if args.json:
        document = {
            name: {
                "description": _strategy_description(name),
                "params": {
                    p.name: {"type": p.type, "default": p.default, "meaning": p.meaning}
                    for p in param_specs(cls.Params)
                },
            }
            for name, cls in STRATEGIES.items()
        }
        json.dump(document, sys.stdout, indent=2)
        print()
        return 0
    for name, cls in STRATEGIES.items():
        print(f"{name}: {_strategy_description(name)}")
        print(f"  {'parameter':<17}{'type':<7}{'default':<9}meaning")
        for p in param_specs(cls.Params):
            lines = textwrap.wrap(p.meaning, 64) or [""]
            print(f"  {p.name:<17}{p.type:<7}{p.default!s:<9}{lines[0]}")
            for line in lines[1:]:
                print(f"  {'':<33}{line}")
        print()
    print("set one with --param NAME=VALUE (backtest) or strategy_params (settings)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand; every option's help says its units and default."""
    defaults = {k: f.default for k, f in Settings.model_fields.items()}
    default_symbols = Settings.model_fields["symbols"].get_default(call_default_factory=True)
    names = ", ".join(STRATEGIES)
    parser = argparse.ArgumentParser(
        prog="lootcapital", description=__doc__.splitlines()[0].replace("``", "")
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML settings file, keys are setting names (default: $LOOTCAPITAL_CONFIG, else "
        "none); the environment (LOOTCAPITAL_*) overrides it and options override both",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server and paper-trade the replayed data")
    serve.add_argument("--host", help=f"address to listen on (default: {defaults['host']})")
    serve.add_argument("--port", type=int, help=f"TCP port (default: {defaults['port']})")
    serve.add_argument(
        "--speed",
        type=float,
        help=f"replay speed, market seconds per wall second (default: {defaults['speed']:g})",
    )
    serve.add_argument(
        "--symbols",
        nargs="+",
        metavar="SYMBOL",
        help="symbols to trade, as BTCUSDT or BTC/USDT:USDT "
        f"(default: {' '.join(default_symbols)})",
    )
    serve.add_argument(
        "--strategy",
        help=f"strategy to run: {names} (default: {defaults['strategy']}; "
        "see `lootcapital strategies`)",
    )
    serve.set_defaults(func=cmd_serve)

    bt = sub.add_parser(
        "backtest",
        help="backtest a strategy on historical bars",
        description="Backtest a strategy on historical bars against the simulated venue, with "
        "the server's fees and slippage unless told otherwise, and print a header, the "
        "performance summary and a per-symbol and long/short breakdown.",
    )
    bt.add_argument(
        "--strategy", required=True, help=f"strategy name: {names} (see `lootcapital strategies`)"
    )
    bt.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="a strategy parameter, repeatable (default: the strategy's; see `lootcapital "
        "strategies`)",
    )
    bt.add_argument(
        "--data",
        nargs="+",
        default=[],
        metavar="FILE",
        help="Binance kline files (.csv or .csv.gz), one per symbol, named like "
        "binance_usdm_BTCUSDT_5m.csv.gz (default: none, bars come from the candle store)",
    )
    bt.add_argument(
        "--symbol",
        nargs="+",
        default=[],
        metavar="SYMBOL",
        help="symbols to read from the candle store (BTCUSDT or BTC/USDT:USDT), or the "
        "symbols of the --data files in order (default: from the file names)",
    )
    bt.add_argument(
        "--timeframe",
        help=f"bar timeframe, e.g. 5m, 1h (default: {defaults['timeframe']}); the store's "
        "shorter bars are resampled (epoch-aligned, complete buckets only) when it has none",
    )
    bt.add_argument(
        "--start", help="first bar's open time, ISO date/time, UTC unless it has an offset "
        "(default: the first bar)"
    )  # fmt: skip
    bt.add_argument(
        "--end", help="end of the period (exclusive), ISO date/time (default: after the last bar)"
    )
    bt.add_argument(
        "--cash",
        help=f"starting cash in the quote currency, USDT (default: {defaults['initial_cash']}, "
        "the initial_cash setting)",
    )
    bt.add_argument(
        "--fee",
        help=f"taker fee as a fraction of notional (default: {defaults['fee_taker']}, the "
        "server's fee_taker setting); the maker fee keeps the settings' maker/taker ratio",
    )
    bt.add_argument(
        "--slippage-bps",
        help=f"slippage of market fills, basis points of the bar's open (default: "
        f"{defaults['slippage_bps']}, the server's slippage_bps setting)",
    )
    bt.add_argument(
        "--trades", action="store_true", help="also print the table of round-trip trades"
    )
    bt.add_argument(
        "--json",
        metavar="OUT",
        help="also write the result as JSON to the file OUT, or to stdout with - (then nothing "
        "else is printed) (default: no JSON)",
    )
    bt.set_defaults(func=cmd_backtest)

    strategies = sub.add_parser(
        "strategies", help="list the strategies with their parameters, defaults and meaning"
    )
    strategies.add_argument("--json", action="store_true", help="print them as JSON")
    strategies.set_defaults(func=cmd_strategies)

    data = sub.add_parser("data", help="market data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    imp = data_sub.add_parser("import", help="import Binance kline files")
    imp.add_argument("paths", nargs="+", metavar="FILE", help="kline files (.csv or .csv.gz)")
    imp.add_argument(
        "--exchange",
        default="binance-usdm",
        help="exchange to store them under (default: binance-usdm)",
    )
    imp.add_argument(
        "--symbol",
        help="the files' symbol, BTCUSDT or BTC/USDT:USDT (default: from the file names)",
    )
    imp.add_argument("--timeframe", help="the files' timeframe (default: from the file names)")
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
