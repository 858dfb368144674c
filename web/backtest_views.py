"""The backtest views (issue 10, "Backtests from the panel"): a backtest's metrics, trades and
chart data, the comparison of several, and the form, for the ``/backtests`` page and the CLI's
one-file HTML report (:mod:`lootcapital.html_report`), which render the same partials.

The builders are pure: they read a result document (the CLI's ``--json`` document with the
closes of the symbols: :func:`lootcapital.backtest_runs.result_document`) or stored
:class:`~domain.backtest_records.BacktestRecord` values, as ``GET /api/v1/backtests/{id}``
returns them. A done backtest's view (:func:`stored_view`) is built once, when its job ends, and
stored with it: showing it then reads that small document, not the whole result. Chart data is
for ``web/static/backtest_charts.js``: times in seconds (uPlot's time axis), equity in quote
currency, drawdown in percent below the running peak, and per symbol the closes with the
trades' entry (long, short) and exit prices at the bars they filled in (null elsewhere).

The panel draws each symbol of a result as candlesticks (``web/static/candles.js``) from
``/ui/backtests/{id}/chart`` (:func:`candle_chart`: the stored bars the backtest ran on, its
trades as markers, in the JSON of the price chart page's ``/ui/chart/data``); the CLI's one-file
report, which fetches nothing, keeps the closes with the markers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from domain.backtest_records import BacktestRecord, json_safe
from domain.candles import Candles
from domain.resample import resample
from domain.strategies import STRATEGIES
from domain.strategies.params import param_specs
from domain.timeframes import timeframe_ms
from web.chart_views import bars_json

TIMEFRAMES = ("5m", "15m", "1h", "4h")
"""The timeframes the form offers (the store's 5m bars, resampled for the others)."""
LISTED = 20
"""Backtests per page of the list."""
MAX_POINTS = 4_000
"""The most points a chart of a result draws per series (about; see :func:`thin`): a page of
two months of 5m bars stays light. The API and the report's trades table have every one."""
MAX_BARS = 6_000
"""The most bars a result's candlestick chart draws per symbol (about 3 weeks of 5m bars, a
60-day backtest at 15m): beyond, they are resampled to the shortest of :data:`TIMEFRAMES` that
keeps them under it. The JSON of 17,280 bars (60 days of 5m) was 1.7 MB and took 0.7 to 1.1 s
to serve, over the panel's 300 ms."""
TRADES_SHOWN = 500
"""The trades the panel's result lists (the first ones; the API and the report have all)."""


class Metric(NamedTuple):
    """A metric the views show: its ``key`` in the document's metrics, its ``label`` and how
    it is written (``pct`` percent, ``ratio``, ``count``, ``money`` a decimal string, ``days``)."""

    key: str
    label: str
    kind: str


METRICS = (
    Metric("total_return_pct", "Total return", "pct"),
    Metric("annualized_return_pct", "Annualized return", "pct"),
    Metric("max_drawdown_pct", "Max drawdown", "pct"),
    Metric("sharpe", "Sharpe", "ratio"),
    Metric("sortino", "Sortino", "ratio"),
    Metric("win_rate_pct", "Win rate", "pct"),
    Metric("profit_factor", "Profit factor", "ratio"),
    Metric("trades", "Trades", "count"),
    Metric("exposure_pct", "Exposure", "pct"),
    Metric("start_equity", "Start equity", "money"),
    Metric("end_equity", "End equity", "money"),
    Metric("realized_pnl", "Realized PnL (gross)", "money"),
    Metric("fees_paid", "Fees paid", "money"),
    Metric("funding_paid", "Funding paid", "money"),
    Metric("liquidations", "Liquidations", "count"),
    Metric("days", "Days", "days"),
)


def metric_text(metric: Metric, value: Any) -> str:
    """``value`` of ``metric`` as the views write it (an em dash when missing; a profit
    factor of null is infinite: no losing trade)."""
    if value is None:
        return "∞" if metric.key == "profit_factor" else "—"
    if metric.kind == "money":
        return f"{float(value):,.2f}"
    if metric.kind == "count":
        return f"{int(value):,}"
    if metric.kind == "pct":
        return f"{float(value):.2f} %"
    return f"{float(value):.2f}" if metric.kind == "ratio" else f"{float(value):.1f}"


def metric_rows(metrics: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per :data:`METRICS` entry: ``key``, ``label``, ``text``."""
    return [
        {"key": m.key, "label": m.label, "text": metric_text(m, metrics.get(m.key))}
        for m in METRICS
    ]


def thin(n: int, *series: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """The indices (sorted) of the points a chart draws out of ``n``: every one up to
    :data:`MAX_POINTS`; beyond, the first and last, each of ``keep`` and, in each of a run of
    equal stretches, the lowest and highest point of every one of ``series`` (so a spike or
    the deepest drawdown is never dropped).

    >>> thin(3, np.array([1.0, 2.0, 3.0])).tolist()
    [0, 1, 2]
    """
    if n <= MAX_POINTS:
        return np.arange(n)
    stretches = max(1, (MAX_POINTS - (0 if keep is None else len(keep))) // (2 * len(series)))
    edges = np.linspace(0, n, stretches + 1).astype(int)
    chosen = [np.array([0, n - 1]), np.empty(0, int) if keep is None else keep]
    for values in series:
        for a, b in itertools.pairwise(edges.tolist()):
            if b > a:
                part = values[a:b]
                chosen.append(np.array([a + int(np.argmin(part)), a + int(np.argmax(part))]))
    return np.unique(np.concatenate(chosen).astype(int))


def _list(values: np.ndarray) -> list[float | None]:
    """``values`` for JSON: NaN (no point) as None."""
    return [None if math.isnan(x) else x for x in values.tolist()]


def equity_chart(equity: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
    """``{"t", "equity", "drawdown_pct"}`` of a document's ``[[time_ms, equity], ...]``,
    thinned (:func:`thin`) to the extremes of both beyond :data:`MAX_POINTS`."""
    times = np.array([int(p[0]) for p in equity], dtype=np.int64)
    values = np.array([float(p[1]) for p in equity], dtype=float)
    peak = np.maximum.accumulate(values) if len(values) else values
    drawdown = 100.0 * (np.divide(values, peak, out=np.ones_like(values), where=peak > 0) - 1.0)
    shown = thin(len(values), values, drawdown)
    return {
        "t": (times[shown] / 1000).tolist(),
        "equity": values[shown].tolist(),
        "drawdown_pct": drawdown[shown].tolist(),
    }


def price_chart(
    symbol: str, closes: Sequence[Sequence[Any]], trades: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """``symbol``'s closes with its trades' markers: ``{"symbol", "t", "close",
    "long_entry", "short_entry", "exit"}``, each marker series null but at the bar each fill
    falls in (the last bar opened at or before its time); thinned (:func:`thin`) beyond
    :data:`MAX_POINTS` to the closes' extremes and every bar with a marker."""
    times = np.array([int(c[0]) for c in closes], dtype=np.int64)
    close = np.array([float(c[1]) for c in closes], dtype=float)
    marks = {name: np.full(len(times), np.nan) for name in ("long_entry", "short_entry", "exit")}
    for t in trades:
        if t["symbol"] != symbol:
            continue
        for series, time, price in (
            (f"{t['side']}_entry", t["entry_time"], t["entry_price"]),
            ("exit", t["exit_time"], t["exit_price"]),
        ):
            k = int(np.searchsorted(times, int(time), side="right")) - 1
            if 0 <= k < len(times):
                marks[series][k] = float(price)
    marked = np.flatnonzero(~np.isnan(np.vstack(list(marks.values()))).all(axis=0))
    shown = thin(len(times), close, keep=marked)
    return {
        "symbol": symbol,
        "t": (times[shown] / 1000).tolist(),
        "close": close[shown].tolist(),
        **{name: _list(values[shown]) for name, values in marks.items()},
    }


def result_view(result: Mapping[str, Any], *, trades_shown: int | None = None) -> dict[str, Any]:
    """What a backtest's result view shows of its ``result``, as JSON values: ``header``,
    ``trades`` (as the document has them; the first ``trades_shown`` of them when given,
    ``trades_total`` saying how many there are), ``rejections``, ``currency``,
    ``chart_symbols`` (one price chart each), ``chart_json`` (the data the charts script
    draws, ``{"equity": equity_chart, "prices": [price_chart, ...]}``, as JSON text safe in an
    HTML ``<script>``, NaN as null: written once, not at every showing) and ``equity`` (the
    thinned equity curve again, ``{"t", "equity"}``, for :func:`compare_context`)."""
    trades = result.get("trades", [])
    closes: Mapping[str, Any] = result.get("closes", {})
    equity = equity_chart(result.get("equity", []))
    chart = {"equity": equity, "prices": [price_chart(s, c, trades) for s, c in closes.items()]}
    return {
        "header": result.get("header", {}),
        "trades": list(trades[:trades_shown]),
        "trades_total": len(trades),
        "rejections": result.get("rejections", {"count": 0, "first": []}),
        "currency": result.get("units", {}).get("currency", ""),
        "chart_symbols": list(closes),
        "chart_json": str(htmlsafe_json_dumps(json_safe(chart))),
        "equity": {"t": equity["t"], "equity": equity["equity"]},
    }


def _shown(view: Mapping[str, Any]) -> dict[str, Any]:
    """A :func:`result_view` for the template: its ``chart_json`` marked safe (written by
    ``htmlsafe_json_dumps``: ``<``, ``>``, ``&`` and ``'`` escaped)."""
    return dict(view) | {"chart_json": Markup(view["chart_json"])}


def result_context(
    metrics: Mapping[str, Any], result: Mapping[str, Any], *, trades_shown: int | None = None
) -> dict[str, Any]:
    """What a backtest's result view shows: the ``metrics`` rows and the
    :func:`result_view` of ``result``."""
    view = result_view(result, trades_shown=trades_shown)
    return {"metrics": metric_rows(metrics)} | _shown(view)


def stored_view(result: Mapping[str, Any]) -> dict[str, Any]:
    """The view a backtest job stores with a done backtest
    (:data:`service_layer.backtest_jobs.Summarize`): its :func:`result_view` with the first
    :data:`TRADES_SHOWN` trades, a few hundred kB however long the backtest."""
    return result_view(result, trades_shown=TRADES_SHOWN)


def record_context(record: BacktestRecord) -> dict[str, Any]:
    """A stored backtest's view: ``record`` and, once done, its metrics rows and its stored
    view (:func:`stored_view`; built from its result when it has none)."""
    context: dict[str, Any] = {"record": record}
    if record.status != "done" or record.metrics is None:
        return context
    view = record.view
    if view is None and record.result is not None:
        view = stored_view(record.result)
    if view is not None:
        context |= {"metrics": metric_rows(record.metrics)} | _shown(view)
    return context


def _growth(record: BacktestRecord) -> tuple[np.ndarray, np.ndarray]:
    """The record's equity curve as its view has it (thinned; built from its result when it
    has no view): times (s) and the return in percent of its starting equity."""
    if record.view is not None:
        curve = record.view["equity"]
    else:
        curve = equity_chart((record.result or {}).get("equity", []))
    times, equity = np.array(curve["t"], dtype=float), np.array(curve["equity"], dtype=float)
    start = float((record.metrics or {}).get("start_equity") or 0)
    return times, 100.0 * (equity / start - 1.0) if start else np.zeros_like(equity)


def _at(every: np.ndarray, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` at ``times`` read at ``every`` (sorted): linearly between two points (as the
    chart draws them), NaN outside ``times``' span."""
    if not len(times):
        return np.full(len(every), math.nan)
    inside = (every >= times[0]) & (every <= times[-1])
    return np.where(inside, np.interp(every, times, values), math.nan)


def compare_context(records: Sequence[BacktestRecord]) -> dict[str, Any]:
    """Backtests side by side: ``records``, ``rows`` (label and one text per record for each
    of :data:`METRICS`) and ``chart`` (``{"t", "series": [{"label", "values"}]}``: each
    equity curve of the views (thinned to its extremes: :func:`equity_chart`) as its return in
    percent at the union of their times, read between two of its points where it has none,
    null outside its period; thinned by :func:`thin` to every curve's extremes)."""
    curves = [_growth(r) for r in records]
    every = np.unique(np.concatenate([t for t, _ in curves])) if curves else np.empty(0)
    values = [_at(every, t, v) for t, v in curves]
    shown = thin(len(every), *(np.nan_to_num(v) for v in values))
    times = every[shown].tolist()
    return {
        "records": records,
        "rows": [
            {
                "key": m.key,
                "label": m.label,
                "texts": [metric_text(m, (r.metrics or {}).get(m.key)) for r in records],
            }
            for m in METRICS
        ],
        "chart": {
            "t": times,
            "series": [
                {"label": f"{r.strategy} {r.id[:6]}", "values": _list(v[shown])}
                for r, v in zip(records, values, strict=True)
            ],
        },
    }


_LISTED_METRICS = {"ret": METRICS[0], "drawdown": METRICS[2], "sharpe": METRICS[3],
                   "trades": METRICS[7]}  # fmt: skip
"""The metrics a listed backtest shows, by the list's column."""


def list_rows(records: Sequence[BacktestRecord]) -> list[dict[str, Any]]:
    """One row per listed backtest: its fields and the texts of the :data:`_LISTED_METRICS`
    (empty until done)."""
    rows = []
    for r in records:
        texts = {
            column: metric_text(m, r.metrics.get(m.key)) if r.metrics is not None else ""
            for column, m in _LISTED_METRICS.items()
        }
        rows.append({
            "id": r.id, "status": r.status, "error": r.error, "strategy": r.strategy,
            "symbols": r.symbols, "timeframe": r.timeframe, "created_ms": r.created_ms, **texts,
        })  # fmt: skip
    return rows


def strategy_params(strategy: str) -> list[dict[str, Any]]:
    """The parameters the form offers for ``strategy`` (none for an unknown one): ``name``,
    ``type``, ``default`` and ``meaning``."""
    cls = STRATEGIES.get(strategy)
    if cls is None:
        return []
    return [
        {"name": p.name, "type": p.type, "default": p.default, "meaning": p.meaning}
        for p in param_specs(cls.Params)
    ]


def form_context(
    symbols: Sequence[str],
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    *,
    done: str | None = None,
) -> dict[str, Any]:
    """The backtest form: the strategies, timeframes and ``symbols`` (the stored ones) to
    choose from, the ``values`` typed (the parameters as ``params``: name → text), the
    ``errors`` by field (``params.<name>`` next to its parameter) and what was ``done``."""
    chosen = dict(values or {})
    chosen.setdefault("strategy", "sma_cross")
    chosen.setdefault("timeframe", TIMEFRAMES[0])
    chosen.setdefault("symbols", list(symbols[:1]))
    chosen.setdefault("params", {})
    return {
        "strategies": list(STRATEGIES),
        "timeframes": TIMEFRAMES,
        "symbols": list(symbols),
        "params": strategy_params(chosen["strategy"]),
        "values": chosen,
        "errors": dict(errors or {}),
        "done": done,
    }


def chart_timeframe(bars: int, tf_ms: int) -> int:
    """The timeframe (ms) a result's candlestick chart draws ``bars`` bars of ``tf_ms`` at:
    ``tf_ms`` up to :data:`MAX_BARS`; beyond, the shortest of :data:`TIMEFRAMES` that is a
    multiple of it and brings them under :data:`MAX_BARS` (the longest when none does).

    >>> chart_timeframe(5_760, 300_000), chart_timeframe(17_280, 300_000)
    (300000, 900000)
    >>> chart_timeframe(105_120, 300_000)
    14400000
    """
    if bars <= MAX_BARS:
        return tf_ms
    longer = [timeframe_ms(tf) for tf in TIMEFRAMES]
    longer = [ms for ms in longer if ms > tf_ms and ms % tf_ms == 0]
    fitting = [ms for ms in longer if bars * tf_ms // ms <= MAX_BARS]
    return fitting[0] if fitting else max(longer, default=tf_ms)


def _places(price: Any) -> int:
    """Decimals written in ``price`` (a decimal string at the instrument's tick)."""
    text = str(price)
    return len(text) - text.index(".") - 1 if "." in text else 0


def backtest_markers(
    trades: Sequence[Mapping[str, Any]], symbol: str, open_times: np.ndarray, tf_ms: int
) -> list[dict[str, Any]]:
    """An ``entry`` and an ``exit`` marker per trade of ``symbol`` among a result's ``trades``
    (the document's), each on the bar holding its fill among those opening at ``open_times``
    (ms UTC, increasing, ``tf_ms`` long; a fill at a bar's close is on that bar): a fill before
    the first bar's open or after the last one's close has none. Oldest first, as
    :func:`web.chart_views.trade_markers` makes them: ``{"time": s (the bar's open), "at": ms
    (the fill), "price", "side" (the fill's: ``buy``, ``sell``), "kind", "trade" (its number in
    the result, from 1), "direction" (``long``, ``short``)}``, an exit's with its ``reason``
    and net ``pnl`` (quote currency, a decimal string)."""
    if not len(open_times):
        return []
    first, close = int(open_times[0]), int(open_times[-1]) + tf_ms
    markers = []
    for number, t in enumerate(trades, start=1):
        if t["symbol"] != symbol:
            continue
        long = t["side"] == "long"
        common = {"trade": number, "direction": t["side"]}
        for kind, at, price, buy, extra in (
            ("entry", int(t["entry_time"]), t["entry_price"], long, {}),
            ("exit", int(t["exit_time"]), t["exit_price"], not long,
             {"reason": t["exit_reason"], "pnl": t["pnl"]}),
        ):  # fmt: skip
            if not first <= at <= close:
                continue
            k = min(int(np.searchsorted(open_times, at, side="right")) - 1, len(open_times) - 1)
            markers.append({
                "time": int(open_times[k]) // 1000, "at": at, "price": float(price),
                "side": "buy" if buy else "sell", "kind": kind,
            } | common | extra)  # fmt: skip
    return sorted(markers, key=lambda m: (m["time"], m["at"]))


def candle_chart(
    symbol: str, candles: Candles, timeframe: str, trades: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The candlestick chart of ``symbol`` in a result: its ``candles`` (the stored bars the
    backtest ran on, at its ``timeframe``; resampled when more than :data:`MAX_BARS`:
    :func:`chart_timeframe`) with its ``trades``' markers (:func:`backtest_markers`).

    ``{"symbol", "timeframe" (drawn), "backtest_timeframe", "tf_s", "precision" (decimals of
    the trades' prices; 2 without a trade), "bars" (:func:`web.chart_views.bars_json`: time in
    seconds UTC), "markers", "trades" (the trades of ``symbol``), "first_time", "last_time"
    (first and last bar's open, ms UTC; None without bars)}``."""
    tf_ms = timeframe_ms(timeframe)
    drawn_ms = chart_timeframe(len(candles), tf_ms)
    bars = candles if drawn_ms == tf_ms else resample(candles, tf_ms, drawn_ms)
    names = {timeframe_ms(tf): tf for tf in TIMEFRAMES} | {tf_ms: timeframe}
    own = [t for t in trades if t["symbol"] == symbol]
    prices = [p for t in own for p in (t["entry_price"], t["exit_price"])]
    times = bars.open_time
    return {
        "symbol": symbol,
        "timeframe": names[drawn_ms],
        "backtest_timeframe": timeframe,
        "tf_s": drawn_ms // 1000,
        "precision": max((_places(p) for p in prices), default=2),
        "bars": bars_json(bars),
        "markers": backtest_markers(trades, symbol, times, drawn_ms),
        "trades": len(own),
        "first_time": int(times[0]) if len(times) else None,
        "last_time": int(times[-1]) if len(times) else None,
    }
