"""Futures margining of a simulated account: leverage per symbol, margin, liquidation, funding.

:class:`FuturesBook` is what the simulated venue consults for perpetual positions (backtest
and paper alike): the initial margin an order needs, the liquidation price of each position
(:func:`domain.margin.liquidation_price`, Binance's published formula), the bar on which the
mark price reaches it, and the funding settlements due (:mod:`domain.funding`). All money is
``Decimal`` in the quote currency; prices quote currency per base unit; times ms UTC; rates
fractions. Pure: the rates, mark prices and brackets come from adapters.

Conventions (documented choices where the venue's own rules need data a bar feed lacks):

* Isolated margin of a position = ``|qty| × entry_price / leverage``: the initial margin of
  its fills at their average price (Binance adds the initial margin of each increase and
  releases it pro rata on a reduction, which adds up to the same). Funding and fees are paid
  from the wallet, not from the isolated margin.
* Cross margin: the wallet balance (cash) backs every position; a position's liquidation price
  takes the other positions' maintenance margin and unrealized PnL at their latest marks, held
  fixed while this symbol's bars are searched (recomputed whenever the symbol is searched
  again).
* Liquidation is judged on the mark price: with 1 h mark-price bars, a traded bar liquidates
  when its adverse extreme reaches the liquidation price and the mark bar of its hour does too
  (a wick of the last price alone that the mark never saw does not liquidate), or, when only
  the mark reached it, at the last traded bar of that hour; without mark bars, on the traded
  bar's adverse extreme. The position closes at the liquidation price, paying the liquidation
  fee on its notional, capped at what the position's margin has left (isolated) or the wallet
  has left (cross): a liquidated account never owes the venue money.
* Funding: at each funding time of the symbol's rate history, a position held then pays
  ``qty × mark × rate`` (the mark price at that instant: :func:`domain.funding.funding_mark`).
  The venue settles it at the first event of the symbol at or after that time (a bar it
  matches, a mark at a decision or a batch's end), with the position held since the last fill,
  which is the position held at the funding time, so the payment is the same whenever it is
  booked; it is stamped with its funding time.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

import numpy as np

from domain.candles import Candles
from domain.errors import InvalidOrder
from domain.funding import HOUR_MS, FundingPayment, FundingRates, funding_mark, funding_marks
from domain.margin import LeverageBrackets, MarginMode, liquidation_price
from domain.model import ZERO, Position

DEFAULT_LIQUIDATION_FEE = Decimal("0.0125")
"""Liquidation fee as a fraction of the liquidated notional: Binance USDⓈ-M's published
clearance fee of 1.25 % for most symbols (set per venue in the settings)."""

_CHUNK = 512  # bars scanned at once by the liquidation search
_SHORT = 4  # windows of at most this many bars are searched bar by bar (no array set-up)
HORIZON = 2048
"""Bars one liquidation search looks ahead: past them it answers "search again there", so a
position's searches cost in proportion to the bars it is held, not to the data left."""


@dataclass(frozen=True, slots=True)
class FuturesTerms:
    """How the account is margined: ``mode`` (isolated or cross, one-way), the ``leverage``
    every symbol starts with, the configured ``max_leverage`` cap (no symbol may go above it,
    nor above its bracket's maximum) and the ``liquidation_fee`` (fraction of notional).

    Raises
    ------
    ValueError
        When ``leverage`` or ``max_leverage`` is < 1, ``leverage`` > ``max_leverage``, or the
        fee is outside [0, 1).
    """

    mode: MarginMode = MarginMode.ISOLATED
    leverage: int = 1
    max_leverage: int = 125
    liquidation_fee: Decimal = DEFAULT_LIQUIDATION_FEE

    def __post_init__(self) -> None:
        if self.max_leverage < 1:
            raise ValueError(f"max_leverage must be >= 1, was {self.max_leverage}")
        if not 1 <= self.leverage <= self.max_leverage:
            raise ValueError(
                f"leverage must be in [1, max_leverage = {self.max_leverage}], was {self.leverage}"
            )
        if not 0 <= self.liquidation_fee < 1:
            raise ValueError(f"liquidation_fee must be in [0, 1), was {self.liquidation_fee}")


