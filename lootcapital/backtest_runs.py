"""A backtest of the candle store's bars, as ``lootcapital backtest --symbol ...`` runs it, for
the server's background backtests (:mod:`service_layer.backtest_jobs`), and the pieces the CLI
shares with them: the stored bars (resampled when needed), the report's header and the result
document (the ``--json`` document with the closes of the symbols, the price chart of the
trades).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from api.numbers import Numbers
from domain.candles import Candles
from domain.errors import ConfigError, DomainError
from domain.margin import MarginMode
from domain.report import breakdown
from domain.resample import resample
from domain.strategies import build_strategy
from domain.symbols import venue_symbol
from domain.timeframes import timeframe_ms
from lootcapital.futures import beside, sample_files
from lootcapital.report import Header, document
from lootcapital.settings import Settings
from service_layer.backtest import BacktestResult, source_timeframe
from service_layer.backtest_jobs import BacktestRequest, Progress, Run


def stored_candles(
    settings: Settings, symbols: Sequence[str], timeframe: str, start: int | None, end: int | None
) -> tuple[dict[str, Candles], dict[str, str]]:
    """Bars of ``symbols`` from the candle store on ``timeframe``, resampled (epoch-aligned,
    complete buckets only, as the API's candles) from the longest stored timeframe dividing it
    when ``timeframe`` itself is not stored. Also returns the timeframe each was read at.

    Raises
    ------
    DomainError
        (``field="symbol"``) A symbol with no stored timeframe that divides ``timeframe``.
    """
    from lootcapital.bootstrap import list_data
    from lootcapital.simulation import load_candles

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


def maker_fee(settings: Settings, taker: Decimal) -> Decimal:
    """The maker rate :func:`lootcapital.simulation.backtest` uses: the settings' maker/taker
    ratio applied to ``taker``."""
    if not settings.fee_taker:
        return taker
    return taker * settings.fee_maker / settings.fee_taker


def report_header(
    settings: Settings,
    result: BacktestResult,
    *,
    strategy: str,
    params: dict[str, Any],
    candles: Mapping[str, Candles],
    timeframe: str,
    sources: Mapping[str, str],
    cash: Decimal,
    fee: Decimal,
    slippage_bps: Decimal,
    funding: Mapping[str, Path | None],
) -> Header:
    """What the backtest ran, for its report: ``params`` are those in effect, ``sources`` the
    timeframe each symbol's bars were read at, ``funding`` each symbol's funding file."""
    rules = result.instruments
    futures: dict[str, Any] = {}
    if result.leverage is not None:
        futures = {
            "margin": str(settings.margin_mode),
            "leverage": dict(result.leverage),
            "funding": {s: None if p is None else str(p) for s, p in funding.items()},
        }
    return Header(
        strategy=strategy,
        params=params,
        markets={s: str(rules[s].market) for s in candles},
        timeframe=timeframe,
        resampled_from={s: f for s, f in sources.items() if f != timeframe},
        start=min(int(c.open_time[0]) for c in candles.values()),
        end=max(int(c.open_time[-1]) for c in candles.values()) + timeframe_ms(timeframe),
        bars={s: len(c) for s, c in candles.items()},
        cash=cash,
        currency=",".join(sorted({r.quote_asset for r in rules.values()})),
        fee_taker=fee,
        fee_maker=maker_fee(settings, fee),
        slippage_bps=slippage_bps,
        **futures,
    )


def result_document(
    result: BacktestResult, header: Header, candles: Mapping[str, Candles]
) -> dict[str, Any]:
    """The CLI's ``--json`` document of ``result`` (:func:`lootcapital.report.document`) with
    ``closes``: each symbol's ``[[open_time, close], ...]`` (ms UTC, quote currency, floats),
    the price chart the trades are drawn on."""
    rules = result.instruments
    numbers = Numbers(rules, max(r.quote_precision for r in rules.values()))
    content = document(result, numbers, header, breakdown(result.trades, dict(candles)))
    content["closes"] = {
        s: [[t, c] for t, c in zip(b.open_time.tolist(), b.close.tolist(), strict=True)]
        for s, b in candles.items()
    }
    return content


def _symbols(request: BacktestRequest) -> list[str]:
    if not request.symbols:
        raise ConfigError("give at least one symbol", field="symbols")
    try:
        return list(dict.fromkeys(venue_symbol(s) for s in request.symbols))
    except ValueError as exc:
        raise ConfigError(f"symbols: {exc}", field="symbols") from None


def _strategy_params(request: BacktestRequest, timeframe: str) -> dict[str, Any]:
    """The parameters in effect; a refused one is named ``params.<name>``."""
    try:
        return build_strategy(request.strategy, request.params, timeframe).params()
    except ConfigError as exc:
        named = exc.field in {"strategy", "timeframe", None}
        raise ConfigError(
            exc.message, field=exc.field if named else f"params.{exc.field}"
        ) from None


def _leverage(settings: Settings, leverage: int | None) -> int | None:
    cap = int(settings.max_leverage)
    if leverage is not None and not 1 <= leverage <= cap:
        raise ConfigError(
            f"leverage must be from 1 to {cap} (the max_leverage setting), was {leverage}",
            field="leverage",
        )
    return leverage


def prepare_backtest(settings: Settings, request: BacktestRequest) -> tuple[str, Run]:
    """Check ``request`` and read its bars from the candle store; the timeframe it runs at and
    the run, which backtests as ``lootcapital backtest --symbol ...`` with the same options
    does (the shipped sample's funding beside the bars) and returns :func:`result_document`.

    Raises
    ------
    DomainError
        The field named: an unknown strategy or symbol, a bad parameter (``params.<name>``),
        timeframe, leverage or margin mode, no stored bars, or none in the period (``start``).
    """
    from lootcapital.simulation import backtest, data_markets, read_funding_feeds

    timeframe = request.timeframe or settings.timeframe
    timeframe_ms(timeframe)
    symbols = _symbols(request)
    params = _strategy_params(request, timeframe)
    leverage = _leverage(settings, request.leverage)
    if request.margin is not None:
        settings = settings.model_copy(update={"margin_mode": MarginMode(request.margin)})
    try:
        candles, sources = stored_candles(
            settings, symbols, timeframe, request.start_ms, request.end_ms
        )
    except DomainError as exc:
        raise type(exc)(exc.message.removeprefix("--symbol "), field="symbols") from None
    for symbol, bars in candles.items():
        if not len(bars):
            raise ConfigError(f"no {timeframe} bars for {symbol} in the period", field="start")
    samples = sample_files(settings, symbols, timeframe)
    funding = {s: beside(samples[s], "funding") if s in samples else None for s in symbols}
    cash = settings.initial_cash if request.cash is None else request.cash
    fee = settings.fee_taker if request.fee is None else request.fee
    slippage = settings.slippage_bps if request.slippage_bps is None else request.slippage_bps

    def run(progress: Progress) -> dict[str, Any]:
        result = backtest(
            settings,
            strategy=request.strategy,
            params=dict(request.params),  # type: ignore[arg-type]
            candles=candles,
            timeframe=timeframe,
            cash=cash,
            fee=fee,
            slippage_bps=slippage,
            markets=data_markets(settings, data=[], symbols=symbols),
            funding=read_funding_feeds(funding),
            leverage=leverage,
            progress=progress,
        )
        header = report_header(
            settings, result, strategy=request.strategy, params=params, candles=candles,
            timeframe=timeframe, sources=sources, cash=cash, fee=fee, slippage_bps=slippage,
            funding=funding,
        )  # fmt: skip
        return result_document(result, header, candles)

    return timeframe, run
