"""The AI signal page's signal views (:mod:`web.ai_views`): ML calls read back from the reasons
the strategy writes (:func:`domain.ml.signal_input.with_prediction` builds them here), outcomes
judged on the shipped BTCUSDT sample, the scan of the stored signals, the per-symbol cards and
the partials rendered from them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from domain.candles import Candles
from domain.ml.explanations import explanation_text, side_of
from domain.ml.models import Contribution as Part
from domain.ml.predictor import MLRules, Prediction
from domain.ml.signal_input import with_prediction
from domain.model import Direction, Reason, Signal
from domain.pipeline_events import ML, PipelineEvent
from domain.strategies.mean_reversion_rules import ml_reason as mr_reason
from tests.fixtures.data import load_sample_candles
from web.ai_views import (
    HORIZON_MS,
    Contribution,
    ml_call,
    ml_off_reason,
    outcome,
    recent_rows,
    scan,
    symbol_card,
    tally,
)
from web.views import render

M5 = 300_000
AHEAD = HORIZON_MS // M5
"""Bars between a call and its judgement (48 five-minute bars)."""
MODEL = "trend-BTCUSDT-hgb-20250920T000000-1a2b3c4d"
PARTS = (
    Part("ret_4h", 0.012, 0.12),
    Part("rsi", 24.0, -0.08),
    Part("close_vs_vwap", -0.018, 0.05),
    Part("hour", 14.0, 0.01),
    Part("adx", 31.0, -0.004),
)
"""The top-5 contributions of a prediction (feature, value, contribution to P(up))."""


@pytest.fixture(scope="module")
def btc() -> Candles:
    """The first 10 days of the BTCUSDT sample."""
    return load_sample_candles("BTCUSDT").slice(0, 10 * 288)


def close_time(bars: Candles, i: int) -> int:
    return int(bars.open_time[i]) + M5


def signal(symbol: str, time: int, direction: Direction = Direction.LONG) -> Signal:
    """An entry of the adaptive strategy before the ML acts on it."""
    reasons = (Reason("timeframes", "3 of 4 aligned up", {"aligned": 3.0}),)
    return Signal(symbol, "5m", time, direction, 0.6, reasons, "adaptive")


def entry(
    symbol: str,
    time: int,
    p_up: float,
    direction: Direction = Direction.LONG,
    rules: MLRules | None = None,
    parts: Sequence[Part] = PARTS,
) -> Signal:
    """The entry as the strategy stores it once the model said P(up) = ``p_up``."""
    text = explanation_text(side_of(p_up), list(parts), probability=p_up)
    prediction = Prediction(symbol, time, p_up, tuple(parts), text, None, MODEL)
    return with_prediction(signal(symbol, time, direction), True, 1.0, prediction, None,
                           rules or MLRules())[0]  # fmt: skip


def ml_off(symbol: str, time: int, why: str) -> Signal:
    """An entry on a symbol where ML is off, ``why`` saying so."""
    return with_prediction(signal(symbol, time), True, 1.0, None, why, MLRules())[0]


# -- reading a call back from its reasons ----------------------------------------------------------


def test_a_call_is_read_back_from_the_ml_reason_the_strategy_writes() -> None:
    stored = entry("BTCUSDT", 1_758_600_000_000, 0.78)

    call = ml_call(stored)

    assert call is not None
    (reason,) = [r for r in stored.reasons if r.component == ML]
    assert call.explanation == reason.message and call.explanation.startswith("long 0.78: ")
    assert call.model_id == MODEL
    assert (call.probability, call.question, call.probability_signal) == (0.78, "up", 0.78)
    assert (call.action, call.direction) == ("buy", "long")
    assert call.confidence == stored.confidence > 0.6  # lifted above 0.7
    assert call.contributions == tuple(Contribution(p.feature, p.contribution) for p in PARTS)


def test_a_mean_reversion_call_is_read_back_with_its_probability_of_reversion() -> None:
    """The ml_mean_reversion strategy's ``ml`` reason (P(reversion), no P(up)) is a call too:
    the page shows that strategy's calls, labelled as what its model predicts."""
    mr_model = "mean_reversion-BTCUSDT-hgb-20250920T000000-5e6f7a8b"
    prediction = Prediction("BTCUSDT", 1_758_600_000_000, 0.71, PARTS[:3], "", None, mr_model)
    reasons = (Reason("bands", "close 2.3 ATR under the mean", {}), mr_reason(prediction, 0.6))
    stored = Signal("BTCUSDT", "5m", 1_758_600_000_000, Direction.LONG, 0.71, reasons,
                    "ml_mean_reversion")  # fmt: skip

    call = ml_call(stored)

    assert call is not None
    assert (call.probability, call.question, call.probability_signal) == (0.71, "reversion", None)
    assert call.model_id == mr_model and call.explanation.startswith("P(reversion) 0.71 >= 0.6")
    assert call.contributions[0] == Contribution(PARTS[0].feature, PARTS[0].contribution)
    rows = recent_rows([call], {}, M5)
    html = render("partials/ai_signals.html", {
        "rows": rows, "counts": tally(rows), "symbol": None, "symbols": ["BTCUSDT"],
        "horizon_h": 4, "scanned": 1, "truncated": False, "uses_ml": True,
    })  # fmt: skip
    assert 'data-question="reversion"' in html and "71.0%" in html


