"""Every feature's batch form (backtests) and incremental form (paper and live) agree bit for bit
on real Binance bars: the 60-day BTCUSDT sample shipped with the repo and, where the shared data
folder is present, 20,000 bars of ETHUSDT. Batch values are also causal (a prefix gives the same
values), and the incremental resampler builds exactly the bars of ``domain.resample.resample``,
gaps included.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from functools import cache

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.marketdata.binance_csv import read_klines
from domain.candles import Candles
from domain.errors import ConfigError
from domain.features import (
    ADX,
    ATR,
    EMA,
    MACD,
    RSI,
    SMA,
    Bar,
    Bollinger,
    Component,
    Lifted,
    Resampler,
    SmaSign,
    iter_bars,
    standard_components,
)
from domain.features.fma import fma
from domain.resample import resample
from tests.fixtures.data import sample_dir, shared_file

M5, H1, DAY = 300_000, 3_600_000, 86_400_000
# PRICE_FILTER tickSize in data/sample/binance_usdm_exchange_info_20251030.json.
BTC_TICK, ETH_TICK = 0.1, 0.01
NAMES = [component.name for component in standard_components(BTC_TICK)]


@cache
def btc() -> Candles:
    """60 days of BTCUSDT perpetual 5m bars, gap-free, from 2025-09-02 00:00 UTC."""
    return read_klines(sample_dir() / "binance_usdm_BTCUSDT_5m.csv.gz")


@cache
def eth() -> Candles:
    """20,000 ETHUSDT perpetual 5m bars from 2024-12-31 (one exchange maintenance included)."""
    return read_klines(shared_file("binance_usdm_ETHUSDT_5m.csv.gz")).slice(0, 20_000)


def longest() -> Candles:
    """ETHUSDT where the shared data folder is present, else the BTCUSDT sample."""
    try:
        return eth()
    except pytest.skip.Exception:
        return btc()


SERIES = {"btc": (btc, BTC_TICK), "eth": (eth, ETH_TICK)}


def stepped(component: Component, candles: Candles) -> dict[str, np.ndarray]:
    """The component's stepper fed every bar of ``candles``, its values stacked per output."""
    stepper = component.stepper()
    rows = [stepper.update(bar) for bar in iter_bars(candles)]
    values = np.array(rows, dtype=np.float64).reshape(len(candles), len(component.outputs))
    return {name: values[:, j] for j, name in enumerate(component.outputs)}


def drop(candles: Candles, indices: list[int]) -> Candles:
    """``candles`` without the bars at ``indices`` (a gap in the feed)."""
    keep = np.setdiff1d(np.arange(len(candles)), indices)
    columns = (candles.open_time, candles.open, candles.high, candles.low, candles.close)
    return Candles(*(c[keep] for c in columns), candles.volume[keep])


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name, strict=True)


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_stepper_equals_batch_at_every_bar(series: str, index: int) -> None:
    load, tick = SERIES[series]
    candles = load()
    component = standard_components(tick)[index]

    want = component.batch(candles)
    got = stepped(component, candles)

    assert_same(got, want)
    assert all(np.isfinite(v[-1]) for v in want.values())  # the comparison is not NaN vs NaN


@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_batch_is_causal_a_prefix_gives_the_same_values(index: int) -> None:
    candles = longest()
    component = standard_components(ETH_TICK)[index]
    full = component.batch(candles)
    w = component.warmup
    ends = {0, w - 2, w - 1, w, w + 1, *np.linspace(w + 2, len(candles) - 1, 30).astype(int)}

    for k in sorted(e for e in ends if 0 <= e < len(candles)):
        prefix = component.batch(candles.slice(0, k + 1))
        for name, values in full.items():
            np.testing.assert_array_equal(prefix[name][k], values[k], err_msg=f"{name} at {k}")


@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_first_defined_value_is_at_the_warm_up(index: int) -> None:
    component = standard_components(BTC_TICK)[index]
    # One bar past midnight: a lifted component then loses the most to a partial first bucket.
    candles = btc().slice(1, 1 + 2 * component.warmup + 300)

    values = component.batch(candles)

    for name, column in values.items():
        assert int(np.flatnonzero(~np.isnan(column))[0]) == component.warmup - 1, name
        assert not np.isnan(column[component.warmup - 1 :]).any(), name


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, 17_280 - 3_000),
    length=st.integers(1, 3_000),
    gaps=st.lists(st.integers(0, 2_999), max_size=12),
)
def test_stepper_equals_batch_on_any_slice_with_gaps(
    start: int, length: int, gaps: list[int]
) -> None:
    candles = drop(btc().slice(start, start + length), [g for g in gaps if g < length])

    for component in standard_components(BTC_TICK):
        assert_same(stepped(component, candles), component.batch(candles))


