"""Perpetual-futures funding: the rate series, the payment formula and the mark price it uses.

A perpetual swap has no expiry; the venue keeps its price near the index by making one side pay
the other at fixed times. On Binance USDⓈ-M perpetuals (the source of every formula here,
"Introduction to Binance Futures Funding Rates",
https://www.binance.com/en/support/faq/introduction-to-binance-futures-funding-rates-360033525031):

* funding happens every 8 hours, at 00:00, 08:00 and 16:00 UTC (some symbols, at some times,
  every 4 h or 1 h: still on a grid anchored at 00:00 UTC);
* only positions open at the funding time pay or receive;
* ``funding amount = position notional × funding rate``, with
  ``notional = mark price × position size`` for USDⓈ-margined contracts;
* when the rate is positive, longs pay shorts; when negative, shorts pay longs.

Sign convention of this module: an amount is what the ACCOUNT PAYS, in quote currency. Positive:
the wallet balance goes down by it (a long at a positive rate, a short at a negative rate);
negative: the account receives. Binance's income history reports the same flow with the
opposite sign (``FUNDING_FEE`` income is negative when paid).

Times are int ms UTC; rates are fractions per funding interval (0.0001 = 0.01 %); money,
prices and quantities are :class:`~decimal.Decimal`, so that payments add up to the ledger's
balance exactly.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

import numpy as np

from domain.account import MONEY_QUANTUM
from domain.candles import Candles
from domain.errors import DataError
from domain.execution import to_decimal

HOUR_MS = 3_600_000
_HALF_CENT = Decimal("0.005")
FUNDING_INTERVAL_HOURS = 8
"""Binance USDⓈ-M's default funding interval: 00:00, 08:00 and 16:00 UTC."""


class FundingEvent(NamedTuple):
    """One funding settlement: ``time_ms`` (ms UTC) and ``rate`` (fraction per interval)."""

    time_ms: int
    rate: Decimal


@dataclass(frozen=True, slots=True, eq=False)
class FundingRates:
    """A symbol's funding-rate history: parallel, strictly increasing ``times`` and ``rates``.

    Parameters
    ----------
    times:
        n funding times, int ms UTC, strictly increasing.
    rates:
        n funding rates, ``Decimal`` fractions per funding interval (positive: longs pay).
        Decimal, not float, because payments built from them go into the ledger and must add
        up to the balance to the cent: the files' text (``8.514e-05``) is an exact decimal.

    Raises
    ------
    ValueError
        When the lengths differ, a time is not after the previous one, or a rate is not a
        finite Decimal.
    """

    times: tuple[int, ...]
    rates: tuple[Decimal, ...]

    def __post_init__(self) -> None:
        if len(self.times) != len(self.rates):
            raise ValueError(f"{len(self.times)} times but {len(self.rates)} rates")
        for i in range(1, len(self.times)):
            if self.times[i] <= self.times[i - 1]:
                raise ValueError(
                    f"times must be strictly increasing, time {i} is {self.times[i]} after "
                    f"{self.times[i - 1]}"
                )
        for i, rate in enumerate(self.rates):
            if not isinstance(rate, Decimal) or not rate.is_finite():
                raise ValueError(f"rate {i} must be a finite Decimal, was {rate!r}")

    @classmethod
    def from_events(cls, events: Sequence[FundingEvent]) -> FundingRates:
        """Build the series from time-ordered :class:`FundingEvent` s."""
        return cls(tuple(e.time_ms for e in events), tuple(e.rate for e in events))

    def __len__(self) -> int:
        return len(self.times)

    def __iter__(self) -> Iterator[FundingEvent]:
        return (FundingEvent(t, r) for t, r in zip(self.times, self.rates, strict=True))

    def __getitem__(self, i: int) -> FundingEvent:
        return FundingEvent(self.times[i], self.rates[i])

    def between(self, start_ms: int, end_ms: int) -> list[FundingEvent]:
        """The funding events with ``start_ms < time_ms <= end_ms``, oldest first.

        Left-open and right-closed so that stepping a clock from bar time to bar time,
        ``between(previous, now)``, meets every event exactly once.

        >>> rates = FundingRates((0, 28_800_000), (Decimal("0.0001"), Decimal("-0.0002")))
        >>> [e.time_ms for e in rates.between(0, 28_800_000)]
        [28800000]
        """
        lo = bisect_right(self.times, start_ms)
        hi = bisect_right(self.times, end_ms)
        return [FundingEvent(self.times[i], self.rates[i]) for i in range(lo, hi)]

    def rate_at(self, time_ms: int) -> Decimal | None:
        """The rate settled exactly at ``time_ms``, or None when no funding happened then."""
        i = bisect_left(self.times, time_ms)
        if i < len(self.times) and self.times[i] == time_ms:
            return self.rates[i]
        return None


