"""Circuit breakers (domain/risk/breakers.py): hand-computed trips and lifts of each breaker with
their times, the real BTCUSDT 5m replay of the October 10 2025 crash, the RVOL and ATR-percentile
inputs against a plain loop on real bars, the state() → restore() round trip, and Hypothesis
invariants over random event sequences."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import ConfigError
from domain.features import ATR
from domain.model import Side
from domain.risk import (
    AlertKind,
    Breaker,
    BreakerConfig,
    CircuitBreakers,
    ConsecutiveLosses,
    DailyLossLimit,
    EntryLimit,
    RiskAlert,
    RiskEvent,
    UnusualVolume,
    VolatilitySpike,
    atr_percentile,
    relative_volume,
)
from domain.risk.states import ACCOUNT, StateChange, TradingState, position_after
from tests.fixtures.data import load_candles

D = Decimal
ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED
BAR = 300_000
HOUR = 3_600_000
BTC, ETH = "BTCUSDT", "ETHUSDT"
ZERO, ONE_LOT, PRICE, EQUITY = D(0), D("0.01"), D(60_000), D(10_000)


def ms(*when: int) -> int:
    """ms UTC of ``datetime(*when)`` in UTC."""
    return int(dt.datetime(*when, tzinfo=dt.UTC).timestamp() * 1000)


def refusal(
    cb: CircuitBreakers,
    time: int,
    symbol: str = BTC,
    *,
    position: Decimal = ZERO,
    side: Side = Side.BUY,
    qty: Decimal = ONE_LOT,
    reduce_only: bool = False,
    price: Decimal = PRICE,
    open_positions: int = 0,
    gross: Decimal = ZERO,
    equity: Decimal = EQUITY,
) -> str | None:
    """``cb.refusal`` of an order; by default a 0.01 BTC buy at 60,000 opening a position on
    a flat 10,000 USDT account."""
    return cb.refusal(
        time, symbol, position_qty=position, side=side, qty=qty, reduce_only=reduce_only,
        price=price, open_positions=open_positions, gross_notional=gross, equity=equity,
    )  # fmt: skip


def changes(events: list[RiskEvent]) -> list[tuple[str, TradingState, TradingState, int]]:
    return [
        (e.scope, e.from_state, e.to_state, e.time) for e in events if isinstance(e, StateChange)
    ]


# -- daily loss limit -----------------------------------------------------------------------


def test_daily_loss_trips_at_the_limit_and_lifts_at_the_next_midnight() -> None:
    cb = CircuitBreakers()

    assert cb.on_equity(ms(2025, 1, 2), D(10_000)) == []  # the day's starting equity
    assert cb.on_equity(ms(2025, 1, 2, 10), D(9600)) == []  # −4 %
    tripped = cb.on_equity(ms(2025, 1, 2, 12), D(9470))  # −5.3 %
    again = cb.on_equity(ms(2025, 1, 2, 18), D(9000))  # deeper: no second trip
    held = cb.holds()
    lifted = cb.on_equity(ms(2025, 1, 3), D(9100))  # 00:00: lifted, then a new day from 9,100

    assert tripped == [
        StateChange(
            ACCOUNT,
            ACTIVE,
            REDUCING,
            "daily loss −5.3 % of start-of-day equity 10,000.00 ≥ limit 5 %: "
            "no new entries until 2025-01-03 00:00 UTC",
            ms(2025, 1, 2, 12),
            Breaker.DAILY_LOSS,
        )
    ]
    assert again == []
    assert [(h.source, h.since, h.until) for h in held] == [
        (Breaker.DAILY_LOSS, ms(2025, 1, 2, 12), ms(2025, 1, 3))
    ]
    assert cb.holds() == ()
    assert changes(lifted) == [(ACCOUNT, REDUCING, ACTIVE, ms(2025, 1, 3))]
    assert lifted[0].reason.startswith("daily_loss hold ended at 2025-01-03 00:00 UTC (daily loss")


def test_while_the_daily_loss_holds_entries_are_refused_and_exits_pass() -> None:
    cb = CircuitBreakers()
    cb.on_equity(ms(2025, 1, 2), D(10_000))
    cb.on_equity(ms(2025, 1, 2, 12), D(9470))
    t = ms(2025, 1, 2, 12, 5)

    entry = refusal(cb, t)
    add = refusal(cb, t, position=D("0.1"), side=Side.BUY)
    exit_ = refusal(cb, t, position=D("0.1"), side=Side.SELL, qty=D("0.1"))

    assert entry is not None and entry.startswith("BTCUSDT: trading is reducing")
    assert "daily loss −5.3 %" in entry
    assert add is not None
    assert exit_ is None
    assert cb.effective_state(ETH, t) is REDUCING  # an account hold covers every symbol
    assert refusal(cb, ms(2025, 1, 3)) is None  # at 00:00 the hold is over


def test_a_loss_of_exactly_the_limit_trips() -> None:
    # The new day starts at 9,100: 9,100 × 0.95 = 8,645, a loss of exactly 5 %.
    cb = CircuitBreakers()
    cb.on_equity(ms(2025, 1, 3), D(9100))

    assert cb.on_equity(ms(2025, 1, 3, 1), D("8645.01")) == []
    assert changes(cb.on_equity(ms(2025, 1, 3, 2), D(8645))) == [
        (ACCOUNT, ACTIVE, REDUCING, ms(2025, 1, 3, 2))
    ]


def test_the_hold_lifts_at_midnight_even_when_no_point_falls_on_it() -> None:
    cb = CircuitBreakers()
    cb.on_equity(ms(2025, 1, 2, 13), D(10_000))  # started at 13:00: that is the day's start
    cb.on_equity(ms(2025, 1, 2, 14), D(9499))

    lifted = cb.advance(ms(2025, 1, 3, 0, 35))

    assert changes(lifted) == [(ACCOUNT, REDUCING, ACTIVE, ms(2025, 1, 3))]
    assert cb.trading_state(ACCOUNT, ms(2025, 1, 3, 0, 35)) is ACTIVE


def test_a_late_point_of_a_day_already_over_is_ignored() -> None:
    cb = CircuitBreakers()
    cb.on_equity(ms(2025, 1, 3), D(10_000))

    assert cb.on_equity(ms(2025, 1, 2, 23, 55), D(5000)) == []
    assert cb.holds() == ()


def test_close_all_asks_to_close_every_position_with_the_reason() -> None:
    config = BreakerConfig(daily_loss=DailyLossLimit(close_all=True, state=HALTED))
    cb = CircuitBreakers(config)
    cb.on_equity(ms(2025, 1, 2), D(10_000))

    events = cb.on_equity(ms(2025, 1, 2, 12), D(9470))

    assert changes(events) == [(ACCOUNT, ACTIVE, HALTED, ms(2025, 1, 2, 12))]
    alert = events[1]
    assert isinstance(alert, RiskAlert)
    assert (alert.scope, alert.kind, alert.time) == (
        ACCOUNT,
        AlertKind.CLOSE_ALL,
        ms(2025, 1, 2, 12),
    )
    assert alert.value == pytest.approx(0.053)
    assert alert.message == events[0].reason


# -- consecutive losses ---------------------------------------------------------------------


def test_two_losing_trades_in_a_row_halt_until_resumed_by_hand() -> None:
    cb = CircuitBreakers()
    t1, t2, t3, t4 = (ms(2025, 3, 1, h) for h in (1, 2, 3, 4))

    assert cb.on_trade(t1, D(-10)) == []
    assert cb.on_trade(t2, D(5)) == []  # a win resets the count
    assert cb.on_trade(t3, D(-3)) == []
    halted = cb.on_trade(t4, D(-4))
    later = cb.advance(ms(2025, 3, 9))  # no cooldown: a week later still halted

    assert halted == [
        StateChange(
            ACCOUNT,
            ACTIVE,
            HALTED,
            "2 consecutive losing trades (last pnl -4.00) ≥ limit 2: halted until resumed by hand",
            t4,
            Breaker.CONSECUTIVE_LOSSES,
        )
    ]
    assert later == []
    assert refusal(cb, ms(2025, 3, 9), position=D(1), side=Side.SELL, reduce_only=True) is not None

    resumed = cb.resume(ms(2025, 3, 9, 8))

    assert changes(resumed) == [(ACCOUNT, HALTED, ACTIVE, ms(2025, 3, 9, 8))]
    assert resumed[0].reason.startswith("resumed by hand (2 consecutive losing trades")
    assert cb.consecutive_losses == 0
    assert cb.on_trade(ms(2025, 3, 9, 9), D(-1)) == []  # the count starts again from 0


def test_a_breakeven_trade_is_not_a_loss() -> None:
    cb = CircuitBreakers()
    cb.on_trade(ms(2025, 3, 1, 1), D(-1))
    cb.on_trade(ms(2025, 3, 1, 2), D(0))

    assert cb.on_trade(ms(2025, 3, 1, 3), D(-1)) == []
    assert cb.consecutive_losses == 1


def test_the_consecutive_loss_halt_lifts_after_its_cooldown() -> None:
    cb = CircuitBreakers(BreakerConfig(consecutive_losses=ConsecutiveLosses(cooldown_ms=HOUR)))
    cb.on_trade(ms(2025, 3, 1, 1), D(-1))
    halted = cb.on_trade(ms(2025, 3, 1, 2), D(-1))

    assert halted[0].reason.endswith("halted until 2025-03-01 03:00 UTC")
    assert refusal(cb, ms(2025, 3, 1, 2, 55)) is not None
    assert refusal(cb, ms(2025, 3, 1, 3)) is None  # the query already sees it end at 03:00
    lifted = cb.on_equity(ms(2025, 3, 1, 3, 20), D(10_000))
    assert changes(lifted) == [(ACCOUNT, HALTED, ACTIVE, ms(2025, 3, 1, 3))]
    assert cb.consecutive_losses == 0


def test_a_late_trade_report_trips_at_the_latest_time_seen() -> None:
    cb = CircuitBreakers()
    cb.on_equity(ms(2025, 3, 1, 2), D(10_000))
    cb.on_trade(ms(2025, 3, 1, 1, 50), D(-1))

    halted = cb.on_trade(ms(2025, 3, 1, 1, 55), D(-1))

    assert changes(halted) == [(ACCOUNT, ACTIVE, HALTED, ms(2025, 3, 1, 2))]


def test_resuming_one_hold_shows_the_one_that_still_governs() -> None:
    cb = CircuitBreakers()
    cb.on_equity(ms(2025, 1, 2), D(10_000))
    cb.on_equity(ms(2025, 1, 2, 12), D(9470))  # reducing
    cb.on_trade(ms(2025, 1, 2, 13), D(-1))
    halted = cb.on_trade(ms(2025, 1, 2, 14), D(-1))  # halted on top

    resumed = cb.resume(ms(2025, 1, 2, 15))

    assert changes(halted) == [(ACCOUNT, REDUCING, HALTED, ms(2025, 1, 2, 14))]
    assert changes(resumed) == [(ACCOUNT, HALTED, REDUCING, ms(2025, 1, 2, 15))]
    assert "; still reducing: daily loss −5.3 %" in resumed[0].reason
    assert [h.source for h in cb.holds()] == [Breaker.DAILY_LOSS]


# -- volatility spike and unusual volume ----------------------------------------------------


def test_a_volatility_spike_holds_only_its_symbol_until_the_percentile_falls_back() -> None:
    cb = CircuitBreakers()
    t = ms(2025, 5, 1, 12)

    spiked = cb.on_bar(BTC, t, 96.0, 1.0)
    at_threshold = cb.on_bar(BTC, t + BAR, 95.0, 1.0)  # not under 95 yet
    warming = cb.on_bar(BTC, t + 2 * BAR, math.nan, math.nan)
    calm = cb.on_bar(BTC, t + 3 * BAR, 94.99, 1.0)

    assert spiked == [
        StateChange(
            BTC,
            ACTIVE,
            REDUCING,
            "volatility spike: ATR percentile 96.00 > 95: reducing on BTCUSDT",
            t,
            Breaker.VOLATILITY_SPIKE,
        )
    ]
    assert at_threshold == [] and warming == []
    assert changes(calm) == [(BTC, REDUCING, ACTIVE, t + 3 * BAR)]


def test_volatility_hold_blocks_entries_on_its_symbol_only() -> None:
    cb = CircuitBreakers()
    t = ms(2025, 5, 1, 12)
    cb.on_bar(BTC, t, 99.0, 1.0)

    assert cb.effective_state(BTC, t) is REDUCING
    assert cb.effective_state(ETH, t) is ACTIVE
    assert cb.trading_state(ACCOUNT, t) is ACTIVE
    assert refusal(cb, t, BTC) is not None
    assert refusal(cb, t, ETH) is None


def test_a_release_level_below_the_trip_level_stops_flapping() -> None:
    config = BreakerConfig(volatility_spike=VolatilitySpike(percentile_pct=95, release_pct=80))
    cb = CircuitBreakers(config)
    t = ms(2025, 5, 1, 12)
    cb.on_bar(BTC, t, 97.0, 1.0)

    assert cb.on_bar(BTC, t + BAR, 90.0, 1.0) == []
    assert changes(cb.on_bar(BTC, t + 2 * BAR, 79.0, 1.0)) == [(BTC, REDUCING, ACTIVE, t + 2 * BAR)]


def test_unusual_volume_alerts_once_per_episode_without_a_state_change() -> None:
    cb = CircuitBreakers()
    t = ms(2025, 5, 1, 12)

    first = cb.on_bar(BTC, t, 50.0, 5.5)
    still = cb.on_bar(BTC, t + BAR, 50.0, 9.0)
    back = cb.on_bar(BTC, t + 2 * BAR, 50.0, 5.0)  # at the threshold: the episode is over
    second = cb.on_bar(BTC, t + 3 * BAR, 50.0, 7.25)

    assert first == [
        RiskAlert(BTC, AlertKind.UNUSUAL_VOLUME, "unusual volume on BTCUSDT: RVOL 5.5 > 5", t, 5.5)
    ]
    assert still == [] and back == []
    assert [a.time for a in second] == [t + 3 * BAR]
    assert cb.effective_state(BTC, t + 3 * BAR) is ACTIVE


# -- entry checks ---------------------------------------------------------------------------


def test_max_open_positions_refuses_only_a_new_position() -> None:
    cb = CircuitBreakers(BreakerConfig(max_open_positions=EntryLimit(limit=D(2))))
    t = ms(2025, 5, 1)

    assert refusal(cb, t, open_positions=2) == "BTCUSDT: max open positions: 2 open ≥ limit 2"
    assert refusal(cb, t, open_positions=1) is None
    assert refusal(cb, t, open_positions=2, position=D("0.1")) is None  # adds to a held one
    assert refusal(cb, t, open_positions=5, position=D("0.1"), side=Side.SELL) is None


def test_max_leverage_checks_the_gross_notional_after_the_order() -> None:
    # Limit 3 × equity 10,000 = 30,000. Held: 25,000 gross, of which 0.1 BTC long.
    cb = CircuitBreakers(BreakerConfig(max_leverage=EntryLimit(limit=D(3))))
    t = ms(2025, 5, 1)
    held = {"position": D("0.1"), "gross": D(25_000), "open_positions": 2}

    over = refusal(cb, t, qty=D("0.1"), price=D(60_000), **held)  # +6,000 → 31,000
    at_limit = refusal(cb, t, qty=D("0.1"), price=D(50_000), **held)  # +5,000 → 30,000
    # Selling 0.25 flips 0.1 long into 0.15 short: only 0.05 × 60,000 = 3,000 is added.
    flip = refusal(cb, t, qty=D("0.25"), side=Side.SELL, price=D(60_000), **held)

    assert over == (
        "BTCUSDT: max leverage: gross notional 31,000.00 on equity 10,000.00 "
        "would be 3.10× > limit 3×"
    )
    assert at_limit is None
    assert flip is None
    assert refusal(cb, t, qty=D("0.2"), side=Side.SELL, price=D(60_000), **held) is None
    assert refusal(cb, t, equity=D(0)) is not None


# -- manual holds and configuration ----------------------------------------------------------


def test_a_manual_halt_of_a_symbol_until_resumed() -> None:
    cb = CircuitBreakers()
    t = ms(2025, 5, 1)

    halted = cb.halt(t, ETH, "listing news")
    resumed = cb.resume(t + HOUR, ETH)

    assert halted[0].reason == "by hand: listing news"
    assert changes(halted) == [(ETH, ACTIVE, HALTED, t)]
    assert changes(resumed) == [(ETH, HALTED, ACTIVE, t + HOUR)]
    with pytest.raises(ValueError, match="cannot be active"):
        cb.halt(t, ETH, "x", ACTIVE)


def test_a_disabled_breaker_never_trips_and_its_old_holds_lift() -> None:
    quiet = BreakerConfig(daily_loss=DailyLossLimit(enabled=False))
    cb = CircuitBreakers()
    cb.on_equity(ms(2025, 1, 2), D(10_000))
    cb.on_equity(ms(2025, 1, 2, 12), D(9000))
    restarted = CircuitBreakers(quiet)
    restarted.restore(cb.state())

    lifted = restarted.advance(ms(2025, 1, 2, 12, 5))
    fresh = CircuitBreakers(quiet)
    fresh.on_equity(ms(2025, 1, 2), D(10_000))

    assert changes(lifted) == [(ACCOUNT, REDUCING, ACTIVE, ms(2025, 1, 2, 12, 5))]
    assert lifted[0].reason.startswith("daily_loss breaker disabled")
    assert fresh.on_equity(ms(2025, 1, 2, 12), D(5000)) == []


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: DailyLossLimit(limit=D(0)), "limit"),
        (lambda: DailyLossLimit(limit=0.05), "limit"),
        (lambda: DailyLossLimit(state=ACTIVE), "state"),
        (lambda: ConsecutiveLosses(count=0), "count"),
        (lambda: ConsecutiveLosses(cooldown_ms=0), "cooldown_ms"),
        (lambda: VolatilitySpike(percentile_pct=101), "percentile_pct"),
        (lambda: VolatilitySpike(release_pct=96), "release_pct"),
        (lambda: UnusualVolume(rvol=0), "rvol"),
        (lambda: EntryLimit(limit=D(0)), "limit"),
    ],
)
def test_bad_breaker_settings_are_config_errors(build: Callable[[], object], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build()

    assert caught.value.field == field


def test_restore_refuses_a_state_of_another_version_or_shape() -> None:
    cb = CircuitBreakers()
    with pytest.raises(ValueError, match="version must be 1"):
        cb.restore({"version": 2})
    with pytest.raises(ValueError, match="malformed breaker state"):
        cb.restore({"version": 1, "holds": [{"scope": ACCOUNT}]})


# -- the inputs -----------------------------------------------------------------------------


def test_relative_volume_by_hand() -> None:
    # bar 2: 2 / mean(1, 3) = 1; bar 3: 8 / mean(3, 2) = 3.2; bar 5: the mean of (0, 0) is 0.
    rvol = relative_volume(np.array([1.0, 3.0, 2.0, 8.0, 0.0, 0.0, 4.0]), period=2)

    assert rvol[:2].tolist() == [pytest.approx(math.nan, nan_ok=True)] * 2
    assert rvol[2:5].tolist() == [1.0, 3.2, 0.0]
    assert math.isnan(rvol[6])  # 4 / mean(0, 0): undefined


def test_atr_percentile_by_hand() -> None:
    # bar 3: 0.5 among (1, 2, 3): none at or below → 0; bar 4: 2.5 among (2, 3, 0.5) → 2/3;
    # bar 5: 9 among (3, 0.5, 2.5) → 100; bar 6: NaN itself; bar 7: a NaN in its window.
    pct = atr_percentile(np.array([1.0, 2.0, 3.0, 0.5, 2.5, 9.0, np.nan, 1.0]), window=3)

    assert np.isnan(pct[:3]).all()
    assert pct[3:6].tolist() == [0.0, pytest.approx(200 / 3), 100.0]
    assert np.isnan(pct[6:]).all()


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.sampled_from([0.5, 1.0, 1.0, 2.5, 3.0, 7.25, np.nan]), min_size=1,
                    max_size=60),
    window=st.integers(1, 9),
    chunk=st.integers(1, 7),
)  # fmt: skip
def test_atr_percentile_counts_ties_and_nans_as_a_plain_loop(
    values: list[float], window: int, chunk: int
) -> None:
    # Ties (a value equal to one of its window counts as at or below it) and NaNs, which the
    # percentile's ranking of the values must treat as the floats' comparison does.
    atr = np.array(values)

    pct = atr_percentile(atr, window, chunk=chunk)

    for i, x in enumerate(values):
        seen = values[i - window : i]
        if i < window or np.isnan(x) or any(np.isnan(v) for v in seen):
            assert np.isnan(pct[i])
        else:
            assert pct[i] == 100.0 * sum(1 for v in seen if v <= x) / window


@settings(max_examples=200, deadline=None)
@given(end=st.integers(21, 5000), windows=st.integers(1, 12))
def test_rvol_of_a_short_window_has_the_bits_of_the_whole_series(end: int, windows: int) -> None:
    volume = load_candles("binance_usdm_BTCUSDT_5m.csv.gz").volume[:5000]
    windows = min(windows, end - 20)

    whole = relative_volume(volume[:end], 20)[end - windows :]
    short = relative_volume(volume[end - windows - 20 : end], 20)[20:]

    assert whole.tobytes() == short.tobytes()  # a paper run's window: the backtest's numbers


def test_the_inputs_match_a_plain_loop_on_real_bars() -> None:
    candles = load_candles("binance_usdm_BTCUSDT_5m.csv.gz")
    volume = candles.volume[:5000]
    atr = ATR(14).batch(candles)["atr"][:5000]

    rvol = relative_volume(volume, 20)
    pct = atr_percentile(atr, 1000, chunk=97)

    for i in range(20, 5000, 37):
        mean = sum(volume[i - 20 : i]) / 20
        assert rvol[i] == pytest.approx(volume[i] / mean, rel=1e-12) if mean else np.isnan(rvol[i])
    for i in range(1014, 5000, 41):
        below = sum(1 for x in atr[i - 1000 : i] if x <= atr[i])
        assert pct[i] == 100.0 * below / 1000
    assert np.isnan(pct[:1014]).all()  # ATR(14) starts at bar 14, then 1,000 values are needed


# -- real data: the October 10 2025 crash ------------------------------------------------------


def btc_closes(start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, close times (ms UTC) and closes of the BTCUSDT 5m bars closing in [start, end]."""
    candles = load_candles("binance_usdm_BTCUSDT_5m.csv.gz")
    close_time = candles.open_time + BAR
    rows = np.flatnonzero((close_time >= start) & (close_time <= end))
    return rows, close_time[rows], candles.close[rows]