@dataclass(frozen=True, slots=True)
class MarketFeeds:
    """What the book knows of one symbol's market: its leverage ``brackets`` (None: no
    liquidation modelled, leverage capped by the terms only), its funding ``rates`` and 1 h
    ``marks`` (mark-price bars), each None when not available."""

    brackets: LeverageBrackets | None = None
    rates: FundingRates | None = None
    marks: Candles | None = None


@dataclass(frozen=True, slots=True)
class PositionMargin:
    """A position's margin figures at ``mark`` (quote currency): ``leverage``, ``notional``
    (``|qty| × mark``), ``initial_margin`` (isolated: the margin assigned to it),
    ``maintenance_margin`` (from its bracket; 0 without brackets) and ``liquidation_price``
    (None: none, e.g. a long whose margin covers a fall to 0, or no brackets)."""

    symbol: str
    leverage: int
    notional: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    liquidation_price: Decimal | None


@dataclass(frozen=True, slots=True)
class MarginReport:
    """An account's balance breakdown (quote currency): ``wallet`` (cash: deposits + realized
    PnL − fees − funding), ``unrealized_pnl`` at the marks, ``margin_balance`` (wallet +
    unrealized), ``margin_in_use`` (initial margin of the positions), ``maintenance_margin``,
    ``available`` (margin balance − margin in use, at least 0), ``fees_paid`` and
    ``funding_paid`` (received counts negative) since the run began, ``margin_ratio``
    (maintenance margin / margin balance, a fraction: liquidation at 1; None without a
    positive margin balance) and each position's figures."""

    wallet: Decimal
    unrealized_pnl: Decimal
    margin_balance: Decimal
    margin_in_use: Decimal
    maintenance_margin: Decimal
    available: Decimal
    fees_paid: Decimal
    funding_paid: Decimal
    margin_ratio: Decimal | None
    positions: tuple[PositionMargin, ...]