def test_a_short_calls_signal_probability_is_the_complement_of_up() -> None:
    call = ml_call(entry("BTCUSDT", 1_758_600_000_000, 0.35, Direction.SHORT))

    assert call is not None
    assert call.action == "sell"
    assert call.probability == 0.35
    assert call.probability_signal == pytest.approx(0.65)


def test_an_entry_the_ml_filtered_is_a_hold_call() -> None:
    rules = MLRules(low_action="filter")

    call = ml_call(entry("BTCUSDT", 1_758_600_000_000, 0.2, rules=rules))

    assert call is not None
    assert (call.action, call.direction, call.confidence) == ("hold", "flat", 0.0)
    assert "filtered" in call.explanation


def test_contributions_stored_out_of_order_come_back_largest_effect_first() -> None:
    stored = entry("BTCUSDT", 1_758_600_000_000, 0.6, parts=PARTS[::-1])

    call = ml_call(stored)

    assert call is not None
    assert [c.feature for c in call.contributions] == [p.feature for p in PARTS]


def test_an_entry_with_ml_off_is_no_call_and_says_why() -> None:
    off = ml_off("ETHUSDT", 1_758_600_000_000, "no active trend model for ETHUSDT")

    assert ml_call(off) is None
    assert ml_off_reason(off) == "no active trend model for ETHUSDT"
    assert ml_off_reason(entry("BTCUSDT", 1_758_600_000_000, 0.6)) is None
    assert ml_call(signal("BTCUSDT", 1_758_600_000_000)) is None


# -- outcomes on real bars -----------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["long", "short"])
def test_a_call_is_right_when_the_close_four_hours_on_moved_its_way(
    btc: Candles, direction: str
) -> None:
    calls = range(0, len(btc) - AHEAD, 37)

    judged = [outcome(close_time(btc, i), direction, btc, M5) for i in calls]

    entries, exits = btc.close[list(calls)], btc.close[[i + AHEAD for i in calls]]
    up = exits > entries if direction == "long" else exits < entries
    assert [o.status for o in judged] == ["right" if u else "wrong" for u in up]
    assert [o.entry for o in judged] == entries.tolist()
    assert [o.exit for o in judged] == exits.tolist()
    assert [o.move for o in judged] == pytest.approx((exits / entries - 1).tolist(), rel=1e-15)
    assert {o.due - close_time(btc, i) for o, i in zip(judged, calls, strict=True)} == {HORIZON_MS}
    assert 0 < sum(up) < len(judged)  # both outcomes occur in the sample


