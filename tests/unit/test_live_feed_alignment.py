"""How the live feed lines up its symbols' closed bars by open time (real 5m bars)."""

from __future__ import annotations

import numpy as np

from adapters.venues.binance_usdm.live_feed import Arrival, BarAligner, Batch
from domain.candles import Candles
from tests.fixtures.data import load_candles

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC
NOW = T0 + M5 + 150  # the clock when the bar at T0 has just closed (ms)
GRACE = 10_000
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def _bars(symbol: str, first: int, last: int) -> Candles:
    """The file's bars of ``symbol`` at ``T0 + k * M5`` for ``k`` in ``first..last``."""
    candles = load_candles(f"binance_usdm_{symbol}_5m.csv.gz")
    return candles.between(T0 + first * M5, T0 + (last + 1) * M5)


def _aligner(**after: int) -> BarAligner:
    return BarAligner(SYMBOLS, {s: after.get(s, T0 - M5) for s in SYMBOLS}, GRACE)


def _shape(batches: list[Batch]) -> list[tuple[int, list[str], tuple[str, ...]]]:
    return [(b.time, sorted(b.bars), b.missing) for b in batches]


def test_a_bar_time_goes_once_every_symbol_has_its_bar() -> None:
    aligner = _aligner()

    aligner.add(Arrival("BTCUSDT", _bars("BTCUSDT", 0, 0), NOW))
    waiting = aligner.ready(NOW)
    aligner.add(Arrival("ETHUSDT", _bars("ETHUSDT", 0, 0), NOW + 5))
    ready = aligner.ready(NOW + 5)

    assert waiting == []
    assert _shape(ready) == [(T0, ["BTCUSDT", "ETHUSDT"], ())]
    for symbol in SYMBOLS:
        np.testing.assert_array_equal(ready[0].bars[symbol].close, _bars(symbol, 0, 0).close)


def test_bars_backfilled_in_pieces_go_one_bar_time_at_a_time_in_order() -> None:
    aligner = _aligner()

    aligner.add(Arrival("ETHUSDT", _bars("ETHUSDT", 0, 2), NOW))
    aligner.add(Arrival("BTCUSDT", _bars("BTCUSDT", 0, 4), NOW))
    first = aligner.ready(NOW)
    aligner.add(Arrival("ETHUSDT", _bars("ETHUSDT", 3, 4), NOW))
    rest = aligner.ready(NOW)

    assert _shape(first) == [(T0 + k * M5, ["BTCUSDT", "ETHUSDT"], ()) for k in range(3)]
    assert _shape(rest) == [(T0 + k * M5, ["BTCUSDT", "ETHUSDT"], ()) for k in (3, 4)]
    assert [float(b.bars["BTCUSDT"].close[0]) for b in first + rest] == list(
        _bars("BTCUSDT", 0, 4).close
    )


def test_a_straggler_is_left_out_after_the_grace_and_its_late_bar_dropped() -> None:
    aligner = _aligner()

    aligner.add(Arrival("BTCUSDT", _bars("BTCUSDT", 0, 0), NOW))
    within_grace = aligner.ready(NOW + GRACE - 1)
    after_grace = aligner.ready(NOW + GRACE)
    late = aligner.add(Arrival("ETHUSDT", _bars("ETHUSDT", 0, 1), NOW + GRACE + 1))
    aligner.add(Arrival("BTCUSDT", _bars("BTCUSDT", 1, 1), NOW + M5))
    next_time = aligner.ready(NOW + M5)

    assert within_grace == []
    assert _shape(after_grace) == [(T0, ["BTCUSDT"], ("ETHUSDT",))]
    np.testing.assert_array_equal(late.open_time, [T0])
    assert _shape(next_time) == [(T0 + M5, ["BTCUSDT", "ETHUSDT"], ())]
    assert aligner.missed == {"ETHUSDT": 1}
    assert aligner.late == {"ETHUSDT": 1}


def test_a_stream_that_went_past_a_bar_time_without_a_bar_holds_nothing_back() -> None:
    aligner = _aligner()

    aligner.add(Arrival("ETHUSDT", _bars("ETHUSDT", 1, 1), NOW))  # the venue has no bar at T0
    aligner.add(Arrival("BTCUSDT", _bars("BTCUSDT", 0, 1), NOW))
    ready = aligner.ready(NOW)

    assert _shape(ready) == [
        (T0, ["BTCUSDT"], ()),
        (T0 + M5, ["BTCUSDT", "ETHUSDT"], ()),
    ]
    assert aligner.missed == {}


def test_a_resumed_symbol_behind_the_others_catches_up_first() -> None:
    aligner = _aligner(BTCUSDT=T0)  # ETHUSDT's last bar processed was the one before

    aligner.add(Arrival("ETHUSDT", _bars("ETHUSDT", 0, 1), NOW))
    catch_up = aligner.ready(NOW)
    aligner.add(Arrival("BTCUSDT", _bars("BTCUSDT", 1, 1), NOW))
    both = aligner.ready(NOW)

    assert _shape(catch_up) == [(T0, ["ETHUSDT"], ())]
    assert _shape(both) == [(T0 + M5, ["BTCUSDT", "ETHUSDT"], ())]
