"""The kernel's own book: orders, positions and cash, built only from execution events.

Whatever the venue (simulated or real), the engine learns what happened through
:class:`~domain.orders.ExecutionEvent` s and applies them here. A duplicated fill (same fill id)
is applied once; an event that the order's state does not allow (a late acknowledgement of a
filled order, a fill past the order's quantity) is refused and reported, never applied; so
positions always equal the sum of the applied fills and final states never regress.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from domain.account import MONEY_QUANTUM, Account
from domain.funding import FundingPayment
from domain.model import (
    ExitReason,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Trade,
    fast_constructor,
)
from domain.orders import ExecutionEvent, IllegalTransition, apply_event, exit_reason
from domain.orders import ExecutionEventKind as K

_RECENT = 50_000
"""How many final orders and fill ids the ledger remembers to refuse late or repeated events."""


@dataclass(slots=True)
class LedgerChanges:
    """What applying events changed since the last :meth:`Ledger.drain`: orders in their new
    state (in the order they changed), applied fills, closed trades, positions after each fill
    (qty 0 when closed), funding payments booked and refused events with the reason."""

    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    fundings: list[FundingPayment] = field(default_factory=list)


class Ledger:
    """Orders by client id, and the :class:`~domain.account.Account` they moved.

    Parameters
    ----------
    cash:
        Wallet balance in quote currency at the start.
    positions:
        Open positions to start from (a restored run).
    orders:
        Non-final orders to start from (a restored run).
    money:
        The quote asset's money quantum (``1e-8`` for USDT).
    fill_ids:
        Ids of fills already applied to ``orders`` (a restored run's stored fills of its
        partially filled orders): a venue that sends one again after a restart is refused.
    """

    def __init__(
        self,
        cash: Decimal,
        positions: Iterable[Position] = (),
        orders: Iterable[Order] = (),
        money: Decimal = MONEY_QUANTUM,
        fill_ids: Iterable[str] = (),
    ) -> None:
        self.account = Account(cash, {p.symbol: p for p in positions if p.qty != 0}, money=money)
        self._open: dict[str, dict[str, Order]] = {}
        self._orders: dict[str, Order] = {}
        self._final: OrderedDict[str, Order] = OrderedDict()
        self._fill_ids: OrderedDict[str, None] = OrderedDict.fromkeys(fill_ids)
        self._changes = LedgerChanges()
        self._open_view = _OpenBySymbol(self._open)
        for order in orders:
            self._keep(order)

    # -- reads ------------------------------------------------------------------------------
    def get(self, order_id: str) -> Order | None:
        """The order with client id ``order_id`` (open or recently final), or None."""
        return self._orders.get(order_id) or self._final.get(order_id)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Non-final orders (all symbols or one), oldest first."""
        if symbol is not None:
            return list(self._open.get(symbol, {}).values())
        return [o for book in self._open.values() for o in book.values()]

    def open_by_symbol(self) -> Mapping[str, tuple[Order, ...]]:
        """Non-final orders grouped by symbol (oldest first): a live, read-only view."""
        return self._open_view

    def has_open(self, symbol: str, order_type: OrderType) -> bool:
        """True when ``symbol`` has a non-final order of ``order_type``."""
        return any(o.type is order_type for o in self._open.get(symbol, {}).values())

    def position(self, symbol: str) -> Position:
        """Net position in ``symbol`` (flat when none)."""
        return self.account.position(symbol)

    @property
    def cash(self) -> Decimal:
        """Wallet balance in quote currency."""
        return self.account.cash

    # -- writes -----------------------------------------------------------------------------
    def add(self, order: Order) -> None:
        """Record a new order (``pending_new``) before it is sent.

        Raises
        ------
        ValueError
            When an order with that client id is already known.
        """
        if self.get(order.id) is not None:
            raise ValueError(f"order {order.id} is already known")
        self._keep(order)
        self._changes.orders.append(order)

    def apply(self, event: ExecutionEvent) -> Order | None:
        """Apply one execution event; returns the order's new state, or None when the event
        was refused (unknown order, illegal transition, repeated fill: the reason is recorded
        in the changes' ``refused``) or names no order (a funding payment, booked to the
        account: cash and ``funding_paid``).

        A ``liquidation`` event records the venue's own order (acknowledged); its fill follows
        as a ``fill`` event and closes the trade with exit reason ``liquidation``.
        """
        if event.kind is K.FUNDING:
            payment = event.funding
            assert payment is not None
            self.account.pay_funding(payment.amount)
            self._changes.fundings.append(payment)
            return None
        if event.kind is K.LIQUIDATION:
            return self._venue_order(event)
        order = self._orders.get(event.order_id)
        if order is None:
            final = self._final.get(event.order_id)
            why = f"order {event.order_id} is {final.status}" if final else "unknown order"
            self._changes.refused.append(f"{event.kind} refused: {why}")
            return None
        fill = event.fill
        if fill is not None and fill.id in self._fill_ids:
            self._changes.refused.append(f"fill {fill.id} of order {order.id} already applied")
            return None
        try:
            updated = apply_event(order, event)
        except IllegalTransition as exc:
            self._changes.refused.append(exc.message)
            return None
        if fill is not None:
            self._book(fill, order)
        self._keep(updated)
        self._changes.orders.append(updated)
        return updated

    def apply_all(self, events: Iterable[ExecutionEvent]) -> None:
        """Apply ``events`` in order."""
        for event in events:
            self.apply(event)

    def drain(self) -> LedgerChanges:
        """The changes since the last call."""
        changes, self._changes = self._changes, LedgerChanges()
        return changes

    def _venue_order(self, event: ExecutionEvent) -> Order | None:
        """Record the order a venue opened itself (a liquidation), acknowledged."""
        order = event.order
        assert order is not None
        if self.get(order.id) is not None:
            self._changes.refused.append(f"{event.kind} refused: order {order.id} is known")
            return None
        acknowledged = order.with_state(
            OrderStatus.NEW, order.filled_qty, order.avg_fill_price, event.time, None,
            event.venue_order_id or order.venue_order_id,
        )  # fmt: skip
        self._keep(acknowledged)
        self._changes.orders.append(acknowledged)
        return acknowledged

    def _book(self, fill: Fill, order: Order) -> None:
        self._fill_ids[fill.id] = None
        if len(self._fill_ids) > _RECENT:
            self._fill_ids.popitem(last=False)
        outcome = self.account.apply(fill, lambda: fill.id)
        self._changes.fills.append(fill.with_realized_pnl(outcome.realized))
        trade = outcome.trade
        if trade is not None:
            reason = exit_reason(order)
            if reason is not ExitReason.SIGNAL:
                trade = _with_reason(trade, reason)
            self._changes.trades.append(trade)
        self._changes.positions.append(outcome.position)

    def _keep(self, order: Order) -> None:
        book = self._open.setdefault(order.symbol, {})
        if order.status.is_final:
            self._orders.pop(order.id, None)
            book.pop(order.id, None)
            self._final[order.id] = order
            if len(self._final) > _RECENT:
                self._final.popitem(last=False)
        else:
            self._orders[order.id] = order
            book[order.id] = order


