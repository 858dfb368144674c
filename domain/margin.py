"""Leverage brackets, initial and maintenance margin, and the liquidation price of USDⓈ-M futures.

A symbol's leverage brackets (Binance ``GET /fapi/v1/leverageBracket``, tiers of position notional)
fix, for each notional range, the highest leverage allowed, the maintenance margin ratio and the
"maintenance amount" ``cum``. All money is ``Decimal`` in the quote currency (USDT), quantities in
the base asset, prices in quote currency per base unit; ratios are fractions (``0.004`` = 0.4 %),
never percent. Pure: no I/O, no clock; the brackets come from an adapter
(``adapters.marketdata.leverage_brackets``).

Sources:

* the bracket fields: Binance, "Notional and Leverage Brackets (USER_DATA)",
  https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Notional-and-Leverage-Brackets
* maintenance margin, maintenance amount and the liquidation price: Binance FAQ, "How to Calculate
  Liquidation Price of USDⓈ-M Futures Contracts",
  https://www.binance.com/en/support/faq/how-to-calculate-liquidation-price-of-usd%E2%93%A2-m-futures-contracts-b3c689c1f50a44cabb3a84e663b81d93
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise

ZERO = Decimal(0)
ONE = Decimal(1)

BINANCE_LIQUIDATION_FORMULA_URL = (
    "https://www.binance.com/en/support/faq/how-to-calculate-liquidation-price-of-usd%E2%93%A2"
    "-m-futures-contracts-b3c689c1f50a44cabb3a84e663b81d93"
)
"""Binance's published USDⓈ-M liquidation-price formula, the source of :func:`liquidation_price`."""


class MarginMode(StrEnum):
    """How a futures position is margined.

    ``isolated`` (the default): the position can lose only the margin assigned to it (its
    isolated wallet balance); ``cross``: every cross position shares the account's wallet
    balance, so one position's loss eats the margin of the others.
    """

    ISOLATED = "isolated"
    CROSS = "cross"


