"""Indicator glue on real bars: TA-Lib wrappers, our anchored VWAP and the exact SMA sign."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import ConfigError
from domain.indicators import adx, atr, bollinger, ema, macd, rsi, sma, sma_sign, vwap
from tests.fixtures.data import load_candles, load_sample_candles

BTC = load_sample_candles("BTCUSDT").slice(0, 3000)
BTC_TICK = 0.1  # Binance USD-M BTCUSDT; spot BTCUSDT ticks in 0.01
DAY_MS = 86_400_000


def exact_sign(close: np.ndarray, fast: int, slow: int) -> list[int]:
    """Sign of SMA(fast) − SMA(slow) from bar slow − 1 on, in decimal arithmetic."""
    decimals = [Decimal(repr(float(c))) for c in close]
    signs = []
    for t in range(slow - 1, len(close)):
        f = sum(decimals[t - fast + 1 : t + 1]) / fast
        s = sum(decimals[t - slow + 1 : t + 1]) / slow
        signs.append((f > s) - (f < s))
    return signs


def test_vwap_restarts_at_midnight_utc_and_matches_a_pandas_groupby() -> None:
    typical = (BTC.high + BTC.low + BTC.close) / 3
    frame = pd.DataFrame(
        {"day": BTC.open_time // 86_400_000, "pv": typical * BTC.volume, "v": BTC.volume}
    )
    cumulative = frame.groupby("day")[["pv", "v"]].cumsum()
    expected = (cumulative["pv"] / cumulative["v"]).to_numpy()

    got = vwap(BTC.open_time, BTC.high, BTC.low, BTC.close, BTC.volume)

    first_of_day = np.flatnonzero(BTC.open_time % 86_400_000 == 0)
    assert got == pytest.approx(expected, rel=1e-9)
    assert got[first_of_day] == pytest.approx(typical[first_of_day], rel=1e-12)


def test_vwap_depends_only_on_the_bars_of_its_own_day() -> None:
    later = BTC.slice(84, len(BTC))  # from 07:00 UTC on the first day
    midnight = 288  # BTC starts at 00:00 UTC
    assert BTC.open_time[midnight] % DAY_MS == 0

    full = vwap(BTC.open_time, BTC.high, BTC.low, BTC.close, BTC.volume)
    part = vwap(later.open_time, later.high, later.low, later.close, later.volume)

    np.testing.assert_array_equal(part[midnight - 84 :], full[midnight:])


def test_vwap_falls_back_to_the_typical_price_on_zero_volume() -> None:
    volume = BTC.volume.copy()
    volume[:3] = 0.0  # the day's first bars traded nothing (exchange maintenance)

    got = vwap(BTC.open_time, BTC.high, BTC.low, BTC.close, volume)

    assert got[:3] == pytest.approx(((BTC.high + BTC.low + BTC.close) / 3)[:3])


def test_talib_wrappers_are_causal_with_their_warm_up() -> None:
    close, high, low = BTC.close, BTC.high, BTC.low
    upper, middle, lower = bollinger(close, 20, 2.0)
    line, signal, hist = macd(close)

    assert np.isnan(sma(close, 50)[:49]).all() and not np.isnan(sma(close, 50)[49:]).any()
    assert sma(close, 50)[49] == pytest.approx(close[:50].mean())
    assert ema(close, 20)[19] == pytest.approx(close[:20].mean())
    assert np.nanmin(rsi(close)) >= 0 and np.nanmax(rsi(close)) <= 100
    assert (np.nan_to_num(atr(high, low, close), nan=1.0) > 0).all()
    assert np.nanmax(adx(high, low, close)) <= 100
    assert (upper[19:] >= middle[19:]).all() and (middle[19:] >= lower[19:]).all()
    assert middle[19:] == pytest.approx(sma(close, 20)[19:])
    assert hist[~np.isnan(hist)] == pytest.approx((line - signal)[~np.isnan(hist)])
    cut = 2000
    assert rsi(close[:cut])[-1] == rsi(close)[cut - 1]


@settings(max_examples=40, deadline=None)
@given(
    start=st.integers(0, 2500),
    fast=st.integers(2, 20),
    extra=st.integers(1, 60),
)
def test_sma_sign_equals_exact_decimal_comparison(start: int, fast: int, extra: int) -> None:
    slow = fast + extra
    close = BTC.close[start : start + slow + 40]

    got = sma_sign(close, fast, slow, tick=BTC_TICK)

    assert got[slow - 1 :].tolist() == exact_sign(close, fast, slow)
    assert np.isnan(got[: slow - 1]).all()


@pytest.mark.parametrize(("fast", "slow"), [(1, 2), (2, 3), (3, 5)])
def test_sma_sign_counts_spot_prices_in_cents_and_keeps_neighbouring_ticks_apart(
    fast: int, slow: int
) -> None:
    # Spot BTCUSDT quotes 0.01 ticks (95123.45): scaling by a relative tolerance took such
    # prices to 0.1 and merged neighbours, giving 9 wrong signs in these 3000 bars at (1, 2).
    close = load_candles("binance_spot_BTCUSDT_5m.csv.gz").close[:3000]

    got = sma_sign(close, fast, slow, tick=0.01)

    assert got[slow - 1 :].tolist() == exact_sign(close, fast, slow)


def test_sma_sign_separates_prices_one_tick_apart() -> None:
    close = np.array([95123.45, 95123.44, 95123.45, 95123.44, 95123.44, 95123.45])

    got = sma_sign(close, 1, 2, tick=0.01)

    assert got.tolist()[1:] == [-1.0, 1.0, -1.0, 0.0, 1.0]


def test_sma_sign_falls_back_to_python_integers_where_int64_could_overflow() -> None:
    close = BTC.close[:400]  # at a 1e-10 tick, 50 × 200 windows of 1e15 ticks pass 2**62

    got = sma_sign(close, 50, 200, tick=1e-10)

    assert got[199:].tolist() == exact_sign(close, 50, 200)


@pytest.mark.parametrize(
    ("fast", "slow", "tick", "field"),
    [(0, 5, 0.1, "fast"), (5, 5, 0.1, "slow"), (2, 5, 0.0, "tick"), (2, 5, float("nan"), "tick")],
)
def test_sma_sign_refuses_bad_parameters_naming_them(
    fast: int, slow: int, tick: float, field: str
) -> None:
    with pytest.raises(ConfigError) as error:
        sma_sign(BTC.close, fast, slow, tick=tick)
    assert error.value.field == field


def test_sma_sign_refuses_a_close_that_is_not_finite() -> None:
    close = BTC.close[:300].copy()
    close[250] = np.nan

    with pytest.raises(ValueError, match="index 250"):
        sma_sign(close, 50, 200, tick=BTC_TICK)
