"""The futures book on real BTCUSDT bars and mark prices (ten months of 2025): leverage limits,
initial margin, the mark-price liquidation rule, funding settlements; the ledger's venue events
and exit reasons."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from adapters.marketdata.binance_csv import read_klines
from adapters.marketdata.funding_csv import read_funding, read_mark_prices
from adapters.marketdata.leverage_brackets import read_leverage_brackets
from domain.candles import Candles
from domain.errors import InvalidOrder
from domain.funding import HOUR_MS, FundingPayment, FundingRates
from domain.futures import FuturesBook, FuturesTerms, MarketFeeds, _Search
from domain.ledger import Ledger
from domain.margin import MarginMode
from domain.model import ExitReason, Fill, Liquidity, Order, OrderType, Position, Side
from domain.orders import LIQUIDATION_TAG, ExecutionEvent, exit_reason
from domain.orders import ExecutionEventKind as K
from tests.fixtures.data import sample_dir, shared_file

BAR_MS = 300_000


@pytest.fixture(scope="module")
def btc() -> Candles:
    return read_klines(shared_file("binance_usdm_BTCUSDT_5m.csv.gz"))


@pytest.fixture(scope="module")
def marks() -> Candles:
    return read_mark_prices(shared_file("binance_usdm_BTCUSDT_mark_1h.csv.gz"))


def _book(marks: Candles | None = None, **terms: object) -> FuturesBook:
    brackets = read_leverage_brackets(
        sample_dir() / "binance_usdm_leverage_brackets_20241024.json"
    )["BTCUSDT"]
    rates = read_funding(shared_file("binance_usdm_BTCUSDT_funding.csv.gz"))
    feeds = {"BTCUSDT": MarketFeeds(brackets, rates, marks)}
    return FuturesBook(FuturesTerms(**terms), feeds, BAR_MS)  # type: ignore[arg-type]


def test_every_symbol_starts_at_the_terms_leverage() -> None:
    assert _book(leverage=3, max_leverage=20).leverage == {"BTCUSDT": 3}


@pytest.mark.parametrize(
    ("leverage", "notional", "message"),
    [
        (0, 0, r"must be in \[1, 50\] \(the configured cap\)"),
        (51, 0, r"must be in \[1, 50\]"),
        (50, 20_000_000, "leverage must be 1 to 25"),  # the bracket of a 20M notional
    ],
)
def test_a_leverage_outside_the_cap_or_the_bracket_is_refused_naming_the_field(
    leverage: int, notional: int, message: str
) -> None:
    book = _book(max_leverage=50)

    with pytest.raises(InvalidOrder, match=message) as caught:
        book.set_leverage("BTCUSDT", leverage, Decimal(notional))

    assert caught.value.field == "leverage"
    assert book.leverage_of("BTCUSDT") == 1


def test_an_order_needs_its_initial_margin_and_a_notional_its_bracket_allows() -> None:
    book = _book(leverage=10, max_leverage=125)
    mark = Decimal(100_000)
    flat: dict[str, Position] = {}

    fits = book.order_problem("BTCUSDT", Decimal("0.99"), mark, flat, {}, Decimal(10_000))
    short = book.order_problem("BTCUSDT", Decimal("-1.01"), mark, flat, {}, Decimal(10_000))
    book.set_leverage("BTCUSDT", 125)
    too_big = book.order_problem("BTCUSDT", Decimal(1), mark, flat, {}, Decimal(10**9))

    assert fits is None
    assert short is not None and "initial margin 10100.00 would exceed equity" in short
    assert too_big is not None and "allowed at 125x" in too_big


def _wick_hours(btc: Candles, marks: Candles) -> tuple[int, int]:
    """An hour whose traded low is below its mark low (a wick the mark never saw), and one
    whose mark high is above every traded high of the hour: their start times (ms UTC)."""
    hours = btc.open_time - btc.open_time % HOUR_MS
    starts, first = np.unique(hours, return_index=True)
    trade_low = np.minimum.reduceat(btc.low, first).tolist()
    trade_high = np.maximum.reduceat(btc.high, first).tolist()
    mark_low = dict(zip(marks.open_time.tolist(), marks.low.tolist(), strict=True))
    mark_high = dict(zip(marks.open_time.tolist(), marks.high.tolist(), strict=True))
    wick = mark_only = None
    for k, hour in enumerate(starts.tolist()):
        if hour not in mark_low:
            continue
        if wick is None and trade_low[k] < mark_low[hour] * 0.999:
            wick = hour
        if mark_only is None and mark_high[hour] > trade_high[k]:
            mark_only = hour
    assert wick is not None and mark_only is not None
    return wick, mark_only


def test_a_wick_of_the_last_price_that_the_mark_never_saw_does_not_liquidate(
    btc: Candles, marks: Candles
) -> None:
    wick, _ = _wick_hours(btc, marks)
    lo = int(btc.open_time.searchsorted(wick))
    hi = lo + HOUR_MS // BAR_MS
    mark_low = float(marks.low[int(marks.open_time.searchsorted(wick))])
    level = Decimal(repr((float(btc.low[lo:hi].min()) + mark_low) / 2))
    long = Position("BTCUSDT", Decimal(1), level * 2, opened_time=0)

    on_mark = _book(marks).first_liquidation("BTCUSDT", long, level, btc, lo, hi)
    on_last = _book(None).first_liquidation("BTCUSDT", long, level, btc, lo, hi)

    assert on_mark is None
    assert on_last is not None and lo <= on_last < hi and btc.low[on_last] <= float(level)


@pytest.mark.parametrize("with_marks", [True, False], ids=["marks", "last price"])
def test_the_bar_by_bar_search_of_a_few_bars_finds_what_the_vectorized_scan_finds(
    btc: Candles, marks: Candles, with_marks: bool
) -> None:
    wick, mark_only = _wick_hours(btc, marks)
    found = 0
    for hour in (wick, mark_only):
        first = int(btc.open_time.searchsorted(hour)) - 3
        around = slice(first, first + 3 * HOUR_MS // BAR_MS)
        lows, highs = btc.low[around], btc.high[around]
        for long in (True, False):
            prices = lows if long else highs
            for level in np.quantile(prices, [0.02, 0.2, 0.5, 0.8, 0.98]).tolist():
                for since in (0, hour + 1):
                    for start in range(first, first + 24):
                        for n in range(start + 1, start + 5):
                            search = _Search(
                                long, level, btc, marks if with_marks else None, BAR_MS, since
                            )
                            short = search.bar_by_bar(start, n)
                            assert short == search.scan(start, n), (search[:2], start, n)
                            found += short is not None
    assert found > 100  # the windows liquidate as well as not


def test_a_mark_high_above_every_traded_high_liquidates_a_short_on_the_hours_last_bar(
    btc: Candles, marks: Candles
) -> None:
    _, hour = _wick_hours(btc, marks)
    lo = int(btc.open_time.searchsorted(hour))
    hi = lo + HOUR_MS // BAR_MS
    mark_high = float(marks.high[int(marks.open_time.searchsorted(hour))])
    level = Decimal(repr((float(btc.high[lo:hi].max()) + mark_high) / 2))
    short = Position("BTCUSDT", Decimal(-1), level / 2, opened_time=0)
    opened_in_the_hour = Position("BTCUSDT", Decimal(-1), level / 2, opened_time=hour + 1)

    hit = _book(marks).first_liquidation("BTCUSDT", short, level, btc, lo, hi)
    late = _book(marks).first_liquidation("BTCUSDT", opened_in_the_hour, level, btc, lo, hi)

    assert hit == hi - 1
    assert late is None  # the hour's mark low may predate the position


def test_funding_is_settled_once_per_funding_time_at_the_mark(btc: Candles, marks: Candles) -> None:
    book = _book(marks)
    rates = read_funding(shared_file("binance_usdm_BTCUSDT_funding.csv.gz"))
    first = rates.times[1]
    book.note_change("BTCUSDT", first - BAR_MS)  # a long opened just before
    assert book.next_funding_time("BTCUSDT") == first

    early = book.fundings_due("BTCUSDT", Decimal("0.5"), btc, first - 1, Decimal("1e-8"))
    (payment,) = book.fundings_due("BTCUSDT", Decimal("0.5"), btc, first + 7, Decimal("1e-8"))
    again = book.fundings_due("BTCUSDT", Decimal("0.5"), btc, first + 9, Decimal("1e-8"))

    mark = Decimal(repr(float(marks.open[int(marks.open_time.searchsorted(first))])))
    assert early == [] and again == []
    assert payment == FundingPayment.settle(rates[1], "BTCUSDT", Decimal("0.5"), mark)
    assert book.next_funding_time("BTCUSDT") == rates.times[2]


def test_funding_settled_late_is_the_payment_of_its_own_time(btc: Candles, marks: Candles) -> None:
    rates = read_funding(shared_file("binance_usdm_BTCUSDT_funding.csv.gz"))
    on_time, late = _book(marks), _book(marks)
    for book in (on_time, late):
        book.note_change("BTCUSDT", rates.times[1] - BAR_MS)
    money = Decimal("1e-8")

    each = [
        p
        for t in rates.times[1:4]
        for p in on_time.fundings_due("BTCUSDT", Decimal(-2), btc, t, money)
    ]
    together = late.fundings_due("BTCUSDT", Decimal(-2), btc, rates.times[3] + 1, money)

    assert each == together and len(together) == 3
    assert [p.time_ms for p in together] == list(rates.times[1:4])


def test_funding_at_risk_bounds_what_would_be_settled_and_settles_nothing(
    btc: Candles, marks: Candles
) -> None:
    rates = read_funding(shared_file("binance_usdm_BTCUSDT_funding.csv.gz"))
    book = _book(marks)
    book.note_change("BTCUSDT", rates.times[1] - BAR_MS)
    start, end = rates.times[1] - 1, rates.times[6]

    at_risk = book.funding_at_risk("BTCUSDT", -2.0, btc, start, end)
    due = book.fundings_due("BTCUSDT", Decimal(-2), btc, end, Decimal("1e-8"))

    assert len(due) == 6
    assert at_risk == pytest.approx(sum(abs(float(p.amount)) for p in due), rel=1e-9)
    assert _book(marks).funding_at_risk("BTCUSDT", 0.0, btc, start, end) == 0.0
    cut = btc.slice(0, int(btc.open_time.searchsorted(rates.times[3])))
    assert book.funding_at_risk("BTCUSDT", -2.0, cut, start, end) == at_risk  # the mark file's
    unmarked = _book()
    assert unmarked.funding_at_risk("BTCUSDT", -2.0, cut, start, end) is None  # not known yet
    assert unmarked.funding_at_risk("BTCUSDT", -2.0, btc, start, end) == pytest.approx(
        at_risk, rel=1e-3
    )  # the traded closes instead of the marks


def test_the_book_state_round_trips_through_json() -> None:
    book = _book(leverage=2, max_leverage=20, mode=MarginMode.CROSS)
    book.set_leverage("BTCUSDT", 7)
    book.note_change("BTCUSDT", 123)
    copy = _book(leverage=2, max_leverage=20, mode=MarginMode.CROSS)

    fresh = _book(leverage=2, max_leverage=20)
    fresh.restore({})  # a run stored before any leverage was set keeps the default
    copy.restore(book.state())

    assert fresh.leverage == {"BTCUSDT": 2}

    assert (copy.leverage, copy.funded, copy.changed) == (
        {"BTCUSDT": 7},
        {"BTCUSDT": 123},
        {"BTCUSDT": 123},
    )


def test_the_ledger_books_a_liquidation_as_the_venues_order_and_funding_to_the_wallet() -> None:
    ledger = Ledger(Decimal(1_000), [Position("BTCUSDT", Decimal(1), Decimal(100), 0)])
    order = Order(
        "liquidation-BTCUSDT-5", "BTCUSDT", Side.SELL, OrderType.MARKET, Decimal(1), 5,
        reduce_only=True, tag=LIQUIDATION_TAG,
    )  # fmt: skip
    fill = Fill("f", order.id, "BTCUSDT", Side.SELL, Decimal(1), Decimal(91), Decimal(1),
                Liquidity.TAKER, 5)  # fmt: skip
    payment = FundingPayment(4, "BTCUSDT", Decimal(1), Decimal(95), Decimal("0.001"),
                             Decimal("0.095"))  # fmt: skip

    ledger.apply(ExecutionEvent(K.FUNDING, "", 4, funding=payment))
    ledger.apply(ExecutionEvent(K.LIQUIDATION, order.id, 5, "v1", order=order))
    ledger.apply(ExecutionEvent.filled(order.id, 5, "v1", fill))
    changes = ledger.drain()

    (trade,) = changes.trades
    assert trade.exit_reason is ExitReason.LIQUIDATION
    assert changes.fundings == [payment]
    assert ledger.account.funding_paid == Decimal("0.095")
    assert ledger.cash == Decimal(1_000) - Decimal(9) - Decimal(1) - Decimal("0.095")
    assert ledger.get(order.id).status == "filled"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("tag", "order_type", "reason"),
    [
        ("trend_follow", OrderType.MARKET, ExitReason.SIGNAL),
        ("trend_follow:stop", OrderType.STOP, ExitReason.STOP),
        ("trend_follow:trail", OrderType.TRAILING_STOP, ExitReason.STOP),
        ("trend_follow:tp2", OrderType.TAKE_PROFIT, ExitReason.TAKE_PROFIT),
        ("adaptive:time", OrderType.MARKET, ExitReason.TIME),
        ("adaptive:regime", OrderType.MARKET, ExitReason.REGIME),
        ("end", OrderType.MARKET, ExitReason.END),
        ("liquidation", OrderType.MARKET, ExitReason.LIQUIDATION),
        ("api", OrderType.STOP, ExitReason.STOP),
        ("api", OrderType.TAKE_PROFIT, ExitReason.TAKE_PROFIT),
    ],
)
def test_the_exit_reason_comes_from_the_closing_orders_tag_and_type(
    tag: str, order_type: OrderType, reason: ExitReason
) -> None:
    stop = Decimal(1) if order_type.is_triggered else None
    order = Order(
        "x",
        "BTCUSDT",
        Side.SELL,
        order_type,
        Decimal(1),
        0,
        stop_price=stop,
        tag=tag,
        trailing_offset=Decimal(1) if order_type is OrderType.TRAILING_STOP else None,
    )

    assert exit_reason(order) is reason


def test_the_margin_available_to_a_symbol_leaves_out_the_others_initial_margin() -> None:
    from domain.strategies.base import Portfolio

    positions = {
        "BTCUSDT": Position("BTCUSDT", Decimal("0.1"), Decimal(100_000)),
        "ETHUSDT": Position("ETHUSDT", Decimal(-2), Decimal(4_000)),
    }
    marks = {"BTCUSDT": Decimal(110_000), "ETHUSDT": Decimal(3_500)}

    def portfolio(leverage: dict[str, int]) -> Portfolio:
        return Portfolio(0, Decimal(10_000), Decimal(9_000), Decimal(0), positions, {}, marks,
                         {}, leverage)  # fmt: skip

    futures = portfolio({"BTCUSDT": 5, "ETHUSDT": 2})
    plain = portfolio({})

    assert futures.margin_available("BTCUSDT") == Decimal(10_000) - Decimal(7_000) / 2
    assert futures.margin_available("SOLUSDT") == Decimal(10_000) - 11_000 / Decimal(5) - 3_500
    assert plain.margin_available("BTCUSDT") is None


def test_rates_handed_over_later_are_settled_once_known(btc: Candles, marks: Candles) -> None:
    book = _book(marks)
    rates = read_funding(shared_file("binance_usdm_BTCUSDT_funding.csv.gz"))
    first = rates.times[1]
    book.update_feeds("BTCUSDT", FundingRates(rates.times[:1], rates.rates[:1]), marks)
    book.note_change("BTCUSDT", first - BAR_MS)
    unknown = book.next_funding_time("BTCUSDT")

    book.update_feeds("BTCUSDT", FundingRates(rates.times[:2], rates.rates[:2]), marks)
    due = book.next_funding_time("BTCUSDT")
    (payment,) = book.fundings_due("BTCUSDT", Decimal("0.5"), btc, first, Decimal("1e-8"))

    assert unknown is None and due == first
    assert (payment.time_ms, payment.rate) == (first, rates.rates[1])
    assert book.markets["BTCUSDT"].brackets is not None
