"""``lootcapital``: serve the trading server, backtest, and manage market data.

Errors in input (a bad setting, file, row or parameter) print one clear message and exit with
status 2; nothing is half-written.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path

from pydantic import ValidationError

from domain.candles import Candles
from domain.errors import DomainError, VenueError
from domain.margin import MarginMode
from domain.report import breakdown
from domain.strategies import STRATEGIES, build_strategy
from domain.strategies.params import param_specs
from domain.symbols import venue_symbol
from domain.timeframes import timeframe_ms
from lootcapital import analyze_cli, download_cli, ml_cli
from lootcapital.live import LIVE, VENUES, LiveStart
from lootcapital.progress_bar import ProgressBar
from lootcapital.report import fmt_ms, print_report
from lootcapital.settings import Settings, describe_error, load_settings

EXIT_USAGE = 2
EXIT_VENUE = 1


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


def _live_start(args: argparse.Namespace) -> LiveStart | None:
    """What ``serve --mode live`` asks for (None in paper mode).

    Raises
    ------
    DomainError
        Options that do not go together (the message names them).
    """
    if args.mode != LIVE:
        given = [o for o, on in (("--venue", args.venue), ("--demo", args.demo),
                                 ("--live", args.live)) if on]  # fmt: skip
        if given:
            raise DomainError(f"{', '.join(given)}: only with --mode live", field="mode")
        return None
    if args.venue is None:
        raise DomainError(f"--mode live needs --venue ({' or '.join(VENUES)})", field="venue")
    if args.feed not in (None, args.venue):
        raise DomainError(
            f"--mode live trades the bars of its --venue {args.venue}, not --feed {args.feed}",
            field="feed",
        )
    if args.demo and args.venue != "binance-usdm":
        raise DomainError(f"--demo: {args.venue} has no demo environment", field="demo")
    return LiveStart(args.venue, real_money=args.live)


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the server: paper trading on the replayed candle store, or on a venue's live bars
    (``--feed``), or live trading on a venue (``--mode live``); 1 when the venue cannot be
    reached."""
    import uvicorn

    from lootcapital.bootstrap import bootstrap, build_app

    live = _live_start(args)
    settings = _settings(
        args,
        host=args.host,
        port=args.port,
        speed=args.speed,
        symbols=_venue_symbols(args.symbols, "--symbols") or None,
        strategy=args.strategy,
        feed="binance-usdm" if live is not None and live.venue == "binance-usdm" else args.feed,
        venues={"binance_usdm": {"demo": True}} if args.demo else None,
    )
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s")
    for name in ("uvicorn.access", "uvicorn.error"):  # WebSocket handshakes log via .error
        logging.getLogger(name).addFilter(RedactTokens())
    try:
        container = bootstrap(settings, live=live)
    except VenueError as exc:
        print(f"error: {settings.feed if live is None else live.venue}: {exc}", file=sys.stderr)
        return EXIT_VENUE
    url = f"http://{settings.host}:{settings.port}"
    source = "replayed bars" if settings.feed == "replay" else f"live {settings.feed} bars"
    if live is not None:
        demo = settings.venues.binance_usdm.demo
        source += f", orders on {live.venue} " + ("demo" if demo else "with REAL MONEY")
    print(
        f"LootCapital {args.mode} trading {','.join(settings.symbols)} with {settings.strategy} "
        f"on {source}"
    )
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
    from lootcapital.backtest_runs import stored_candles
    from lootcapital.simulation import load_candles

    start, end = _iso_ms(args.start, "start"), _iso_ms(args.end, "end")
    if args.data:
        data = [Path(p) for p in args.data]
        candles = load_candles(
            settings, data=data, symbols=symbols, timeframe=timeframe, start_ms=start, end_ms=end
        )
        sources = dict.fromkeys(candles, timeframe)
    else:
        candles, sources = stored_candles(settings, symbols, timeframe, start, end)
    for symbol, bars in candles.items():
        if not len(bars):
            raise DomainError(f"no {timeframe} bars for {symbol} in the period", field="start")
    return candles, sources


def _leverage(text: str | None, settings: Settings) -> int | None:
    """``--leverage``: a whole number from 1 to the ``max_leverage`` setting (None: not given).

    Raises
    ------
    DomainError
        (``field="leverage"``) Not a whole number in range.
    """
    if text is None:
        return None
    cap = int(settings.max_leverage)
    if not text.isdigit() or not 1 <= int(text) <= cap:
        raise DomainError(
            f"--leverage must be a whole number from 1 to {cap} (the max_leverage setting), "
            f"was {text!r}",
            field="leverage",
        )
    return int(text)


