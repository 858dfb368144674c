"""Performance attribution (issue 10): closed trades' PnL, count, win rate, profit factor and
average win and loss, broken down by strategy, model, symbol, regime, exit reason, hour of day
or weekday.

What a trade is attributed to comes from what opened it (:class:`TradeEntry`):

* **strategy**: the entry order's tag (:func:`domain.orders.order_origin`): the strategy's name,
  ``api`` for an order placed through the API; :data:`NONE` when the entry order is not found;
* **regime**: the ``regime`` reason of the entry signal (``"regime TRENDING_BULLISH: ..."``,
  :mod:`domain.signal_assembly`): the regime's name, ``off`` when the feature was off; :data:`NONE`
  without an entry signal or a regime reason (a strategy without the adaptive pipeline);
* **model**: the ``ml`` reason of the entry signal that carries a prediction: the model id in
  brackets at the end of its message (:func:`domain.ml.signal_input.with_prediction`), ``ml``
  when it names none; :data:`NONE` when the ML did not act (off, or no model);
* **symbol** and **exit_reason**: the trade's own; **hour** (``"00"`` to ``"23"``) and
  **weekday** (``"Mon"`` to ``"Sun"``): of its entry time, UTC.

The entry signal is the latest signal of the trade's symbol and direction at or before its entry
(a signal on bar *t*'s close fills at the next open, the same instant); a trade opened through
the API has none (its regime and model are :data:`NONE`).

Statistics per group (:class:`domain.report.TradeStats`, money exact in ``Decimal``): a *win* has
PnL > 0, a *loss* PnL < 0 (PnL net of fees); win rate = wins / trades; profit factor = gross
profit / |gross loss| (None without a losing trade; Bailey & López de Prado's and backtesting.py's
definition, there ``inf``); average win and loss as :class:`~domain.report.TradeStats` gives them.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from domain.model import ExitReason, Reason, Trade
from domain.orders import order_origin
from domain.report import TradeStats, trade_stats

NONE = "none"
"""The label of a trade whose strategy, regime or model is not known, or was not involved."""
REGIME_COMPONENT = "regime"
ML_COMPONENT = "ml"
HOURS = tuple(f"{h:02d}" for h in range(24))
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_REGIME = re.compile(r"^regime (\S+):")
_MODEL_ID = re.compile(r"\[([^\[\]\s]+)\]\s*$")


class Dimension(StrEnum):
    """What trades are grouped by."""

    STRATEGY = "strategy"
    MODEL = "model"
    SYMBOL = "symbol"
    REGIME = "regime"
    EXIT_REASON = "exit_reason"
    HOUR = "hour"
    WEEKDAY = "weekday"


FIXED_KEYS: dict[Dimension, tuple[str, ...]] = {
    Dimension.HOUR: HOURS,
    Dimension.WEEKDAY: WEEKDAYS,
    Dimension.EXIT_REASON: tuple(r.value for r in ExitReason),
}
"""The dimensions whose every key is listed, in this order, with or without trades."""
ENTRY_CONTEXT: dict[Dimension, tuple[bool, bool]] = {
    Dimension.STRATEGY: (True, False),
    Dimension.REGIME: (True, True),
    Dimension.MODEL: (True, True),
}
"""Per dimension, whether grouping needs the entry order's tag and the entry signal's reasons
(``(tags, reasons)``; neither when not listed)."""


@dataclass(frozen=True, slots=True)
class TradeEntry:
    """A closed ``trade`` with what opened it: the tag of its entry order (None when not
    found), the ``reasons`` of its entry signal (empty without one) and the account ``equity``
    (quote currency) at the last snapshot before its entry (None before the first)."""

    trade: Trade
    entry_tag: str | None = None
    reasons: tuple[Reason, ...] = ()
    equity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class AttributionGroup:
    """The trades of one ``key`` of a :class:`Dimension` and their statistics."""

    key: str
    stats: TradeStats

    @property
    def profit_factor(self) -> float | None:
        """Gross profit / |gross loss|; None without a losing trade.

        >>> AttributionGroup("x", TradeStats(2, 1, 1, Decimal(1), Decimal(0), Decimal(3),
        ...                                   Decimal(-2))).profit_factor
        1.5
        """
        loss = self.stats.gross_loss
        return None if loss == 0 else float(self.stats.gross_profit / -loss)


def strategy_of(entry: TradeEntry) -> str:
    """The strategy that opened the trade (its entry order's tag), ``api`` for an API order,
    :data:`NONE` when the entry order is unknown."""
    if entry.entry_tag is None:
        return NONE
    origin = order_origin(entry.entry_tag)
    return origin.source if origin.kind == "strategy" and origin.source else origin.kind


def regime_of(reasons: Iterable[Reason]) -> str:
    """The regime a ``regime`` reason names (``"off"`` when the feature was off), else
    :data:`NONE`.

    >>> regime_of([Reason("regime", "regime RANGING: entries allowed, size × 1")])
    'RANGING'
    """
    for reason in reasons:
        if reason.component == REGIME_COMPONENT:
            found = _REGIME.match(reason.message)
            if found is not None:
                return found.group(1)
    return NONE


def model_of(reasons: Iterable[Reason]) -> str:
    """The model id of the ``ml`` reason that carries a prediction (``ml`` when its message
    names no model), else :data:`NONE`.

    >>> model_of([Reason("ml", "up 0.61; kept [trend-BTCUSDT-hgb-1]", {"probability_up": 0.61})])
    'trend-BTCUSDT-hgb-1'
    """
    for reason in reasons:
        if reason.component == ML_COMPONENT and "probability_up" in reason.values:
            found = _MODEL_ID.search(reason.message)
            return ML_COMPONENT if found is None else found.group(1)
    return NONE


def key_of(entry: TradeEntry, by: Dimension) -> str:
    """The group of ``entry`` by ``by`` (rules in the module docstring)."""
    trade = entry.trade
    if by is Dimension.SYMBOL:
        return trade.symbol
    if by is Dimension.EXIT_REASON:
        return trade.exit_reason.value
    if by is Dimension.STRATEGY:
        return strategy_of(entry)
    if by is Dimension.REGIME:
        return NONE if _is_api(entry) else regime_of(entry.reasons)
    if by is Dimension.MODEL:
        return NONE if _is_api(entry) else model_of(entry.reasons)
    moment = datetime.fromtimestamp(trade.entry_time / 1000, UTC)
    return HOURS[moment.hour] if by is Dimension.HOUR else WEEKDAYS[moment.weekday()]


def _is_api(entry: TradeEntry) -> bool:
    return entry.entry_tag is not None and order_origin(entry.entry_tag).kind == "api"


def attribute(entries: Sequence[TradeEntry], by: Dimension) -> list[AttributionGroup]:
    """The statistics of ``entries`` grouped by ``by``.

    Hours, weekdays and exit reasons list every key in their natural order, a key without
    trades with empty statistics; the other dimensions list the keys the trades have, largest
    PnL first (ties by key).

    >>> attribute([], Dimension.WEEKDAY)[0]
    AttributionGroup(key='Mon', stats=TradeStats(trades=0, wins=0, losses=0, pnl=Decimal('0'), \
fees=Decimal('0'), gross_profit=Decimal('0'), gross_loss=Decimal('0')))
    """
    grouped: dict[str, list[Trade]] = {}
    for entry in entries:
        grouped.setdefault(key_of(entry, by), []).append(entry.trade)
    fixed = FIXED_KEYS.get(by)
    if fixed is not None:
        keys = [*fixed, *sorted(set(grouped) - set(fixed))]
        return [AttributionGroup(k, trade_stats(grouped.get(k, ()))) for k in keys]
    groups = [AttributionGroup(k, trade_stats(ts)) for k, ts in grouped.items()]
    groups.sort(key=lambda g: g.key)
    groups.sort(key=lambda g: g.stats.pnl, reverse=True)
    return groups
