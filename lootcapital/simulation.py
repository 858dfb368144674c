"""The simulation wiring: trading rules, futures margining, funding feeds, the risk gate,
backtests and the candles they read.

Split from the composition root (:mod:`lootcapital.bootstrap`, which uses it for paper
trading) so that a backtest imports neither the HTTP app nor SQL storage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

from adapters.clock import SimulatedClock
from adapters.marketdata.binance_csv import infer_market, infer_symbol_timeframe, read_klines
from adapters.marketdata.exchange_info import load_catalog
from adapters.marketdata.feeds import HistoricalFeed
from adapters.marketdata.funding_csv import read_funding, read_mark_prices
from adapters.marketdata.leverage_brackets import read_leverage_brackets
from adapters.marketdata.parquet_store import ParquetCandleStore
from adapters.venues.simulated.venue import SimulatedVenue
from domain.candles import Candles
from domain.errors import ConfigError, UnknownSymbol
from domain.execution import FeeSchedule
from domain.funding import FundingRates
from domain.futures import FuturesBook, FuturesTerms, MarketFeeds
from domain.instruments import DEFAULT_VENUE
from domain.model import Instrument, MarketType
from domain.ports import Clock, LimitsChange
from domain.strategies import build_strategy
from domain.timeframes import timeframe_ms
from lootcapital.futures import beside, sample_files
from lootcapital.ml_models import hand_over_models
from lootcapital.settings import Settings
from service_layer.backtest import BacktestResult, run_backtest
from service_layer.market_data import check_spacing
from service_layer.risk_config import RiskConfig
from service_layer.risk_gate import RiskGate

logger = logging.getLogger(__name__)


def candle_store(settings: Settings) -> ParquetCandleStore:
    """The Parquet candle store under the data directory."""
    return ParquetCandleStore(settings.data_dir)


def instruments(
    settings: Settings,
    symbols: Sequence[str],
    *,
    markets: Mapping[str, MarketType] | None = None,
    venue: str = DEFAULT_VENUE,
) -> dict[str, Instrument]:
    """Trading rules for ``symbols``, keyed by symbol, each looked up by venue, market and
    symbol in the exchange-info files ``settings.instruments_files``.

    ``markets`` gives a symbol's market (see :func:`data_markets`); a symbol it does not name
    trades on the perpetual market. A symbol the files do not know gets permissive defaults
    (tick and lot step 1e-8, no minimum notional, no quantity cap) on its venue and market,
    with a warning that says where else the symbol is known.

    Raises
    ------
    DataError
        When an exchange-info file cannot be read or parsed (file and symbol named).
    """
    catalog = load_catalog(settings.instruments_files)
    rules = {}
    for symbol in symbols:
        market = (markets or {}).get(symbol, MarketType.PERPETUAL)
        try:
            rules[symbol] = catalog.get(symbol, venue=venue, market=market)
        except UnknownSymbol as exc:
            logger.warning("%s: using tick/step 1e-8 and no limits", exc.message)
            rules[symbol] = Instrument(symbol, venue=venue, market=market)
    return rules


def with_brackets(settings: Settings, rules: Mapping[str, Instrument]) -> dict[str, Instrument]:
    """``rules`` with each perpetual's leverage brackets from ``settings.leverage_brackets_file``
    (unchanged when unset, or for a symbol the file does not list: that symbol is traded with no
    liquidation, and a warning says so).

    Raises
    ------
    DataError
        When the file cannot be read or parsed (file, symbol and bracket named).
    """
    path = settings.leverage_brackets_file
    if path is None:
        return dict(rules)
    brackets = read_leverage_brackets(path)
    out = {}
    for symbol, rule in rules.items():
        found = brackets.get(symbol) if rule.market is MarketType.PERPETUAL else None
        if found is None and rule.market is MarketType.PERPETUAL:
            logger.warning("%s: no leverage brackets in %s; no liquidation simulated", symbol, path)
        out[symbol] = rule if found is None else replace(rule, brackets=found)
    return out


class FundingFeed(NamedTuple):
    """A perpetual's funding ``rates`` and 1 h mark-price bars (``marks``; None where no mark
    file lies beside the funding file), read once per process."""

    rates: FundingRates
    marks: Candles | None


def read_funding_feeds(funding: Mapping[str, Path | None]) -> dict[str, FundingFeed]:
    """The funding feeds of the files ``funding`` names per symbol (None: none for that
    symbol), each with the mark prices of the ``mark_1h`` file beside it when there is one.

    Raises
    ------
    DataError
        A funding or mark file that cannot be read (file and row named).
    """
    feeds = {}
    for symbol, path in funding.items():
        if path is not None:
            mark_path = _mark_file(path)
            marks = read_mark_prices(mark_path) if mark_path is not None else None
            feeds[symbol] = FundingFeed(read_funding(path), marks)
    return feeds


def futures_book(
    settings: Settings,
    rules: Mapping[str, Instrument],
    bar_ms: int,
    *,
    funding: Mapping[str, FundingFeed],
    leverage: int | None = None,
) -> FuturesBook | None:
    """The futures margining of an account trading ``rules``, or None when not every symbol is
    a perpetual (spot and stocks keep the plain margin check).

    ``funding`` holds each symbol's funding feed (:func:`read_funding_feeds`; absent: no
    funding). ``leverage`` overrides ``settings.leverage`` for every symbol.

    Raises
    ------
    ConfigError, ValueError
        A leverage above the cap (the message names it).
    """
    if not rules or any(r.market is not MarketType.PERPETUAL for r in rules.values()):
        return None
    terms = FuturesTerms(
        mode=settings.margin_mode,
        leverage=leverage or settings.leverage,
        max_leverage=int(settings.max_leverage),
        liquidation_fee=settings.liquidation_fee,
    )
    markets = {}
    for symbol, rule in rules.items():
        rates, marks = funding.get(symbol, (None, None))
        markets[symbol] = MarketFeeds(rule.brackets, rates, marks)
    book = FuturesBook(terms, markets, bar_ms)
    for symbol in rules:
        book.set_leverage(symbol, terms.leverage)
    return book


def _mark_file(funding: Path) -> Path | None:
    name = funding.name.replace("_funding", "_mark_1h", 1)
    found = funding.with_name(name)
    return found if name != funding.name and found.exists() else None


def sample_funding(settings: Settings, symbols: Sequence[str]) -> dict[str, FundingFeed]:
    """The funding feeds of the shipped sample's funding files beside the candles of
    ``symbols`` at the settings' timeframe, where there are some.

    Raises
    ------
    DataError
        A funding or mark file that cannot be read (file and row named).
    """
    samples = sample_files(settings, list(symbols), settings.timeframe)
    return read_funding_feeds({s: beside(path, "funding") for s, path in samples.items()})


def simulated_venue(
    settings: Settings,
    rules: Mapping[str, Instrument],
    cash: Decimal,
    clock: Clock,
    funding: Mapping[str, FundingFeed],
) -> SimulatedVenue:
    """A simulated venue with the settings' fees, slippage, leverage cap and participation;
    perpetuals margined as futures with the settings' leverage and margin mode, funded from
    ``funding`` (:func:`sample_funding`)."""
    book = futures_book(settings, rules, timeframe_ms(settings.timeframe), funding=funding)
    return SimulatedVenue(
        instruments=rules,
        cash=cash,
        clock=clock,
        fees=FeeSchedule(taker=settings.fee_taker, maker=settings.fee_maker),
        slippage_bps=settings.slippage_bps,
        max_leverage=settings.max_leverage,
        participation=settings.participation,
        futures=book,
    )


def risk_config(settings: Settings, stored: LimitsChange | None = None) -> RiskConfig:
    """The risk gate's configuration: the settings' ``risk`` section, or the limits last set
    through the API for the run (``stored``), which win.

    Raises
    ------
    ConfigError
        On limits that do not hold together (the field named).
    """
    config = RiskConfig.from_json(settings.risk.model_dump(mode="json"))
    return config if stored is None else RiskConfig.from_json(stored.limits, base=config)


def risk_gate(
    settings: Settings,
    timeframe: str,
    stored: LimitsChange | None = None,
    *,
    paper: bool = False,
    leverage: int | None = None,
) -> RiskGate | None:
    """The risk gate of a run: always in paper and live (manual halts, close-all and the risk
    view need it; with every rule off it refuses nothing), in a backtest only when a rule is
    on (else none, at no cost). ``leverage`` is the account's (the settings' by default)."""
    config = risk_config(settings, stored)
    if not paper and not config.enforces_anything:
        return None
    return RiskGate(
        config,
        timeframe=timeframe,
        leverage=Decimal(leverage or settings.leverage),
        track_drawdown=paper,
    )


def backtest(
    settings: Settings,
    *,
    strategy: str,
    params: dict[str, str],
    candles: dict[str, Candles],
    timeframe: str,
    cash: Decimal,
    fee: Decimal,
    slippage_bps: Decimal,
    markets: Mapping[str, MarketType] | None = None,
    funding: Mapping[str, FundingFeed] | None = None,
    leverage: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> BacktestResult:
    """Backtest ``strategy`` on ``candles`` against a fresh simulated venue and clock.

    ``fee`` is the taker rate; the maker rate keeps the settings' ratio to it. ``markets``
    names each symbol's market (spot files trade with spot rules); perpetual by default.
    Perpetuals are margined as futures (:func:`futures_book`): ``leverage`` (default
    ``settings.leverage``) for every symbol, the settings' margin mode, and funding from the
    feeds ``funding`` holds per symbol (:func:`read_funding_feeds`; none for a symbol it does
    not name). ``progress`` is told the fraction of the period done as the run goes
    (:func:`~service_layer.backtest.run_backtest`); it changes nothing in the result.

    Raises
    ------
    InvalidOrder
        (``field="leverage"``) A leverage above the cap or a symbol's bracket maximum.
    """
    rules = with_brackets(settings, instruments(settings, list(candles), markets=markets))
    maker = fee * settings.fee_maker / settings.fee_taker if settings.fee_taker else fee
    clock = SimulatedClock()
    book = futures_book(
        settings, rules, timeframe_ms(timeframe), funding=funding or {}, leverage=leverage
    )
    venue = SimulatedVenue(
        instruments=rules,
        cash=cash,
        clock=clock,
        fees=FeeSchedule(taker=fee, maker=maker),
        slippage_bps=slippage_bps,
        max_leverage=settings.max_leverage,
        participation=settings.participation,
        futures=book,
    )
    built = build_strategy(strategy, params, timeframe)
    starts = [int(c.open_time[0]) for c in candles.values() if len(c)]
    hand_over_models(built, settings, list(candles), backtest_start=min(starts, default=None))
    return run_backtest(
        strategy=built,
        feed=HistoricalFeed(candles, timeframe),
        venue=venue,
        matcher=venue,
        clock=clock,
        instruments=rules,
        initial_cash=cash,
        margin=None if book is None else venue,
        risk=risk_gate(settings, timeframe, leverage=leverage),
        progress=progress,
    )


def load_candles(
    settings: Settings,
    *,
    data: Sequence[Path],
    symbols: Sequence[str],
    timeframe: str,
    start_ms: int | None,
    end_ms: int | None,
) -> dict[str, Candles]:
    """Bars to backtest: from kline files (``data``; ``symbols`` name them in order, else the
    file name does) or the candle store.

    Raises
    ------
    ConfigError
        A file whose symbol cannot be inferred, or two files for one symbol.
    DataError
        A bad row, or bars not spaced on ``timeframe`` (file and row named).
    """
    out: dict[str, Candles] = {}
    for k, path in enumerate(data):
        name = _data_symbol(k, path, symbols)
        if name in out:
            raise ConfigError(f"{path}: a second file for {name}", field="data")
        candles = read_klines(path)
        check_spacing(candles.open_time, timeframe, str(path))
        out[name] = candles.between(start_ms, end_ms)
    if not data:
        store = candle_store(settings)
        for symbol in symbols:
            out[symbol] = store.read(settings.exchange, symbol, timeframe, start_ms, end_ms)
    return out


def data_markets(
    settings: Settings, *, data: Sequence[Path], symbols: Sequence[str]
) -> dict[str, MarketType]:
    """The market of each symbol :func:`load_candles` loads with the same ``data`` and
    ``symbols``, to pass to :func:`instruments` so each is traded by its own market's rules.

    A ``--data`` file's market comes from its name (``binance_spot_…`` spot, ``binance_usdm_…``
    perpetual, ``us_stock_…`` stock, any other name perpetual); without ``data`` every symbol
    is on the market of the candle store's exchange (``settings.exchange``: spot when it ends
    in ``-spot``, else perpetual).

    Raises
    ------
    ConfigError
        A file whose symbol cannot be inferred (as :func:`load_candles`).
    """
    if not data:
        store_market = (
            MarketType.SPOT if settings.exchange.endswith("-spot") else MarketType.PERPETUAL
        )
        return dict.fromkeys(symbols, store_market)
    return {
        _data_symbol(k, path, symbols): infer_market(path) or MarketType.PERPETUAL
        for k, path in enumerate(data)
    }


def _data_symbol(k: int, path: Path, symbols: Sequence[str]) -> str:
    """The symbol of the ``k``-th ``--data`` file: ``symbols[k]``, else from its file name."""
    name = symbols[k] if k < len(symbols) else infer_symbol_timeframe(path)[0]
    if name is None:
        raise ConfigError(f"{path}: cannot infer the symbol; pass --symbol", field="symbol")
    return name