def test_an_unchanged_close_is_wrong_either_way() -> None:
    sol = load_sample_candles("SOLUSDT")
    i = next(i for i in range(len(sol) - AHEAD) if sol.close[i + AHEAD] == sol.close[i])

    assert outcome(close_time(sol, i), "long", sol, M5).status == "wrong"
    assert outcome(close_time(sol, i), "short", sol, M5).status == "wrong"
    assert outcome(close_time(sol, i), "long", sol, M5).move == 0.0


def test_a_call_less_than_four_hours_before_the_last_bar_is_pending_with_the_move_so_far(
    btc: Candles,
) -> None:
    i = len(btc) - 1 - AHEAD + 3  # its judgement is 3 bars after the last

    judged = outcome(close_time(btc, i), "long", btc, M5)

    assert judged.status == "pending"
    assert judged.due == close_time(btc, len(btc) - 1) + 3 * M5
    assert (judged.entry, judged.exit) == (btc.close[i], btc.close[-1])
    assert judged.move == pytest.approx(btc.close[-1] / btc.close[i] - 1)


def test_the_last_call_that_can_be_judged_is_judged(btc: Candles) -> None:
    i = len(btc) - 1 - AHEAD

    assert outcome(close_time(btc, i), "short", btc, M5).status in ("right", "wrong")


def test_a_call_whose_bars_are_not_kept_is_unknown_and_a_hold_is_not_judged(btc: Candles) -> None:
    kept = btc.slice(100, len(btc))
    gap = btc.slice(0, 60).concat(btc.slice(120, len(btc)))  # bars 60..119 missing

    before = outcome(close_time(btc, 50), "long", kept, M5)
    in_gap = outcome(close_time(btc, 20), "long", gap, M5)
    hold = outcome(close_time(btc, 500), "flat", btc, M5)

    assert (before.status, before.entry, before.move) == ("unknown", None, None)
    assert "no longer kept" in before.note
    assert (in_gap.status, in_gap.exit) == ("unknown", None) and in_gap.entry == btc.close[20]
    assert hold.status == "hold"
    assert hold.move == pytest.approx(btc.close[500 + AHEAD] / btc.close[500] - 1)


def test_without_bars_every_call_is_pending() -> None:
    judged = outcome(1_758_600_000_000, "long", Candles.empty(), M5)

    assert (judged.status, judged.entry, judged.exit, judged.move) == ("pending", None, None, None)


# -- the scan of the stored signals --------------------------------------------------------------


def newest_first(signals: list[Signal]) -> list[Signal]:
    return sorted(signals, key=lambda s: s.time, reverse=True)


def test_the_scan_finds_the_last_calls_and_each_symbols_latest_and_off_reason() -> None:
    t = 1_758_600_000_000
    stored = newest_first(
        [entry("BTCUSDT", t + k * M5, 0.5 + k / 100) for k in range(15)]
        + [ml_off("ETHUSDT", t + 3 * M5, "no active trend model for ETHUSDT")]
        + [ml_off("BTCUSDT", t - M5, "older than every call: not shown")]
        + [signal("SOLUSDT", t + 7 * M5)]
    )

    found = scan(stored, want=10, symbols=("BTCUSDT", "ETHUSDT"))

    assert [c.time for c in found.calls] == [t + k * M5 for k in range(14, 4, -1)]
    assert found.latest["BTCUSDT"].time == t + 14 * M5 and "ETHUSDT" not in found.latest
    assert found.off == {"ETHUSDT": (t + 3 * M5, "no active trend model for ETHUSDT")}
    assert found.scanned == len(stored) and not found.truncated


