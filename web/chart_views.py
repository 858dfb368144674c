"""The price chart page's views (issue 10, "Price chart"): what ``/ui/chart/data`` returns.

Pure builders turn the service's bars, trades, fills, positions and orders into the chart's JSON;
:func:`chart_context` reads them from a :class:`~service_layer.trading.TradingService` and calls
them. Bars are :meth:`TradingService.candles` (the engine's window, higher timeframes resampled
by :func:`domain.resample.resample`), the same as ``GET /api/v1/candles``; the volume profile's
levels are :func:`domain.volume_profile.profile_at` of the engine's bars at the last close, the
same as ``GET /api/v1/analysis/{symbol}``. Times are int ms UTC, except each bar's and marker's
``time``, which is in seconds UTC (what the chart library takes); prices quote currency (float64
for drawing); volume base asset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from domain.candles import Candles
from domain.model import Fill, Order, OrderStatus, OrderType, Side, Trade
from domain.timeframes import timeframe_ms
from domain.volume_profile import DEFAULT_PARAMS, VolumeProfile, profile_at
from service_layer.trading import PositionView, TradingService

TIMEFRAMES = ("5m", "15m", "1h", "4h")
"""The timeframes the chart offers; higher ones are resampled from the engine's bars."""
HISTORY_MS = 14 * 86_400_000
"""History the chart loads: two weeks (4,032 5m bars, 84 4h bars) where the engine keeps it."""
MAX_TRADES = 1_000
"""Most recent closed trades marked on the chart."""
MAX_ORDERS = 100
WORKING = frozenset(s for s in OrderStatus if s.is_working)
LINE_KINDS = {
    OrderType.STOP: "stop",
    OrderType.TRAILING_STOP: "stop",
    OrderType.TAKE_PROFIT: "take_profit",
}
"""Working orders drawn as a position's lines, by type."""
LINE_TITLES = {"entry": "Entry", "stop": "Stop", "take_profit": "TP", "liquidation": "Liq."}


