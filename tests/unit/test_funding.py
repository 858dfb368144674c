"""Funding payments, the funding grid and the mark price at a funding time (domain/funding.py).

Amounts are what the account pays in USDT (positive: the wallet goes down), rounded half-even to
USDT's 8 places unless told otherwise; hand-computed cases use real BTCUSDT prices of the sample.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.account import MONEY_QUANTUM
from domain.candles import Candles
from domain.errors import DataError
from domain.funding import (
    HOUR_MS,
    FundingEvent,
    FundingPayment,
    FundingRates,
    MarkPrice,
    MarkSource,
    close_before,
    funding_mark,
    funding_payment,
    funding_schedule_times,
    mark_at,
)
from tests.fixtures.data import load_sample_candles

D = Decimal
H8 = 8 * HOUR_MS
M5 = 300_000
DAY = 24 * HOUR_MS
JAN_1_2025 = 1_735_689_600_000  # 2025-01-01 00:00 UTC

qtys = st.decimals(D("-1000"), D("1000"), places=3, allow_nan=False, allow_infinity=False)
marks = st.decimals(D("0.0001"), D("200000"), places=4, allow_nan=False, allow_infinity=False)
rates = st.decimals(D("-0.03"), D("0.03"), places=8, allow_nan=False, allow_infinity=False)


def bars(times: list[int], opens: list[float], closes: list[float]) -> Candles:
    """Bars at ``times`` with the given opens and closes (high/low around them, no volume)."""
    o, c = np.array(opens), np.array(closes)
    return Candles(
        np.array(times, dtype=np.int64), o, np.maximum(o, c), np.minimum(o, c), c, np.zeros(len(o))
    )


# -- funding_payment: hand-computed ---------------------------------------------------------


@pytest.mark.parametrize(
    ("qty", "mark", "rate", "amount"),
    [
        ("2", "100000", "0.0001", "20"),  # long, positive rate: pays 2 × 100000 × 0.0001
        ("-0.5", "4000", "0.0001", "-0.2"),  # short, positive rate: receives
        ("1", "2.5", "-0.0003", "-0.00075"),  # long, negative rate: receives
        ("-3", "150", "-0.0002", "0.09"),  # short, negative rate: pays
        ("0", "92424.4", "0.0001", "0"),  # flat: nothing
    ],
)
def test_long_pays_and_short_receives_when_the_rate_is_positive(
    qty: str, mark: str, rate: str, amount: str
) -> None:
    assert funding_payment(D(qty), D(mark), D(rate)) == D(amount)


def test_payment_is_rounded_half_even_to_usdt_places_and_exact_without_a_quantum() -> None:
    # 0.001 BTC at a real mark 92424.4 and a real rate 8.514e-05:
    # 0.001 × 92424.4 = 92.4244; 92.4244 × 0.00008514 = 0.007869013416.
    qty, mark, rate = D("0.001"), D("92424.4"), D("8.514e-05")

    assert funding_payment(qty, mark, rate, money=None) == D("0.007869013416")
    assert funding_payment(qty, mark, rate) == D("0.00786901")
    assert funding_payment(qty, mark, rate).as_tuple().exponent == MONEY_QUANTUM.as_tuple().exponent


def test_half_cent_ties_round_to_even_on_both_sides() -> None:
    assert funding_payment(D("1"), D("1"), D("0.000000005")) == D("0")
    assert funding_payment(D("1"), D("1"), D("0.000000015")) == D("0.00000002")
    assert funding_payment(D("-1"), D("1"), D("0.000000015")) == D("-0.00000002")


def test_payment_refuses_a_non_positive_mark() -> None:
    with pytest.raises(ValueError, match="mark must be > 0, was 0"):
        funding_payment(D("1"), D("0"), D("0.0001"))


def test_payment_at_a_real_sample_price_is_notional_times_rate() -> None:
    mark = D(repr(float(load_sample_candles("BTCUSDT").close[-1])))  # 2025-10-31 23:55 bar

    amount = funding_payment(D("0.25"), mark, D("0.0001"))

    assert amount == (D("0.25") * mark * D("0.0001")).quantize(MONEY_QUANTUM)
    assert amount > 0


# -- funding_payment: invariants ------------------------------------------------------------


@given(qty=qtys, mark=marks, rate=rates)
def test_a_short_pays_exactly_minus_what_the_same_long_pays(
    qty: Decimal, mark: Decimal, rate: Decimal
) -> None:
    assert funding_payment(-qty, mark, rate) == -funding_payment(qty, mark, rate)


@given(mark=marks, rate=rates)
def test_a_flat_position_pays_nothing(mark: Decimal, rate: Decimal) -> None:
    assert funding_payment(D(0), mark, rate) == 0


@given(qty=qtys, mark=marks, rate=rates)
def test_the_side_that_pays_is_the_sign_of_qty_times_rate(
    qty: Decimal, mark: Decimal, rate: Decimal
) -> None:
    amount = funding_payment(qty, mark, rate, money=None)

    assert (amount > 0) == (qty * rate > 0)
    assert (amount < 0) == (qty * rate < 0)


@settings(max_examples=200)
@given(qty=qtys, mark=marks, period=st.lists(rates, min_size=1, max_size=100))
def test_a_constant_position_at_a_constant_mark_pays_qty_mark_and_the_summed_rates(
    qty: Decimal, mark: Decimal, period: list[Decimal]
) -> None:
    expected = qty * mark * sum(period)

    exact = sum(funding_payment(qty, mark, r, money=None) for r in period)
    rounded = sum(funding_payment(qty, mark, r) for r in period)

    assert exact == expected
    assert abs(rounded - expected) <= len(period) * MONEY_QUANTUM / 2


# -- FundingPayment ---------------------------------------------------------------------------


def test_settle_builds_the_ledger_entry_of_a_long_at_a_positive_rate() -> None:
    event = FundingEvent(JAN_1_2025, D("0.0001"))

    payment = FundingPayment.settle(event, "BTCUSDT", D("2"), D("93500.1"))

    assert payment == FundingPayment(
        JAN_1_2025, "BTCUSDT", D("2"), D("93500.1"), D("0.0001"), D("18.70002000")
    )


def test_settle_of_a_short_at_a_negative_rate_pays() -> None:
    payment = FundingPayment.settle(FundingEvent(0, D("-0.00012232")), "BTCUSDT", D("-1"), D("1e5"))

    assert payment.amount == D("12.232")


def test_a_flat_position_books_no_funding_entry() -> None:
    with pytest.raises(ValueError, match="qty must not be 0"):
        FundingPayment.settle(FundingEvent(0, D("0.0001")), "BTCUSDT", D("0"), D("100"))


def test_a_payment_with_the_wrong_sign_is_refused() -> None:
    with pytest.raises(ValueError, match="amount -20 is not qty 2"):
        FundingPayment(0, "BTCUSDT", D("2"), D("100000"), D("0.0001"), D("-20"))


def test_a_payment_rounded_to_the_cent_is_accepted() -> None:
    payment = FundingPayment(0, "BTCUSDT", D("0.001"), D("92424.4"), D("8.514e-05"), D("0.01"))

    assert payment.amount == D("0.01")


# -- funding_schedule_times --------------------------------------------------------------------


def test_the_8h_grid_is_00_08_16_utc_left_open_right_closed() -> None:
    times = funding_schedule_times(JAN_1_2025, JAN_1_2025 + DAY)

    assert times == [JAN_1_2025 + H8, JAN_1_2025 + 2 * H8, JAN_1_2025 + DAY]


def test_a_grid_starting_just_before_midnight_includes_midnight() -> None:
    assert funding_schedule_times(JAN_1_2025 - 1, JAN_1_2025 + H8 - 1) == [JAN_1_2025]


def test_an_empty_or_instant_interval_has_no_funding() -> None:
    assert funding_schedule_times(JAN_1_2025, JAN_1_2025) == []
    assert funding_schedule_times(JAN_1_2025 + 1, JAN_1_2025 + H8 - 1) == []


def test_a_4h_grid_has_six_fundings_a_day_including_the_8h_ones() -> None:
    times = funding_schedule_times(JAN_1_2025, JAN_1_2025 + DAY, interval_hours=4)

    assert len(times) == 6
    assert set(funding_schedule_times(JAN_1_2025, JAN_1_2025 + DAY)) <= set(times)


@pytest.mark.parametrize("hours", [0, 5, 7, -8, 48])
def test_an_interval_that_does_not_divide_the_day_is_refused(hours: int) -> None:
    with pytest.raises(ValueError, match=f"interval_hours must divide 24, was {hours}"):
        funding_schedule_times(0, DAY, interval_hours=hours)


def test_a_reversed_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="is before start_ms"):
        funding_schedule_times(DAY, 0)


@given(
    start=st.integers(0, 4_102_444_800_000),
    length=st.integers(0, 30 * DAY),
    hours=st.sampled_from([1, 2, 4, 8]),
)
def test_grid_times_are_every_interval_from_midnight_inside_the_interval(
    start: int, length: int, hours: int
) -> None:
    step = hours * HOUR_MS

    times = funding_schedule_times(start, start + length, hours)

    assert all(start < t <= start + length and t % step == 0 for t in times)
    assert all(b - a == step for a, b in pairwise(times))
    assert len(times) == (start + length) // step - start // step


# -- FundingRates -----------------------------------------------------------------------------


RATES = FundingRates(
    (JAN_1_2025, JAN_1_2025 + H8, JAN_1_2025 + 2 * H8),
    (D("0.0001"), D("-0.00012232"), D("0.00003")),
)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (JAN_1_2025 - 1, JAN_1_2025, [JAN_1_2025]),  # end is included
        (JAN_1_2025, JAN_1_2025 + H8, [JAN_1_2025 + H8]),  # start is excluded
        (JAN_1_2025, JAN_1_2025, []),
        (JAN_1_2025 + 1, JAN_1_2025 + H8 - 1, []),
        (0, 2 * JAN_1_2025, [JAN_1_2025, JAN_1_2025 + H8, JAN_1_2025 + 2 * H8]),
    ],
)
def test_between_is_left_open_and_right_closed(start: int, end: int, expected: list[int]) -> None:
    assert [e.time_ms for e in RATES.between(start, end)] == expected


def test_between_returns_the_events_with_their_rates() -> None:
    assert RATES.between(JAN_1_2025, JAN_1_2025 + H8) == [
        FundingEvent(JAN_1_2025 + H8, D("-0.00012232"))
    ]


@given(
    a=st.integers(JAN_1_2025 - DAY, JAN_1_2025 + 2 * DAY),
    b=st.integers(JAN_1_2025 - DAY, JAN_1_2025 + 2 * DAY),
    c=st.integers(JAN_1_2025 - DAY, JAN_1_2025 + 2 * DAY),
)
def test_consecutive_steps_meet_every_event_exactly_once(a: int, b: int, c: int) -> None:
    start, middle, end = sorted((a, b, c))

    assert RATES.between(start, middle) + RATES.between(middle, end) == RATES.between(start, end)


def test_rate_at_is_the_rate_settled_at_that_exact_time() -> None:
    assert RATES.rate_at(JAN_1_2025 + H8) == D("-0.00012232")
    assert RATES.rate_at(JAN_1_2025 + 1) is None
    assert RATES.rate_at(0) is None


def test_rates_iterate_as_events_and_rebuild_from_them() -> None:
    assert next(iter(RATES)) == FundingEvent(JAN_1_2025, D("0.0001"))
    assert len(RATES) == 3
    assert FundingRates.from_events(list(RATES)).times == RATES.times


@pytest.mark.parametrize(
    ("times", "values", "message"),
    [
        ((1, 1), (D("0.0001"), D("0.0001")), "strictly increasing, time 1 is 1 after 1"),
        ((2, 1), (D("0.0001"), D("0.0001")), "strictly increasing"),
        ((1,), (D("0.0001"), D("0.0001")), "1 times but 2 rates"),
        ((1,), (0.0001,), "rate 0 must be a finite Decimal, was 0.0001"),
        ((1,), (D("NaN"),), "rate 0 must be a finite Decimal"),
    ],
)
def test_a_malformed_rate_series_is_refused(
    times: tuple[int, ...], values: tuple[Decimal, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        FundingRates(times, values)


# -- mark prices ------------------------------------------------------------------------------


T = JAN_1_2025 + H8  # a funding time, 2025-01-01 08:00 UTC


def test_the_mark_is_the_open_of_the_mark_bar_at_the_funding_hour() -> None:
    marks_1h = bars([T - HOUR_MS, T], [93000.0, 92760.05741135], [92755.1, 92424.4])

    assert mark_at(marks_1h, T) == D("92760.05741135")


def test_without_that_bar_the_mark_is_the_close_of_the_bar_ending_at_the_funding_time() -> None:
    marks_1h = bars([T - 2 * HOUR_MS, T - HOUR_MS, T + HOUR_MS], [1.0, 2.0, 3.0], [1.5, 2.5, 3.5])

    assert mark_at(marks_1h, T) == D("2.5")


def test_no_mark_when_no_bar_touches_the_funding_time() -> None:
    marks_1h = bars([T - 3 * HOUR_MS, T + HOUR_MS], [1.0, 3.0], [1.5, 3.5])

    assert mark_at(marks_1h, T) is None
    assert mark_at(Candles.empty(), T) is None


def test_close_before_is_the_close_of_the_5m_bar_ending_at_the_funding_time() -> None:
    candles = bars([T - 2 * M5, T - M5, T], [10.0, 11.0, 12.0], [10.5, 11.5, 12.5])

    assert close_before(candles, T, M5) == D("11.5")
    assert close_before(candles, T - M5 + 1, M5) is None


def test_funding_mark_prefers_the_mark_file_and_says_so() -> None:
    marks_1h = bars([T], [92760.05741135], [92424.4])
    candles = bars([T - M5], [92700.0], [92750.3])

    assert funding_mark(T, candles, M5, marks_1h) == MarkPrice(D("92760.05741135"), MarkSource.MARK)


def test_funding_mark_falls_back_to_the_last_close_without_mark_data() -> None:
    marks_1h = bars([T + HOUR_MS], [92760.0], [92424.4])  # the mark file does not cover T
    candles = bars([T - M5], [92700.0], [92750.3])

    assert funding_mark(T, candles, M5, marks_1h) == MarkPrice(D("92750.3"), MarkSource.LAST_CLOSE)
    assert funding_mark(T, candles, M5).source is MarkSource.LAST_CLOSE


def test_funding_mark_without_any_price_at_the_time_is_a_data_error() -> None:
    candles = bars([T], [92700.0], [92750.3])  # opens at T: its close is after T

    with pytest.raises(DataError, match=f"no price for the funding at {T}"):
        funding_mark(T, candles, M5)


def test_the_sample_last_close_at_a_real_funding_time_is_the_bar_before_it() -> None:
    candles = load_sample_candles("BTCUSDT")
    funding_time = int(candles.open_time[96])  # 2025-09-02 08:00 UTC, 96 five-minute bars in
    assert funding_time % H8 == 0

    price = funding_mark(funding_time, candles, M5)

    assert price == MarkPrice(D(repr(float(candles.close[95]))), MarkSource.LAST_CLOSE)