@settings(max_examples=60, deadline=None)
@given(
    period=st.integers(2, 60),
    extra=st.integers(1, 40),
    signal=st.integers(1, 20),
    k=st.sampled_from([1.0, 1.5, 2.0, 3.0]),
    start=st.integers(0, 17_280 - 3_000),
)
@example(period=11, extra=15, signal=9, k=2.0, start=0)  # EMA(11) needs TA-Lib's fused step
def test_stepper_equals_batch_for_any_parameters(
    period: int, extra: int, signal: int, k: float, start: int
) -> None:
    candles = btc().slice(start, start + 3_000)
    components: list[Component] = [
        SMA(period),
        EMA(period),
        RSI(period),
        ATR(period),
        ADX(period),
        Bollinger(period, k),
        MACD(period, period + extra, signal),
        SmaSign(period, period + extra, BTC_TICK),
        Lifted(RSI(period), M5, 15 * 60_000),
    ]

    for component in components:
        assert_same(stepped(component, candles), component.batch(candles))


def test_forms_agree_on_flat_windows_a_spike_and_a_day_opening_without_volume() -> None:
    real = btc().slice(0, 4_000)
    close, volume = real.close.copy(), real.volume.copy()
    close[:30] = close[0]  # a flat start: no gain, loss or true range in the seeds
    close[500:560] = close[500]  # five flat hours: zero variance
    close[1_000] *= 3.0  # a squared deviation that dwarfs the window's sum
    close[2_000:2_100] = np.round(close[2_000:2_100] / 10_000, 1)  # a far smaller price level
    volume[288 * 3 : 288 * 3 + 4] = 0.0  # the day's first bars traded nothing
    high, low = np.maximum(real.high, close), np.minimum(real.low, close)
    high[:30] = low[:30] = close[:30]
    candles = Candles(real.open_time, close, high, low, close, volume)

    for component in standard_components(BTC_TICK):
        assert_same(stepped(component, candles), component.batch(candles))
    assert RSI(14).batch(candles)["rsi"][14] == 0.0  # the flat seed took TA-Lib's zero branch


def test_resampler_builds_the_batch_bars_at_the_bar_that_completes_them() -> None:
    candles = longest()
    stepper = Resampler(M5, H1).stepper()

    emitted = [(i, stepper.update(bar)) for i, bar in enumerate(iter_bars(candles))]

    want = resample(candles, M5, H1)
    got = [(i, bar) for i, bar in emitted if bar is not None]
    assert len(got) == len(want) > 1_000
    at = np.array([i for i, _ in got])
    np.testing.assert_array_equal(candles.open_time[at], want.open_time + H1 - M5)
    assert_same(_columns([bar for _, bar in got]), _columns_of(want))


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, 17_280 - 2_000),
    gaps=st.lists(st.integers(0, 1_999), min_size=1, max_size=20),
    target=st.sampled_from([15 * 60_000, H1, 4 * H1, DAY]),
)
def test_resampler_equals_resample_with_gaps_and_any_start(
    start: int, gaps: list[int], target: int
) -> None:
    candles = drop(btc().slice(start, start + 2_000), gaps)
    stepper = Resampler(M5, target).stepper()

    got = [bar for bar in map(stepper.update, iter_bars(candles)) if bar is not None]

    assert_same(_columns(got), _columns_of(resample(candles, M5, target)))


def test_resampler_refuses_a_bar_out_of_order_or_off_the_grid() -> None:
    stepper = Resampler(M5, H1).stepper()
    stepper.update(Bar(M5, 1.0, 1.0, 1.0, 1.0, 1.0))

    with pytest.raises(ValueError, match="after 300000"):
        stepper.update(Bar(M5, 1.0, 1.0, 1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="grid"):
        stepper.update(Bar(M5 + 1, 1.0, 1.0, 1.0, 1.0, 1.0))


def _columns(bars: list[Bar]) -> dict[str, np.ndarray]:
    return {
        name: np.array([getattr(b, name) for b in bars], dtype=np.int64 if j == 0 else np.float64)
        for j, name in enumerate(Bar._fields)
    }


def _columns_of(candles: Candles) -> dict[str, np.ndarray]:
    return {name: getattr(candles, name) for name in Bar._fields}


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: SMA(1), "period"),
        (lambda: EMA(0), "period"),
        (lambda: RSI(1), "period"),
        (lambda: ATR(0), "period"),
        (lambda: ADX(1), "period"),
        (lambda: MACD(12, 12, 9), "slow"),
        (lambda: MACD(12, 26, 0), "signal"),
        (lambda: Bollinger(20, 0.0), "k"),
        (lambda: Bollinger(1, 2.0), "period"),
        (lambda: SmaSign(50, 200, 0.0), "tick"),
        (lambda: SmaSign(0, 200, 0.1), "fast"),
        (lambda: Lifted(EMA(50), M5, 7 * 60_000), "timeframe"),
        (lambda: Resampler(H1, M5), "timeframe"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(
    make: Callable[[], object], field: str
) -> None:
    with pytest.raises(ConfigError) as error:
        make()
    assert error.value.field == field


@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(-1e12, 1e12, allow_nan=False),
    b=st.floats(-1e3, 1e3, allow_nan=False),
    c=st.floats(-1e12, 1e12, allow_nan=False),
)
def test_fma_rounds_the_exact_product_sum_once(a: float, b: float, c: float) -> None:
    assert fma(a, b, c) == float(Fraction(a) * Fraction(b) + Fraction(c))
