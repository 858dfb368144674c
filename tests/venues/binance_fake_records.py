"""The fake Binance USDⓈ-M's records (orders, algo orders, positions) and their JSON as the
venue writes it: REST answers and the user-data stream's events (Binance's documented field
names: ``ORDER_TRADE_UPDATE``, ``ALGO_UPDATE``, ``ACCOUNT_UPDATE``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)


class BinanceError(Exception):
    """An error answer: HTTP ``status`` with Binance's ``{"code": code, "msg": msg}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status

    def json(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


def text(value: Decimal) -> str:
    """``value`` as Binance writes a decimal (``"0"`` for zero)."""
    return format(value.normalize(), "f") if value else "0"


@dataclass(frozen=True)
class Rules:
    """A symbol's lot step, tick and maximum leverage."""

    step: Decimal
    tick: Decimal
    max_leverage: int


@dataclass
class FakeOrder:
    order_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    tif: str
    qty: Decimal
    price: Decimal
    reduce_only: bool
    time: int
    active_from: int
    orig_type: str
    status: str = "NEW"
    executed: Decimal = ZERO
    quote: Decimal = ZERO
    update_time: int = 0

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.executed

    @property
    def avg(self) -> Decimal:
        return (self.quote / self.executed).quantize(Decimal("0.00001")) if self.executed else ZERO

    def json(self) -> dict[str, Any]:
        return {
            "orderId": self.order_id, "symbol": self.symbol, "status": self.status,
            "clientOrderId": self.client_id, "price": text(self.price),
            "avgPrice": text(self.avg), "origQty": text(self.qty),
            "executedQty": text(self.executed), "cumQty": text(self.executed),
            "cumQuote": text(self.quote), "timeInForce": self.tif, "type": self.type,
            "reduceOnly": self.reduce_only, "closePosition": False, "side": self.side,
            "positionSide": "BOTH", "stopPrice": "0", "workingType": "CONTRACT_PRICE",
            "priceProtect": False, "origType": self.orig_type, "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0, "time": self.time,
            "updateTime": self.update_time or self.time,
        }  # fmt: skip


@dataclass
class FakeAlgo:
    algo_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    qty: Decimal
    trigger: Decimal
    rate: Decimal
    activate: Decimal
    reduce_only: bool
    time: int
    active_from: int
    best: Decimal
    status: str = "NEW"
    update_time: int = 0
    trigger_time: int = 0
    actual: FakeOrder | None = None
    reason: str = ""

    def json(self) -> dict[str, Any]:
        actual = self.actual
        return {
            "algoId": self.algo_id, "clientAlgoId": self.client_id, "algoType": "CONDITIONAL",
            "orderType": self.type, "symbol": self.symbol, "side": self.side,
            "positionSide": "BOTH", "timeInForce": "GTC", "quantity": text(self.qty),
            "algoStatus": self.status,
            "actualOrderId": str(actual.order_id) if actual else "",
            "actualPrice": text(actual.avg) if actual else "0",
            "triggerPrice": text(self.trigger), "price": "0", "icebergQuantity": None,
            "tpTriggerPrice": "0", "tpPrice": "0", "slTriggerPrice": "0", "slPrice": "0",
            "tpOrderType": "", "selfTradePreventionMode": "EXPIRE_MAKER",
            "workingType": "CONTRACT_PRICE", "priceMatch": "NONE", "closePosition": False,
            "priceProtect": False, "reduceOnly": self.reduce_only,
            "activatePrice": text(self.activate), "callbackRate": text(self.rate),
            "createTime": self.time, "updateTime": self.update_time or self.time,
            "triggerTime": self.trigger_time, "goodTillDate": 0,
        }  # fmt: skip


@dataclass
class FakePosition:
    qty: Decimal = ZERO
    entry: Decimal = ZERO
    leverage: int = 20
    margin_type: str = "CROSSED"
    update_time: int = 0


def order_event(
    order: FakeOrder, execution: str, now: int, trade: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``ORDER_TRADE_UPDATE`` of ``order`` after ``execution`` (and ``trade``)."""
    o = {
        "s": order.symbol, "c": order.client_id, "S": order.side, "o": order.type,
        "f": order.tif, "q": text(order.qty), "p": text(order.price),
        "ap": text(order.avg), "sp": "0", "x": execution, "X": order.status,
        "i": order.order_id, "l": trade["qty"] if trade else "0",
        "z": text(order.executed), "L": trade["price"] if trade else "0",
        "N": "USDT", "n": trade["commission"] if trade else "0", "T": now,
        "t": trade["id"] if trade else 0, "b": "0", "a": "0",
        "m": bool(trade and trade["maker"]), "R": order.reduce_only,
        "wt": "CONTRACT_PRICE", "ot": order.orig_type, "ps": "BOTH", "cp": False,
        "rp": trade["realizedPnl"] if trade else "0", "pP": False, "si": 0, "ss": 0,
        "V": "EXPIRE_MAKER", "pm": "NONE", "gtd": 0,
    }  # fmt: skip
    return {"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": o}


def algo_event(algo: FakeAlgo, now: int) -> dict[str, Any]:
    """The ``ALGO_UPDATE`` of ``algo`` in its current state."""
    actual = algo.actual
    o = {
        "caid": algo.client_id, "aid": algo.algo_id, "at": "CONDITIONAL", "o": algo.type,
        "s": algo.symbol, "S": algo.side, "ps": "BOTH", "f": "GTC", "q": text(algo.qty),
        "X": algo.status, "ai": str(actual.order_id) if actual else "",
        "ap": text(actual.avg) if actual else "0",
        "aq": text(actual.executed) if actual else "0",
        "act": actual.type if actual else "0", "tp": text(algo.trigger), "p": "0",
        "V": "EXPIRE_MAKER", "wt": "CONTRACT_PRICE", "pm": "NONE", "cp": False,
        "pP": False, "R": algo.reduce_only, "tt": algo.trigger_time, "gtd": 0,
        "rm": algo.reason,
    }  # fmt: skip
    return {"e": "ALGO_UPDATE", "T": now, "E": now, "o": o}


def account_event(
    symbol: str, position: FakePosition, wallet: Decimal, upnl: Decimal, now: int
) -> dict[str, Any]:
    """The ``ACCOUNT_UPDATE`` after a trade in ``symbol`` (reason ``ORDER``)."""
    balances = [{"a": "USDT", "wb": text(wallet), "cw": text(wallet), "bc": "0"}]
    held = {
        "s": symbol, "pa": text(position.qty), "ep": text(position.entry),
        "bep": text(position.entry), "cr": "0", "up": text(upnl),
        "mt": "isolated" if position.margin_type == "ISOLATED" else "cross", "iw": "0",
        "ps": "BOTH",
    }  # fmt: skip
    return {
        "e": "ACCOUNT_UPDATE", "E": now, "T": now,
        "a": {"m": "ORDER", "B": balances, "P": [held]},
    }  # fmt: skip