def _funding_files(
    settings: Settings, args: argparse.Namespace, symbols: list[str], timeframe: str
) -> dict[str, Path | None]:
    """Each symbol's funding-rate file: ``--funding`` (one per symbol, in order; ``none``
    for no funding), else the ``_funding`` file beside its ``--data`` file, or beside the
    shipped sample's for bars from the candle store; None when there is none.

    Raises
    ------
    DomainError
        (``field="funding"``) More ``--funding`` files than symbols, or one that does not
        exist.
    """
    from lootcapital.futures import beside, sample_files

    given = args.funding or []
    if len(given) > len(symbols):
        raise DomainError(
            f"{len(given)} --funding files for {len(symbols)} symbols", field="funding"
        )
    if args.data:
        klines = dict(zip(symbols, (Path(p) for p in args.data), strict=False))
    else:
        klines = sample_files(settings, symbols, timeframe)
    out: dict[str, Path | None] = {}
    for k, symbol in enumerate(symbols):
        if k < len(given):
            path = None if given[k] == "none" else Path(given[k])
            if path is not None and not path.exists():
                raise DomainError(f"--funding {path}: no such file", field="funding")
            out[symbol] = path
        else:
            kline = klines.get(symbol)
            out[symbol] = None if kline is None else beside(kline, "funding")
    return out