def _with_reason(trade: Trade, reason: ExitReason) -> Trade:
    """``trade`` closed for ``reason`` (a valid trade's copy: built unchecked)."""
    return _trade(
        trade.id, trade.symbol, trade.side, trade.qty, trade.entry_time, trade.entry_price,
        trade.exit_time, trade.exit_price, trade.pnl, trade.fees, reason,
    )  # fmt: skip


_trade = fast_constructor(Trade, validate=False)


class _OpenBySymbol(Mapping[str, tuple[Order, ...]]):
    """A live, read-only view of the ledger's open orders: symbol → its orders, oldest first
    (symbols with none are absent)."""

    __slots__ = ("_books",)

    def __init__(self, books: dict[str, dict[str, Order]]) -> None:
        self._books = books

    def __getitem__(self, symbol: str) -> tuple[Order, ...]:
        book = self._books.get(symbol)
        if not book:
            raise KeyError(symbol)
        return tuple(book.values())

    def get(self, symbol: str, default: object = None) -> object:  # type: ignore[override]
        """The orders of ``symbol``, or ``default`` when it has none."""
        book = self._books.get(symbol)
        return tuple(book.values()) if book else default

    def __iter__(self) -> Iterator[str]:
        return (symbol for symbol, book in self._books.items() if book)

    def __len__(self) -> int:
        return sum(1 for book in self._books.values() if book)

    def __repr__(self) -> str:
        return repr(dict(self))
