"""The adaptive-pipeline page's views (issue 6, "Surfaces"): what each of its partials shows.

Pure builders turn the service's data into dicts for the templates (and the chart's JSON); the
``*_context`` readers take a :class:`~service_layer.trading.TradingService`, read what the
builders need and call them. The per-symbol figures are :func:`domain.analysis.snapshot` of the
bars the engine keeps, which ``GET /api/v1/analysis/{symbol}`` shows too, so the page and the
API say the same thing about the same bars. Times are int ms UTC (the chart's, seconds UTC);
money quote currency; correlations and ratios float64, NaN shown as None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from domain.allocation import AllocationConfig, diversification_ratio
from domain.analysis import snapshot
from domain.candles import Candles
from domain.correlation import CorrelationMatrix, correlation_at
from domain.errors import ConfigError
from domain.strategies.base import ExplainsPipeline, PipelineView
from domain.timeframes import timeframe_ms
from service_layer.trading import PositionView, TradingService

TIMEFRAMES = ("5m", "15m", "1h", "4h")
"""The coordinator's timeframes, in the order the alignment table shows them."""
CHART_BARS = 500
"""Bars the price chart shows (the last ones kept, about 42 hours of 5m bars)."""
LEVELS = ("poc", "vah", "val")
"""The volume profile's levels drawn on the chart: point of control, value area high and low."""
MAX_PLACES = 8
NO_BARS = "No closed bar yet: start the engine."


def symbol_view(candles: Candles, symbol: str, timeframe: str) -> dict[str, Any]:
    """What the pipeline says about ``symbol`` at the last of ``candles`` (bars of
    ``timeframe``, oldest first).

    Returns ``{"symbol", "shot", "rows", "empty", "precision"}``: ``shot`` the snapshot of
    :func:`domain.analysis.snapshot` with NaN as None (None without bars, ``empty`` then says
    why), ``rows`` the
    alignment table, one dict per timeframe of :data:`TIMEFRAMES` (``timeframe``, ``trend``,
    ``momentum``, ``volatility``, ``volume_trend``, …, as the snapshot gives them), and
    ``precision`` the decimals the prices are shown with (:func:`price_precision`, at least 2).
    """
    if not len(candles):
        return {"symbol": symbol, "shot": None, "rows": [], "empty": NO_BARS, "precision": 2}
    shot = _finite(snapshot(candles, symbol, timeframe=timeframe))
    frames = shot["timeframes"]
    rows = [{"timeframe": tf} | frames[tf] for tf in TIMEFRAMES if isinstance(frames.get(tf), dict)]
    precision = max(2, price_precision(candles.close))
    return {"symbol": symbol, "shot": shot, "rows": rows, "empty": None, "precision": precision}


def _finite(value: Any) -> Any:
    """``value`` with every NaN float, however deeply nested, as None (as JSON shows it)."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def price_precision(values: np.ndarray) -> int:
    """Decimals needed to show every price of ``values`` (float64) exactly, at most
    :data:`MAX_PLACES` (a float read from a decimal string rounds back to it).

    >>> price_precision(np.array([109557.3, 109560.0])), price_precision(np.array([0.0001234]))
    (1, 7)
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    for places in range(MAX_PLACES + 1):
        if np.allclose(np.round(x, places), x, rtol=1e-12, atol=0.0):
            return places
    return MAX_PLACES


