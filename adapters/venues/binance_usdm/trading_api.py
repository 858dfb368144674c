"""Binance USDⓈ-M's signed REST endpoints as typed calls (ccxt's implicit API methods, so the
venue's JSON is parsed here, to ``Decimal``, rather than through ccxt's float structures).

Every call but order placement retries transient failures (:class:`~.client.Retrying`; a
timestamp outside the receive window measures the clock offset again first). Placement is one
attempt: a lost answer must be looked up, not blindly repeated (see
:mod:`~adapters.venues.binance_usdm.execution`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from adapters.venues.binance_usdm.account_exchange import (
    UNKNOWN_ORDER,
    AccountExchange,
    VenueRefusal,
    VenueTimeSkew,
)
from adapters.venues.binance_usdm.account_wire import (
    MARGIN_TYPES,
    balance,
    positions,
    symbol_configs,
)
from adapters.venues.binance_usdm.client import Retrying, translated
from adapters.venues.binance_usdm.orders_wire import (
    VenueOrder,
    VenueTrade,
    algo_view,
    order_view,
    user_trade,
)
from adapters.venues.binance_usdm.venue_account import margin_report
from domain.futures import MarginReport
from domain.margin import MarginMode
from domain.model import Position
from domain.ports import Balance, Clock

T = TypeVar("T")

NO_MARGIN_CHANGE = -4046
"""Binance's "No need to change margin type." (the margin type is already the one asked)."""


