"""The fake MEXC's contract account: orders, plan orders, fills, one-way positions and the
USDT balance, in MEXC's wire format (see :mod:`tests.venues.mexc_fake` for the transport).

REST (signed; ``{"success": true, "code": 0, "data": ...}`` or a refusal in a 200 answer):
``order/create`` (answer: the order id; a repeated ``externalOid`` answers the existing order's
id, as MEXC's batch endpoint documents), ``order/external/{symbol}/{externalOid}``,
``order/cancel_with_external``, ``order/list/open_orders/{symbol}``,
``order/deal_details/{order_id}``, ``planorder/place`` (answer: the plan id),
``planorder/list/orders``, ``planorder/cancel``, ``position/open_positions``,
``account/assets``; ``order/get/{order_id}``, ``order/list/order_deals`` (a contract's fills
from ``start_time`` to ``end_time``, ms), ``position/leverage`` (a contract's leverage and
``openType`` per position side; 20x cross until changed) and ``position/change_leverage``
(``symbol``, ``leverage``, ``openType``, ``positionType``), ``position/funding_records`` (the
funding :meth:`ContractBook.settle_funding` charged, a contract's, newest first, in pages of
``page_num``/``page_size``). Refusal codes the fake chooses
where MEXC documents none: 2040 "order not exist" (lookup, cancel), 2041 "order state cannot
be cancelled", 2009 for a reduce-only order larger than the position it closes, 2019 for a
margin mode change while the contract holds a position; 2006 ("Leverage ratio error", MEXC's
documented code) for a leverage above :attr:`ContractBook.max_leverage`.

Matching: a market order, and a limit order that crosses :meth:`ContractBook.price` (the open of
the bar forming now unless set), fill whole at once at that price (taker, fee 0.02 %); a post-only
order that would cross, and an IOC or FOK one that does not, is cancelled (state 4) unfilled;
other limit orders rest until :meth:`ContractBook.fill` (maker, no fee). A plan order waits for
:meth:`ContractBook.trigger`, which places its market order (no ``externalOid``) and fills it.

Private pushes go to every logged-in websocket, before the REST answer of the request that
made them (as a fast venue's can): ``push.personal.order`` (the order's whole state),
``push.personal.order.deal`` (one fill; it names the order by ``orderId`` only) and
``push.personal.plan.order``.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

TAKER_FEE = Decimal("0.0002")
START_CASH = Decimal(10_000)
PRIVATE = "/api/v1/private"

Push = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class _Order:
    order_id: str
    symbol: str
    side: int
    kind: int  # 1 limit, 2 post only, 3 IOC, 4 FOK, 5 market
    vol: Decimal
    price: Decimal
    external_oid: str
    created: int
    state: int = 2
    deal_vol: Decimal = Decimal(0)
    deal_value: Decimal = Decimal(0)
    updated: int = 0

    def wire(self) -> dict[str, Any]:
        avg = self.deal_value / self.deal_vol if self.deal_vol else Decimal(0)
        return {
            "orderId": self.order_id, "symbol": self.symbol, "positionId": 0,
            "price": float(self.price), "vol": float(self.vol), "leverage": 0,
            "side": self.side, "category": 1, "orderType": self.kind,
            "dealAvgPrice": float(avg), "dealVol": float(self.deal_vol), "orderMargin": 0,
            "takerFee": 0, "makerFee": 0, "profit": 0, "feeCurrency": "USDT", "openType": 2,
            "state": self.state, "externalOid": self.external_oid, "errorCode": 0,
            "usedMargin": 0, "createTime": self.created, "updateTime": self.updated,
        }  # fmt: skip


@dataclass
class _Plan:
    plan_id: str
    body: dict[str, Any]
    created: int
    state: int = 1
    order_id: str | None = None
    updated: int = 0

    def wire(self) -> dict[str, Any]:
        b = self.body
        return {
            "id": self.plan_id, "symbol": b["symbol"], "leverage": 0, "side": b["side"],
            "triggerPrice": b["triggerPrice"], "price": 0, "vol": b["vol"],
            "openType": b["openType"], "triggerType": b["triggerType"], "state": self.state,
            "executeCycle": 168, "trend": b["trend"], "orderType": b["orderType"],
            "orderId": self.order_id or 0, "errorCode": 0, "createTime": self.created,
            "updateTime": self.updated,
        }  # fmt: skip


@dataclass
class _Position:
    vol: Decimal = Decimal(0)  # signed contracts: long > 0
    avg: Decimal = Decimal(0)
    created: int = 0


@dataclass
class ContractBook:
    """The account behind the fake's private endpoints.

    Attributes
    ----------
    submitted:
        ``order/create`` requests that reached the book, by ``externalOid``.
    orders, plans:
        Every order and plan order, by id.
    lose_answers:
        How many next ``order/create`` / ``planorder/place`` requests are carried out and then
        answered 504 (the answer lost after the venue acted).
    """

    now: Callable[[], int]
    last_price: Callable[[str], Decimal]
    sizes: dict[str, Decimal]
    push: Push
    submitted: Counter[str] = field(default_factory=Counter)
    orders: dict[str, _Order] = field(default_factory=dict)
    plans: dict[str, _Plan] = field(default_factory=dict)
    deals: list[dict[str, Any]] = field(default_factory=list)
    positions: dict[str, _Position] = field(default_factory=dict)
    cash: Decimal = START_CASH
    prices: dict[str, Decimal] = field(default_factory=dict)
    lose_answers: int = 0
    leverage: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    """(contract, positionType 1 long / 2 short): (leverage, openType); absent: 20x cross."""
    max_leverage: int = 125
    """The highest leverage ``position/change_leverage`` takes (above: code 2006)."""
    funding: list[dict[str, Any]] = field(default_factory=list)
    """``position/funding_records`` rows, oldest first."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(700_000_001))

    def routes(self, endpoint: Callable[..., Any]) -> list[Route]:
        """The private routes, each wrapped by ``endpoint(handler, method, places)`` (faults,
        signature checks; ``places``: it places an order)."""
        p = PRIVATE
        return [
            Route(f"{p}/order/external/{{symbol}}/{{oid}}", endpoint(self._external, "GET")),
            Route(f"{p}/order/cancel_with_external", endpoint(self._cancel, "POST"),
                  methods=["POST"]),
            Route(f"{p}/order/list/open_orders/{{symbol}}", endpoint(self._open, "GET")),
            Route(f"{p}/order/deal_details/{{order_id}}", endpoint(self._deals, "GET")),
            Route(f"{p}/planorder/place", endpoint(self._place_plan, "POST", True),
                  methods=["POST"]),
            Route(f"{p}/planorder/list/orders", endpoint(self._plans, "GET")),
            Route(f"{p}/planorder/cancel", endpoint(self._cancel_plan, "POST"), methods=["POST"]),
            Route(f"{p}/position/open_positions", endpoint(self._positions, "GET")),
            Route(f"{p}/order/get/{{order_id}}", endpoint(self._order, "GET")),
            Route(f"{p}/order/list/order_deals", endpoint(self._symbol_deals, "GET")),
            Route(f"{p}/position/leverage", endpoint(self._leverage, "GET")),
            Route(f"{p}/position/change_leverage", endpoint(self._change_leverage, "POST"),
                  methods=["POST"]),
            Route(f"{p}/position/funding_records", endpoint(self._funding_records, "GET")),
        ]  # fmt: skip

    # ----------------------------------------------------------------- test controls

    def price(self, symbol: str) -> Decimal:
        """The market price of ``symbol`` (set in :attr:`prices`, else the open of the bar forming
        now)."""
        return self.prices.get(symbol) or self.last_price(symbol)

    def by_external(self, external_oid: str) -> _Order | None:
        """The order placed with ``external_oid``."""
        return next((o for o in self.orders.values() if o.external_oid == external_oid), None)

    async def fill(self, external_oid: str, vol: Decimal | None = None) -> None:
        """Fill a resting order (``vol`` contracts, default all that is left) at its price."""
        order = self.by_external(external_oid)
        assert order is not None and order.state == 2
        await self._fill(order, vol or order.vol - order.deal_vol, order.price, taker=False)

    async def trigger(self, plan_id: str) -> None:
        """Trigger an untriggered plan order: its market order is placed and filled."""
        plan = self.plans[plan_id]
        assert plan.state == 1
        b = plan.body
        order = self._new(b["symbol"], b["side"], 5, Decimal(str(b["vol"])), Decimal(0), "")
        plan.state, plan.order_id, plan.updated = 3, order.order_id, self.now()
        await self.push({"channel": "push.personal.plan.order", "data": plan.wire()})
        await self._push_order(order)
        await self._fill(order, order.vol, self.price(order.symbol), taker=True)

    # ----------------------------------------------------------------- order entry

    async def create(self, body: dict[str, Any]) -> tuple[int, Any]:
        """``order/create`` after the transport's checks: (MEXC code, data or message)."""
        oid = str(body.get("externalOid") or "")
        self.submitted[oid] += 1
        existing = self.by_external(oid) if oid else None
        if existing is not None:
            return 0, existing.order_id
        symbol, side, vol = body["symbol"], int(body["side"]), Decimal(str(body["vol"]))
        if side in (2, 4) and self._closable(symbol, side) < vol:
            return 2009, "Insufficient close position"
        kind = int(body["type"])
        price = Decimal(str(body.get("price", 0)))
        order = self._new(symbol, side, kind, vol, price if kind != 5 else Decimal(0), oid)
        await self._push_order(order)
        market = self.price(symbol)
        buy = side in (1, 2)
        crosses = kind == 5 or (price >= market if buy else price <= market)
        if crosses and kind != 2:
            await self._fill(order, vol, market, taker=True)
        elif crosses or kind in (3, 4):  # post only would take; IOC/FOK cannot
            order.state, order.updated = 4, self.now()
            await self._push_order(order)
        return 0, order.order_id

    def _closable(self, symbol: str, side: int) -> Decimal:
        held = self.positions.get(symbol, _Position()).vol
        return max(-held, Decimal(0)) if side == 2 else max(held, Decimal(0))

    def _new(
        self, symbol: str, side: int, kind: int, vol: Decimal, price: Decimal, oid: str
    ) -> _Order:
        order_id = str(next(self._ids))
        now = self.now()
        order = _Order(order_id, symbol, side, kind, vol, price, oid, now, updated=now)
        self.orders[order_id] = order
        return order

    async def _push_order(self, order: _Order) -> None:
        await self.push({"channel": "push.personal.order", "data": order.wire()})

    async def _fill(self, order: _Order, vol: Decimal, price: Decimal, *, taker: bool) -> None:
        size = self.sizes[order.symbol]
        fee = vol * size * price * TAKER_FEE if taker else Decimal(0)
        order.deal_vol += vol
        order.deal_value += vol * price
        order.updated = self.now()
        if order.deal_vol >= order.vol:
            order.state = 3
        self._book_position(order.symbol, vol if order.side in (1, 2) else -vol, price)
        self.cash -= fee
        trade = {
            "id": str(next(self._ids)), "symbol": order.symbol, "side": order.side,
            "vol": float(vol), "price": float(price), "feeCurrency": "USDT", "fee": float(fee),
            "timestamp": self.now(), "profit": 0, "category": 1, "orderId": order.order_id,
            "taker": taker, "positionMode": 2,
        }  # fmt: skip
        self.deals.append(trade)
        await self.push({"channel": "push.personal.order.deal", "data": trade})
        await self._push_order(order)

    def _book_position(self, symbol: str, signed: Decimal, price: Decimal) -> None:
        pos = self.positions.setdefault(symbol, _Position())
        size = self.sizes[symbol]
        if pos.vol == 0 or (pos.vol > 0) == (signed > 0):
            total = pos.vol + signed
            pos.avg = (pos.avg * abs(pos.vol) + price * abs(signed)) / abs(total)
            pos.created = pos.created if pos.vol else self.now()
            pos.vol = total
            return
        closed = min(abs(signed), abs(pos.vol))
        direction = 1 if pos.vol > 0 else -1
        self.cash += closed * size * (price - pos.avg) * direction
        pos.vol += signed
        if pos.vol == 0:
            pos.avg = Decimal(0)
        elif (pos.vol > 0) != (direction > 0):  # flipped: the rest opens at this price
            pos.avg, pos.created = price, self.now()

    # ----------------------------------------------------------------- endpoints

    async def _external(self, request: Request, body: Any) -> tuple[int, Any]:
        order = self.by_external(request.path_params["oid"])
        if order is None or order.symbol != request.path_params["symbol"]:
            return 2040, "order not exist"
        return 0, order.wire()

    async def _cancel(self, request: Request, body: Any) -> tuple[int, Any]:
        order = self.by_external(str(body.get("externalOid")))
        if order is None or order.symbol != body.get("symbol"):
            return 2040, "order not exist"
        if order.state != 2:
            return 2041, "order state cannot be cancelled"
        order.state, order.updated = 4, self.now()
        await self._push_order(order)
        return 0, None

    async def _open(self, request: Request, body: Any) -> tuple[int, Any]:
        symbol = request.path_params["symbol"]
        working = [o.wire() for o in self.orders.values() if o.symbol == symbol and o.state < 3]
        return 0, working

    async def _deals(self, request: Request, body: Any) -> tuple[int, Any]:
        order_id = request.path_params["order_id"]
        return 0, [d for d in self.deals if d["orderId"] == order_id]

    async def _order(self, request: Request, body: Any) -> tuple[int, Any]:
        order = self.orders.get(request.path_params["order_id"])
        return (2040, "order not exist") if order is None else (0, order.wire())

    async def _symbol_deals(self, request: Request, body: Any) -> tuple[int, Any]:
        q = request.query_params
        start, end = int(q.get("start_time", 0)), int(q.get("end_time", 2**62))
        found = [
            d for d in self.deals
            if d["symbol"] == q.get("symbol") and start <= d["timestamp"] <= end
        ]  # fmt: skip
        return 0, found

    def setting(self, symbol: str, position_type: int) -> tuple[int, int]:
        """(leverage, openType) of ``symbol``'s long (1) or short (2) side."""
        return self.leverage.get((symbol, position_type), (20, 2))

    async def _leverage(self, request: Request, body: Any) -> tuple[int, Any]:
        symbol = request.query_params.get("symbol", "")
        rows = []
        for side in (1, 2):
            leverage, open_type = self.setting(symbol, side)
            rows.append({
                "level": 1, "maxVol": 525000, "mmr": 0.004, "imr": 1 / leverage,
                "positionType": side, "openType": open_type, "leverage": leverage,
                "limitBySys": False, "currentMmr": 0.004,
            })  # fmt: skip
        return 0, rows

    async def _change_leverage(self, request: Request, body: Any) -> tuple[int, Any]:
        symbol, side = str(body["symbol"]), int(body["positionType"])
        open_type = int(body["openType"])
        if int(body["leverage"]) > self.max_leverage:
            return 2006, "Leverage ratio error"
        held = self.positions.get(symbol, _Position()).vol != 0
        if held and open_type != self.setting(symbol, side)[1]:
            return 2019, "There is an open position, the margin mode cannot be changed"
        self.leverage[(symbol, side)] = (int(body["leverage"]), open_type)
        return 0, None

    async def _place_plan(self, request: Request, body: Any) -> tuple[int, Any]:
        side, vol = int(body["side"]), Decimal(str(body["vol"]))
        if side in (2, 4) and self._closable(body["symbol"], side) < vol:
            return 2009, "Insufficient close position"
        plan = _Plan(str(next(self._ids)), body, self.now(), updated=self.now())
        self.plans[plan.plan_id] = plan
        await self.push({"channel": "push.personal.plan.order", "data": plan.wire()})
        return 0, plan.plan_id

    async def _plans(self, request: Request, body: Any) -> tuple[int, Any]:
        q = request.query_params
        states = {int(s) for s in q.get("states", "1,2,3,4,5").split(",")}
        found = [
            p.wire() for p in self.plans.values()
            if p.state in states and p.body["symbol"] == q.get("symbol", p.body["symbol"])
        ]  # fmt: skip
        return 0, found

    async def _cancel_plan(self, request: Request, body: Any) -> tuple[int, Any]:
        for item in body:
            plan = self.plans.get(str(item.get("orderId")))
            if plan is None:
                return 2040, "order not exist"
            if plan.state != 1:
                return 2041, "order state cannot be cancelled"
            plan.state, plan.updated = 2, self.now()
            await self.push({"channel": "push.personal.plan.order", "data": plan.wire()})
        return 0, None

    async def _positions(self, request: Request, body: Any) -> tuple[int, Any]:
        rows = []
        for symbol, pos in self.positions.items():
            if pos.vol != 0:
                side = 1 if pos.vol > 0 else 2
                leverage, open_type = self.setting(symbol, side)
                rows.append({
                    "positionId": 1, "symbol": symbol, "positionType": side,
                    "openType": open_type, "state": 1, "holdVol": float(abs(pos.vol)),
                    "frozenVol": 0, "closeVol": 0, "holdAvgPrice": float(pos.avg),
                    "openAvgPrice": float(pos.avg), "closeAvgPrice": 0, "liquidatePrice": 0,
                    "oim": 0, "im": 0, "holdFee": 0, "realised": 0, "leverage": leverage,
                    "createTime": pos.created, "updateTime": self.now(), "autoAddIm": False,
                })  # fmt: skip
        return 0, rows

    def settle_funding(self, symbol: str, time_ms: int, rate: Decimal, mark: Decimal) -> None:
        """Charge ``symbol``'s position funding at ``rate`` and ``mark`` at ``time_ms`` (ms
        UTC; stamped 7 ms late, as a venue's settlement is): the cash moves by MEXC's
        ``funding`` (received; negative: paid, ``−position value × rate`` for a long)."""
        pos = self.positions.get(symbol, _Position())
        if pos.vol == 0:
            return
        value = abs(pos.vol) * self.sizes[symbol] * mark
        received = -(value if pos.vol > 0 else -value) * rate
        self.cash += received
        self.funding.append({
            "id": len(self.funding) + 7_423_910, "symbol": symbol,
            "positionType": 1 if pos.vol > 0 else 2, "positionValue": float(value),
            "funding": float(received), "rate": float(rate), "settleTime": time_ms + 7,
        })  # fmt: skip

    async def _funding_records(self, request: Request, body: Any) -> tuple[int, Any]:
        q = request.query_params
        rows = [r for r in reversed(self.funding) if r["symbol"] == q.get("symbol", r["symbol"])]
        page, size = int(q.get("page_num", 1)), int(q.get("page_size", 20))
        return 0, {
            "pageSize": size, "totalCount": len(rows), "totalPage": -(-len(rows) // size),
            "currentPage": page, "resultList": rows[(page - 1) * size : page * size],
        }  # fmt: skip

    def assets(self) -> list[dict[str, Any]]:
        """``account/assets``: USDT with the cash and the positions' PnL at the market."""
        unrealized = sum(
            (p.vol * self.sizes[s] * (self.price(s) - p.avg) for s, p in self.positions.items()),
            Decimal(0),
        )
        equity = self.cash + unrealized
        return [{
            "currency": "USDT", "positionMargin": 0, "availableBalance": float(equity),
            "cashBalance": float(self.cash), "frozenBalance": 0, "equity": float(equity),
            "unrealized": float(unrealized), "bonus": 0,
        }]  # fmt: skip


def json_body(raw: str) -> Any:
    """A request's JSON body (None when empty)."""
    return json.loads(raw) if raw else None
