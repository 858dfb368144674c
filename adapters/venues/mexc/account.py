"""The signed side of MEXC futures: the account's REST calls and its private websocket.

:class:`AccountExchange` is the market-data :class:`~.client.MexcExchange` whose private
websocket pushes (after ccxt.pro's ``login`` on ``/edge``: ``rs.login``,
``push.personal.order``, ``push.personal.order.deal``, ``push.personal.plan.order``) are handed
raw to a listener instead of ccxt's parsers (ccxt.pro's ``watch_orders`` for swaps only keeps
the connection open; it resolves nothing). MEXC has no position push: positions are polled.

:class:`AccountApi` makes the REST calls through ccxt's implicit contract endpoints, with the
retrying call of :mod:`~.client`, and returns :mod:`~.orders_wire` values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from adapters.venues.binance_usdm.orders_wire import VenueOrder, VenueTrade
from adapters.venues.budget import VenueBudget
from adapters.venues.mexc.capabilities import VENUE
from adapters.venues.mexc.client import MexcExchange, Retrying, translated
from adapters.venues.mexc.errors import VenueRefused
from adapters.venues.mexc.market_data import Contract
from adapters.venues.mexc.orders_wire import (
    balance,
    deal,
    order_view,
    plan_matches,
    position,
)
from adapters.venues.mexc.settings import MexcSettings
from domain.errors import DataError, UnknownSymbol
from domain.model import Position
from domain.ports import Balance, Clock

PrivateListener = Callable[[dict[str, Any]], None]
"""Called with each raw private push (and ``rs.login``), on ccxt's event loop."""

PRIVATE_CHANNELS = frozenset(
    {"rs.login", "push.personal.order", "push.personal.order.deal", "push.personal.plan.order"}
)
ORDER_NOT_FOUND_CODES = frozenset({2040, 2041})
"""MEXC's "order not exist" (and "order state cannot be cancelled", for a cancel)."""


class AccountExchange(MexcExchange):
    """ccxt.pro's mexc with an API key, handing private pushes to ``on_private`` (``budget``:
    the venue's shared request budget, as :class:`~.client.MexcExchange`'s)."""

    def __init__(
        self,
        settings: MexcSettings,
        *,
        clock: Clock,
        on_private: PrivateListener,
        budget: VenueBudget | None = None,
    ) -> None:
        super().__init__(settings, clock=clock, on_kline=lambda message: None, budget=budget)
        self._on_private = on_private

    def handle_message(self, client: Any, message: Any) -> None:
        """A private push to the listener; anything else as ccxt handles it."""
        if isinstance(message, dict) and message.get("channel") in PRIVATE_CHANNELS:
            self._on_private(message)
            return
        super().handle_message(client, message)