def chart_data(
    candles: Candles, symbol: str, shot: Mapping[str, Any] | None, bars: int = CHART_BARS
) -> dict[str, Any]:
    """The price chart's JSON: the last ``bars`` of ``candles`` and the volume profile's levels
    of ``shot`` (a :func:`~domain.analysis.snapshot` of the same bars; None without bars).

    Returns ``{"symbol", "bars": [{"time", "open", "high", "low", "close", "volume"}, ...],
    "levels": {"poc", "vah", "val"} | None, "precision"}``: ``time`` the bar's open in seconds
    UTC (what the chart library takes), prices quote currency, volume base asset, oldest first;
    ``levels`` None when the volume profile is off; ``precision`` the decimals of the prices.
    """
    shown = candles.slice(max(0, len(candles) - bars), len(candles))
    columns = zip(
        (shown.open_time // 1000).tolist(),
        shown.open.tolist(),
        shown.high.tolist(),
        shown.low.tolist(),
        shown.close.tolist(),
        shown.volume.tolist(),
        strict=True,
    )
    names = ("time", "open", "high", "low", "close", "volume")
    profile = None if shot is None else shot.get("volume_profile")
    levels = None if profile is None else {k: profile[k] for k in LEVELS}
    prices = np.concatenate([shown.open, shown.high, shown.low, shown.close])
    return {
        "symbol": symbol,
        "bars": [dict(zip(names, row, strict=True)) for row in columns],
        "levels": levels,
        "precision": max(2, price_precision(prices)) if len(shown) else 2,
    }


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def portfolio_view(
    *,
    symbols: Sequence[str],
    histories: Mapping[str, Candles],
    positions: Sequence[PositionView],
    realized: Mapping[str, Decimal],
    equity: Decimal,
    timeframe: str,
    config: AllocationConfig | None = None,
) -> dict[str, Any]:
    """Per-symbol PnL, the correlation matrix and the diversification ratio of the account.

    PnL as :func:`domain.allocation.portfolio_metrics` counts it: ``realized`` the sum of the
    closed trades' PnL per symbol (net of fees), ``unrealized`` the open position's at its mark
    (before fees), ``total`` their sum, quote currency, per symbol (the traded ``symbols``
    first, in their order) and for the account (``totals``). The correlation is
    :func:`domain.correlation.correlation_at` of the ``histories`` (bars of ``timeframe``) at
    the last close, with the portfolio manager's window and overlap (``config``); ``matrix``
    rows of ``{"symbol", "cells": [ρ or None]}`` in ``symbols`` order. The
    ``diversification_ratio`` (:func:`domain.allocation.diversification_ratio`) is of the
    open positions' weights (signed notional / ``equity``); None, with ``ratio_note`` saying
    why, when nothing is held or a held symbol's correlation or volatility is unknown.
    """
    config = config or AllocationConfig()
    realized = dict.fromkeys(symbols, Decimal(0)) | dict(realized)
    unrealized = {v.position.symbol: v.unrealized_pnl for v in positions}
    order = list(dict.fromkeys([*symbols, *realized, *unrealized]))
    rows = []
    for symbol in order:
        made, held = realized.get(symbol, Decimal(0)), unrealized.get(symbol, Decimal(0))
        rows.append({"symbol": symbol, "realized": made, "unrealized": held, "total": made + held})
    totals = {k: sum((r[k] for r in rows), Decimal(0)) for k in ("realized", "unrealized", "total")}
    correlation, note = _correlation(symbols, histories, timeframe, config)
    ratio, ratio_note = _ratio(positions, equity, correlation)
    cells = correlation.values.tolist()
    return {
        "rows": rows,
        "totals": totals,
        "symbols": list(correlation.symbols),
        "matrix": [
            {"symbol": s, "cells": [_number(v) for v in row]}
            for s, row in zip(correlation.symbols, cells, strict=True)
        ],
        "observations": correlation.observations,
        "time": correlation.time,
        "correlation_note": note,
        "window": config.window,
        "min_overlap": config.min_overlap,
        "diversification_ratio": ratio,
        "ratio_note": ratio_note,
    }


def _correlation(
    symbols: Sequence[str],
    histories: Mapping[str, Candles],
    timeframe: str,
    config: AllocationConfig,
) -> tuple[CorrelationMatrix, str | None]:
    tf_ms = timeframe_ms(timeframe)
    closes = [int(c.open_time[-1]) + tf_ms for c in histories.values() if len(c)]
    if not closes:
        return CorrelationMatrix.unknown(symbols), NO_BARS
    time = max(closes)
    try:
        matrix = correlation_at(
            histories, symbols, time, window=config.window, min_overlap=config.min_overlap,
            base_ms=tf_ms,
        )  # fmt: skip
    except ConfigError as exc:  # a timeframe that does not divide 1 h
        return CorrelationMatrix.unknown(symbols, time), exc.message
    if matrix.observations < config.min_overlap:
        return matrix, f"fewer than {config.min_overlap} common hours of returns yet: unknown"
    return matrix, None


def _ratio(
    positions: Sequence[PositionView], equity: Decimal, correlation: CorrelationMatrix
) -> tuple[float | None, str | None]:
    weights: dict[str, float] = {}
    if equity > 0:
        for view in positions:
            p = view.position
            if p.qty != 0:
                weights[p.symbol] = float(p.qty * (view.mark_price or p.entry_price) / equity)
    if not weights:
        return None, "nothing held"
    if not set(weights) <= set(correlation.symbols):
        return None, "a held symbol is not traded"
    vector = np.array([weights.get(s, 0.0) for s in correlation.symbols])
    ratio = diversification_ratio(vector, correlation.volatility, correlation.values)
    if math.isnan(ratio):
        return None, "correlation of the held symbols unknown"
    return ratio, None


def feature_view(views: Sequence[PipelineView], strategy: str, pipeline: bool) -> dict[str, Any]:
    """Each feature's state per symbol from the strategy's :class:`PipelineView` list.

    Returns ``{"strategy", "message", "features", "rows", "counts"}``: ``features`` the
    feature names (first seen order), ``rows`` one per symbol with the strategy's own
    ``regime``, ``confidence`` [0, 1], ``volatility_pct`` (percent), ``adx_threshold`` and
    ``rvol_threshold``, and ``cells``, one ``{"name", "state", "failures"}`` per feature
    (``state`` ``on``, ``off``, ``failed`` or None when the symbol lacks it); ``counts`` how
    many cells are in each state. ``message`` says why there is nothing to show: a strategy
    without an adaptive pipeline (``pipeline`` False), or one whose pipeline has not run yet.
    """
    names = list(dict.fromkeys(name for v in views for name in v.features))
    rows = [
        {
            "symbol": v.symbol,
            "regime": v.regime,
            "confidence": v.confidence,
            "volatility_pct": v.volatility_pct,
            "adx_threshold": v.adx_threshold,
            "rvol_threshold": v.rvol_threshold,
            "cells": [
                {"name": n, "state": v.features.get(n), "failures": v.failures.get(n, 0)}
                for n in names
            ],
        }
        for v in views
    ]
    counts = {state: 0 for state in ("on", "off", "failed")}
    for row in rows:
        for cell in row["cells"]:
            if cell["state"] in counts:
                counts[cell["state"]] += 1
    message = None
    if not pipeline:
        message = f"The strategy {strategy} has no adaptive pipeline: it has no features to show."
    elif not views:
        message = "The adaptive pipeline has not run yet: start the engine."
    return {
        "strategy": strategy,
        "message": message,
        "features": names,
        "rows": rows,
        "counts": counts,
    }


# -- readers of the service ---------------------------------------------------------------------


def has_pipeline(service: TradingService) -> bool:
    """Whether the run's strategy has an adaptive pipeline to show."""
    return isinstance(service.engine.strategy, ExplainsPipeline)


def page_context(service: TradingService) -> dict[str, Any]:
    """The page's frame: the traded ``symbols``, the ``strategy``'s name, whether it has an
    adaptive ``pipeline``, and the ``chart_bars`` shown."""
    status = service.status()
    return {
        "symbols": status.symbols,
        "strategy": status.strategy,
        "pipeline": has_pipeline(service),
        "chart_bars": CHART_BARS,
    }


HISTORY_EVENTS = 10
"""Stored pipeline events (threshold adjustments, regime changes) a symbol's section lists."""


def symbol_context(service: TradingService, symbol: str) -> dict[str, Any]:
    """:func:`symbol_view` of the bars the engine keeps of ``symbol`` (a venue symbol), with
    ``history``: its latest :data:`HISTORY_EVENTS` stored pipeline events, newest first
    (``time`` ms UTC, ``kind``, ``message``).

    Raises
    ------
    UnknownSymbol
        When the run does not trade ``symbol``.
    """
    view = symbol_view(service.recent_candles(symbol), symbol, service.engine.timeframe)
    recent = service.pipeline_events(symbol=symbol, limit=HISTORY_EVENTS).items
    return view | {
        "history": [{"time": e.time, "kind": e.kind, "message": e.message} for e in recent]
    }


def chart_context(service: TradingService, symbol: str, bars: int = CHART_BARS) -> dict[str, Any]:
    """:func:`chart_data` of the bars the engine keeps of ``symbol`` (a venue symbol), its
    levels from the same snapshot the page shows. Raises UnknownSymbol like
    :func:`symbol_context`."""
    candles = service.recent_candles(symbol)
    shot = symbol_view(candles, symbol, service.engine.timeframe)["shot"]
    return chart_data(candles, symbol, shot, bars)


def portfolio_context(service: TradingService) -> dict[str, Any]:
    """:func:`portfolio_view` of the run: its traded symbols and the bars the engine keeps of
    them, its open positions, its realized PnL per symbol and its equity."""
    status = service.status()
    return portfolio_view(
        symbols=status.symbols,
        histories={s: service.recent_candles(s) for s in status.symbols},
        positions=service.positions(),
        realized=service.realized_by_symbol(),
        equity=status.equity,
        timeframe=status.timeframe,
    )


def features_context(service: TradingService) -> dict[str, Any]:
    """:func:`feature_view` of the strategy's pipeline as it is between bars."""
    return feature_view(
        service.pipeline_view(), service.status().strategy, pipeline=has_pipeline(service)
    )