def test_daily_loss_trips_on_october_10_2025_and_resets_at_the_next_midnight() -> None:
    # A long bought with all of 10,000 USDT at the 2025-10-09 00:00 UTC close (123,237.5 →
    # 0.081 BTC on the 0.001 step), replayed close by close to 2025-10-12 00:00 UTC.
    _, times, closes = btc_closes(ms(2025, 10, 9), ms(2025, 10, 12))
    entry, qty, cash = D("123237.5"), D("0.081"), D(10_000)
    cb = CircuitBreakers()
    events: list[RiskEvent] = []

    assert D(str(closes[0])) == entry
    for t, close in zip(times.tolist(), closes.tolist(), strict=True):
        events += cb.on_equity(t, cash + qty * (D(str(close)) - entry))

    # By hand: equity at the 2025-10-10 00:00 close (121,579.4) is 10,000 + 0.081 ×
    # (121,579.4 − 123,237.5) = 9,865.6939; the limit is 95 % of it, 9,372.409205, reached
    # when the close is at or below 123,237.5 − (10,000 − 9,372.409205) / 0.081 = 115,489.4…
    start_equity = cash + qty * (D("121579.4") - entry)
    trigger = entry - (cash - start_equity * D("0.95")) / qty
    day = (times >= ms(2025, 10, 10)) & (times < ms(2025, 10, 11))
    first_below = int(times[day][np.flatnonzero(closes[day] <= float(trigger))[0]])
    assert start_equity == D("9865.6939")
    assert first_below == ms(2025, 10, 10, 20, 55)
    assert changes(events) == [
        (ACCOUNT, ACTIVE, REDUCING, ms(2025, 10, 10, 20, 55)),
        (ACCOUNT, REDUCING, ACTIVE, ms(2025, 10, 11)),
    ]
    assert events[0].reason == (
        "daily loss −5.1 % of start-of-day equity 9,865.69 ≥ limit 5 %: "
        "no new entries until 2025-10-11 00:00 UTC"
    )
    # October 11 starts from 9,147.6694 (the 00:00 close 112,740.1) and never loses 5 % of it;
    # the last point, the 2025-10-12 00:00 close, starts October 12.
    assert cb.state()["day_start"] == str(cash + qty * (D(str(closes[-1])) - entry))