class AccountApi:
    """The account's REST calls (every one retried on transient errors by ``call``).

    Parameters
    ----------
    exchange:
        The connected exchange (markets loaded).
    call:
        Runs a call with ccxt's errors translated and transient ones retried.
    contracts:
        The traded contracts by our symbol (``BTCUSDT``).
    secrets:
        The key and secret, redacted from error messages.
    """

    def __init__(
        self,
        exchange: AccountExchange,
        call: Retrying,
        contracts: Mapping[str, Contract],
        secrets: Sequence[str] = (),
    ) -> None:
        self.exchange = exchange
        self._secrets = tuple(secrets)
        self._call = call
        self.contracts = dict(contracts)
        self._by_id = {c.id: c for c in contracts.values()}

    def contract(self, symbol: str) -> Contract:
        """The contract of our ``symbol``.

        Raises
        ------
        UnknownSymbol
            A symbol this client does not trade.
        """
        try:
            return self.contracts[symbol]
        except KeyError:
            raise UnknownSymbol(
                f"{symbol!r} is not traded by this client", field="symbol"
            ) from None

    def by_venue_id(self, venue_id: str) -> Contract | None:
        """The contract MEXC names ``venue_id`` (``BTC_USDT``), None when not traded here."""
        return self._by_id.get(venue_id)

    async def _data(self, method: Callable[..., Any], params: Any) -> Any:
        answer = await self._call(lambda: method(params))
        return answer.get("data") if isinstance(answer, Mapping) else None

    async def place(self, params: dict[str, Any]) -> str:
        """``order/create`` once (no retry: a lost answer is settled by a lookup); the
        venue's order id."""
        method = self.exchange.contract_private_post_order_create
        answer = await translated(lambda: method(params), self._secrets)
        return str(answer["data"])

    async def place_plan(self, params: dict[str, Any]) -> str:
        """``planorder/place`` once (no retry); the plan order's id."""
        method = self.exchange.contract_private_post_planorder_place
        answer = await translated(lambda: method(params), self._secrets)
        return str(answer["data"])

    async def order(self, symbol: str, client_id: str) -> VenueOrder | None:
        """``order/external/{symbol}/{externalOid}``: the order, None when MEXC has none."""
        contract = self.contract(symbol)
        method = self.exchange.contract_private_get_order_external_symbol_external_oid
        try:
            data = await self._data(method, {"symbol": contract.id, "external_oid": client_id})
        except VenueRefused as exc:
            if exc.venue_code in ORDER_NOT_FOUND_CODES:
                return None
            raise
        return None if not data else order_view(data, contract)

    async def plans(self, symbol: str, states: str = "1,2,3,4,5") -> list[dict[str, Any]]:
        """``planorder/list/orders`` of ``symbol`` in ``states`` (raw: their client ids are
        ours to supply)."""
        contract = self.contract(symbol)
        params = {"symbol": contract.id, "states": states, "page_num": 1, "page_size": 100}
        data = await self._data(self.exchange.contract_private_get_planorder_list_orders, params)
        return _rows(data, "mexc plan orders")

    async def plan(self, symbol: str, plan_id: str) -> dict[str, Any] | None:
        """The plan order ``plan_id`` (raw), None when MEXC lists none."""
        return next((p for p in await self.plans(symbol) if str(p.get("id")) == plan_id), None)

    async def find_plan(
        self, params: Mapping[str, Any], since_ms: int, taken: Sequence[str]
    ) -> dict[str, Any] | None:
        """The plan order ``params`` placed at or after ``since_ms`` (venue time), not one of
        ``taken`` (plan ids already ours): a plan order carries no client id."""
        contract = self._by_id[str(params["symbol"])]
        for plan in await self.plans(contract.symbol):
            if str(plan.get("id")) not in taken and plan_matches(plan, params, since_ms):
                return plan
        return None

    async def cancel(self, symbol: str, client_id: str) -> None:
        """``order/cancel_with_external``.

        Raises
        ------
        VenueRefused
            The venue refused (the order is not working: 2040, 2041).
        """
        contract = self.contract(symbol)
        method = self.exchange.contract_private_post_order_cancel_with_external
        await self._call(lambda: method({"symbol": contract.id, "externalOid": client_id}))

    async def cancel_plan(self, symbol: str, plan_id: str) -> None:
        """``planorder/cancel`` of one plan order."""
        contract = self.contract(symbol)
        method = self.exchange.contract_private_post_planorder_cancel
        await self._call(lambda: method([{"symbol": contract.id, "orderId": plan_id}]))

    async def open_orders(self, symbol: str | None) -> list[VenueOrder]:
        """Working orders (``order/list/open_orders/{symbol}``) of one or every traded
        contract, oldest first."""
        views: list[VenueOrder] = []
        for contract in [self.contract(symbol)] if symbol else self.contracts.values():
            params = {"symbol": contract.id, "page_num": 1, "page_size": 100}
            method = self.exchange.contract_private_get_order_list_open_orders_symbol
            rows = _rows(await self._data(method, params), "mexc open orders")
            views += [order_view(row, contract) for row in rows]
        return sorted(views, key=lambda v: v.created)

    async def trades(self, symbol: str, venue_order_id: str) -> list[VenueTrade]:
        """The fills of one order (``order/deal_details/{order_id}``)."""
        contract = self.contract(symbol)
        method = self.exchange.contract_private_get_order_deal_details_order_id
        rows = _rows(await self._data(method, {"order_id": venue_order_id}), "mexc deals")
        return [deal(row, contract) for row in rows]

    async def order_by_id(self, symbol: str, venue_order_id: str) -> VenueOrder | None:
        """``order/get/{order_id}``: the order MEXC numbers ``venue_order_id``, None when it
        has none."""
        contract = self.contract(symbol)
        method = self.exchange.contract_private_get_order_get_order_id
        try:
            data = await self._data(method, {"order_id": venue_order_id})
        except VenueRefused as exc:
            if exc.venue_code in ORDER_NOT_FOUND_CODES:
                return None
            raise
        return None if not data else order_view(data, contract)

    async def trades_since(self, symbol: str, since: int, until: int) -> list[VenueTrade]:
        """The account's fills in ``symbol`` from ``since`` to ``until`` (ms UTC;
        ``order/list/order_deals``, one page of 100: a reconciliation's window is short)."""
        contract = self.contract(symbol)
        params = {
            "symbol": contract.id, "start_time": since, "end_time": until,
            "page_num": 1, "page_size": 100,
        }  # fmt: skip
        method = self.exchange.contract_private_get_order_list_order_deals
        rows = _rows(await self._data(method, params), "mexc deals")
        return [deal(row, contract) for row in rows]

    async def leverage(self, symbol: str) -> list[tuple[int, int]]:
        """``position/leverage``: ``symbol``'s (leverage, ``openType``) of each position side
        (long and short)."""
        contract = self.contract(symbol)
        method = self.exchange.contract_private_get_position_leverage
        rows = _rows(await self._data(method, {"symbol": contract.id}), "mexc leverage")
        source = f"{VENUE} {contract.id} leverage"
        try:
            return [(int(row["leverage"]), int(row["openType"])) for row in rows]
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"expected leverage and openType, got {rows!r:.200}", source=source
            ) from None

    async def set_leverage(self, symbol: str, leverage: int, open_type: int) -> None:
        """``position/change_leverage`` of both position sides (long 1, short 2) of
        ``symbol``, with margin mode ``open_type`` (1 isolated, 2 cross).

        Raises
        ------
        VenueRefused
            MEXC refused (a leverage above the contract's maximum, a margin mode change while
            a position is open).
        """
        contract = self.contract(symbol)
        method = self.exchange.contract_private_post_position_change_leverage
        for side in (1, 2):
            params = {
                "symbol": contract.id, "leverage": leverage, "openType": open_type,
                "positionType": side,
            }  # fmt: skip
            await self._call(lambda params=params: method(params))

    async def positions(self) -> list[Position]:
        """Every open position in a traded contract (``position/open_positions``)."""
        method = self.exchange.contract_private_get_position_open_positions
        rows = _rows(await self._data(method, {}), "mexc positions")
        found = []
        for row in rows:
            contract = self.by_venue_id(str(row.get("symbol")))
            if contract is not None:
                found.append(position(row, contract))
        return [p for p in found if p.qty != 0]

    async def balance(self, asset: str) -> Balance:
        """``asset``'s balance (``account/assets``)."""
        method = self.exchange.contract_private_get_account_assets
        return balance(await self._data(method, {}), asset)


def _rows(data: Any, source: str) -> list[dict[str, Any]]:
    if isinstance(data, Mapping):  # a page: {"resultList": [...]} on some endpoints
        data = data.get("resultList", [])
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"expected a list of objects, got {data!r:.200}", source=source)
    return data