def history_bars(tf_ms: int) -> int:
    """Bars of ``tf_ms`` (ms) in :data:`HISTORY_MS`.

    >>> history_bars(300_000), history_bars(14_400_000)
    (4032, 84)
    """
    return max(1, HISTORY_MS // tf_ms)


def tick_places(tick: Decimal) -> int:
    """Decimals of the tick size ``tick`` (what the chart shows prices with).

    >>> tick_places(Decimal("0.10")), tick_places(Decimal("0.001")), tick_places(Decimal(1))
    (1, 3, 0)
    """
    exponent = tick.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 2


def bars_json(candles: Candles) -> list[dict[str, float | int]]:
    """``candles`` as the chart's bars, oldest first: ``{"time": s, "open", "high", "low",
    "close", "volume"}``, ``time`` the bar's open in seconds UTC."""
    columns = zip(
        (candles.open_time // 1000).tolist(),
        candles.open.tolist(),
        candles.high.tolist(),
        candles.low.tolist(),
        candles.close.tolist(),
        candles.volume.tolist(),
        strict=True,
    )
    names = ("time", "open", "high", "low", "close", "volume")
    return [dict(zip(names, row, strict=True)) for row in columns]


def _marker(
    at: int, price: Decimal, side: Side, kind: str, tf_ms: int, **extra: Any
) -> dict[str, Any]:
    return {
        "time": at // tf_ms * tf_ms // 1000,
        "at": at,
        "price": float(price),
        "side": side.value,
        "kind": kind,
    } | extra


def trade_markers(
    trades: Iterable[Trade], tf_ms: int, first_ms: int, last_ms: int
) -> list[dict[str, Any]]:
    """An ``entry`` and an ``exit`` marker per trade of ``trades``, those whose bar opens from
    ``first_ms`` to ``last_ms`` (ms UTC, the bars shown), oldest first.

    Each is ``{"time": s, "at": ms, "price", "side", "kind", "trade", "direction"}`` (and the
    exit's ``reason`` and net ``pnl``): ``at`` the fill time, ``time`` the open of the
    ``tf_ms`` bar holding it (a marker sits on a bar), ``side`` the fill's (an entry's is the
    trade's side, an exit's the other), ``price`` the trade's average entry or exit price.
    """
    markers = []
    for t in trades:
        common = {"trade": t.id, "direction": t.direction.value}
        markers.append(_marker(t.entry_time, t.entry_price, t.side, "entry", tf_ms, **common))
        exit_side = Side.SELL if t.side is Side.BUY else Side.BUY
        extra = common | {"reason": t.exit_reason.value, "pnl": str(t.pnl)}
        markers.append(_marker(t.exit_time, t.exit_price, exit_side, "exit", tf_ms, **extra))
    shown = [m for m in markers if first_ms // 1000 <= m["time"] <= last_ms // 1000]
    return sorted(shown, key=lambda m: (m["time"], m["at"]))


def open_markers(
    view: PositionView | None, fills: Iterable[Fill], tf_ms: int, first_ms: int, last_ms: int
) -> list[dict[str, Any]]:
    """``entry`` markers of the open position ``view``: its fills on its side since it opened,
    those whose bar opens from ``first_ms`` to ``last_ms``, oldest first (``trade`` None,
    ``direction`` the position's)."""
    if view is None or view.position.qty == 0 or view.position.opened_time is None:
        return []
    position = view.position
    side = Side.BUY if position.qty > 0 else Side.SELL
    common = {"trade": None, "direction": position.direction.value}
    markers = [
        _marker(f.time, f.price, side, "entry", tf_ms, **common)
        for f in fills
        if f.side is side and f.time >= position.opened_time
    ]
    shown = [m for m in markers if first_ms // 1000 <= m["time"] <= last_ms // 1000]
    return sorted(shown, key=lambda m: (m["time"], m["at"]))


def position_lines(view: PositionView | None, orders: Sequence[Order]) -> list[dict[str, Any]]:
    """The horizontal lines of the open position ``view``: ``entry`` (its average entry),
    ``liquidation`` (when it has one) and one per working stop, trailing stop (``stop``) or
    take-profit (``take_profit``) of ``orders`` on the side that closes it.

    Each is ``{"kind", "title", "price", "order"}`` (``order`` the order's id, None for the
    entry and liquidation). None or a flat position: no line.
    """
    if view is None or view.position.qty == 0:
        return []
    position = view.position
    closing = Side.SELL if position.qty > 0 else Side.BUY
    lines = [_line("entry", position.entry_price)]
    margin = view.margin
    if margin is not None and margin.liquidation_price is not None:
        lines.append(_line("liquidation", margin.liquidation_price))
    for order in orders:
        kind = LINE_KINDS.get(order.type)
        working = order.status in WORKING and order.symbol == position.symbol
        if kind and working and order.side is closing and order.stop_price is not None:
            lines.append(_line(kind, order.stop_price, order.id))
    return lines


def _line(kind: str, price: Decimal, order: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "title": LINE_TITLES[kind], "price": float(price), "order": order}


def levels_json(profile: VolumeProfile | None) -> dict[str, float] | None:
    """The volume profile's point of control and value area bounds, ``{"poc", "vah", "val"}``
    (quote currency), None without a profile."""
    if profile is None:
        return None
    return {"poc": profile.poc, "vah": profile.vah, "val": profile.val}


def position_json(view: PositionView | None) -> dict[str, str | None] | None:
    """The chart's caption of the open position: ``side``, ``qty``, ``entry``, ``mark`` and
    ``unrealized`` (decimal strings), None when flat."""
    if view is None or view.position.qty == 0:
        return None
    p = view.position
    mark = None if view.mark_price is None else str(view.mark_price)
    return {
        "side": p.direction.value,
        "qty": str(abs(p.qty)),
        "entry": str(p.entry_price),
        "mark": mark,
        "unrealized": str(view.unrealized_pnl),
    }


# -- readers of the service ---------------------------------------------------------------------


def timeframes_of(service: TradingService) -> list[str]:
    """Those of :data:`TIMEFRAMES` that are whole multiples of the engine's bars."""
    base = service.engine.tf_ms
    return [tf for tf in TIMEFRAMES if timeframe_ms(tf) % base == 0]


def volume_profile_state(service: TradingService, symbol: str) -> str | None:
    """The volume profile's state in the strategy's pipeline for ``symbol``: ``on``, ``off``
    or ``failed``; None for a strategy without one (or before its first bar)."""
    for view in service.pipeline_view():
        if view.symbol == symbol:
            return view.features.get("volume_profile")
    return None


def levels_context(service: TradingService, symbol: str) -> dict[str, Any]:
    """``{"levels", "profile"}``: the volume profile at the last close of the engine's bars of
    ``symbol`` when the strategy's volume profile is on there (:func:`levels_json`; None
    otherwise or when too few bars), and the feature's state (:func:`volume_profile_state`)."""
    state = volume_profile_state(service, symbol)
    candles = service.recent_candles(symbol)
    if state != "on" or not len(candles):
        return {"levels": None, "profile": state}
    close = int(candles.open_time[-1]) + service.engine.tf_ms
    return {"levels": levels_json(profile_at(candles, close, DEFAULT_PARAMS)), "profile": state}


def _first_shown(service: TradingService, symbol: str, tf_ms: int, last_ms: int) -> int:
    """Open time (ms UTC) of the first bar a full load of the chart shows: the history's
    start, or the first whole ``tf_ms`` bucket of the engine's window when that is later."""
    window = service.recent_candles(symbol).open_time
    first_bucket = -(-int(window[0]) // tf_ms) * tf_ms
    return max(first_bucket, last_ms - (history_bars(tf_ms) - 1) * tf_ms)


def chart_context(
    service: TradingService, symbol: str, timeframe: str, since: int | None = None
) -> dict[str, Any]:
    """The chart of ``symbol`` (a venue symbol) on ``timeframe``, as JSON.

    ``bars`` are the closed bars (:func:`bars_json`) of the last :data:`HISTORY_MS`, or with
    ``since`` (ms UTC) those opening at or after it (the client's last bar and newer);
    ``markers`` (:func:`trade_markers` of the run's latest :data:`MAX_TRADES` trades, then
    :func:`open_markers`), ``lines`` (:func:`position_lines`), ``levels`` and ``profile``
    (:func:`levels_context`) and ``position`` (:func:`position_json`) are always whole, for
    the bars from ``first_time`` to ``last_time`` (ms UTC, None without bars).

    Raises
    ------
    UnknownSymbol
        When the run does not trade ``symbol``.
    ConfigError
        (``field="timeframe"``) When ``timeframe`` is not a multiple of the engine's bars.
    """
    tf_ms = timeframe_ms(timeframe)
    page = service.candles(symbol, timeframe, history_bars(tf_ms), start=since).candles
    latest = page if len(page) else service.candles(symbol, timeframe, 1).candles
    views = [v for v in service.positions() if v.position.symbol == symbol]
    view = views[0] if views else None
    orders = service.orders(symbol=symbol, statuses=WORKING, limit=MAX_ORDERS).items
    context: dict[str, Any] = {
        "symbol": symbol,
        "timeframe": timeframe,
        "tf_s": tf_ms // 1000,
        "precision": tick_places(service.engine.instruments[symbol].tick_size),
        "bars": bars_json(page),
        "first_time": None,
        "last_time": None,
        "markers": [],
        "lines": position_lines(view, orders),
        "position": position_json(view),
    } | levels_context(service, symbol)
    if not len(latest):
        return context
    last_ms = int(latest.open_time[-1])
    first_ms = _first_shown(service, symbol, tf_ms, last_ms)
    trades = service.trades(symbol=symbol, start=first_ms, limit=MAX_TRADES).items
    opened = None if view is None else view.position.opened_time
    fills = [] if opened is None else service.fills(symbol=symbol, start=opened).items
    markers = trade_markers(trades, tf_ms, first_ms, last_ms)
    markers += open_markers(view, fills, tf_ms, first_ms, last_ms)
    context["markers"] = sorted(markers, key=lambda m: (m["time"], m["at"]))
    context["first_time"], context["last_time"] = first_ms, last_ms
    return context


def page_context(service: TradingService, symbol: str, timeframe: str) -> dict[str, Any]:
    """The chart page's frame: the traded ``symbols``, the chosen ``symbol`` and
    ``timeframe``, the ``timeframes`` offered, the ``strategy`` and the ``history_days``."""
    status = service.status()
    return {
        "symbols": status.symbols,
        "symbol": symbol,
        "timeframe": timeframe,
        "timeframes": timeframes_of(service),
        "strategy": status.strategy,
        "history_days": HISTORY_MS // 86_400_000,
    }