def test_the_volatility_breaker_holds_btcusdt_through_the_21_15_cascade() -> None:
    # ATR(14) percentile over the previous 30 days (8,640 bars) and RVOL over 20 bars, from the
    # start of the data, replayed from 2025-10-10 00:00 to 2025-10-11 12:00 UTC.
    candles = load_candles("binance_usdm_BTCUSDT_5m.csv.gz")
    pct = atr_percentile(ATR(14).batch(candles)["atr"], 8640)
    rvol = relative_volume(candles.volume, 20)
    rows, times, _ = btc_closes(ms(2025, 10, 10, 0, 5), ms(2025, 10, 11, 12))
    cb = CircuitBreakers()
    events: list[RiskEvent] = []
    cascade = ms(2025, 10, 10, 21, 20)  # close of the bar opening 21:15 (low 102,193.6)
    state_at_cascade = None

    for i, t in zip(rows.tolist(), times.tolist(), strict=True):
        events += cb.on_bar(BTC, t, float(pct[i]), float(rvol[i]))
        if t == cascade:
            state_at_cascade = cb.effective_state(BTC, t)

    trips = changes(events)
    alerts = [e for e in events if isinstance(e, RiskAlert)]
    cascade_row = int(rows[np.flatnonzero(times == cascade)[0]])
    assert pct[cascade_row] == 100.0  # the highest ATR of the past 30 days
    assert rvol[cascade_row] == pytest.approx(12.2, abs=0.05)
    assert state_at_cascade is REDUCING
    # The hold began at 14:05, when the afternoon sell-off lifted the percentile to 96.02,
    # and lasted until 06:55 the next morning (94.70).
    assert trips[:2] == [
        (BTC, ACTIVE, REDUCING, ms(2025, 10, 10, 14, 5)),
        (BTC, REDUCING, ACTIVE, ms(2025, 10, 11, 6, 55)),
    ]
    # RVOL > 5 episodes that day: 02:05, 13:40, 15:00, 19:25, 20:55 and 21:15 (the cascade's
    # RVOL 12.2 at 21:20 is inside the 21:15 episode).
    assert [a.time for a in alerts if a.time < ms(2025, 10, 11)] == [
        ms(2025, 10, 10, 2, 5),
        ms(2025, 10, 10, 13, 40),
        ms(2025, 10, 10, 15),
        ms(2025, 10, 10, 19, 25),
        ms(2025, 10, 10, 20, 55),
        ms(2025, 10, 10, 21, 15),
    ]
    assert cb.trading_state(ACCOUNT, cascade) is ACTIVE