@dataclass(slots=True)
class FuturesBook:
    """Leverage per symbol, margin, liquidation search and funding for one simulated account.

    Parameters
    ----------
    terms:
        :class:`FuturesTerms`.
    markets:
        Per symbol: :class:`MarketFeeds`.
    bar_ms:
        Length of the traded bars (ms): which traded bar ends an hour of mark prices.
    leverage:
        Leverage per symbol (every symbol of ``markets`` starts at the terms' leverage).
    funded, changed:
        Per symbol, the last funding time settled and the last fill (ms UTC): restored state.
    """

    terms: FuturesTerms
    markets: Mapping[str, MarketFeeds]
    bar_ms: int
    leverage: dict[str, int] = field(default_factory=dict)
    funded: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    _levels: dict[str, tuple[Position, int, Decimal | None]] = field(
        default_factory=dict, init=False, repr=False
    )
    _searched: dict[str, tuple[tuple[object, ...], int, int, int | None]] = field(
        default_factory=dict, init=False, repr=False
    )
    _due: dict[str, tuple[int, int | None]] = field(default_factory=dict, init=False, repr=False)
    _at_risk: dict[str, tuple[Candles, list[int], list[float], list[int]]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        for symbol in self.markets:
            self.leverage.setdefault(symbol, self.terms.leverage)

    # -- leverage ---------------------------------------------------------------------------
    def leverage_of(self, symbol: str) -> int:
        """The leverage of ``symbol`` (the terms' default until set)."""
        return self.leverage.get(symbol, self.terms.leverage)

    def set_leverage(self, symbol: str, leverage: int, notional: Decimal = ZERO) -> None:
        """Set ``symbol``'s leverage for its position of ``notional`` (quote currency).

        Raises
        ------
        InvalidOrder
            (``field="leverage"``) When ``leverage`` is < 1, above the configured cap, or
            above what the symbol's bracket allows at ``notional``.
        """
        cap = self.terms.max_leverage
        if not 1 <= leverage <= cap:
            raise InvalidOrder(
                f"leverage {leverage} for {symbol} must be in [1, {cap}] (the configured cap)",
                field="leverage",
            )
        brackets = self._brackets(symbol)
        if brackets is not None:
            try:
                brackets.check_leverage(leverage, notional)
            except ValueError as exc:
                raise InvalidOrder(str(exc), field="leverage") from None
        self.leverage[symbol] = leverage

    # -- margin -----------------------------------------------------------------------------
    def initial_margin(self, symbol: str, notional: Decimal) -> Decimal:
        """``notional / leverage`` of ``symbol`` (quote currency)."""
        return notional / self.leverage_of(symbol)

    def order_problem(
        self,
        symbol: str,
        projected_qty: Decimal,
        mark: Decimal,
        positions: Mapping[str, Position],
        marks: Mapping[str, Decimal],
        equity: Decimal,
    ) -> str | None:
        """Why an order that takes ``symbol``'s position to ``projected_qty`` (signed, at
        ``mark``) cannot be accepted, or None: the notional above the bracket's limit for the
        leverage, or the initial margin of every position after it above ``equity``."""
        notional = abs(projected_qty) * mark
        leverage = self.leverage_of(symbol)
        brackets = self._brackets(symbol)
        if brackets is not None:
            limit = brackets.max_notional(leverage)
            if notional > limit:
                return f"notional {notional:.2f} above {limit} allowed at {leverage}x for {symbol}"
        required = notional / leverage
        for other, position in positions.items():
            if other != symbol:
                price = marks.get(other, position.entry_price)
                required += abs(position.qty) * price / self.leverage_of(other)
        if required > equity:
            return (
                f"initial margin {required:.2f} would exceed equity {equity:.2f} "
                f"({symbol} at {leverage}x)"
            )
        return None

    def position_margin(
        self,
        position: Position,
        mark: Decimal,
        wallet: Decimal,
        others: Mapping[str, Position],
        marks: Mapping[str, Decimal],
    ) -> PositionMargin:
        """The margin figures of ``position`` at ``mark``; ``wallet`` is the account's cash and
        ``others`` its other positions (cross mode), valued at ``marks``."""
        symbol = position.symbol
        leverage = self.leverage_of(symbol)
        notional = abs(position.qty) * mark
        brackets = self._brackets(symbol)
        maintenance = ZERO if brackets is None else brackets.maintenance_margin(notional)
        return PositionMargin(
            symbol,
            leverage,
            notional,
            abs(position.qty) * position.entry_price / leverage,
            maintenance,
            self.liquidation_price(position, wallet, others, marks),
        )

    def report(
        self,
        wallet: Decimal,
        positions: Mapping[str, Position],
        marks: Mapping[str, Decimal],
        fees_paid: Decimal,
        funding_paid: Decimal,
    ) -> MarginReport:
        """The :class:`MarginReport` of an account with ``wallet`` cash and ``positions``
        valued at ``marks`` (entry price when unmarked)."""
        margins = []
        unrealized = ZERO
        for symbol, position in positions.items():
            if position.qty == 0:
                continue
            mark = marks.get(symbol, position.entry_price)
            unrealized += position.unrealized_pnl(mark)
            margins.append(self.position_margin(position, mark, wallet, positions, marks))
        balance = wallet + unrealized
        in_use = sum((m.initial_margin for m in margins), ZERO)
        maintenance = sum((m.maintenance_margin for m in margins), ZERO)
        return MarginReport(
            wallet=wallet,
            unrealized_pnl=unrealized,
            margin_balance=balance,
            margin_in_use=in_use,
            maintenance_margin=maintenance,
            available=max(ZERO, balance - in_use),
            fees_paid=fees_paid,
            funding_paid=funding_paid,
            margin_ratio=maintenance / balance if balance > 0 else None,
            positions=tuple(margins),
        )

    def liquidation_price(
        self,
        position: Position,
        wallet: Decimal,
        others: Mapping[str, Position],
        marks: Mapping[str, Decimal],
    ) -> Decimal | None:
        """The mark price at which ``position`` is liquidated (None: flat, no brackets, or
        never); see the module docstring for isolated and cross margin."""
        isolated = self.terms.mode is MarginMode.ISOLATED
        if isolated:  # the level of the same position object at the same leverage (usual)
            known = self._levels.get(position.symbol)
            leverage = self.leverage_of(position.symbol)
            if known is not None and known[0] is position and known[1] == leverage:
                return known[2]
        brackets = self._brackets(position.symbol)
        if brackets is None or position.qty == 0:
            return None
        if isolated:
            margin = abs(position.qty) * position.entry_price / leverage
            level = liquidation_price(
                brackets, qty=position.qty, entry_price=position.entry_price, wallet_balance=margin
            )
            self._levels[position.symbol] = (position, leverage, level)
            return level
        other_mm = ZERO
        other_pnl = ZERO
        for symbol, other in others.items():
            if symbol == position.symbol or other.qty == 0:
                continue
            price = marks.get(symbol, other.entry_price)
            other_pnl += other.unrealized_pnl(price)
            other_brackets = self._brackets(symbol)
            if other_brackets is not None:
                other_mm += other_brackets.maintenance_margin(abs(other.qty) * price)
        return liquidation_price(
            brackets,
            qty=position.qty,
            entry_price=position.entry_price,
            wallet_balance=wallet,
            mode=MarginMode.CROSS,
            other_maintenance_margin=other_mm,
            other_unrealized_pnl=other_pnl,
        )

    def liquidation_fee(
        self, position: Position, price: Decimal, wallet: Decimal, others_pnl: Decimal
    ) -> Decimal:
        """The fee of liquidating ``position`` at ``price``: ``liquidation_fee × notional``,
        capped at what is left, after the loss, of the position's margin (isolated) and of the
        wallet plus the other positions' unrealized PnL; never below 0. (An account whose
        wallet held less than a position's margin, because the fill's price moved from the
        mark it was sized at, can still end below 0 by the difference: the venue's insurance
        fund would cover it, and it is left on the books so the ledger reconciles.)"""
        notional = abs(position.qty) * price
        fee = notional * self.terms.liquidation_fee
        pnl = position.unrealized_pnl(price)
        left = wallet + pnl + others_pnl
        if self.terms.mode is MarginMode.ISOLATED:
            margin = abs(position.qty) * position.entry_price / self.leverage_of(position.symbol)
            left = min(left, margin + pnl)
        return max(ZERO, min(fee, left))

    # -- events -----------------------------------------------------------------------------
    def update_feeds(self, symbol: str, rates: FundingRates | None, marks: Candles | None) -> None:
        """Replace the funding ``rates`` and 1 h ``marks`` of ``symbol`` (a live feed's, as
        they grow; its brackets kept) and forget what was derived from the old ones. Funding
        already settled stays settled: only times after :attr:`funded` are ever paid."""
        old = self.markets.get(symbol, _NONE)
        self.markets = {**self.markets, symbol: MarketFeeds(old.brackets, rates, marks)}
        self._due.pop(symbol, None)
        self._at_risk.pop(symbol, None)
        self._searched.pop(symbol, None)

    def note_change(self, symbol: str, time: int) -> None:
        """The position of ``symbol`` changed at ``time`` (a fill): funding due at or before
        it has been settled, and a mark-only liquidation needs a whole hour after it."""
        if time > self.changed.get(symbol, -1):
            self.changed[symbol] = time
        if time > self.funded.get(symbol, -1):
            self.funded[symbol] = time

    def next_funding_time(self, symbol: str) -> int | None:
        """The next funding time of ``symbol`` not settled yet (ms UTC), or None."""
        after = self.funded.get(symbol, -1)
        known = self._due.get(symbol)
        if known is not None and known[0] == after:
            return known[1]
        rates = self.markets.get(symbol, _NONE).rates
        k = 0 if rates is None else bisect_right(rates.times, after)
        due = rates.times[k] if rates is not None and k < len(rates) else None
        self._due[symbol] = (after, due)
        return due

    def funding_at_risk(
        self, symbol: str, qty: float, candles: Candles, start: int, end: int
    ) -> float | None:
        """The most a position of ``qty`` (base asset) in ``symbol`` can pay in funding at the
        funding times in ``(start, end]`` (ms UTC): ``Σ |qty × mark × rate|`` (quote currency,
        float; 0 without funding rates), with the marks :meth:`fundings_due` would settle at.
        None when one of those times has no price in ``candles`` yet (or none at all). Settles
        nothing; the per-unit amounts are summed once per ``candles`` object (prefix sums)."""
        rates = self.markets.get(symbol, _NONE).rates
        if rates is None or qty == 0:
            return 0.0
        cached = self._at_risk.get(symbol)
        if cached is None or cached[0] is not candles:
            cached = (candles, *self._risk_per_unit(symbol, candles))
            self._at_risk[symbol] = cached
        _, times, prefix, unpriced = cached
        lo, hi = bisect_right(times, start), bisect_right(times, end)
        if hi == len(times) and bisect_right(rates.times, end) > len(times):
            return None  # a funding time past the prices known
        if bisect_right(unpriced, end) > bisect_right(unpriced, start):
            return None  # one without a price
        return abs(qty) * (prefix[hi] - prefix[lo])

    def _risk_per_unit(
        self, symbol: str, candles: Candles
    ) -> tuple[list[int], list[float], list[int]]:
        """The funding times of ``symbol`` up to the last price known (the end of ``candles``
        or of the mark-price bars), and the prefix sums of ``|mark × rate|`` over them
        (0 at a time without a price) and those times (no bound across them)."""
        feeds = self.markets[symbol]
        assert feeds.rates is not None
        ends = [int(candles.open_time[-1]) + self.bar_ms] if len(candles) else []
        if feeds.marks is not None and len(feeds.marks):
            ends.append(int(feeds.marks.open_time[-1]) + HOUR_MS)
        times = np.asarray(feeds.rates.times, dtype=np.int64)
        times = times[: int(np.searchsorted(times, max(ends, default=-1), "right"))]
        marks = funding_marks(times, candles, self.bar_ms, feeds.marks)
        rates = np.array([float(r) for r in feeds.rates.rates[: len(times)]])
        unpriced = np.isnan(marks)
        per_unit = np.where(unpriced, 0.0, np.abs(marks * rates))
        prefix = np.concatenate(([0.0], np.cumsum(per_unit))).tolist()
        return times.tolist(), prefix, times[unpriced].tolist()

    def fundings_due(
        self, symbol: str, qty: Decimal, candles: Candles | None, now: int, money: Decimal
    ) -> list[FundingPayment]:
        """The funding payments of a position of ``qty`` (signed, held unchanged since the
        last settlement) due at or before ``now`` (ms UTC) and not yet settled, oldest first;
        marks them settled. ``candles`` are the traded bars, for the mark price where the
        mark-price bars lack the funding time (None: none).

        Raises
        ------
        DataError
            When a funding time has neither a mark-price bar nor a traded bar ending at it.
        """
        feeds = self.markets.get(symbol, _NONE)
        rates = feeds.rates
        after = self.funded.get(symbol, -1)
        due = self._due.get(symbol)  # (after, the next funding time then), when known
        if now > after:
            self.funded[symbol] = now
        if (
            rates is None
            or qty == 0
            or (due is not None and due[0] == after and (due[1] is None or due[1] > now))
        ):  # nothing due by now (the usual bar)
            return []
        payments = []
        bars = candles if candles is not None else _NO_BARS
        for event in rates.between(after, now):
            mark = funding_mark(event.time_ms, bars, self.bar_ms, feeds.marks).price
            payments.append(FundingPayment.settle(event, symbol, qty, mark, money))
        return payments

    def first_liquidation(
        self,
        symbol: str,
        position: Position,
        level: Decimal,
        candles: Candles,
        start: int,
        stop: int,
    ) -> int | None:
        """The first bar index in ``[start, stop)`` on which ``position`` (non-flat) is
        liquidated at the mark price ``level``, by the rule of the module docstring; None when
        none."""
        marks = self.markets.get(symbol, _NONE).marks
        if self.bar_ms > HOUR_MS:
            marks = None  # an hour's mark bar cannot judge a longer bar: use its extremes
        long = position.qty > 0
        since = self.changed.get(symbol, position.opened_time or 0)
        stop = min(stop, len(candles))
        key = (candles, long, level, since)
        cached = self._searched.get(symbol)
        covered, begin = start, start  # the window searched so far, and where to go on
        # A search already done for the same bars, side, level and position change answers
        # any window inside what it covered: [its start, its end) with its hit at the end.
        if cached is not None and cached[0] == key and cached[1] <= start:
            _, first, end, hit = cached
            if hit is not None and start <= hit:
                return hit if hit < stop else None
            if hit is None and stop <= end:
                return None
            if hit is None and start <= end:
                covered, begin = first, end  # go on from where it ended
        found = _Search(long, float(level), candles, marks, self.bar_ms, since).first(begin, stop)
        self._searched[symbol] = (key, covered, stop if found is None else found, found)
        return found

    # -- state ------------------------------------------------------------------------------
    def state(self) -> dict[str, object]:
        """JSON-serializable state: leverage per symbol, last funding settled and last
        position change per symbol (ms UTC)."""
        return {
            "leverage": dict(self.leverage),
            "funded": dict(self.funded),
            "changed": dict(self.changed),
        }

    def restore(self, state: Mapping[str, object]) -> None:
        """Continue from :meth:`state`."""
        stored = _mapping(state.get("leverage"))
        self.leverage.update({str(k): int(v) for k, v in stored.items()})  # type: ignore[call-overload]
        self.funded = {str(k): int(v) for k, v in _mapping(state.get("funded")).items()}
        self.changed = {str(k): int(v) for k, v in _mapping(state.get("changed")).items()}

    def _brackets(self, symbol: str) -> LeverageBrackets | None:
        return self.markets.get(symbol, _NONE).brackets


_NONE = MarketFeeds()
_NO_BARS = Candles.empty()


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _out_of_reach(
    long: bool, level: float, candles: Candles, start: int, n: int, marks: Candles | None
) -> bool:
    """True when neither the traded bars ``[start, n)`` nor the mark-price hours they span
    reach ``level``: no bar there can liquidate (two slice extremes: the common case, cheap)."""
    if long:
        if float(candles.low[start:n].min()) <= level:
            return False
    elif float(candles.high[start:n].max()) >= level:
        return False
    if marks is None or not len(marks):
        return True
    times = candles.open_time
    first = int(times[start]) - int(times[start]) % HOUR_MS
    a = int(marks.open_time.searchsorted(first, "left"))
    b = int(marks.open_time.searchsorted(int(times[n - 1]), "right"))
    if b <= a:
        return True
    if long:
        return float(marks.low[a:b].min()) > level
    return float(marks.high[a:b].max()) < level


class _Search(NamedTuple):
    """One liquidation search: the position's side (``long``), the liquidation price
    ``level`` (float), the traded ``candles``, the 1 h ``marks`` (None: none), the bar length
    ``bar_ms`` and ``since``, the position's last change (ms UTC: a mark-only liquidation
    needs a whole hour after it)."""

    long: bool
    level: float
    candles: Candles
    marks: Candles | None
    bar_ms: int
    since: int

    def first(self, start: int, n: int) -> int | None:
        """The bar in ``[start, n)`` that liquidates first (module docstring): bar by bar on
        a few bars, else a vectorized scan; None when none."""
        if start >= n:
            return None
        if n - start <= _SHORT:
            return self.bar_by_bar(start, n)
        if _out_of_reach(self.long, self.level, self.candles, start, n, self.marks):
            return None
        return self.scan(start, n)

    def scan(self, start: int, n: int) -> int | None:
        """Vectorized search, in chunks, of the bar in ``[start, n)`` that liquidates."""
        long, level, candles, marks = self.long, self.level, self.candles, self.marks
        times = candles.open_time
        lo = start
        while lo < n:
            hi = min(n, lo + _CHUNK)
            t = times[lo:hi]
            touched = candles.low[lo:hi] <= level if long else candles.high[lo:hi] >= level
            if marks is None or not len(marks):
                hit = touched
            else:
                hour = t - t % HOUR_MS
                idx = np.searchsorted(marks.open_time, hour)
                safe = np.minimum(idx, len(marks) - 1)
                have = (idx < len(marks)) & (marks.open_time[safe] == hour)
                reached = marks.low[safe] <= level if long else marks.high[safe] >= level
                ends_hour = (t + self.bar_ms) % HOUR_MS == 0
                whole_hour = hour >= self.since
                hit = np.where(have, reached & (touched | (ends_hour & whole_hour)), touched)
            found = np.flatnonzero(hit)
            if len(found):
                return lo + int(found[0])
            lo = hi
        return None

    def bar_by_bar(self, start: int, n: int) -> int | None:
        """:meth:`scan` one bar at a time, the same rule: cheaper on a few bars (most
        searches cover the one bar an order fills on) than the scan's set-up."""
        long, level, marks = self.long, self.level, self.marks
        times = self.candles.open_time
        extreme = self.candles.low if long else self.candles.high
        hours = None if marks is None or not len(marks) else marks.open_time
        for i in range(start, n):
            price = float(extreme[i])
            touched = price <= level if long else price >= level
            if hours is None:
                if touched:
                    return i
                continue
            assert marks is not None
            t = int(times[i])
            hour = t - t % HOUR_MS
            k = int(hours.searchsorted(hour))
            if k < len(hours) and int(hours[k]) == hour:
                mark = float(marks.low[k] if long else marks.high[k])
                reached = mark <= level if long else mark >= level
                ends_hour = (t + self.bar_ms) % HOUR_MS == 0
                if reached and (touched or (ends_hour and hour >= self.since)):
                    return i
            elif touched:
                return i
        return None