def test_the_scan_stops_once_it_has_what_it_wants_or_at_its_limit() -> None:
    t = 1_758_600_000_000
    stored = newest_first([entry("BTCUSDT", t + k * M5, 0.6) for k in range(50)])

    enough = scan(stored, want=3)
    capped = scan(stored, want=3, symbols=("ETHUSDT",), max_scan=20)

    assert (len(enough.calls), enough.scanned, enough.truncated) == (3, 3, False)
    assert (len(capped.calls), capped.scanned, capped.truncated) == (3, 20, True)


# -- the per-symbol cards and the list -----------------------------------------------------------


def test_a_symbol_with_ml_on_shows_no_reason_and_one_with_ml_off_the_newest() -> None:
    t = 1_758_600_000_000
    call = ml_call(entry("BTCUSDT", t, 0.7))
    disabled = PipelineEvent(t + M5, "BTCUSDT", ML, {
        "model_id": MODEL, "accuracy": 0.5, "min_accuracy": 0.55, "window": 100,
    })  # fmt: skip

    on = symbol_card("BTCUSDT", call=call, call_outcome=None, off=None, state="on")
    failed = symbol_card(
        "BTCUSDT", call=call, call_outcome=None, off=(t - M5, "older"), state="failed",
        events=[disabled],
    )  # fmt: skip
    derived = symbol_card("ETHUSDT", call=None, call_outcome=None, off=(t, "no model"), state=None)

    assert (on["state"], on["why"]) == ("on", None)
    assert failed["why"] == disabled.message and "below 55.0%" in failed["why"]
    assert failed["events"] == [{"time": t + M5, "message": disabled.message}]
    assert (derived["state"], derived["why"], derived["off_time"]) == ("off", "no model", t)


def test_the_list_and_its_tally_judge_each_call_on_its_symbols_bars(btc: Candles) -> None:
    times = [close_time(btc, i) for i in (len(btc) - 10, 800, 400)]  # newest first
    calls = [ml_call(entry("BTCUSDT", time, 0.62)) for time in times]
    calls.append(ml_call(entry("ETHUSDT", times[1], 0.4, Direction.SHORT)))

    rows = recent_rows([c for c in calls if c is not None], {"BTCUSDT": btc}, M5)

    statuses = [r["outcome"].status for r in rows]
    assert statuses[0] == "pending" and statuses[3] == "pending"  # no ETHUSDT bars
    assert statuses[1:3] == [outcome(t, "long", btc, M5).status for t in times[1:]]
    counts = tally(rows)
    assert counts["pending"] == 2 and counts["right"] + counts["wrong"] == 2


def test_the_partials_show_each_call_with_its_numbers_and_outcome(btc: Candles) -> None:
    time = close_time(btc, 600)
    call = ml_call(entry("BTCUSDT", time, 0.73))
    assert call is not None
    rows = recent_rows([call], {"BTCUSDT": btc}, M5)
    card = symbol_card("BTCUSDT", call=call, call_outcome=rows[0]["outcome"], off=None, state="on")
    off = symbol_card("ETHUSDT", call=None, call_outcome=None, off=(time, "no model"), state="off")
    common = {"horizon_h": 4, "uses_ml": True, "strategy": "adaptive", "scanned": 1,
              "truncated": False}  # fmt: skip

    listing = render("partials/ai_signals.html", common | {
        "rows": rows, "counts": tally(rows), "symbol": None, "symbols": ["BTCUSDT"],
    })  # fmt: skip
    cards = render("partials/ai_symbols.html", common | {"cards": [card, off]})

    judged = rows[0]["outcome"]
    assert f'data-time="{time}"' in listing and 'data-probability="0.73"' in listing
    assert f'data-outcome="{judged.status}"' in listing and f'data-move="{judged.move}"' in listing
    assert "73.0%" in listing and MODEL in listing
    assert 'data-ml-state="on"' in cards and 'data-ml-state="off"' in cards
    assert cards.count("data-feature=") == 5 and 'data-feature="ret_4h" data-value="0.12"' in cards
    assert "+0.1200" in cards and "-0.0800" in cards and "no model" in cards
    assert np.isfinite(judged.move or np.nan)
