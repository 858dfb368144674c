"""The simulated venue: the execution client of backtest and paper mode, and its bar matching.

It implements :class:`domain.ports.ExecutionClient` exactly as a real venue adapter would (every
answer is an execution event) plus :class:`domain.ports.BarMatcher`, through which the engine
drives it bar by bar. It owns all matching (triggers, gap-through, slippage, fees, partial fills
under a participation cap, time in force, linked orders) and its own account; the engine only
sees events. Fill prices follow :mod:`domain.execution`.

Linked orders (same ``link_id``): when one that is not a take-profit fills completely, the
others are canceled; a take-profit filling leaves them (a stop is clipped to what is left). Any
reduce-only order that would no longer reduce the position (flat, or flipped) is canceled.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from domain.account import MONEY_QUANTUM, Account
from domain.candles import Candles
from domain.errors import InvalidOrder
from domain.execution import (
    DecimalMarks,
    Execution,
    FeeSchedule,
    execute_on_bar,
    first_trailing_trigger,
    first_trigger,
    to_decimal,
    trigger_distance,
)
from domain.futures import HORIZON, FuturesBook, MarginReport
from domain.model import (
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    fast_constructor,
)
from domain.order_rules import order_problem
from domain.orders import LIQUIDATION_TAG, ExecutionEvent, submission_order
from domain.orders import ExecutionEventKind as K
from domain.ports import Balance, Clock

_KEEP_FINAL = 10_000
_IMMEDIATE = (TimeInForce.IOC, TimeInForce.FOK)
_new_fill = fast_constructor(Fill, validate=True)  # Fill(...), faster: one per fill


@dataclass(slots=True)
class _Working:
    """An order as the venue tracks it, working or (in :attr:`SimulatedVenue._final`) final.

    ``order`` holds its terms as last amended; its execution state at the venue is ``status``,
    ``filled`` (quantity), ``venue_id`` and ``reason`` (the reject reason), kept here rather
    than in a new :class:`Order` per change: :meth:`view` builds the order when asked for.
    ``active_from`` is the first bar open time (ms UTC) it may fill on; ``done_time`` the open
    time of the last bar that matched it (it is not matched twice on one bar); ``anchor`` the
    best price so far of a trailing stop, through bar ``anchor_time``; ``triggered`` is set
    once a stop has triggered and filled in part (the rest fills at market).
    """

    order: Order
    active_from: int
    status: OrderStatus
    filled: Decimal
    venue_id: str | None
    reason: str | None
    done_time: int = -1
    anchor: float = 0.0
    anchor_time: int = -1
    triggered: bool = False
    cache: tuple[Candles, int, int | None] | None = None

    @classmethod
    def of(
        cls, order: Order, active_from: int, status: OrderStatus, venue_id: str | None
    ) -> _Working:
        """``order`` in ``status`` at the venue, with its fill state and reject reason."""
        return cls(order, active_from, status, order.filled_qty, venue_id, order.reject_reason)

    @property
    def remaining(self) -> Decimal:
        """Quantity still to fill."""
        return self.order.qty - self.filled

    def view(self) -> Order:
        """The order as the venue sees it now."""
        order = self.order
        return order.with_state(
            self.status, self.filled, order.avg_fill_price, order.updated_time, self.reason,
            self.venue_id,
        )  # fmt: skip


class SimulatedVenue:
    """A simulated exchange for backtest and paper trading.

    Parameters
    ----------
    instruments:
        Trading rules per symbol; an order in another symbol is rejected.
    cash:
        Starting wallet balance in quote currency.
    clock:
        Market time (the engine's simulated clock): submission times, event times.
    fees:
        Maker/taker fee rates (fractions of notional); fees are rounded to the quote asset's
        precision.
    slippage_bps:
        Market-order slippage in basis points of the open price.
    max_leverage:
        An order that may add exposure is rejected when gross notional after it would exceed
        ``equity × max_leverage``.
    participation:
        When set, the largest share (0 < p <= 1) of a bar's volume one order may fill on that
        bar; the rest fills on later bars or expires by its time in force. Off by default.
    futures:
        Futures margining (:class:`domain.futures.FuturesBook`): leverage per symbol, initial
        margin checks in place of ``max_leverage``, liquidations (a ``liquidation`` event with
        the venue's own order, then its fill) and funding settlements (``funding`` events) at
        the bars they fall on. None: a plain margin account (no liquidation, no funding).

    Raises
    ------
    ValueError
        For cash <= 0, negative slippage, a participation outside (0, 1], or instruments
        priced in several quote assets (the account's balance is in the one they share).
    """

    def __init__(
        self,
        *,
        instruments: Mapping[str, Instrument],
        cash: Decimal,
        clock: Clock,
        fees: FeeSchedule | None = None,
        slippage_bps: Decimal = Decimal(2),
        max_leverage: Decimal = Decimal(5),
        participation: Decimal | None = None,
        futures: FuturesBook | None = None,
    ) -> None:
        if cash <= 0:
            raise ValueError(f"starting cash must be > 0, was {cash}")
        if slippage_bps < 0:
            raise ValueError(f"slippage_bps must be >= 0, was {slippage_bps}")
        if participation is not None and not 0 < participation <= 1:
            raise ValueError(f"participation must be in (0, 1], was {participation}")
        self.instruments = dict(instruments)
        self.clock = clock
        self.fees = fees or FeeSchedule()
        self.slippage_bps = slippage_bps
        self.max_leverage = float(max_leverage)
        self.participation = participation
        self.futures = futures
        self.quote_asset = _quote_asset(self.instruments)
        self.account = Account(cash, money=_money(self.instruments))
        self._working: dict[str, dict[str, _Working]] = {}
        self._final: OrderedDict[str, _Working] = OrderedDict()
        self._marks: dict[str, float] = {}
        self._bars: dict[str, Candles] = {}  # futures: the last bars seen, for funding marks
        self._events: list[ExecutionEvent] = []

    # -- ExecutionClient --------------------------------------------------------------------
    def submit(self, order: Order) -> None:
        """Accept or reject ``order`` (events ``accepted`` / ``rejected``); a client id the venue
        already knows is ignored, so a re-sent order never trades twice."""
        if self._find(order.id) is not None or order.id in self._final:
            return
        now = self.clock.now_ms()
        reason = self._refusal(order)
        if reason is not None:
            rejected = _Working.of(order, now, OrderStatus.REJECTED, order.venue_order_id)
            rejected.reason = reason
            self._remember(rejected)
            self._events.append(ExecutionEvent(K.REJECTED, order.id, now, reason=reason))
            return
        working = self._accept(order, now)
        if order.type is OrderType.TRAILING_STOP:
            working.anchor = float(order.stop_price + _signed_offset(order))  # type: ignore[operator]

    def cancel(self, order_id: str) -> None:
        """Cancel a working order (``canceled``), else ``cancel_rejected`` with the reason."""
        now = self.clock.now_ms()
        working = self._find(order_id)
        if working is None:
            known = self._final.get(order_id)
            why = f"order is already {known.status}" if known else "unknown order"
            self._events.append(ExecutionEvent(K.CANCEL_REJECTED, order_id, now, reason=why))
            return
        self._close(working, OrderStatus.CANCELED, K.CANCELED, now)

    def modify(
        self,
        order_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> None:
        """Amend a working order (``modified``), else ``modify_rejected`` with the reason."""
        now = self.clock.now_ms()
        working = self._find(order_id)
        reason = None if working else "unknown or final order"
        if working is not None:
            order = working.view()
            try:
                amended = replace(
                    order,
                    qty=qty if qty is not None else order.qty,
                    price=price if price is not None else order.price,
                    stop_price=stop_price if stop_price is not None else order.stop_price,
                )
            except ValueError as exc:
                amended, reason = order, str(exc)
            if reason is None and amended.qty <= order.filled_qty:
                reason = f"qty {amended.qty} must exceed the filled {order.filled_qty}"
            if reason is None:
                reason = self._refusal(
                    replace(amended, qty=amended.remaining_qty, filled_qty=Decimal(0))
                )
            if reason is None:
                working.order, working.cache = amended, None
                if order.type is OrderType.TRAILING_STOP and stop_price is not None:
                    working.anchor = float(stop_price + _signed_offset(order))
                self._events.append(
                    ExecutionEvent(
                        K.MODIFIED, order_id, now, qty=qty, price=price, stop_price=stop_price
                    )
                )
                return
        self._events.append(ExecutionEvent(K.MODIFY_REJECTED, order_id, now, reason=reason))

    def fetch_order(self, order_id: str) -> Order | None:
        """The venue's view of the order (working or recently final), or None."""
        known = self._find(order_id) or self._final.get(order_id)
        return known.view() if known is not None else None

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Working orders, oldest first."""
        books = [self._working.get(symbol, {})] if symbol else list(self._working.values())
        return [w.view() for book in books for w in book.values()]

    def positions(self) -> list[Position]:
        """Every open position."""
        return list(self.account.positions.values())

    def balance(self) -> Balance:
        """Wallet balance and equity at the latest marks (quote currency)."""
        return Balance(self.quote_asset, self.account.cash, self.account.equity(self.marks))

    def drain_events(self) -> list[ExecutionEvent]:
        """Events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def restore(
        self,
        cash: Decimal,
        positions: Iterable[Position],
        orders: Iterable[Order],
        fees_paid: Decimal = Decimal(0),
        funding_paid: Decimal = Decimal(0),
    ) -> None:
        """Reload a paper run's state: wallet, positions, the working orders (acknowledged,
        not final; they may fill from the next bar on) and the fees and funding paid so far
        (quote currency)."""
        held = {p.symbol: p for p in positions if p.qty != 0}
        self.account = Account(
            cash, held, fees_paid, money=self.account.money, funding_paid=funding_paid
        )
        self._working = {}
        now = self.clock.now_ms()
        for order in submission_order(orders, {s: p.qty for s, p in held.items()}):
            if order.status.is_working:
                working = _Working.of(order, now, order.status, order.venue_order_id)
                if order.type is OrderType.TRAILING_STOP:
                    working.anchor = float(order.stop_price + _signed_offset(order))  # type: ignore[operator]
                self._working.setdefault(order.symbol, {})[order.id] = working

    # -- BarMatcher -------------------------------------------------------------------------
    def mark(self, symbol: str, price: float, time: int) -> None:
        """Record ``symbol``'s latest price (margin checks, equity) at ``time`` (ms UTC), and
        (futures) settle the position's funding due by then."""
        self._marks[symbol] = price
        futures = self.futures
        if futures is not None and symbol in self.account.positions:
            due = futures.next_funding_time(symbol)
            if due is not None and due <= time:
                self._settle_funding(futures, symbol, self._bars.get(symbol), time)

    def funding_at_risk(self, symbol: str, candles: Candles, start: int, end: int) -> float | None:
        """The most the position in ``symbol`` can pay in funding in ``(start, end]`` (ms UTC;
        quote currency, see :meth:`FuturesBook.funding_at_risk`): 0 when flat or without
        futures margining; None when a funding time in there lies past ``candles``."""
        position = self.account.positions.get(symbol)
        if self.futures is None or position is None:
            return 0.0
        return self.futures.funding_at_risk(symbol, float(position.qty), candles, start, end)

    def next_funding_time(self, symbol: str) -> int | None:
        """The next funding time of ``symbol`` not settled yet (ms UTC); None without futures
        margining or funding rates."""
        return None if self.futures is None else self.futures.next_funding_time(symbol)

    @property
    def marks(self) -> Mapping[str, Decimal]:
        """Latest price per symbol (quote currency)."""
        return DecimalMarks(self._marks)

    def next_trigger(self, symbol: str, candles: Candles, start: int) -> int | None:
        """First bar index ``>= start`` on which a working order of ``symbol`` fills or
        expires, or (futures) the position is liquidated; a bar where the liquidation search
        must go on (:data:`domain.futures.HORIZON`) counts too. Funding is no event of its
        own: it is settled at the symbol's next bar matched or mark (see :meth:`mark`)."""
        best: int | None = None
        for working in self._working.get(symbol, {}).values():
            hit = self._trigger(working, candles, start)
            if hit is not None and (best is None or hit < best):
                best = hit
        if self.futures is not None:
            self._bars[symbol] = candles
        if self.futures is not None and symbol in self.account.positions:
            hit = self._futures_trigger(symbol, candles, start, best)
            if hit is not None and (best is None or hit < best):
                best = hit
        return best

    def process_bar(self, symbol: str, candles: Candles, i: int) -> None:
        """On bar ``i`` of ``symbol``: settle the funding due at its open (futures), match the
        working orders it triggers, nearest the open first, then liquidate the position if
        the mark reaches its liquidation price (futures)."""
        futures = self.futures
        if futures is not None:
            self._bars[symbol] = candles
            self._settle_funding(futures, symbol, candles, int(candles.open_time[i]))
        book = self._working.get(symbol)
        if book:
            due = [w for w in book.values() if self._trigger(w, candles, i) == i]
            if len(due) > 1:
                bar_open = float(candles.open[i])
                due.sort(key=lambda w: _distance(w, bar_open))
            for working in due:
                if working.order.id in book:
                    self._match(working, candles, i)
        if futures is not None and symbol in self.account.positions:
            level = self._liquidation_level(futures, symbol)
            position = self.account.positions[symbol]
            if (
                level is not None
                and futures.first_liquidation(symbol, position, level, candles, i, i + 1) == i
            ):
                self._liquidate(position, level, int(candles.open_time[i]))

    def liquidation_price(self, symbol: str) -> Decimal | None:
        """The liquidation (mark) price of the position in ``symbol`` now, unrounded; None when
        flat, without futures margining or without one (see :mod:`domain.futures`)."""
        if self.futures is None or symbol not in self.account.positions:
            return None
        return self._liquidation_level(self.futures, symbol)

    # -- MarginAccount ----------------------------------------------------------------------
    @property
    def leverage(self) -> Mapping[str, int]:
        """Leverage per symbol (empty without futures margining)."""
        return MappingProxyType(self.futures.leverage if self.futures is not None else {})

    def set_leverage(self, symbol: str, leverage: int) -> None:
        """Set ``symbol``'s leverage for its position at the latest mark.

        Raises
        ------
        InvalidOrder
            (``field="leverage"``) Without futures margining, for an unknown symbol, or outside
            1 to the cap and the bracket's maximum at the position's notional.
        """
        if self.futures is None:
            raise InvalidOrder("leverage applies to perpetual futures only", field="leverage")
        if symbol not in self.instruments:
            raise InvalidOrder(f"unknown symbol {symbol!r}", field="symbol")
        position = self.account.position(symbol)
        mark = self.marks.get(symbol, position.entry_price)
        self.futures.set_leverage(symbol, leverage, abs(position.qty) * mark)

    def margin_report(self) -> MarginReport:
        """The balance breakdown and each position's margin at the latest marks.

        Raises
        ------
        InvalidOrder
            Without futures margining.
        """
        if self.futures is None:
            raise InvalidOrder("no futures margining on this account", field="symbol")
        account = self.account
        return self.futures.report(
            account.cash, account.positions, self.marks, account.fees_paid, account.funding_paid
        )

    # -- futures ----------------------------------------------------------------------------
    def _futures_trigger(
        self, symbol: str, candles: Candles, start: int, before: int | None
    ) -> int | None:
        futures = self.futures
        assert futures is not None
        level = self._liquidation_level(futures, symbol)
        if level is None:
            return None
        stop = start + HORIZON if before is None else min(start + HORIZON, before + 1)
        position = self.account.positions[symbol]
        hit = futures.first_liquidation(symbol, position, level, candles, start, stop)
        if hit is None and stop == start + HORIZON and stop < len(candles):
            hit = stop  # search on from there
        return hit

    def _liquidation_level(self, futures: FuturesBook, symbol: str) -> Decimal | None:
        account = self.account
        return futures.liquidation_price(
            account.positions[symbol], account.cash, account.positions, self.marks
        )

    def _settle_funding(
        self, futures: FuturesBook, symbol: str, candles: Candles | None, now: int
    ) -> None:
        held = self.account.position(symbol).qty
        for payment in futures.fundings_due(symbol, held, candles, now, self.account.money):
            self.account.pay_funding(payment.amount)
            self._events.append(ExecutionEvent(K.FUNDING, "", payment.time_ms, funding=payment))

    def _liquidate(self, position: Position, level: Decimal, time: int) -> None:
        """Close ``position`` at its liquidation price ``level`` (rounded to the tick against
        the position), charging the liquidation fee; its working orders are canceled first."""
        futures = self.futures
        assert futures is not None
        symbol = position.symbol
        for working in list(self._working.get(symbol, {}).values()):
            self._close(working, OrderStatus.CANCELED, K.CANCELED, time, "liquidation")
        instrument = self.instruments[symbol]
        long = position.qty > 0
        price = instrument.round_price(level, up=long)
        if price <= 0:
            price = instrument.tick_size
        others = sum(
            (
                p.unrealized_pnl(self.marks.get(s, p.entry_price))
                for s, p in self.account.positions.items()
                if s != symbol
            ),
            Decimal(0),
        )
        fee = instrument.round_money(
            futures.liquidation_fee(position, price, self.account.cash, others)
        )
        order = Order(
            id=f"{LIQUIDATION_TAG}-{symbol}-{time}",
            symbol=symbol,
            side=Side.SELL if long else Side.BUY,
            type=OrderType.MARKET,
            qty=abs(position.qty),
            created_time=time,
            reduce_only=True,
            tag=LIQUIDATION_TAG,
        )
        working = _Working.of(order, time, OrderStatus.NEW, _venue_id(order.id))
        self._working.setdefault(symbol, {})[order.id] = working
        self._events.append(
            ExecutionEvent(K.LIQUIDATION, order.id, time, working.venue_id, order=order)
        )
        self._fill(working, order.qty, Execution(price, Liquidity.TAKER), time, fee)

    def settle(self, order: Order, price: Decimal, time: int) -> None:
        """Accept the reduce-only ``order`` and fill it whole at exactly ``price`` (taker): the
        close of a position at the end of a backtest."""
        working = self._accept(order, time)
        self._fill(working, order.qty, Execution(price, Liquidity.TAKER), time)

    def state(self) -> dict[str, Any]:
        """Futures state (leverage per symbol, fundings settled): empty without futures."""
        return {} if self.futures is None else {"futures": self.futures.state()}

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state` of an earlier process."""
        if self.futures is not None:
            self.futures.restore(state.get("futures", {}))

    # -- matching ---------------------------------------------------------------------------
    def _trigger(self, w: _Working, candles: Candles, start: int) -> int | None:
        times = candles.open_time
        if w.order.type is OrderType.TRAILING_STOP and not w.triggered and start > 0:
            # The level follows the bars already passed, whether or not they are searched again.
            self._fold_anchor(w, candles, min(start, len(times)))
        cached = w.cache
        if cached is not None and cached[0] is candles and cached[1] <= start:
            hit = cached[2]
            if hit is None or hit >= start:
                return hit
        lo = start
        floor = max(w.active_from, w.done_time + 1)
        if lo < len(times) and times[lo] < floor:
            lo = int(times.searchsorted(floor, "left"))
        order = w.order
        if lo >= len(times):
            hit = None
        elif w.triggered or order.type is OrderType.MARKET or order.time_in_force in _IMMEDIATE:
            hit = lo
        elif order.type is OrderType.TRAILING_STOP:
            self._fold_anchor(w, candles, lo)
            offset = float(order.trailing_offset)  # type: ignore[arg-type]
            found = first_trailing_trigger(order.side, w.anchor, offset, candles, lo)
            hit = found[0] if found is not None else None
        else:
            hit = first_trigger(order, candles, lo)
        w.cache = (candles, start, hit)
        return hit

    def _fold_anchor(self, w: _Working, candles: Candles, stop: int) -> None:
        """Fold bars before index ``stop`` that the trailing stop has not seen into its best
        price, and move its level (a ``modified`` event, so a restored run continues from it)."""
        times = candles.open_time
        first = int(times.searchsorted(max(w.anchor_time + 1, w.active_from), "left"))
        if first >= stop:
            return
        if w.order.side is Side.SELL:
            w.anchor = max(w.anchor, float(candles.high[first:stop].max()))
        else:
            w.anchor = min(w.anchor, float(candles.low[first:stop].min()))
        w.anchor_time = int(times[stop - 1])
        self._move_trailing(w, int(times[stop - 1]))

    def _match(self, w: _Working, candles: Candles, i: int) -> None:
        order = w.order
        time = int(candles.open_time[i])
        w.done_time = time
        w.cache = None  # matched on this bar: the next search starts after it
        instrument = self.instruments[order.symbol]
        bar_open = float(candles.open[i])
        if order.type is OrderType.TRAILING_STOP and not w.triggered:
            self._fold_anchor(w, candles, i)
            order = w.order
            level = float(order.stop_price)  # type: ignore[arg-type]
            sell = order.side is Side.SELL
            if not (candles.low[i] <= level if sell else candles.high[i] >= level):
                self._fold_anchor(w, candles, i + 1)
                return
        tif = order.time_in_force
        immediate = not w.triggered and order.type is not OrderType.MARKET and tif in _IMMEDIATE
        if immediate and first_trigger(order, candles, i) != i:
            why = f"{tif} order found no price on its first bar"
            self._close(w, OrderStatus.EXPIRED, K.EXPIRED, time, why)
            return
        as_market = replace(order, type=OrderType.MARKET) if w.triggered else order
        ex = execute_on_bar(as_market, bar_open, instrument, self.slippage_bps)
        if (
            tif is TimeInForce.POST_ONLY
            and ex.liquidity is Liquidity.TAKER
            and (i == 0 or candles.open_time[i - 1] < w.active_from)  # its first bar
        ):
            why = "post-only order would take liquidity"
            self._close(w, OrderStatus.EXPIRED, K.EXPIRED, time, why)
            return
        qty = w.remaining
        if order.reduce_only:
            qty = min(qty, abs(self.account.position(order.symbol).qty))
        if self.participation is not None:
            cap = instrument.round_qty(self.participation * to_decimal(candles.volume[i]))
            if cap < qty and tif is TimeInForce.FOK:
                why = f"FOK: the bar's volume allows only {cap}"
                self._close(w, OrderStatus.EXPIRED, K.EXPIRED, time, why)
                return
            qty = min(qty, cap)
        if qty > 0:
            self._fill(w, qty, ex, time)
        if order.id not in self._working.get(order.symbol, {}):
            return
        if tif in _IMMEDIATE:
            self._close(w, OrderStatus.EXPIRED, K.EXPIRED, time, f"{tif} remainder expired")
        elif order.type.is_triggered and qty > 0:
            w.triggered = True

    def _move_trailing(self, w: _Working, time: int) -> None:
        order = w.order
        instrument = self.instruments[order.symbol]
        offset = order.trailing_offset or Decimal(0)
        anchor = to_decimal(w.anchor)
        level = anchor - offset if order.side is Side.SELL else anchor + offset
        level = instrument.round_price(level, up=order.side is Side.BUY)
        if level != order.stop_price and level > 0:
            w.order = replace(order, stop_price=level)
            self._events.append(ExecutionEvent(K.MODIFIED, order.id, time, stop_price=level))

    def _fill(
        self, w: _Working, qty: Decimal, ex: Execution, time: int, fee: Decimal | None = None
    ) -> None:
        """Fill ``qty`` of ``w`` at ``ex`` (``fee``: the schedule's, unless given)."""
        order = w.order
        instrument = self.instruments[order.symbol]
        if fee is None:
            fee = instrument.round_money(qty * ex.price * self.fees.rate(ex.liquidity))
        fill = _new_fill(
            f"{order.id}-{time}",
            order.id,
            order.symbol,
            order.side,
            qty,
            ex.price,
            fee,
            ex.liquidity,
            time,
        )
        self.account.book(fill)
        if self.futures is not None:
            self.futures.note_change(order.symbol, time)
        self._events.append(ExecutionEvent.filled(order.id, time, w.venue_id, fill))
        w.filled += qty
        if w.filled == order.qty:
            self._working[order.symbol].pop(order.id, None)
            w.status = OrderStatus.FILLED
            self._remember(w)
            if order.link_id is not None and order.type is not OrderType.TAKE_PROFIT:
                for other in list(self._working.get(order.symbol, {}).values()):
                    if other.order.link_id == order.link_id:
                        self._close(other, OrderStatus.CANCELED, K.CANCELED, time)
        else:
            w.status = OrderStatus.PARTIALLY_FILLED
        self._prune_reduce_only(order.symbol, time)

    def _prune_reduce_only(self, symbol: str, time: int) -> None:
        """Cancel reduce-only orders that would no longer reduce the position (it went flat, or
        flipped to their side), and shrink those larger than what is left to what is left (a
        ``modified`` event): an exit never opens or grows a position, and a stop left after a
        take-profit covers exactly the rest (so it can be amended and ends ``filled``)."""
        held = self.account.position(symbol).qty
        for w in list(self._working.get(symbol, {}).values()):
            if not w.order.reduce_only:
                continue
            if held == 0 or (held > 0) == (w.order.side is Side.BUY):
                self._close(w, OrderStatus.CANCELED, K.CANCELED, time)
            elif w.remaining > abs(held):
                qty = w.filled + abs(held)
                w.order, w.cache = replace(w.order, qty=qty), None
                self._events.append(ExecutionEvent(K.MODIFIED, w.order.id, time, qty=qty))

    def _close(
        self, w: _Working, status: OrderStatus, kind: K, time: int, reason: str | None = None
    ) -> None:
        self._working.get(w.order.symbol, {}).pop(w.order.id, None)
        w.status, w.reason = status, reason or w.reason
        self._remember(w)
        self._events.append(ExecutionEvent(kind, w.order.id, time, reason=reason))

    # -- checks and helpers -----------------------------------------------------------------
    def _refusal(self, order: Order) -> str | None:
        instrument = self.instruments.get(order.symbol)
        if instrument is None:
            return f"unknown symbol {order.symbol!r}"
        held = self.account.position(order.symbol).qty
        mark = self._marks.get(order.symbol)
        problem = order_problem(order, instrument, held, None if mark is None else to_decimal(mark))
        if problem is not None:
            return problem[1]
        if not order.reduce_only:
            return self._margin_refusal(order)
        return None

    def _margin_refusal(self, order: Order) -> str | None:
        mark = self._marks.get(order.symbol) or order.price or order.stop_price
        if mark is None:
            return None
        held = self.account.position(order.symbol).qty
        for pending in self._working.get(order.symbol, {}).values():
            if pending.order.type is OrderType.MARKET:
                held += pending.remaining * pending.order.side.sign
        projected = held + order.qty * order.side.sign
        if abs(projected) <= abs(held) and projected * held >= 0:
            return None  # it only reduces the position: it frees margin, as on the venue
        if self.futures is not None:
            # A limit order's margin is valued at its own price (Binance's initial margin of an
            # open order), anything else at the mark.
            limit = order.type is OrderType.LIMIT and order.price is not None
            return self.futures.order_problem(
                order.symbol,
                projected,
                order.price if limit else mark if isinstance(mark, Decimal) else to_decimal(mark),
                self.account.positions,
                self.marks,
                self.account.equity(self.marks),
            )
        gross, equity = self.account.margin_usage(
            self._marks, order.symbol, float(projected), float(mark)
        )
        limit = equity * self.max_leverage
        if gross > limit:
            return f"gross notional {gross:.2f} would exceed equity × max_leverage = {limit:.2f}"
        return None

    def _find(self, order_id: str) -> _Working | None:
        for book in self._working.values():
            working = book.get(order_id)
            if working is not None:
                return working
        return None

    def _accept(self, order: Order, now: int) -> _Working:
        """Make ``order`` working from ``now`` on (event ``accepted``)."""
        working = _Working.of(order, now, OrderStatus.NEW, _venue_id(order.id))
        self._working.setdefault(order.symbol, {})[order.id] = working
        self._events.append(ExecutionEvent.accepted(order.id, now, working.venue_id))
        return working

    def _remember(self, final: _Working) -> None:
        final.cache = None  # it will not be matched again: let go of the bars
        self._final[final.order.id] = final
        if len(self._final) > _KEEP_FINAL:
            self._final.popitem(last=False)


def _distance(w: _Working, bar_open: float) -> float:
    return 0.0 if w.triggered else trigger_distance(w.order, bar_open)


def _signed_offset(order: Order) -> Decimal:
    """The offset from a trailing stop's level back to its anchor (best price)."""
    offset = order.trailing_offset or Decimal(0)
    return offset if order.side is Side.SELL else -offset


def _venue_id(order_id: str) -> str:
    return "sim-" + order_id[-16:]


def _quote_asset(instruments: Mapping[str, Instrument]) -> str:
    """The one quote asset the instruments are priced in (the account's currency).

    Raises
    ------
    ValueError
        When they are priced in several (one simulated account holds one currency).
    """
    assets = sorted({i.quote_asset for i in instruments.values()})
    if len(assets) > 1:
        raise ValueError(f"one account holds one quote asset; the instruments use {assets}")
    return assets[0] if assets else "USDT"


def _money(instruments: Mapping[str, Instrument]) -> Decimal:
    places = max((i.quote_precision for i in instruments.values()), default=8)
    return MONEY_QUANTUM if places == 8 else Decimal(1).scaleb(-places)