def funding_payment(
    qty: Decimal, mark: Decimal, rate: Decimal, money: Decimal | None = MONEY_QUANTUM
) -> Decimal:
    """What a position pays at one funding time, in quote currency (positive: the account pays).

    ``amount = qty × mark × rate`` (Binance: funding amount = notional at mark × funding rate;
    longs pay shorts when the rate is positive; see the module docstring for the page).

    >>> funding_payment(Decimal("2"), Decimal("100000"), Decimal("0.0001"))
    Decimal('20.00000000')
    >>> funding_payment(Decimal("-2"), Decimal("100000"), Decimal("0.0001"))
    Decimal('-20.00000000')

    Parameters
    ----------
    qty:
        Signed position size in base asset: > 0 long, < 0 short, 0 flat.
    mark:
        Mark price at the funding time, quote currency per base unit, > 0.
    rate:
        Funding rate, a fraction per funding interval.
    money:
        Quantum the amount is rounded to, half-even (USDT's 8 places by default, as the venue
        books it); None keeps the exact product. Half-even rounding is symmetric, so a short
        pays exactly minus what the same long pays.

    Raises
    ------
    ValueError
        When ``mark <= 0``.
    """
    if mark <= 0:
        raise ValueError(f"mark must be > 0, was {mark}")
    amount = qty * mark * rate
    return amount if money is None else amount.quantize(money)


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """One funding settlement of one position, ready to be a ledger entry.

    ``amount`` is what the account pays in quote currency (positive: the wallet balance goes
    down by it; negative: the account receives), ``qty × mark × rate`` rounded to the money
    quantum; ``qty`` is the signed position (base asset, long > 0) held at ``time_ms`` (ms UTC);
    ``mark`` the mark price (quote currency) and ``rate`` the funding rate (fraction) applied.

    Raises
    ------
    ValueError
        When ``qty`` is 0 (a flat position pays nothing and books no entry), ``mark <= 0``, the
        symbol is empty, or ``amount`` is more than half a cent (0.005 quote currency) from
        ``qty × mark × rate``: rounding to a cent or finer passes, another formula or sign
        does not.
    """

    time_ms: int
    symbol: str
    qty: Decimal
    mark: Decimal
    rate: Decimal
    amount: Decimal

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("symbol must not be empty")
        if self.qty == 0:
            raise ValueError(f"qty must not be 0 for a funding payment of {self.symbol}")
        if self.mark <= 0:
            raise ValueError(f"mark must be > 0, was {self.mark}")
        exact = self.qty * self.mark * self.rate
        if abs(self.amount - exact) > _HALF_CENT:
            raise ValueError(
                f"amount {self.amount} is not qty {self.qty} × mark {self.mark} × rate "
                f"{self.rate} = {exact}"
            )

    @classmethod
    def settle(
        cls,
        event: FundingEvent,
        symbol: str,
        qty: Decimal,
        mark: Decimal,
        money: Decimal = MONEY_QUANTUM,
    ) -> FundingPayment:
        """The payment of a position of ``qty`` (signed, base asset) at ``event``, priced at
        ``mark`` (quote currency) and rounded half-even to ``money``.

        Raises
        ------
        ValueError
            As the class does (``qty`` 0, ``mark <= 0``, empty symbol).
        """
        amount = funding_payment(qty, mark, event.rate, money)
        return cls(event.time_ms, symbol, qty, mark, event.rate, amount)


