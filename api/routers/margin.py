"""Futures margin: the balance breakdown, leverage per symbol, funding payments."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import EndQuery, NumbersDep, ServiceDep, StartQuery, SymbolQuery, check_range
from api.errors import error_responses
from api.schemas import (
    BalanceOut,
    FundingOut,
    LeverageIn,
    LeverageOut,
    balance_out,
    funding_out,
)
from domain.symbols import venue_symbol

router = APIRouter(tags=["margin"])


@router.get("/balance", responses=error_responses(400, 401, 422))
async def get_balance(service: ServiceDep, n: NumbersDep) -> BalanceOut:
    """The balance breakdown as of the last bar: wallet, unrealized PnL, margin in use,
    maintenance margin, available, fees and funding paid over the run, margin ratio (quote
    currency; in live mode the venue's account). 400 when the run trades no perpetual
    futures."""
    return balance_out(service.balance(), n)


@router.put("/positions/{symbol:path}/leverage", responses=error_responses(400, 401, 404, 422))
def set_leverage(symbol: str, body: LeverageIn, service: ServiceDep) -> LeverageOut:
    """Set the leverage of ``symbol`` (``BTCUSDT`` or ``BTC/USDT:USDT``); it applies to the
    orders placed from now on and to the liquidation price of the open position (in live mode
    it is set at the venue first, and kept only once the venue accepts it). 400 above the
    ``max_leverage`` setting or the symbol's bracket maximum for its position, or refused by
    the venue with its reason (``field`` ``leverage``), 404 unknown symbol."""
    venue = venue_symbol(symbol)
    return LeverageOut(symbol=venue, leverage=service.set_leverage(venue, body.leverage))


@router.get("/funding", responses=error_responses(400, 401, 422))
def list_funding(
    service: ServiceDep,
    n: NumbersDep,
    symbol: SymbolQuery = None,
    start: StartQuery = None,
    end: EndQuery = None,
) -> list[FundingOut]:
    """Funding settlements of the run, oldest first, filtered by symbol and time
    (``start``/``end``, ms UTC inclusive): each position's qty × mark × rate at a funding
    time (00:00, 08:00, 16:00 UTC on Binance), positive when the account paid."""
    check_range(start, end)
    return [funding_out(p, n) for p in service.fundings(symbol=symbol, start=start, end=end)]