# -- persistence ------------------------------------------------------------------------------


def real_feed() -> list[tuple[str, int, object]]:
    """Inputs from the real BTCUSDT 5m bars of 2025-10-08 00:05 to 2025-10-13 00:00 UTC: the
    features at every close, the equity of a 0.081 BTC long at every close, and every 6 hours
    a closed trade whose pnl is 0.081 × the 6-hour change of the close."""
    candles = load_candles("binance_usdm_BTCUSDT_5m.csv.gz")
    pct = atr_percentile(ATR(14).batch(candles)["atr"], 8640)
    rvol = relative_volume(candles.volume, 20)
    rows, times, closes = btc_closes(ms(2025, 10, 8, 0, 5), ms(2025, 10, 13))
    feed: list[tuple[str, int, object]] = []
    for k, (i, t, c) in enumerate(zip(rows.tolist(), times.tolist(), closes.tolist(), strict=True)):
        feed.append(("bar", t, (float(pct[i]), float(rvol[i]))))
        feed.append(("equity", t, D(10_000) + D("0.081") * (D(str(c)) - D("123237.5"))))
        if k >= 72 and k % 72 == 0:
            feed.append(("trade", t, D("0.081") * (D(str(c)) - D(str(closes[k - 72])))))
    return feed


def play(cb: CircuitBreakers, feed: list[tuple[str, int, object]]) -> list[RiskEvent]:
    events: list[RiskEvent] = []
    for kind, t, value in feed:
        if kind == "bar":
            events += cb.on_bar(BTC, t, *value)  # type: ignore[misc]
        elif kind == "equity":
            events += cb.on_equity(t, value)  # type: ignore[arg-type]
        else:
            events += cb.on_trade(t, value)  # type: ignore[arg-type]
    return events