@dataclass(frozen=True, slots=True)
class LeverageBracket:
    """One notional tier of a symbol: Binance's ``leverageBracket`` entry.

    Parameters
    ----------
    bracket:
        Tier number, 1 for the smallest notionals.
    notional_floor, notional_cap:
        The tier holds position notionals ``n`` (``|qty| × price``, quote currency) with
        ``notional_floor <= n < notional_cap``.
    initial_leverage:
        The highest leverage allowed for a notional in this tier (e.g. 125).
    maint_margin_ratio:
        Maintenance margin ratio as a fraction (``0.004`` = 0.4 %); ``0 <= ratio < 1``.
    cum:
        Maintenance amount (quote currency): what the tier subtracts from
        ``notional × maint_margin_ratio`` so that the maintenance margin does not jump at the
        tier's floor (see :class:`LeverageBrackets`).

    Raises
    ------
    ValueError
        When a value is out of range (the message names the bracket and the value): bracket
        < 1, negative or non-finite floor or cum, cap <= floor, leverage < 1, ratio outside
        ``[0, 1)``, or a ratio >= ``1 / initial_leverage`` (a position opened at the tier's
        highest leverage would be below maintenance at once: the sign of a ratio given in
        percent).
    """

    bracket: int
    notional_floor: Decimal
    notional_cap: Decimal
    initial_leverage: int
    maint_margin_ratio: Decimal
    cum: Decimal

    def __post_init__(self) -> None:
        where = f"bracket {self.bracket}"
        if isinstance(self.bracket, bool) or not isinstance(self.bracket, int) or self.bracket < 1:
            raise ValueError(f"bracket {self.bracket!r}: the number must be an integer >= 1")
        for name in ("notional_floor", "notional_cap", "maint_margin_ratio", "cum"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise ValueError(f"{where}: {name} must be a finite Decimal, was {value!r}")
        if self.notional_floor < 0:
            raise ValueError(f"{where}: notional_floor must be >= 0, was {self.notional_floor}")
        if self.notional_cap <= self.notional_floor:
            raise ValueError(
                f"{where}: notional_cap must be > notional_floor {self.notional_floor}, "
                f"was {self.notional_cap}"
            )
        leverage = self.initial_leverage
        if isinstance(leverage, bool) or not isinstance(leverage, int) or leverage < 1:
            raise ValueError(f"{where}: initial_leverage must be an integer >= 1, was {leverage!r}")
        if not ZERO <= self.maint_margin_ratio < ONE:
            raise ValueError(
                f"{where}: maint_margin_ratio must be a fraction in [0, 1), "
                f"was {self.maint_margin_ratio}"
            )
        if self.maint_margin_ratio * leverage >= ONE:
            raise ValueError(
                f"{where}: maint_margin_ratio {self.maint_margin_ratio} must be below the "
                f"initial margin ratio 1/{leverage} (a fraction, not percent?)"
            )
        if self.cum < 0:
            raise ValueError(f"{where}: cum must be >= 0, was {self.cum}")

    def contains(self, notional: Decimal) -> bool:
        """True when ``notional_floor <= notional < notional_cap``."""
        return self.notional_floor <= notional < self.notional_cap

    def maintenance_margin(self, notional: Decimal) -> Decimal:
        """``notional × maint_margin_ratio − cum`` (quote currency), this tier's formula,
        whether or not ``notional`` lies in the tier."""
        return notional * self.maint_margin_ratio - self.cum


@dataclass(frozen=True, slots=True)
class LeverageBrackets:
    """A symbol's leverage brackets, in order: leverage limits and maintenance margin by notional.

    Parameters
    ----------
    symbol:
        The venue's symbol, e.g. ``"BTCUSDT"`` (named in error messages).
    brackets:
        The tiers, numbered 1, 2, … in order (a list is stored as a tuple).

    Raises
    ------
    ValueError
        When ``brackets`` is empty, not numbered 1..n in order, the first floor is not 0, a
        cap is not the next tier's floor (gap or overlap), the ratio falls or the leverage
        rises from one tier to the next, or a tier's ``cum`` is not Binance's maintenance
        amount ``cum[n] = cum[n-1] + floor[n] × (ratio[n] − ratio[n-1])`` (the FAQ's
        "Maintenance Amount formula", which makes the maintenance margin continuous in the
        notional). The message names the symbol and the bracket.

    Notes
    -----
    Notionals at or above the last cap fall in the last tier (Binance refuses such positions;
    here they keep the last tier's ratio rather than fail a margin calculation).

    Examples
    --------
    >>> D = Decimal
    >>> btc = LeverageBrackets("BTCUSDT", (
    ...     LeverageBracket(1, D(0), D(50000), 125, D("0.004"), D(0)),
    ...     LeverageBracket(2, D(50000), D(600000), 100, D("0.005"), D(50)),
    ... ))
    >>> btc.max_leverage(D(50000)), btc.maintenance_margin(D(100000))
    (100, Decimal('450.000'))
    """

    symbol: str
    brackets: tuple[LeverageBracket, ...]
    _floors: tuple[Decimal, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tiers = tuple(self.brackets)
        object.__setattr__(self, "brackets", tiers)
        if not tiers:
            raise ValueError(f"{self.symbol}: no leverage brackets")
        for number, tier in enumerate(tiers, start=1):
            if not isinstance(tier, LeverageBracket):
                raise ValueError(f"{self.symbol}: not a LeverageBracket: {tier!r}")
            if tier.bracket != number:
                raise ValueError(
                    f"{self.symbol}: brackets must be numbered 1..{len(tiers)} in order; "
                    f"position {number} holds bracket {tier.bracket}"
                )
        if tiers[0].notional_floor != 0:
            raise ValueError(
                f"{self.symbol}: bracket 1 must start at notional 0, was {tiers[0].notional_floor}"
            )
        for low, high in pairwise(tiers):
            self._check_pair(low, high)
        object.__setattr__(self, "_floors", tuple(tier.notional_floor for tier in tiers))

    def _check_pair(self, low: LeverageBracket, high: LeverageBracket) -> None:
        where = f"{self.symbol} bracket {high.bracket}"
        if high.notional_floor != low.notional_cap:
            raise ValueError(
                f"{where}: notional_floor {high.notional_floor} must equal bracket "
                f"{low.bracket}'s notional_cap {low.notional_cap} (brackets must be contiguous)"
            )
        if high.maint_margin_ratio < low.maint_margin_ratio:
            raise ValueError(
                f"{where}: maint_margin_ratio {high.maint_margin_ratio} is below bracket "
                f"{low.bracket}'s {low.maint_margin_ratio} (ratios must not fall)"
            )
        if high.initial_leverage > low.initial_leverage:
            raise ValueError(
                f"{where}: initial_leverage {high.initial_leverage} is above bracket "
                f"{low.bracket}'s {low.initial_leverage} (leverage must not rise)"
            )
        expected = low.cum + high.notional_floor * (
            high.maint_margin_ratio - low.maint_margin_ratio
        )
        if high.cum != expected:
            raise ValueError(
                f"{where}: cum must be {expected} (bracket {low.bracket}'s cum + floor × ratio "
                f"step, so that the maintenance margin is continuous), was {high.cum}"
            )

    def for_notional(self, notional: Decimal) -> LeverageBracket:
        """The tier of a position notional (quote currency): the one whose floor <= notional <
        cap; the last tier at or above the last cap.

        Raises
        ------
        ValueError
            When ``notional`` is negative.
        """
        if notional < 0:
            raise ValueError(f"{self.symbol}: notional must be >= 0, was {notional}")
        return self.brackets[bisect_right(self._floors, notional) - 1]

    def max_leverage(self, notional: Decimal) -> int:
        """The highest leverage allowed for a position of ``notional`` (quote currency).

        Raises
        ------
        ValueError
            When ``notional`` is negative.
        """
        return self.for_notional(notional).initial_leverage

    def maintenance_margin(self, notional: Decimal) -> Decimal:
        """Maintenance margin (quote currency) of a position of ``notional`` (quote currency,
        ``|qty| × mark price``): ``notional × maint_margin_ratio − cum`` of its tier (Binance FAQ,
        "Maintenance Margin"; see the module docstring).

        Raises
        ------
        ValueError
            When ``notional`` is negative.
        """
        return self.for_notional(notional).maintenance_margin(notional)

    def check_leverage(self, leverage: int, notional: Decimal) -> None:
        """Refuse a leverage that is not an integer from 1 to :meth:`max_leverage` of
        ``notional`` (quote currency).

        Raises
        ------
        ValueError
            Naming the symbol, the leverage, the notional and the tier's maximum.
        """
        if isinstance(leverage, bool) or not isinstance(leverage, int):
            raise ValueError(f"{self.symbol}: leverage must be an integer, was {leverage!r}")
        tier = self.for_notional(notional)
        if not 1 <= leverage <= tier.initial_leverage:
            raise ValueError(
                f"{self.symbol}: leverage must be 1 to {tier.initial_leverage} for a notional "
                f"of {notional} (bracket {tier.bracket}), was {leverage}"
            )

    def initial_margin(self, notional: Decimal, leverage: int) -> Decimal:
        """Initial margin (quote currency) to open a position of ``notional`` (quote currency)
        at ``leverage``: ``notional / leverage``.

        Raises
        ------
        ValueError
            As :meth:`check_leverage` (leverage outside 1..max for the notional), or a
            negative notional.
        """
        self.check_leverage(leverage, notional)
        return notional / leverage

    def max_notional(self, leverage: int) -> Decimal:
        """The notional (quote currency) up to which ``leverage`` is allowed: the cap of the
        last tier whose ``initial_leverage`` is at least ``leverage`` (exclusive, as tier caps
        are).

        Raises
        ------
        ValueError
            When ``leverage`` is not an integer from 1 to the first tier's maximum.
        """
        self.check_leverage(leverage, ZERO)
        allowed = [tier for tier in self.brackets if tier.initial_leverage >= leverage]
        return allowed[-1].notional_cap


def liquidation_price(
    brackets: LeverageBrackets,
    *,
    qty: Decimal,
    entry_price: Decimal,
    wallet_balance: Decimal,
    mode: MarginMode = MarginMode.ISOLATED,
    other_maintenance_margin: Decimal = ZERO,
    other_unrealized_pnl: Decimal = ZERO,
) -> Decimal | None:
    """The mark price at which a one-way-mode USDⓈ-M position is liquidated (quote currency).

    Binance's published formula for one-way mode (source: Binance FAQ, "How to Calculate
    Liquidation Price of USDⓈ-M Futures Contracts", :data:`BINANCE_LIQUIDATION_FORMULA_URL`;
    its hedge-mode terms are 0 in one-way mode)::

        LP = (WB − TMM1 + UPNL1 + cumB − Side1BOTH × Position1BOTH × EP1BOTH)
             / (Position1BOTH × MMR_B − Side1BOTH × Position1BOTH)

    with ``WB`` the wallet balance (cross: the cross wallet balance; isolated: the position's
    isolated wallet balance), ``TMM1``/``UPNL1`` the maintenance margin and unrealized PnL of
    all *other* cross positions (0 in isolated mode), ``Side1BOTH`` +1 long / −1 short,
    ``Position1BOTH`` = ``|qty|``, ``EP1BOTH`` = ``entry_price`` and ``MMR_B``/``cumB`` the
    ratio and maintenance amount of the position's tier. It solves "margin balance = maintenance
    margin": ``WB − TMM1 + UPNL1 + side × |qty| × (LP − EP) = |qty| × LP × MMR_B − cumB``.

    Which tier: the FAQ says to use the tier of the notional *at the liquidation price*
    (``|qty| × LP``), and to recompute with another tier when the result falls outside the tier
    that was assumed (Binance's calculator iterates). This function does the same, exactly: it
    takes the tier that contains ``|qty| × LP``. Because ``cum`` makes the maintenance margin
    continuous and its slope (≤ 0.5) is below the PnL's (1), the margin excess is monotone in
    the notional, so the right tier is the last one at whose floor the excess is still ≤ 0
    (long) or ≥ 0 (short); the test at the floors is exact in ``Decimal``, where trying each
    tier's candidate price could miss by a rounding at a tier's edge.

    Parameters
    ----------
    brackets:
        The symbol's tiers.
    qty:
        Signed position size in base asset (long > 0, short < 0), as ``Position.qty``.
    entry_price:
        Average entry price (quote currency), > 0.
    wallet_balance:
        ``WB`` (quote currency). Isolated: the margin assigned to the position (initial margin,
        plus margin added, less what was removed), >= 0. Cross: the account's cross wallet
        balance.
    mode:
        :class:`MarginMode`, isolated by default.
    other_maintenance_margin, other_unrealized_pnl:
        ``TMM1`` and ``UPNL1`` (quote currency): the sums over the account's other cross
        positions, valued at their mark prices (taken as fixed while this symbol moves).
        Must be 0 in isolated mode.

    Returns
    -------
    Decimal or None
        The liquidation mark price, unrounded (round it to the tick away from the position's
        side, i.e. up for a long, when showing it). A long is liquidated when the mark price
        falls to it, a short when the mark rises to it. None for a long whose formula price is
        <= 0 (its margin covers a fall to 0: Binance shows "--"). For a short whose formula
        price is <= 0 (the margin balance is below maintenance at every price) it is 0: any
        mark price liquidates it. When the margin is already below maintenance at the entry
        the price lies on the winning side of the entry: the position is liquidatable at once.

    Raises
    ------
    ValueError
        When ``qty`` is 0, ``entry_price`` <= 0, ``other_maintenance_margin`` < 0, or in
        isolated mode ``wallet_balance`` < 0 or the other-position terms are not 0.

    Examples
    --------
    A 0.1 BTC long at 60,000 USDT with 300 USDT isolated margin (20×), BTCUSDT tier 1
    (ratio 0.004, cum 0): LP = (300 − 0.1 × 60000) / (0.1 × 0.004 − 0.1) = 5700 / 0.0996
    ≈ 57,228.92 USDT.
    """
    if qty == 0:
        raise ValueError("qty must not be 0: a flat position has no liquidation price")
    if entry_price <= 0:
        raise ValueError(f"entry_price must be > 0, was {entry_price}")
    if other_maintenance_margin < 0:
        raise ValueError(f"other_maintenance_margin must be >= 0, was {other_maintenance_margin}")
    if MarginMode(mode) is MarginMode.ISOLATED:
        if wallet_balance < 0:
            raise ValueError(f"isolated wallet_balance must be >= 0, was {wallet_balance}")
        if other_maintenance_margin != 0 or other_unrealized_pnl != 0:
            raise ValueError(
                "isolated mode ignores other positions: other_maintenance_margin and "
                f"other_unrealized_pnl must be 0, were {other_maintenance_margin} and "
                f"{other_unrealized_pnl}"
            )
    side = 1 if qty > 0 else -1
    size = abs(qty)
    balance = wallet_balance - other_maintenance_margin + other_unrealized_pnl
    tier = _liquidation_tier(brackets, side, size, entry_price, balance)
    price = (balance + tier.cum - side * size * entry_price) / (
        size * tier.maint_margin_ratio - side * size
    )
    if price > 0:
        return price
    return None if side > 0 else ZERO


def _liquidation_tier(
    brackets: LeverageBrackets, side: int, size: Decimal, entry: Decimal, balance: Decimal
) -> LeverageBracket:
    """The tier holding the notional at which margin balance − maintenance margin is 0.

    ``excess(n) = balance + side × (n − size × entry) − maintenance_margin(n)`` at notional
    ``n``; ``side × excess`` rises with ``n`` (slope 1 ∓ ratio > 0), so the root lies in the
    last tier whose floor still has ``side × excess <= 0``; tier 1 when none has (the root is
    then at a notional <= 0, and the price that the formula gives is <= 0).
    """
    chosen = brackets.brackets[0]
    for tier in brackets.brackets[1:]:
        floor = tier.notional_floor
        excess = balance + side * (floor - size * entry) - tier.maintenance_margin(floor)
        if side * excess > 0:
            break
        chosen = tier
    return chosen
