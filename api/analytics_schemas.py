"""Response bodies of the analytics routes (``/api/v1/analytics/...``): performance attribution.

Money is a decimal string at the quote asset's precision (:mod:`api.numbers`); rates are
fractions.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from api.numbers import Numbers
from api.schemas import DecimalString
from domain.attribution import AttributionGroup, Dimension
from domain.model import ZERO
from domain.trade_history import TradeQuery


class AttributionGroupOut(BaseModel):
    """The closed trades of one group: ``pnl`` net of ``fees``; ``win_rate`` = wins / trades
    (a trade with PnL 0 is neither a win nor a loss); ``profit_factor`` = gross profit /
    |gross loss|, null without a losing trade; ``average_win`` (> 0) and ``average_loss``
    (< 0), null without a win (loss)."""

    key: str = Field(
        description="The strategy, model id, symbol, regime, exit reason, hour (00-23, UTC, of "
        "the entry) or weekday (Mon-Sun); 'none' when not known or not involved."
    )
    trades: int
    wins: int
    losses: int
    win_rate: float
    pnl: DecimalString
    fees: DecimalString
    gross_profit: DecimalString
    gross_loss: DecimalString
    profit_factor: float | None
    average_win: DecimalString | None
    average_loss: DecimalString | None


class AttributionOut(BaseModel):
    """Closed trades' performance broken down ``by`` one dimension, with the totals over all
    of them (every trade is in exactly one group); money in ``currency``."""

    by: Dimension
    currency: str
    trades: int
    pnl: DecimalString
    groups: list[AttributionGroupOut]


def attribution_out(
    by: Dimension, groups: Sequence[AttributionGroup], n: Numbers, query: TradeQuery
) -> AttributionOut:
    """The attribution ``groups`` of the trades of ``query`` as the response body."""
    pnl = sum((g.stats.pnl for g in groups), ZERO)
    return AttributionOut(
        by=by,
        currency=n.currency(query.symbol) if query.symbol else n.money_currency,
        trades=sum(g.stats.trades for g in groups),
        pnl=n.money(pnl),
        groups=[
            AttributionGroupOut(
                key=g.key,
                trades=g.stats.trades,
                wins=g.stats.wins,
                losses=g.stats.losses,
                win_rate=g.stats.win_rate,
                pnl=n.money(g.stats.pnl),
                fees=n.money(g.stats.fees),
                gross_profit=n.money(g.stats.gross_profit),
                gross_loss=n.money(g.stats.gross_loss),
                profit_factor=g.profit_factor,
                average_win=n.money(g.stats.average_win),
                average_loss=n.money(g.stats.average_loss),
            )
            for g in groups
        ],
    )