def _progress_bar(args: argparse.Namespace) -> ProgressBar | None:
    """The console's progress bar on stderr: with ``--progress``, or when stderr is a
    terminal; else None."""
    if args.progress or sys.stderr.isatty():
        return ProgressBar(sys.stderr)
    return None


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run a backtest and print its header, summary and breakdown (JSON with ``--json``, the
    HTML report with ``--report``)."""
    from lootcapital import ab_test
    from lootcapital.backtest_runs import report_header, result_document
    from lootcapital.html_report import write_report
    from lootcapital.simulation import backtest, data_markets, read_funding_feeds

    if not args.data and not args.symbol:
        raise DomainError("give --data FILE or --symbol S", field="data")
    settings = _settings(args)
    timeframe = args.timeframe or settings.timeframe
    timeframe_ms(timeframe)
    symbols = _venue_symbols(args.symbol, "--symbol")
    params = _params(args.param)
    ab_test.check_options(args.strategy, params, ab=args.ab)
    in_effect = build_strategy(args.strategy, params, timeframe).params()
    cash = _decimal(args.cash, "cash", settings.initial_cash)
    fee = _decimal(args.fee, "fee", settings.fee_taker)
    slippage = _decimal(args.slippage_bps, "slippage-bps", settings.slippage_bps)
    candles, sources = _backtest_bars(settings, args, symbols, timeframe)
    leverage = _leverage(args.leverage, settings)
    if args.margin:
        settings = settings.model_copy(update={"margin_mode": MarginMode(args.margin)})
    funding = _funding_files(settings, args, list(candles), timeframe)
    run = partial(
        backtest,
        settings,
        strategy=args.strategy,
        candles=candles,
        timeframe=timeframe,
        cash=cash,
        fee=fee,
        slippage_bps=slippage,
        markets=data_markets(settings, data=[Path(p) for p in args.data], symbols=symbols),
        funding=read_funding_feeds(funding),
        leverage=leverage,
        progress=_progress_bar(args),
    )
    result = run(params=params)
    header = report_header(
        settings, result, strategy=args.strategy, params=in_effect, candles=candles,
        timeframe=timeframe, sources=sources, cash=cash, fee=fee, slippage_bps=slippage,
        funding=funding,
    )  # fmt: skip
    if args.ab:  # the run above is the A/B's all-features run
        return ab_test.run_ab(result, header, run, params, json_to=args.json, html_to=args.report)
    report = breakdown(result.trades, candles)
    print_report(result, header, report, trades=args.trades, json_to=args.json)
    if args.report:
        write_report(Path(args.report), result_document(result, header, candles))
        if args.json != "-":
            print(f"wrote {args.report}")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    """Print the adaptive pipeline's snapshot of a symbol (JSON with ``--json``)."""
    (symbol,) = _venue_symbols([args.symbol], "--symbol")
    return analyze_cli.run(
        _settings(args),
        symbol=symbol,
        at=_iso_ms(args.at, "at"),
        data=Path(args.data) if args.data else None,
        json_to=args.json,
    )


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
            f"{fmt_ms(r.first_open_time)} → {fmt_ms(r.last_open_time)} UTC, "
            f"{len(r.gaps)} gaps"
        )
        for g in r.gaps:
            print(f"  gap: {g.bars} bars missing {fmt_ms(g.first_missing)} → "
                  f"{fmt_ms(g.last_missing)}")  # fmt: skip
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
            f"{s.exchange:<14}{s.symbol:<12}{s.timeframe:<5}{fmt_ms(s.first_open_time):<18}"
            f"{fmt_ms(s.last_open_time):<18}{s.rows:>9,}{len(s.gaps):>6}"
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

    serve = sub.add_parser(
        "serve",
        help="run the API server and paper-trade the replayed data or live bars, or trade live",
    )
    serve.add_argument(
        "--mode",
        choices=("paper", LIVE),
        default="paper",
        help="paper: the simulated venue fills the strategy's orders against the bars; live: "
        "the orders go to --venue, which fills them (needs its API key and secret; real money "
        "needs --live and live_confirm = true) (default: paper)",
    )
    serve.add_argument(
        "--venue",
        choices=VENUES,
        help="--mode live: where the orders go, and whose live bars are traded (mexc: the "
        "account's order entry is probed first, and live mode refused when MEXC refuses it) "
        "(default: none; --mode live needs it)",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="--mode live on binance-usdm: trade Binance's demo environment (sets "
        "venues.binance_usdm.demo: the demo URLs, unless REST_URL and WS_URL are set)",
    )
    serve.add_argument(
        "--live",
        action="store_true",
        help="--mode live without --demo: trade real money (also needs live_confirm = true in "
        "the settings, LOOTCAPITAL_LIVE_CONFIRM=true)",
    )
    serve.add_argument(
        "--feed",
        choices=("replay", "binance-usdm", "mexc"),
        help="where the bars come from: replay (the candle store's bars at --speed), "
        "binance-usdm or mexc (the venue's live closed klines, stored as they are traded, with "
        "its funding rates and mark prices; no API key; the URLs are "
        "LOOTCAPITAL_VENUES__BINANCE_USDM__REST_URL and _WS_URL, or "
        "LOOTCAPITAL_VENUES__MEXC__REST_URL and _WS_URL) "
        f"(default: {defaults['feed']}, the feed setting)",
    )
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
        "--leverage",
        help="leverage of every symbol, 1 to the max_leverage setting and the symbol's bracket "
        f"maximum (default: {defaults['leverage']}, the leverage setting); sma_cross puts "
        "all its equity up as margin (notional = equity × leverage)",
    )
    bt.add_argument(
        "--margin",
        choices=[m.value for m in MarginMode],
        help=f"margin mode of perpetuals (default: {defaults['margin_mode']}, the margin_mode "
        "setting)",
    )
    bt.add_argument(
        "--funding",
        nargs="+",
        metavar="FILE",
        help="funding-rate files (.csv or .csv.gz), one per symbol in order, or none (default: "
        "the _funding file beside each --data file, or the shipped sample's; its _mark_1h file "
        "beside it gives the mark prices of funding and liquidation)",
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
    bt.add_argument(
        "--ab",
        action="store_true",
        help="adaptive only: run with every feature on, then with each of thresholds, regime, "
        "volume_profile, portfolio off, and print (and --json write) the comparison, with the "
        "all-features run's trades by regime and volume-profile key level at entry",
    )
    bt.add_argument(
        "--report",
        metavar="FILE.html",
        help="also write the report as one self-contained HTML page (metrics, equity and "
        "drawdown curves, the trades on each symbol's price chart; with --ab, the comparison) "
        "that opens offline in a browser (default: none)",
    )
    bt.add_argument(
        "--progress",
        action="store_true",
        help="draw a progress bar on stderr (default: only when stderr is a terminal)",
    )
    bt.set_defaults(func=cmd_backtest)

    analyze_cli.add_parser(sub)
    sub.choices["analyze"].set_defaults(func=cmd_analyze)
    ml_cli.add_parser(sub)

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
    download_cli.add_parser(data_sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status (1, quietly, when the reader of stdout
    has gone, as with ``lootcapital backtest ... | head``)."""
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe must fail here, not in the flush at exit
        return code
    except BrokenPipeError:
        # Python's recipe (signal docs, "Note on SIGPIPE"): point stdout at devnull so that
        # the flush at exit does not raise again, and exit 1 as Python does on EPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except ValidationError as exc:
        print(describe_error(exc), file=sys.stderr)
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
    except FileNotFoundError as exc:
        print(f"error: no such file: {exc.filename}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