class TradingApi:
    """The account's REST calls.

    Parameters
    ----------
    exchange:
        The signed ccxt exchange.
    call:
        Runs a call with retries of transient failures.
    clock:
        Our time (ms UTC), for measuring the venue's clock offset.
    """

    def __init__(self, exchange: AccountExchange, call: Retrying, clock: Clock) -> None:
        self.exchange = exchange
        self._call = call
        self._clock = clock

    async def sync_time(self) -> int:
        """Measure the venue's clock offset (its time minus the midpoint of our request's send
        and receive times, ms), stamp later requests with it and return it."""
        sent = self._clock.now_ms()
        answer = await self._call(self.exchange.fapiPublicGetTime)
        received = self._clock.now_ms()
        self.exchange.offset_ms = int(answer["serverTime"]) - (sent + received) // 2
        return self.exchange.offset_ms

    async def place(self, params: dict[str, str]) -> VenueOrder:
        """``POST /fapi/v1/order``, once."""
        return order_view(await translated(lambda: self.exchange.fapiPrivatePostOrder(params)))

    async def place_algo(self, params: dict[str, str]) -> VenueOrder:
        """``POST /fapi/v1/algoOrder``, once."""
        answer = await translated(lambda: self.exchange.fapiPrivatePostAlgoOrder(params))
        return algo_view(answer)

    async def order(self, symbol: str, client_id: str) -> VenueOrder | None:
        """``GET /fapi/v1/order`` by client id; None when the venue has no such order."""
        request = {"symbol": symbol, "origClientOrderId": client_id}
        return await self._found(lambda: self.exchange.fapiPrivateGetOrder(request), order_view)

    async def algo(self, client_id: str) -> VenueOrder | None:
        """``GET /fapi/v1/algoOrder`` by client id, with its market order's state once it has
        triggered; None when the venue has no such algo order."""
        answer = await self._found(
            lambda: self.exchange.fapiPrivateGetAlgoOrder({"clientAlgoId": client_id}), dict
        )
        if answer is None:
            return None
        actual = str(answer.get("actualOrderId") or "")
        if not actual:
            return algo_view(answer)
        request = {"symbol": str(answer.get("symbol")), "orderId": actual}
        triggered = await self._found(
            lambda: self.exchange.fapiPrivateGetOrder(request), order_view
        )
        return algo_view(answer, triggered)

    async def cancel(self, symbol: str, client_id: str) -> VenueOrder:
        """``DELETE /fapi/v1/order``: the order as canceled."""
        request = {"symbol": symbol, "origClientOrderId": client_id}
        return order_view(await self._run(lambda: self.exchange.fapiPrivateDeleteOrder(request)))

    async def cancel_algo(self, client_id: str) -> None:
        """``DELETE /fapi/v1/algoOrder``."""
        await self._run(
            lambda: self.exchange.fapiPrivateDeleteAlgoOrder({"clientAlgoId": client_id})
        )

    async def amend(self, params: dict[str, str]) -> VenueOrder:
        """``PUT /fapi/v1/order`` (price and quantity of a limit order)."""
        return order_view(await self._run(lambda: self.exchange.fapiPrivatePutOrder(params)))

    async def open_orders(self, symbol: str | None) -> list[VenueOrder]:
        """``GET /fapi/v1/openOrders`` and ``GET /fapi/v1/openAlgoOrders`` (all symbols, or
        one), oldest first."""
        request = {} if symbol is None else {"symbol": symbol}
        plain = await self._run(lambda: self.exchange.fapiPrivateGetOpenOrders(request))
        algos = await self._run(lambda: self.exchange.fapiPrivateGetOpenAlgoOrders(request))
        views = [order_view(o) for o in plain] + [algo_view(a) for a in algos]
        return sorted(views, key=lambda v: (v.created, v.venue_order_id))

    async def trades(self, symbol: str, venue_order_id: str) -> list[VenueTrade]:
        """``GET /fapi/v1/userTrades`` of one order."""
        request = {"symbol": symbol, "orderId": venue_order_id}
        rows = await self._run(lambda: self.exchange.fapiPrivateGetUserTrades(request))
        return [user_trade(row) for row in rows]

    async def trades_since(self, symbol: str, since: int) -> list[VenueTrade]:
        """``GET /fapi/v1/userTrades`` of ``symbol`` from ``since`` (ms UTC) on, oldest first
        (the venue answers at most 1000 and 7 days)."""
        request = {"symbol": symbol, "startTime": str(since), "limit": "1000"}
        rows = await self._run(lambda: self.exchange.fapiPrivateGetUserTrades(request))
        trades = [user_trade(row) for row in rows]
        return sorted((t for t in trades if t.time >= since), key=lambda t: int(t.trade_id))

    async def order_by_id(self, symbol: str, venue_order_id: str) -> VenueOrder | None:
        """``GET /fapi/v1/order`` by the venue's order id; None when it has no such order."""
        request = {"symbol": symbol, "orderId": venue_order_id}
        return await self._found(lambda: self.exchange.fapiPrivateGetOrder(request), order_view)

    async def positions(self) -> list[Position]:
        """``GET /fapi/v3/positionRisk``: the non-flat positions."""
        return positions(await self._run(self.exchange.fapiPrivateV3GetPositionRisk))

    async def balance(self, asset: str) -> Balance:
        """``GET /fapi/v3/account``: ``asset``'s wallet and margin balance."""
        return balance(await self._run(self.exchange.fapiPrivateV3GetAccount), asset)

    async def margin_report(self) -> MarginReport:
        """``GET /fapi/v3/account``: the account's balance breakdown (see
        :func:`~adapters.venues.binance_usdm.venue_account.margin_report`)."""
        return margin_report(await self._run(self.exchange.fapiPrivateV3GetAccount))

    async def symbol_configs(self) -> dict[str, tuple[int, MarginMode]]:
        """``GET /fapi/v1/symbolConfig``: leverage and margin mode per symbol."""
        return symbol_configs(await self._run(self.exchange.fapiPrivateGetSymbolConfig))

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        """``POST /fapi/v1/leverage``."""
        request = {"symbol": symbol, "leverage": str(leverage)}
        await self._run(lambda: self.exchange.fapiPrivatePostLeverage(request))

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        """``POST /fapi/v1/marginType``; already in ``mode`` is no failure."""
        request = {"symbol": symbol, "marginType": MARGIN_TYPES[mode]}
        try:
            await self._run(lambda: self.exchange.fapiPrivatePostMarginType(request))
        except VenueRefusal as exc:
            if exc.venue_code != NO_MARGIN_CHANGE:
                raise

    async def _run(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call`` with retries; a timestamp outside the window measures the offset first."""
        try:
            return await self._call(call)
        except VenueTimeSkew:
            await self.sync_time()
            return await self._call(call)

    async def _found(
        self, call: Callable[[], Awaitable[Any]], parse: Callable[[Any], T]
    ) -> T | None:
        try:
            answer = await self._run(call)
        except VenueRefusal as exc:
            if exc.venue_code in UNKNOWN_ORDER:
                return None
            raise
        return parse(answer)
