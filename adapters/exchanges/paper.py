"""The paper broker: a simulated venue that keeps balances, orders, fills and positions.

Backtest and paper trading use this same object; fills follow :mod:`domain.execution`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal

from domain.account import Account
from domain.candles import Candles
from domain.errors import (
    DuplicateOrder,
    InsufficientMargin,
    InvalidOrder,
    OrderNotCancelable,
    OrderNotFound,
    UnknownSymbol,
)
from domain.execution import (
    Execution,
    FeeSchedule,
    execute_on_bar,
    first_trigger,
    to_decimal,
    trigger_distance,
)
from domain.model import (
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Trade,
)


def sequential_ids(prefix: str) -> Callable[[], str]:
    """An id generator ``prefix1, prefix2, ...`` (deterministic, for backtests and tests)."""
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter)}"


class PaperBroker:
    """Simulated broker implementing the ``Broker`` port.

    Parameters
    ----------
    instruments:
        Trading rules per symbol; orders in other symbols raise ``UnknownSymbol``.
    cash:
        Starting wallet balance in quote currency.
    fees:
        Maker/taker fee rates (fractions of notional).
    slippage_bps:
        Market-order slippage in basis points of the open price.
    max_leverage:
        Orders are rejected (``InsufficientMargin``) when gross notional after the order would
        exceed ``equity × max_leverage``.
    ids:
        Id generator for orders, fills and trades (``sequential_ids`` by default).
    """

    def __init__(
        self,
        *,
        instruments: Mapping[str, Instrument],
        cash: Decimal,
        fees: FeeSchedule | None = None,
        slippage_bps: Decimal = Decimal(2),
        max_leverage: Decimal = Decimal(5),
        ids: Callable[[], str] | None = None,
    ) -> None:
        if cash <= 0:
            raise InvalidOrder(f"starting cash must be > 0, was {cash}", field="cash")
        if slippage_bps < 0:
            raise InvalidOrder(f"slippage_bps must be >= 0, was {slippage_bps}", field="slippage")
        self.instruments = dict(instruments)
        self.account = Account(cash)
        self.fees = fees or FeeSchedule()
        self.slippage_bps = slippage_bps
        self.max_leverage = max_leverage
        self._ids = ids or sequential_ids("")
        self._orders: dict[str, Order] = {}
        self._open: dict[str, dict[str, Order]] = {}
        self._marks: dict[str, Decimal] = {}
        self._trigger_cache: dict[str, tuple[Candles, int, int | None]] = {}
        self._changed: list[Order] = []
        self._fills: list[Fill] = []
        self._trades: list[Trade] = []
        self._positions: list[Position] = []

    # -- state ------------------------------------------------------------------------------
    @property
    def cash(self) -> Decimal:
        """Wallet balance in quote currency."""
        return self.account.cash

    def position(self, symbol: str) -> Position:
        """Net position in ``symbol``."""
        return self.account.position(symbol)

    def positions(self) -> list[Position]:
        """Every open position."""
        return list(self.account.positions.values())

    def get_order(self, order_id: str) -> Order:
        """The order with ``order_id``; raises ``OrderNotFound``."""
        try:
            return self._orders[order_id]
        except KeyError:
            raise OrderNotFound(f"no order with id {order_id!r}", field="id") from None

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders (all symbols or one), oldest first."""
        if symbol is not None:
            return list(self._open.get(symbol, {}).values())
        return [o for book in self._open.values() for o in book.values()]

    def mark(self, symbol: str, price: float) -> None:
        """Record the latest price of ``symbol`` (used for margin checks and equity)."""
        self._marks[symbol] = to_decimal(price)

    @property
    def marks(self) -> Mapping[str, Decimal]:
        """Latest known price per symbol."""
        return self._marks

    def equity(self) -> Decimal:
        """Cash plus unrealized PnL at the latest marks."""
        return self.account.equity(self._marks)

    def restore(self, cash: Decimal, positions: list[Position], orders: list[Order]) -> None:
        """Reload state saved by a previous run (resume after a restart)."""
        self.account = Account(cash, {p.symbol: p for p in positions if p.qty != 0})
        self._orders = {o.id: o for o in orders}
        self._open = {}
        for o in orders:
            if o.is_open:
                self._open.setdefault(o.symbol, {})[o.id] = o

    def next_id(self) -> str:
        """A fresh id from the broker's generator (for orders built by callers)."""
        return self._ids()

    # -- orders -----------------------------------------------------------------------------
    def submit(self, order: Order) -> Order:
        """Validate and accept ``order``.

        Raises
        ------
        UnknownSymbol
            No instrument for the symbol.
        InvalidOrder
            Qty not on the lot step, price not on the tick, notional below the minimum,
            or a reduce-only order that would not reduce.
        DuplicateOrder
            The order id is already used.
        InsufficientMargin
            The order would take gross notional past ``equity × max_leverage``; the order is
            kept as ``rejected``.
        """
        instrument = self.instruments.get(order.symbol)
        if instrument is None:
            raise UnknownSymbol(f"unknown symbol {order.symbol!r}", field="symbol")
        if order.id in self._orders:
            raise DuplicateOrder(f"order id {order.id!r} is already used", field="id")
        self._validate(order, instrument)
        if not order.reduce_only:
            self._check_margin(order)
        self._store(order)
        return order

    def _validate(self, order: Order, instrument: Instrument) -> None:
        if not instrument.on_step(order.qty):
            raise InvalidOrder(
                f"qty must be a multiple of {instrument.step_size}, was {order.qty}", field="qty"
            )
        if instrument.max_qty is not None and order.qty > instrument.max_qty:
            raise InvalidOrder(f"qty must be <= {instrument.max_qty}, was {order.qty}", field="qty")
        for name in ("price", "stop_price"):
            level = getattr(order, name)
            if level is not None and not instrument.on_tick(level):
                raise InvalidOrder(
                    f"{name} must be a multiple of {instrument.tick_size}, was {level}", field=name
                )
        reference = order.price or order.stop_price or self._marks.get(order.symbol)
        if (
            reference is not None
            and not order.reduce_only
            and order.qty * reference < instrument.min_notional
        ):
            raise InvalidOrder(
                f"notional {order.qty * reference} is below the minimum "
                f"{instrument.min_notional} for {order.symbol}",
                field="qty",
            )
        if order.reduce_only:
            held = self.account.position(order.symbol).qty
            if held == 0 or (held > 0) == (order.side.sign > 0) or order.qty > abs(held):
                raise InvalidOrder(
                    f"reduce-only {order.side} {order.qty} would not reduce position {held}",
                    field="reduce_only",
                )

    def _check_margin(self, order: Order) -> None:
        mark = self._marks.get(order.symbol) or order.price or order.stop_price
        if mark is None:
            return
        projected = self.account.position(order.symbol).qty + order.qty * order.side.sign
        for pending in self._open.get(order.symbol, {}).values():
            if pending.type is OrderType.MARKET:
                projected += pending.remaining_qty * pending.side.sign
        gross, equity = self.account.margin_usage(self._marks, order.symbol, projected, mark)
        limit = equity * float(self.max_leverage)
        if gross > limit:
            rejected = replace(
                order,
                status=OrderStatus.REJECTED,
                reject_reason=f"gross notional {gross:.2f} would exceed {limit:.2f}",
            )
            self._orders[order.id] = rejected
            self._changed.append(rejected)
            raise InsufficientMargin(
                f"order {order.id} rejected: gross notional {gross:.2f} would exceed "
                f"equity × max_leverage = {limit:.2f}",
                field="qty",
            )

    def _store(self, order: Order) -> None:
        self._orders[order.id] = order
        if order.is_open:
            self._open.setdefault(order.symbol, {})[order.id] = order
        else:
            self._open.get(order.symbol, {}).pop(order.id, None)
            self._trigger_cache.pop(order.id, None)
        self._changed.append(order)

    def cancel(self, order_id: str, time: int) -> Order:
        """Cancel an open order; raises ``OrderNotFound`` or ``OrderNotCancelable``."""
        order = self.get_order(order_id)
        if not order.is_open:
            raise OrderNotCancelable(f"order {order_id} is already {order.status}", field="id")
        canceled = replace(order, status=OrderStatus.CANCELED, updated_time=time)
        self._store(canceled)
        return canceled

    # -- simulated time ---------------------------------------------------------------------
    def next_trigger(self, symbol: str, candles: Candles, start: int) -> int | None:
        """First bar index ``>= start`` at which an open order of ``symbol`` fills, or None."""
        best: int | None = None
        for order in self._open.get(symbol, {}).values():
            i = self._cached_trigger(order, candles, start)
            if i is not None and (best is None or i < best):
                best = i
        return best

    def _cached_trigger(self, order: Order, candles: Candles, start: int) -> int | None:
        # Keyed on the candles object itself: an id() could be reused by the next batch's view.
        cached = self._trigger_cache.get(order.id)
        if cached is not None and cached[0] is candles and cached[1] <= start:
            hit = cached[2]
            if hit is None or hit >= start:
                return hit
        hit = first_trigger(order, candles, start)
        self._trigger_cache[order.id] = (candles, start, hit)
        return hit

    def execute(self, symbol: str, candles: Candles, i: int) -> list[Fill]:
        """Fill every open order of ``symbol`` that bar ``i`` triggers, nearest the open first."""
        book = self._open.get(symbol)
        if not book:
            return []
        bar_open = float(candles.open[i])
        due = [o for o in book.values() if self._cached_trigger(o, candles, i) == i]
        due.sort(key=lambda o: trigger_distance(o, bar_open))
        time = int(candles.open_time[i])
        fills = []
        for order in due:
            if order.id in book:
                fills.append(self._fill(order, bar_open, time))
        return fills

    def _fill(
        self,
        order: Order,
        bar_open: float,
        time: int,
        ex: Execution | None = None,
        instrument: Instrument | None = None,
    ) -> Fill:
        instrument = instrument or self.instruments[order.symbol]
        qty = order.remaining_qty
        if order.reduce_only:
            qty = min(qty, abs(self.account.position(order.symbol).qty))
        ex = ex or execute_on_bar(order, bar_open, instrument, self.slippage_bps)
        fill = Fill(
            id=self._ids(),
            order_id=order.id,
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=ex.price,
            fee=qty * ex.price * self.fees.rate(ex.liquidity),
            liquidity=ex.liquidity,
            time=time,
        )
        outcome = self.account.apply(fill, self._ids)
        fill = Fill(
            fill.id, order.id, order.symbol, order.side, qty, ex.price, fill.fee,
            ex.liquidity, time, outcome.realized,
        )  # fmt: skip
        self._fills.append(fill)
        if outcome.trade is not None:
            self._trades.append(outcome.trade)
        self._positions.append(outcome.position)
        self._store(_filled(order, order.filled_qty + qty, ex.price, time))
        self._prune_reduce_only(order.symbol, time)
        return fill

    def _prune_reduce_only(self, symbol: str, time: int) -> None:
        """Cancel reduce-only orders that would no longer reduce the position (it went flat, or
        flipped to their side): a protective stop must never open or grow a position."""
        held = self.account.position(symbol).qty
        for order in list(self._open.get(symbol, {}).values()):
            if order.reduce_only and (held == 0 or (held > 0) == (order.side is Side.BUY)):
                self.cancel(order.id, time)

    def close_position(self, symbol: str, price: Decimal, time: int) -> Fill | None:
        """Close ``symbol``'s position at exactly ``price`` (taker fee); None when flat."""
        held = self.account.position(symbol).qty
        if held == 0:
            return None
        order = Order(
            id=self._ids(),
            symbol=symbol,
            side=Side.SELL if held > 0 else Side.BUY,
            type=OrderType.LIMIT,
            qty=abs(held),
            price=price,
            created_time=time,
            reduce_only=True,
            tag="close",
        )
        self._store(order)
        instrument = self.instruments[symbol]
        return self._fill(order, float(price), time, Execution(price, Liquidity.TAKER), instrument)

    def drain_events(self) -> tuple[list[Order], list[Fill], list[Trade], list[Position]]:
        """Orders changed, fills, trades and positions changed since the last call."""
        out = (self._changed, self._fills, self._trades, self._positions)
        self._changed, self._fills, self._trades, self._positions = [], [], [], []
        return out


def _filled(order: Order, filled_qty: Decimal, price: Decimal, time: int) -> Order:
    """``order`` marked filled (a clipped reduce-only order keeps its smaller ``filled_qty``).

    Built field by field: this is the backtest's hot path and ``dataclasses.replace`` is slow.
    """
    return Order(
        order.id, order.symbol, order.side, order.type, order.qty, order.created_time,
        order.price, order.stop_price, order.client_order_id, OrderStatus.FILLED, filled_qty,
        price, time, order.reduce_only, order.tag, order.reject_reason, order.stop_distance,
    )  # fmt: skip