def test_state_round_trip_gives_the_same_future_decisions_on_real_data() -> None:
    config = BreakerConfig(consecutive_losses=ConsecutiveLosses(cooldown_ms=12 * HOUR))
    feed = real_feed()
    half = next(k for k, (_, t, _) in enumerate(feed) if t >= ms(2025, 10, 10, 21))
    straight = CircuitBreakers(config)
    play(straight, feed[:half])
    saved = json.loads(json.dumps(straight.state()))
    resumed = CircuitBreakers(config)
    resumed.restore(saved)

    assert resumed.holds() == straight.holds() != ()  # a hold is in flight at the split
    rest_straight = play(straight, feed[half:])
    rest_resumed = play(resumed, feed[half:])

    assert rest_resumed == rest_straight
    assert any(isinstance(e, StateChange) for e in rest_straight)
    assert resumed.state() == straight.state()
    for t in range(ms(2025, 10, 12), ms(2025, 10, 13), HOUR):
        assert refusal(resumed, t) == refusal(straight, t)


# -- invariants -----------------------------------------------------------------------------

steps = st.one_of(
    st.tuples(st.just("equity"), st.decimals(min_value=D(8000), max_value=D(10_500), places=2)),
    st.tuples(st.just("equity"), st.decimals(min_value=D(9000), max_value=D(10_500), places=2)),
    st.tuples(st.just("trade"), st.decimals(min_value=D(-50), max_value=D(20), places=2)),
    st.tuples(
        st.just("bar"),
        st.tuples(
            st.sampled_from([BTC, ETH]),
            st.floats(min_value=0, max_value=100),
            st.floats(min_value=0, max_value=10),
        ),
    ),
    st.tuples(st.just("resume"), st.sampled_from([ACCOUNT, BTC])),
    st.tuples(
        st.just("halt"),
        st.tuples(st.sampled_from([ACCOUNT, ETH]), st.sampled_from([REDUCING, HALTED])),
    ),
)
sequences = st.lists(st.tuples(st.integers(0, 40), steps), max_size=40)
"""Random inputs, each 0 to 40 half-hours after the one before (see :func:`timed`)."""
configs = st.builds(
    BreakerConfig,
    daily_loss=st.builds(DailyLossLimit, close_all=st.booleans()),
    consecutive_losses=st.builds(
        ConsecutiveLosses, count=st.integers(1, 3), cooldown_ms=st.sampled_from([None, HOUR])
    ),
)