def funding_schedule_times(
    start_ms: int, end_ms: int, interval_hours: int = FUNDING_INTERVAL_HOURS
) -> list[int]:
    """The funding times on the UTC grid with ``start_ms < t <= end_ms``, oldest first.

    The grid is anchored at 00:00 UTC: with 8 h, 00:00, 08:00 and 16:00 every day (Binance
    USDⓈ-M's default); 4 h or 1 h for symbols the venue switched to a shorter interval.

    >>> funding_schedule_times(0, 86_400_000)
    [28800000, 57600000, 86400000]

    Parameters
    ----------
    start_ms, end_ms:
        The interval (ms UTC), left-open and right-closed as :meth:`FundingRates.between`.
    interval_hours:
        Hours between fundings; must divide 24 so that every day starts on the grid.

    Raises
    ------
    ValueError
        When ``interval_hours`` does not divide 24 or ``end_ms < start_ms``.
    """
    if interval_hours <= 0 or 24 % interval_hours:
        raise ValueError(f"interval_hours must divide 24, was {interval_hours}")
    if end_ms < start_ms:
        raise ValueError(f"end_ms {end_ms} is before start_ms {start_ms}")
    step = interval_hours * HOUR_MS
    first = (start_ms // step + 1) * step  # the first grid point strictly after start_ms
    return list(range(first, end_ms + 1, step))


class MarkSource(StrEnum):
    """Where the mark price of a funding settlement came from."""

    MARK = "mark"
    """The venue's mark-price klines (``*_mark_1h`` files)."""
    LAST_CLOSE = "last_close"
    """No mark price: the close of the traded bar that ended at the funding time."""


class MarkPrice(NamedTuple):
    """A mark price (quote currency) and where it came from."""

    price: Decimal
    source: MarkSource


def mark_at(marks: Candles, time_ms: int, bar_ms: int = HOUR_MS) -> Decimal | None:
    """The mark price at ``time_ms`` from mark-price bars of ``bar_ms``, or None.

    The open of the mark bar that opens at ``time_ms``: the first mark price of that hour,
    which is the mark at the funding instant that Binance settles with (notional at mark at the
    funding time). When that bar is missing, the close of the bar that ends at ``time_ms`` (the
    last mark price before it). Across the five 2025 files in ``shared/data`` the two differ by
    a median of 0.01 to 0.25 bp (99th percentile 2 to 3.6 bp). The open is preferred because
    the very first funding of a file (00:00 of its first day) has no previous bar. It is a
    price observed at ``time_ms``, not after it, so settling with it looks nothing ahead (the
    rest of that bar, its high, low and close, is never read here).

    Parameters
    ----------
    marks:
        Mark-price bars (prices in quote currency), ``open_time`` strictly increasing ms UTC.
    time_ms:
        The funding time, ms UTC.
    bar_ms:
        The bars' length in ms (1 h for the ``*_mark_1h`` files).

    Returns
    -------
    Decimal or None
        The price as the shortest decimal that reads back as the stored float64, which is the
        file's own text for prices of up to 15 significant digits; None when neither bar is
        there.
    """
    times = marks.open_time
    i = int(np.searchsorted(times, time_ms, "left"))
    if i < len(times) and times[i] == time_ms:
        return to_decimal(marks.open[i])
    if i > 0 and times[i - 1] == time_ms - bar_ms:
        return to_decimal(marks.close[i - 1])
    return None


def close_before(candles: Candles, time_ms: int, bar_ms: int) -> Decimal | None:
    """The close of the bar ``[time_ms - bar_ms, time_ms)``: the last traded price before
    ``time_ms``, as a bar closed by then shows it; None when that bar is missing.

    Parameters
    ----------
    candles:
        Traded bars (prices in quote currency), ``open_time`` strictly increasing ms UTC.
    time_ms:
        ms UTC.
    bar_ms:
        The bars' length in ms (300_000 for 5 m).
    """
    times = candles.open_time
    i = int(np.searchsorted(times, time_ms - bar_ms, "left"))
    if i < len(times) and times[i] == time_ms - bar_ms:
        return to_decimal(candles.close[i])
    return None


def funding_marks(
    times_ms: np.ndarray, candles: Candles, bar_ms: int, marks: Candles | None = None
) -> np.ndarray:
    """:func:`funding_mark` at each of ``times_ms`` (shape ``(n,)``, int ms UTC) as float64
    (quote currency), NaN where neither source has a price; the mark-price bars are of 1 h.

    >>> bars = Candles(np.array([0, 300_000]), np.ones(2), np.ones(2), np.ones(2),
    ...                np.array([10.0, 11.0]), np.ones(2))
    >>> funding_marks(np.array([300_000, 600_000, 900_000]), bars, 300_000).tolist()
    [10.0, 11.0, nan]
    """
    out = np.full(len(times_ms), np.nan)
    if marks is not None and len(marks):
        mt = marks.open_time
        i = np.searchsorted(mt, times_ms, "left")
        at = np.minimum(i, len(mt) - 1)
        opens = (i < len(mt)) & (mt[at] == times_ms)
        out[opens] = marks.open[at[opens]]
        before = np.maximum(i - 1, 0)
        closes = ~opens & (i > 0) & (mt[before] == times_ms - HOUR_MS)
        out[closes] = marks.close[before[closes]]
    if len(candles):
        missing = np.isnan(out)
        ct = candles.open_time
        j = np.searchsorted(ct, times_ms - bar_ms, "left")
        at = np.minimum(j, len(ct) - 1)
        found = missing & (j < len(ct)) & (ct[at] == times_ms - bar_ms)
        out[found] = candles.close[at[found]]
    return out


def funding_mark(
    time_ms: int,
    candles: Candles,
    bar_ms: int,
    marks: Candles | None = None,
    marks_bar_ms: int = HOUR_MS,
) -> MarkPrice:
    """The price a funding settlement at ``time_ms`` is computed with.

    The mark price from ``marks`` (see :func:`mark_at`) when given and it has the time; else
    the close of the traded bar that ended at ``time_ms`` (:func:`close_before`): without mark
    data, the nearest price the engine has seen.

    Raises
    ------
    DataError
        When neither source has a price at ``time_ms``.
    """
    if marks is not None:
        price = mark_at(marks, time_ms, marks_bar_ms)
        if price is not None:
            return MarkPrice(price, MarkSource.MARK)
    price = close_before(candles, time_ms, bar_ms)
    if price is None:
        what = "no mark bar at it and " if marks is not None else ""
        raise DataError(f"no price for the funding at {time_ms}: {what}no bar ending at it")
    return MarkPrice(price, MarkSource.LAST_CLOSE)
