"""Indicator glue on real bars: TA-Lib wrappers, our anchored VWAP and the exact SMA sign."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.indicators import adx, atr, bollinger, ema, macd, rsi, sma, sma_sign, vwap
from tests.fixtures.data import load_sample_candles

BTC = load_sample_candles("BTCUSDT").slice(0, 3000)


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
    decimals = [Decimal(repr(float(c))) for c in close]

    got = sma_sign(close, fast, slow)

    for t in range(slow - 1, len(close)):
        f = sum(decimals[t - fast + 1 : t + 1]) / fast
        s = sum(decimals[t - slow + 1 : t + 1]) / slow
        assert got[t] == (f > s) - (f < s)
    assert np.isnan(got[: slow - 1]).all()