def apply(cb: CircuitBreakers, t: int, step: tuple[str, object]) -> list[RiskEvent]:
    kind, value = step
    if kind == "equity":
        return cb.on_equity(t, value)  # type: ignore[arg-type]
    if kind == "trade":
        return cb.on_trade(t, value)  # type: ignore[arg-type]
    if kind == "bar":
        symbol, pct, rvol = value  # type: ignore[misc]
        return cb.on_bar(symbol, t, pct, rvol)
    if kind == "resume":
        return cb.resume(t, value)  # type: ignore[arg-type]
    scope, state = value  # type: ignore[misc]
    return cb.halt(t, scope, "test", state)


def timed(sequence: list[tuple[int, tuple[str, object]]]) -> list[tuple[int, tuple[str, object]]]:
    """Steps of 0..40 half-hours apart from 2025-01-01, so days and cooldowns roll over."""
    t, out = ms(2025, 1, 1), []
    for gap, step in sequence:
        t += gap * 1_800_000
        out.append((t, step))
    return out


@settings(max_examples=150, deadline=None)
@given(configs, sequences, st.integers(0, 40))
def test_any_split_of_a_run_through_state_and_restore_decides_the_same(
    config: BreakerConfig, sequence: list[tuple[int, tuple[str, object]]], split: int
) -> None:
    steps_ = timed(sequence)
    straight = CircuitBreakers(config)
    for t, step in steps_[:split]:
        apply(straight, t, step)
    resumed = CircuitBreakers(config)
    resumed.restore(json.loads(json.dumps(straight.state())))

    for t, step in steps_[split:]:
        assert apply(resumed, t, step) == apply(straight, t, step)
        assert refusal(resumed, t, ETH) == refusal(straight, t, ETH)
    assert resumed.state() == straight.state()


@settings(max_examples=150, deadline=None)
@given(
    configs,
    sequences,
    st.decimals(min_value=D(-1), max_value=D(1), places=2),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.decimals(min_value=D("0.01"), max_value=D(2), places=2),
    st.booleans(),
)
def test_no_state_lets_an_order_through_that_its_rules_forbid(
    config: BreakerConfig,
    sequence: list[tuple[int, tuple[str, object]]],
    position: Decimal,
    side: Side,
    qty: Decimal,
    reduce_only: bool,
) -> None:
    cb = CircuitBreakers(config)
    for t, step in timed(sequence):
        events = apply(cb, t, step)
        for e in events:
            assert e.time <= t  # events never come from the future
        for symbol in (BTC, ETH):
            state = cb.effective_state(symbol, t)
            refused = refusal(
                cb, t, symbol, position=position, side=side, qty=qty, reduce_only=reduce_only
            )
            after = position_after(position, side, qty, reduce_only)
            if state is HALTED:
                assert refused is not None  # halted: no new exposure, no order at all
            if state is REDUCING and refused is None:
                assert abs(after) < abs(position)
                assert after == 0 or (after > 0) == (position > 0)
