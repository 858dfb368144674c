"""The account and matching engine of the fake Binance USDⓈ-M (no I/O: the server in
:mod:`tests.venues.binance_fake_private` calls it and sends what it puts in :attr:`outbox`).

One one-way-mode account in USDT. Orders follow Binance's futures semantics as documented
(New Order, Algo Order, the user-data stream's events):

- ``MARKET`` fills at once at the price now (the open of the bar forming at the fake's clock,
  or the last close); a ``LIMIT`` that crosses the price now fills at it as a taker (``GTX``,
  post-only, is refused instead: code -5022); ``IOC``/``FOK`` expire what they cannot fill
  at once; a resting ``LIMIT`` fills at its price, as a maker, on a later bar that trades
  through it.
- Conditional orders live in the Algo Order API only (``/fapi/v1/order`` refuses them: -4120):
  ``STOP_MARKET`` / ``TAKE_PROFIT_MARKET`` trigger on a bar's low/high reaching the trigger,
  ``TRAILING_STOP_MARKET`` when the price falls ``callbackRate`` % from its best since
  placement; the trigger places a ``MARKET`` order with the algo order's client id, filled at
  the trigger (or the bar's open when it gapped through).
- Reduce-only orders must reduce the position (-2022) and expire once it is flat or flipped;
  an order needs initial margin (notional / leverage) within the available balance (-2019).
- :attr:`FakeAccount.fill_fraction` caps each match at that share of the order's qty (partial
  fills; the rest of a market or IOC order expires, a limit order's rests);
  :attr:`FakeAccount.trades_per_fill` splits each match into that many trades.

Fees: taker 0.05 %, maker 0.02 % of notional (Binance's default tier), in USDT.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

from adapters.clock import SimulatedClock
from tests.venues.binance_fake_records import (
    ZERO,
    BinanceError,
    FakeAlgo,
    FakeOrder,
    FakePosition,
    Rules,
    account_event,
    algo_event,
    order_event,
    text,
)

TAKER_FEE = Decimal("0.0005")
MAKER_FEE = Decimal("0.0002")
_MONEY = Decimal("0.00000001")
_CONDITIONAL = ("STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET", "STOP", "TAKE_PROFIT")
_PERCENT = Decimal(100)


@dataclass
class FakeAccount:
    """The account: wallet, positions, orders, algo orders, trades and the user-data events.

    Parameters
    ----------
    clock:
        The venue's clock (ms UTC).
    price:
        The price of a symbol now (quote currency).
    rules:
        Each tradable symbol's lot step, tick and maximum leverage.
    wallet:
        The starting USDT balance.
    """

    clock: SimulatedClock
    price: Callable[[str], Decimal]
    rules: Mapping[str, Rules]
    wallet: Decimal = Decimal(10_000)
    fill_fraction: Decimal | None = None
    trades_per_fill: int = 1
    outbox: list[dict[str, Any]] = field(default_factory=list)
    placed: Counter[str] = field(default_factory=Counter)
    orders: dict[int, FakeOrder] = field(default_factory=dict)
    algos: dict[int, FakeAlgo] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    positions: dict[str, FakePosition] = field(default_factory=dict)
    income: list[dict[str, Any]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(8_389_765_000_000_001))
    _trade_ids: Iterator[int] = field(default_factory=lambda: itertools.count(6_100_000_001))
    _matched: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for symbol, rules in self.rules.items():
            self.positions[symbol] = FakePosition(leverage=min(20, rules.max_leverage))

    # ------------------------------------------------------------------ orders
    def new_order(self, p: Mapping[str, str]) -> dict[str, Any]:
        """``POST /fapi/v1/order``."""
        symbol = self._symbol(p)
        kind = _required(p, "type")
        if kind in _CONDITIONAL:
            raise BinanceError(
                -4120,
                "Order type not supported for this endpoint. Please use the Algo Order API "
                "endpoints instead.",
            )
        if kind not in ("MARKET", "LIMIT"):
            raise BinanceError(-1116, "Invalid orderType.")
        side, qty = _side(p), self._qty(symbol, p)
        client_id = p.get("newClientOrderId") or f"fake{next(self._ids)}"
        if any(o.client_id == client_id and o.status in ("NEW", "PARTIALLY_FILLED")
               for o in self.orders.values()):  # fmt: skip
            raise BinanceError(-4116, "ClientOrderId is duplicated.")
        price, tif = ZERO, "GTC"
        if kind == "LIMIT":
            price = self._price(symbol, _required(p, "price"))
            tif = _required(p, "timeInForce")
            if tif not in ("GTC", "IOC", "FOK", "GTX"):
                raise BinanceError(-1115, "Invalid timeInForce.")
        reduce_only = p.get("reduceOnly", "false").lower() == "true"
        now, last = self.clock.now_ms(), self.price(symbol)
        crosses = kind == "MARKET" or (price >= last if side == "BUY" else price <= last)
        if kind == "LIMIT" and tif == "GTX" and crosses:
            raise BinanceError(
                -5022,
                "Due to the order could not be executed as maker, the Post Only order will be "
                "rejected. The order will not be recorded in the order history",
            )
        self._check_reduce_only(symbol, side, qty, reduce_only)
        self._check_margin(symbol, side, qty, price if kind == "LIMIT" else last, reduce_only)
        order = FakeOrder(
            next(self._ids), client_id, symbol, side, kind, tif, qty, price, reduce_only, now,
            now, kind,
        )  # fmt: skip
        self.orders[order.order_id] = order
        self.placed[client_id] += 1
        self._event_of(order, "NEW")
        if crosses:
            self._take(order, last)
        return order.json()

    def _take(self, order: FakeOrder, last: Decimal) -> None:
        """Match a new order that crosses the price now: a taker fill at it, then the rest
        expires (market, IOC, FOK) or rests (limit GTC)."""
        qty = self._match_qty(order)
        if order.tif == "FOK" and qty < order.qty:
            qty = ZERO
        if qty > 0:
            self._fill(order, qty, last, maker=False)
        if order.status in ("NEW", "PARTIALLY_FILLED") and (
            order.type == "MARKET" or order.tif in ("IOC", "FOK")
        ):
            self._end(order, "EXPIRED")

    def cancel_order(self, p: Mapping[str, str]) -> dict[str, Any]:
        """``DELETE /fapi/v1/order``."""
        order = self._find(p)
        if order is None or order.status not in ("NEW", "PARTIALLY_FILLED"):
            raise BinanceError(-2011, "Unknown order sent.")
        self._end(order, "CANCELED")
        return order.json()

    def amend_order(self, p: Mapping[str, str]) -> dict[str, Any]:
        """``PUT /fapi/v1/order``: a limit order's price and quantity."""
        order = self._find(p)
        if order is None or order.status not in ("NEW", "PARTIALLY_FILLED"):
            raise BinanceError(-2013, "Order does not exist.")
        if order.type != "LIMIT":
            raise BinanceError(-4032, "Only limit orders can be modified.")
        if _side(p) != order.side:
            raise BinanceError(-1102, "Side does not match the order.")
        qty, price = self._qty(order.symbol, p), self._price(order.symbol, _required(p, "price"))
        if qty <= order.executed:
            raise BinanceError(-4005, "Quantity less than or equal to the executed quantity.")
        if qty == order.qty and price == order.price:
            raise BinanceError(-5027, "No need to modify the order.")
        order.qty, order.price = qty, price
        order.update_time = self.clock.now_ms()
        self._event_of(order, "AMENDMENT")
        return order.json()

    def query_order(self, p: Mapping[str, str]) -> dict[str, Any]:
        """``GET /fapi/v1/order``."""
        order = self._find(p)
        if order is None:
            raise BinanceError(-2013, "Order does not exist.")
        return order.json()

    def open_orders(self, p: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /fapi/v1/openOrders``."""
        symbol = p.get("symbol")
        return [
            o.json() for o in self.orders.values()
            if o.status in ("NEW", "PARTIALLY_FILLED") and symbol in (None, o.symbol)
        ]  # fmt: skip

    # ------------------------------------------------------------------ algo orders
    def new_algo(self, p: Mapping[str, str]) -> dict[str, Any]:
        """``POST /fapi/v1/algoOrder`` (``algoType=CONDITIONAL``)."""
        symbol = self._symbol(p)
        if p.get("algoType") != "CONDITIONAL":
            raise BinanceError(-1102, _MANDATORY.format(name="algoType"))
        kind = _required(p, "type")
        if kind not in ("STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"):
            raise BinanceError(-1116, "Invalid orderType.")
        side, qty = _side(p), self._qty(symbol, p)
        client_id = p.get("clientAlgoId") or f"fakealgo{next(self._ids)}"
        if any(a.client_id == client_id and a.status == "NEW" for a in self.algos.values()):
            raise BinanceError(-20132, "The client algo id is duplicated.")
        last, now = self.price(symbol), self.clock.now_ms()
        trigger, rate = ZERO, ZERO
        if kind == "TRAILING_STOP_MARKET":
            rate = Decimal(_required(p, "callbackRate"))
            if not Decimal("0.1") <= rate <= Decimal(10):
                raise BinanceError(-2007, "Invalid callBack rate.")
        else:
            trigger = self._price(symbol, _required(p, "triggerPrice"))
            above = (kind == "STOP_MARKET") == (side == "BUY")
            if (trigger <= last) if above else (trigger >= last):
                raise BinanceError(-2021, "Order would immediately trigger.")
        algo = FakeAlgo(
            next(self._ids), client_id, symbol, side, kind, qty, trigger, rate, last,
            p.get("reduceOnly", "false").lower() == "true", now, now, last,
        )  # fmt: skip
        self.algos[algo.algo_id] = algo
        self.placed[client_id] += 1
        self.outbox.append(algo_event(algo, self.clock.now_ms()))
        return algo.json()

    def cancel_algo(self, p: Mapping[str, str]) -> dict[str, Any]:
        """``DELETE /fapi/v1/algoOrder``."""
        algo = self._find_algo(p)
        if algo is None or algo.status != "NEW":
            raise BinanceError(-20124, "Invalid algo id or it has been completed.")
        algo.status, algo.update_time = "CANCELED", self.clock.now_ms()
        self.outbox.append(algo_event(algo, self.clock.now_ms()))
        return {"algoId": algo.algo_id, "clientAlgoId": algo.client_id, "code": "200",
                "msg": "success"}  # fmt: skip

    def query_algo(self, p: Mapping[str, str]) -> dict[str, Any]:
        """``GET /fapi/v1/algoOrder``."""
        algo = self._find_algo(p)
        if algo is None:
            raise BinanceError(-2013, "Order does not exist.")
        return algo.json()

    def open_algos(self, p: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /fapi/v1/openAlgoOrders``."""
        symbol = p.get("symbol")
        return [
            a.json() for a in self.algos.values()
            if a.status == "NEW" and symbol in (None, a.symbol)
        ]  # fmt: skip

    # ------------------------------------------------------------------ account
    def user_trades(self, p: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /fapi/v1/userTrades``."""
        symbol = self._symbol(p)
        order_id = p.get("orderId")
        return [
            t for t in self.trades
            if t["symbol"] == symbol and order_id in (None, str(t["orderId"]))
        ]  # fmt: skip

    def charge_funding(self, symbol: str, time_ms: int, rate: Decimal, mark: Decimal) -> None:
        """Settle ``symbol``'s funding at ``time_ms`` as Binance does: the position held pays
        qty × mark × rate (8 decimals; negative: receives) from the wallet, recorded as a
        ``FUNDING_FEE`` income row (``income`` negative when paid). A flat position pays
        nothing and gets no row."""
        qty = self.positions[symbol].qty
        paid = (qty * mark * rate).quantize(_MONEY, ROUND_HALF_EVEN)
        if paid == 0:
            return
        self.wallet -= paid
        self.income.append({
            "symbol": symbol, "incomeType": "FUNDING_FEE", "income": text(-paid),
            "asset": "USDT", "info": "FUNDING_FEE", "time": time_ms,
            "tranId": 9_689_322_392 + len(self.income), "tradeId": "",
        })  # fmt: skip

    def income_history(self, p: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /fapi/v1/income``: rows of ``incomeType`` and ``symbol`` (each when given)
        with ``startTime <= time <= endTime`` (default: the last 7 days), oldest first, at most
        ``limit`` (default 100, max 1000)."""
        limit = int(p.get("limit", 100))
        if not 1 <= limit <= 1000:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        end = int(p.get("endTime", self.clock.now_ms()))
        start = int(p.get("startTime", end - 7 * 86_400_000))
        rows = [
            r for r in self.income
            if start <= r["time"] <= end and p.get("symbol") in (None, r["symbol"])
            and p.get("incomeType") in (None, r["incomeType"])
        ]  # fmt: skip
        return rows[:limit]

    def position_risk(self, p: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /fapi/v3/positionRisk``: positions that are open (or have open orders)."""
        rows = []
        for symbol, pos in self.positions.items():
            if pos.qty == 0 or p.get("symbol") not in (None, symbol):
                continue
            mark = self.price(symbol)
            notional = pos.qty * mark
            margin = abs(notional) / pos.leverage
            rows.append({
                "symbol": symbol, "positionSide": "BOTH", "positionAmt": text(pos.qty),
                "entryPrice": text(pos.entry), "breakEvenPrice": text(pos.entry),
                "markPrice": text(mark), "unRealizedProfit": text(self._upnl(symbol)),
                "liquidationPrice": "0", "isolatedMargin": "0", "notional": text(notional),
                "marginAsset": "USDT", "isolatedWallet": "0", "initialMargin": text(margin),
                "maintMargin": "0", "positionInitialMargin": text(margin),
                "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0",
                "askNotional": "0", "updateTime": pos.update_time,
            })  # fmt: skip
        return rows

    def account_info(self) -> dict[str, Any]:
        """``GET /fapi/v3/account``."""
        upnl = sum((self._upnl(s) for s in self.positions), ZERO)
        margin = sum(
            (abs(p.qty) * self.price(s) / p.leverage for s, p in self.positions.items()), ZERO
        )
        available = self.wallet + upnl - margin
        asset = {
            "asset": "USDT", "walletBalance": text(self.wallet), "unrealizedProfit": text(upnl),
            "marginBalance": text(self.wallet + upnl), "maintMargin": "0",
            "initialMargin": text(margin), "positionInitialMargin": text(margin),
            "openOrderInitialMargin": "0", "crossWalletBalance": text(self.wallet),
            "crossUnPnl": text(upnl), "availableBalance": text(available),
            "maxWithdrawAmount": text(available), "updateTime": self.clock.now_ms(),
        }  # fmt: skip
        return {
            "totalInitialMargin": text(margin), "totalMaintMargin": "0",
            "totalWalletBalance": text(self.wallet), "totalUnrealizedProfit": text(upnl),
            "totalMarginBalance": text(self.wallet + upnl),
            "totalPositionInitialMargin": text(margin), "totalOpenOrderInitialMargin": "0",
            "totalCrossWalletBalance": text(self.wallet), "totalCrossUnPnl": text(upnl),
            "availableBalance": text(available), "maxWithdrawAmount": text(available),
            "assets": [asset], "positions": [],
        }  # fmt: skip

    def symbol_config(self, p: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /fapi/v1/symbolConfig``."""
        return [
            {"symbol": s, "marginType": pos.margin_type, "isAutoAddMargin": "false",
             "leverage": pos.leverage, "maxNotionalValue": "1000000"}
            for s, pos in self.positions.items() if p.get("symbol") in (None, s)
        ]  # fmt: skip

    def set_leverage(self, p: Mapping[str, str]) -> dict[str, Any]:
        """``POST /fapi/v1/leverage``."""
        symbol = self._symbol(p)
        leverage = int(_required(p, "leverage"))
        if not 1 <= leverage <= self.rules[symbol].max_leverage:
            raise BinanceError(-4028, f"Leverage {leverage} is not valid")
        self.positions[symbol].leverage = leverage
        return {"leverage": leverage, "maxNotionalValue": "1000000", "symbol": symbol}

    def set_margin_type(self, p: Mapping[str, str]) -> dict[str, Any]:
        """``POST /fapi/v1/marginType``."""
        symbol = self._symbol(p)
        kind = _required(p, "marginType")
        if kind not in ("ISOLATED", "CROSSED"):
            raise BinanceError(-4044, "The margin type is invalid.")
        pos = self.positions[symbol]
        if pos.margin_type == kind:
            raise BinanceError(-4046, "No need to change margin type.")
        if any(o.symbol == symbol and o.status in ("NEW", "PARTIALLY_FILLED")
               for o in self.orders.values()):  # fmt: skip
            raise BinanceError(-4047, "Margin type cannot be changed if there exists open orders.")
        if pos.qty != 0:
            raise BinanceError(-4048, "Margin type cannot be changed if there exists position.")
        pos.margin_type = kind
        return {"code": 200, "msg": "success"}

    # ------------------------------------------------------------------ the venue's side
    def bar_closed(self, symbol: str, open_time: int, bar: Mapping[str, Decimal]) -> None:
        """Match the symbol's resting orders against the bar that opened at ``open_time``
        (once per bar; orders placed after it opened wait for the next)."""
        if symbol not in self.rules or self._matched.get(symbol, -1) >= open_time:
            return
        self._matched[symbol] = open_time
        for order in [o for o in self.orders.values() if o.symbol == symbol]:
            if order.status in ("NEW", "PARTIALLY_FILLED") and order.active_from <= open_time:
                self._rest(order, bar)
        for algo in [a for a in self.algos.values() if a.symbol == symbol]:
            if algo.status == "NEW" and algo.active_from <= open_time:
                self._watch(algo, bar)

    def liquidate(self, symbol: str) -> str:
        """Close the position in ``symbol`` as Binance's liquidation engine does: its open
        orders canceled, then an ``autoclose-`` order filled at the price now. Returns the
        liquidation order's client id."""
        pos = self.positions[symbol]
        assert pos.qty != 0, f"no position in {symbol} to liquidate"
        for order in self.orders.values():
            if order.symbol == symbol and order.status in ("NEW", "PARTIALLY_FILLED"):
                self._end(order, "CANCELED")
        for algo in self.algos.values():
            if algo.symbol == symbol and algo.status == "NEW":
                algo.status, algo.update_time = "CANCELED", self.clock.now_ms()
                self.outbox.append(algo_event(algo, self.clock.now_ms()))
        now = self.clock.now_ms()
        side = "SELL" if pos.qty > 0 else "BUY"
        order = FakeOrder(
            next(self._ids), f"autoclose-{now}", symbol, side, "LIQUIDATION", "IOC",
            abs(pos.qty), self.price(symbol), True, now, now, "LIQUIDATION",
        )  # fmt: skip
        self.orders[order.order_id] = order
        self._fill(order, order.qty, order.price, maker=False, execution="CALCULATED")
        return order.client_id

    # ------------------------------------------------------------------ matching
    def _rest(self, order: FakeOrder, bar: Mapping[str, Decimal]) -> None:
        crossed = bar["low"] <= order.price if order.side == "BUY" else bar["high"] >= order.price
        if crossed:
            qty = self._match_qty(order)
            if qty > 0:
                self._fill(order, qty, order.price, maker=True)

    def _watch(self, algo: FakeAlgo, bar: Mapping[str, Decimal]) -> None:
        opening, high, low = bar["open"], bar["high"], bar["low"]
        sell = algo.side == "SELL"
        if algo.type == "TRAILING_STOP_MARKET":
            factor = 1 - algo.rate / _PERCENT if sell else 1 + algo.rate / _PERCENT
            level = self._tick(algo.symbol, algo.best * factor)
            if (low <= level) if sell else (high >= level):
                self._trigger(algo, min(opening, level) if sell else max(opening, level))
            else:
                algo.best = max(algo.best, high) if sell else min(algo.best, low)
            return
        level = algo.trigger
        falling = (algo.type == "STOP_MARKET") == sell  # triggers on a fall through the level
        if falling and low <= level:
            self._trigger(algo, min(opening, level))
        elif not falling and high >= level:
            self._trigger(algo, max(opening, level))

    def _trigger(self, algo: FakeAlgo, price: Decimal) -> None:
        """The algo order triggers: a market order with its client id, filled at ``price``."""
        now = self.clock.now_ms()
        algo.trigger_time = algo.update_time = now
        algo.status = "TRIGGERING"
        self.outbox.append(algo_event(algo, self.clock.now_ms()))
        try:
            self._check_reduce_only(algo.symbol, algo.side, algo.qty, algo.reduce_only)
        except BinanceError:
            algo.status, algo.reason = "REJECTED", "Reduce Only reject"
            self.outbox.append(algo_event(algo, self.clock.now_ms()))
            return
        order = FakeOrder(
            next(self._ids), algo.client_id, algo.symbol, algo.side, "MARKET", "GTC", algo.qty,
            ZERO, algo.reduce_only, now, now, algo.type,
        )  # fmt: skip
        self.orders[order.order_id] = order
        algo.actual, algo.status = order, "TRIGGERED"
        self.outbox.append(algo_event(algo, self.clock.now_ms()))
        self._event_of(order, "NEW")
        self._fill(order, order.qty, price, maker=False)
        algo.status = "FINISHED"
        self.outbox.append(algo_event(algo, self.clock.now_ms()))

    def _match_qty(self, order: FakeOrder) -> Decimal:
        if self.fill_fraction is None:
            return order.remaining
        step = self.rules[order.symbol].step
        cap = (order.qty * self.fill_fraction / step).to_integral_value(ROUND_DOWN) * step
        return min(order.remaining, cap)

    def _fill(
        self,
        order: FakeOrder,
        qty: Decimal,
        price: Decimal,
        *,
        maker: bool,
        execution: str = "TRADE",
    ) -> None:
        """Execute ``qty`` of ``order`` at ``price`` as ``trades_per_fill`` trades."""
        step = self.rules[order.symbol].step
        parts = max(1, min(self.trades_per_fill, int(qty / step)))
        each = (qty / parts / step).to_integral_value(ROUND_DOWN) * step
        for k in range(parts):
            part = qty - each * (parts - 1) if k == parts - 1 else each
            self._trade(order, part, price, maker, execution)
        self._prune_reduce_only(order.symbol)

    def _trade(
        self, order: FakeOrder, qty: Decimal, price: Decimal, maker: bool, execution: str
    ) -> None:
        now = self.clock.now_ms()
        fee = (qty * price * (MAKER_FEE if maker else TAKER_FEE)).quantize(_MONEY, ROUND_HALF_EVEN)
        realized = self._book(order.symbol, order.side, qty, price, now)
        self.wallet += realized - fee
        order.executed += qty
        order.quote += qty * price
        order.update_time = now
        order.status = "FILLED" if order.executed == order.qty else "PARTIALLY_FILLED"
        trade = {
            "buyer": order.side == "BUY", "commission": text(fee), "commissionAsset": "USDT",
            "id": next(self._trade_ids), "maker": maker, "orderId": order.order_id,
            "price": text(price), "qty": text(qty), "quoteQty": text(qty * price),
            "realizedPnl": text(realized), "side": order.side, "positionSide": "BOTH",
            "symbol": order.symbol, "time": now,
        }  # fmt: skip
        self.trades.append(trade)
        self._event_of(order, execution, trade)
        self._account(order.symbol)

    def _book(self, symbol: str, side: str, qty: Decimal, price: Decimal, now: int) -> Decimal:
        """Apply a trade to the position; returns the PnL it realized."""
        pos = self.positions[symbol]
        signed = qty if side == "BUY" else -qty
        realized = ZERO
        if pos.qty == 0 or (pos.qty > 0) == (signed > 0):
            total = abs(pos.qty) + qty
            pos.entry = (abs(pos.qty) * pos.entry + qty * price) / total
        else:
            closing = min(qty, abs(pos.qty))
            realized = closing * (price - pos.entry) * (1 if pos.qty > 0 else -1)
            if qty > abs(pos.qty):
                pos.entry = price
        pos.qty += signed
        if pos.qty == 0:
            pos.entry = ZERO
        pos.update_time = now
        return realized

    def _prune_reduce_only(self, symbol: str) -> None:
        """Expire reduce-only orders that can no longer reduce the position."""
        held = self.positions[symbol].qty
        for order in list(self.orders.values()):
            if (order.symbol == symbol and order.reduce_only and order.type == "LIMIT"
                    and order.status in ("NEW", "PARTIALLY_FILLED")
                    and (held == 0 or (held > 0) == (order.side == "BUY"))):  # fmt: skip
                self._end(order, "EXPIRED")

    def _end(self, order: FakeOrder, status: str) -> None:
        order.status, order.update_time = status, self.clock.now_ms()
        self._event_of(order, status)

    def _event_of(
        self, order: FakeOrder, execution: str, trade: Mapping[str, Any] | None = None
    ) -> None:
        self.outbox.append(order_event(order, execution, self.clock.now_ms(), trade))

    def _account(self, symbol: str) -> None:
        pos, now = self.positions[symbol], self.clock.now_ms()
        self.outbox.append(account_event(symbol, pos, self.wallet, self._upnl(symbol), now))

    # ------------------------------------------------------------------ checks
    def _check_reduce_only(self, symbol: str, side: str, qty: Decimal, reduce_only: bool) -> None:
        held = self.positions[symbol].qty
        if reduce_only and (held == 0 or (held > 0) == (side == "BUY") or qty > abs(held)):
            raise BinanceError(-2022, "ReduceOnly Order is rejected.")

    def _check_margin(
        self, symbol: str, side: str, qty: Decimal, price: Decimal, reduce_only: bool
    ) -> None:
        if reduce_only:
            return
        pos = self.positions[symbol]
        info = self.account_info()
        if qty * price / pos.leverage > Decimal(info["availableBalance"]):
            raise BinanceError(-2019, "Margin is insufficient.")

    def _symbol(self, p: Mapping[str, str]) -> str:
        symbol = _required(p, "symbol")
        if symbol not in self.rules:
            raise BinanceError(-1121, "Invalid symbol.")
        return symbol

    def _qty(self, symbol: str, p: Mapping[str, str]) -> Decimal:
        qty = Decimal(_required(p, "quantity"))
        if qty <= 0 or qty % self.rules[symbol].step:
            raise BinanceError(-1111, "Precision is over the maximum defined for this asset.")
        return qty

    def _price(self, symbol: str, value: str) -> Decimal:
        price = Decimal(value)
        if price <= 0 or price % self.rules[symbol].tick:
            raise BinanceError(-4014, "Price not increased by tick size.")
        return price

    def _tick(self, symbol: str, price: Decimal) -> Decimal:
        tick = self.rules[symbol].tick
        return (price / tick).to_integral_value(ROUND_HALF_EVEN) * tick

    def _upnl(self, symbol: str) -> Decimal:
        pos = self.positions[symbol]
        return pos.qty * (self.price(symbol) - pos.entry) if pos.qty else ZERO

    def _find(self, p: Mapping[str, str]) -> FakeOrder | None:
        symbol = self._symbol(p)
        order_id, client_id = p.get("orderId"), p.get("origClientOrderId")
        if order_id is None and client_id is None:
            raise BinanceError(-1102, _EITHER.format(a="origClientOrderId", b="orderId"))
        found = [
            o for o in self.orders.values()
            if o.symbol == symbol and (str(o.order_id) == order_id or o.client_id == client_id)
        ]  # fmt: skip
        return found[-1] if found else None

    def _find_algo(self, p: Mapping[str, str]) -> FakeAlgo | None:
        algo_id, client_id = p.get("algoId"), p.get("clientAlgoId")
        if algo_id is None and client_id is None:
            raise BinanceError(-1102, _EITHER.format(a="clientAlgoId", b="algoId"))
        found = [
            a for a in self.algos.values()
            if str(a.algo_id) == algo_id or a.client_id == client_id
        ]  # fmt: skip
        return found[-1] if found else None


_MANDATORY = "Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
_EITHER = "Param '{a}' or '{b}' must be sent, but both were empty/null!"


def _required(p: Mapping[str, str], name: str) -> str:
    value = p.get(name)
    if not value:
        raise BinanceError(-1102, _MANDATORY.format(name=name))
    return value


def _side(p: Mapping[str, str]) -> str:
    side = _required(p, "side")
    if side not in ("BUY", "SELL"):
        raise BinanceError(-1117, "Invalid side.")
    return side
