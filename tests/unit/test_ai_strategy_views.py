"""The AI signal page's strategy calls (:mod:`web.ai_strategy_views`): stored signals read back
as buy, sell, hold, close or keep calls, judged on the shipped BTCUSDT sample, and the scan of
the stored signals; and which strategies the page says take an ML input
(:func:`web.ai_views.uses_ml`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from domain.candles import Candles
from domain.exit_rules import COMPONENT as EXITS
from domain.model import Direction, Reason, Signal
from domain.strategies import build_strategy
from tests.fixtures.data import load_sample_candles
from web.ai_strategy_views import ISOLATION, judge, scan_calls, strategy_call
from web.ai_views import uses_ml

M5 = 300_000
AHEAD = 48
"""Five-minute bars between a call and its judgement (4 hours)."""
TIMEFRAMES = Reason("timeframes", "3/4 aligned on long: direction long", {"aligned": 3.0})
FAILED = Reason(ISOLATION, "volume_profile failed (boom); going on without it", {})


@pytest.fixture(scope="module")
def btc() -> Candles:
    """The first 3 days of the BTCUSDT sample."""
    return load_sample_candles("BTCUSDT").slice(0, 3 * 288)


def close_time(bars: Candles, i: int) -> int:
    return int(bars.open_time[i]) + M5


def signal(
    time: int,
    direction: Direction,
    reasons: tuple[Reason, ...] = (TIMEFRAMES,),
    symbol: str = "BTCUSDT",
    confidence: float = 0.7,
) -> Signal:
    return Signal(symbol, "5m", time, direction, confidence, reasons, "adaptive")


@pytest.mark.parametrize(
    ("direction", "action"), [(Direction.LONG, "buy"), (Direction.SHORT, "sell")]
)
def test_an_entry_is_judged_on_its_direction(
    btc: Candles, direction: Direction, action: str
) -> None:
    time = close_time(btc, 100)
    entry, exit_ = float(btc.close[100]), float(btc.close[100 + AHEAD])

    call = strategy_call(signal(time, direction))
    assert call is not None
    judged = judge(call, btc, M5)

    assert (call.action, call.confidence, call.reasons) == (action, 0.7, (TIMEFRAMES,))
    rose = exit_ > entry
    assert judged.status == ("right" if rose == (direction is Direction.LONG) else "wrong")
    assert judged.move == pytest.approx(exit_ / entry - 1.0)


def test_a_flat_entry_decision_is_a_hold_shown_with_its_move_but_not_judged(btc: Candles) -> None:
    call = strategy_call(signal(close_time(btc, 100), Direction.FLAT, confidence=0.0))
    assert call is not None

    judged = judge(call, btc, M5)

    assert (call.action, call.confidence) == ("hold", 0.0)
    assert judged.status == "hold"
    assert judged.move == pytest.approx(float(btc.close[100 + AHEAD]) / float(btc.close[100]) - 1)


@pytest.mark.parametrize(
    ("direction", "action"), [(Direction.FLAT, "close"), (Direction.SHORT, "keep")]
)
def test_an_exit_rules_signal_closes_or_keeps_the_position_and_is_not_judged(
    btc: Candles, direction: Direction, action: str
) -> None:
    reasons = (Reason(EXITS, "time exit: 24.0 h since entry: close 0.01 at market", {}),)
    call = strategy_call(signal(close_time(btc, 100), direction, reasons, confidence=1.0))
    assert call is not None

    assert (call.action, call.direction, call.judged) == (action, direction.value, "flat")
    assert judge(call, btc, M5).status == "hold"


def test_a_failed_features_report_is_no_call_and_is_left_out_of_a_calls_reasons() -> None:
    assert strategy_call(signal(M5, Direction.FLAT, (FAILED,), confidence=0.0)) is None
    call = strategy_call(signal(M5, Direction.LONG, (TIMEFRAMES, FAILED)))
    assert call is not None and call.reasons == (TIMEFRAMES,)


def test_a_call_whose_due_bar_is_not_reached_is_pending_with_the_move_so_far(btc: Candles) -> None:
    last = len(btc) - 1
    call = strategy_call(signal(close_time(btc, last - 10), Direction.LONG))
    assert call is not None

    judged = judge(call, btc, M5)

    assert judged.status == "pending"
    assert judged.exit == float(btc.close[last])


def test_the_scan_reads_until_each_symbol_has_its_latest_call_and_enough_calls() -> None:
    newest_first = [
        signal(9 * M5, Direction.FLAT, (FAILED,), confidence=0.0),
        signal(8 * M5, Direction.LONG),
        signal(7 * M5, Direction.SHORT),
        signal(6 * M5, Direction.LONG, symbol="ETHUSDT"),
        signal(5 * M5, Direction.LONG, symbol="SOLUSDT"),
    ]

    found = scan_calls(newest_first, want=2, symbols=["BTCUSDT", "ETHUSDT"])
    capped = scan_calls(newest_first, want=2, symbols=["BTCUSDT", "XRPUSDT"], max_scan=3)

    assert [c.time for c in found.calls] == [8 * M5, 7 * M5]
    assert found.entry["BTCUSDT"] is found.latest["BTCUSDT"]
    assert {s: c.time for s, c in found.latest.items()} == {"BTCUSDT": 8 * M5, "ETHUSDT": 6 * M5}
    assert (found.scanned, found.truncated) == (4, False)
    assert (capped.scanned, capped.truncated) == (3, True)


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("sma_cross", {}, False),
        ("adaptive", {}, False),
        ("adaptive", {"ml": True}, True),
        ("adaptive", {"ml": True, "ml_train_days": 30}, True),
        ("ml_mean_reversion", {}, True),
        ("ml_mean_reversion", {"ml_train_days": 30}, True),
    ],
)
def test_the_page_says_ml_is_an_input_exactly_when_the_strategy_reads_a_model(
    name: str, params: dict[str, int | bool], expected: bool
) -> None:
    run = SimpleNamespace(engine=SimpleNamespace(strategy=build_strategy(name, params, "5m")))

    assert uses_ml(run) is expected  # type: ignore[arg-type]


def test_the_scan_finds_the_latest_entry_decision_behind_the_exit_rules_calls() -> None:
    exits = (Reason(EXITS, "breakeven: stop moved to 100", {}),)
    newest_first = [
        signal(9 * M5, Direction.LONG, exits, confidence=1.0),
        signal(8 * M5, Direction.FLAT, confidence=0.0),
        signal(7 * M5, Direction.LONG),
    ]

    found = scan_calls(newest_first, want=1, symbols=["BTCUSDT"])

    assert found.latest["BTCUSDT"].action == "keep"
    assert (found.entry["BTCUSDT"].action, found.entry["BTCUSDT"].time) == ("hold", 8 * M5)
    assert found.scanned == 2
