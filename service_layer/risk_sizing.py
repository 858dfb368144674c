"""The risk gate's sizing of a strategy's entries: the risk size to the stop and the caps of
:func:`domain.risk.size_position` when the entry's exit plan names a stop, the notional caps
alone when it does not."""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_FLOOR, Decimal

from domain.model import ZERO, Order, OrderType
from domain.risk import RiskLimits, position_after, size_position
from domain.strategies.base import Portfolio


def order_price(order: Order, portfolio: Portfolio) -> Decimal:
    """The price an order is valued at: its limit or trigger price, else the mark (0 when the
    symbol has none yet)."""
    price = order.price or order.stop_price or portfolio.marks.get(order.symbol)
    return price if price is not None else ZERO


def size_entry(
    order: Order,
    held: Decimal,
    portfolio: Portfolio,
    gross: Decimal,
    limits: RiskLimits,
    leverage: Decimal,
    drawdown: Decimal,
) -> tuple[Order | None, str]:
    """``order`` (against the signed position ``held``) cut to the sizing rules, and what was
    done ("" when nothing; the order unchanged when it adds no exposure; None when nothing
    may be added).

    ``gross`` is the gross notional already committed (quote currency), ``leverage`` the
    account's (available margin = equity − gross / leverage), ``drawdown`` the fall from the
    equity peak (fraction). With a stop distance in the order's exit plan, the added quantity
    is at most :func:`~domain.risk.size_position`'s; without one, at most what the notional
    caps allow, scaled by the drawdown multiplier.
    """
    after = position_after(held, order.side, order.qty, False)
    added = abs(after) - abs(held) if (after > 0) == (held > 0) or held == 0 else abs(after)
    if added <= 0:
        return order, ""
    entry = order_price(order, portfolio)
    instrument = portfolio.instruments.get(order.symbol)
    if entry <= 0 or instrument is None:
        return order, ""
    equity = portfolio.equity
    symbol_notional = abs(held) * entry
    margin = equity - gross / leverage
    distance = order.exits.stop_distance if order.exits is not None else None
    if distance is not None and entry - order.side.sign * distance > 0:
        sizing = size_position(
            limits, equity=equity, entry=entry, stop=entry - order.side.sign * distance,
            step_size=instrument.step_size, available_margin=margin, leverage=leverage,
            gross_notional=gross, symbol_notional=symbol_notional,
            open_risk=open_risk(portfolio), drawdown=drawdown,
            min_notional=instrument.min_notional,
        )  # fmt: skip
        if added <= sizing.qty:
            return order, ""  # (the message, formatted only for a cut, is never read)
        allowed, why = sizing.qty, sizing.message
    else:
        allowed, why = _notional_cap(
            limits, entry, equity, gross, symbol_notional, margin, leverage, added, drawdown,
            instrument.step_size,
        )  # fmt: skip
        if added <= allowed:
            return order, ""
    qty = order.qty - (added - allowed)
    if qty <= 0:
        return None, f"refused by sizing: {why}"
    return replace(order, qty=qty), f"qty {order.qty} cut to {qty} by sizing: {why}"


def open_risk(portfolio: Portfolio) -> Decimal:
    """Σ over the positions of ``|entry − stop| × |qty|`` (quote currency), the stop being the
    working reduce-only stop order of the symbol nearest the entry; a position without one
    risks its whole notional at entry (a stop at zero)."""
    total = ZERO
    for symbol, position in portfolio.positions.items():
        if position.qty == 0:
            continue
        stops = [
            o.stop_price
            for o in portfolio.open_orders.get(symbol, ())
            if o.reduce_only and o.stop_price is not None
            and o.type in (OrderType.STOP, OrderType.TRAILING_STOP)
        ]  # fmt: skip
        entry = position.entry_price
        distance = min((abs(entry - s) for s in stops), default=entry)
        total += distance * abs(position.qty)
    return total


def _notional_cap(
    limits: RiskLimits,
    entry: Decimal,
    equity: Decimal,
    gross: Decimal,
    symbol_notional: Decimal,
    margin: Decimal,
    leverage: Decimal,
    added: Decimal,
    drawdown: Decimal,
    step: Decimal,
) -> tuple[Decimal, str]:
    """The largest added quantity the notional caps allow an entry without a stop (no risk
    size to compute: the drawdown multiplier scales the asked quantity instead)."""
    caps = {"the drawdown": added * limits.drawdown_multiplier(drawdown)}
    if limits.max_notional is not None:
        caps["the max notional per symbol"] = (limits.max_notional - symbol_notional) / entry
    if limits.max_leverage is not None:
        caps["the max leverage"] = (limits.max_leverage * equity - gross) / entry
    caps["the available margin"] = margin * leverage / entry
    name = min(caps, key=caps.__getitem__)
    allowed = max(ZERO, (caps[name] / step).to_integral_value(ROUND_FLOOR) * step)
    return allowed, f"set by {name} ({float(caps[name]):.8g})"
