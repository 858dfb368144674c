"""The ML feature matrix and the training labels (domain/ml/features.py, domain/ml/labels.py).

Causality is proved by truncating the future: features computed on the first ``cut`` bars must
equal the first ``cut`` rows computed on the whole series, NaN for NaN, bit for bit. Values are
checked against independent pandas / numpy formulas on real BTCUSDT bars; labels against small
hand-computed examples.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.candles import Candles
from domain.errors import ConfigError
from domain.ml.features import (
    CORE_FEATURES,
    DEFAULT_FEATURE_SET,
    FEATURE_DOCS,
    TAKER_FEATURE_SET,
    FeatureMatrix,
    FeatureSet,
    compute_features,
    feature_set_for,
    warmup_bars,
)
from domain.ml.labels import MeanReversionLabel, TrendLabel
from domain.resample import resample
from tests.fixtures.data import load_candles, load_sample_candles

SAMPLE_BARS = 17_280  # 60 days of 5m bars in data/sample
ATOL = 1e-13  # log(a) − log(b) vs log(a / b) and sums in another order: ~1e-15 apart
CUTS = [1, 2, 13, 40, 289, 2_030, 2_031, 2_500, 9_001, SAMPLE_BARS - 1]


def btc() -> Candles:
    return load_sample_candles("BTCUSDT")


@cache
def btc_features() -> FeatureMatrix:
    return compute_features(btc())


def spot_with_taker() -> Candles:
    return load_candles("binance_spot_BTCUSDT_5m.csv.gz")


def column(name: str) -> np.ndarray:
    return btc_features().column(name)


def assert_prefix_equal(cut_rows: np.ndarray, full: np.ndarray, names: tuple[str, ...]) -> None:
    """``cut_rows`` equal ``full[: len(cut_rows)]`` bit for bit, NaN for NaN, column by column."""
    for j, name in enumerate(names):
        np.testing.assert_array_equal(
            cut_rows[:, j], full[: len(cut_rows), j], err_msg=f"feature {name}"
        )


# Causality -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", CUTS)
def test_features_of_the_first_bars_do_not_change_when_later_bars_arrive(cut: int) -> None:
    # Arrange
    candles, full = btc(), btc_features()

    # Act
    truncated = compute_features(candles.slice(0, cut))

    # Assert
    assert truncated.values.shape == (cut, len(DEFAULT_FEATURE_SET.names))
    assert_prefix_equal(truncated.values, full.values, full.names)


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(min_value=1, max_value=SAMPLE_BARS))
def test_every_feature_is_causal_at_any_cut_point(cut: int) -> None:
    # Arrange
    candles, full = btc(), btc_features()

    # Act
    truncated = compute_features(candles.slice(0, min(cut, len(candles))))

    # Assert
    assert_prefix_equal(truncated.values, full.values, full.names)


@pytest.mark.parametrize("cut", [1, 300, 2_100, 9_000])
def test_taker_features_are_causal_on_data_with_taker_columns(cut: int) -> None:
    # Arrange
    candles = spot_with_taker()
    full = compute_features(candles, TAKER_FEATURE_SET)

    # Act
    truncated = compute_features(candles.slice(0, cut), TAKER_FEATURE_SET)

    # Assert
    assert_prefix_equal(truncated.values, full.values, full.names)


def test_altering_every_bar_after_a_cut_leaves_the_rows_up_to_it_unchanged() -> None:
    # Arrange
    candles, cut = btc(), 5_000
    scaled = {
        name: np.r_[getattr(candles, name)[:cut], getattr(candles, name)[cut:] * 1.7]
        for name in ("open", "high", "low", "close", "volume")
    }
    altered = Candles(candles.open_time, **scaled)

    # Act
    features = compute_features(altered)

    # Assert
    assert_prefix_equal(features.values[:cut], btc_features().values, btc_features().names)
    assert not np.array_equal(features.values[cut:], btc_features().values[cut:], equal_nan=True)


# Warm-up and value sanity on real data ---------------------------------------------------------


@pytest.mark.parametrize("name", CORE_FEATURES)
def test_each_feature_is_defined_from_its_documented_warmup_on(name: str) -> None:
    # Arrange
    expected_first = warmup_bars(FeatureSet("one", 1, (name,))) - 1

    # Act
    defined = ~np.isnan(column(name))

    # Assert: the sample is gap-free with no zero-volume bar, so nothing is NaN after warm-up
    assert int(np.argmax(defined)) == expected_first
    assert defined[expected_first:].all()


def test_whole_default_set_is_complete_from_row_2030_on_5m_bars() -> None:
    # Act
    complete = np.isfinite(btc_features().values).all(axis=1)

    # Assert
    assert warmup_bars() == 2_031
    assert int(np.argmax(complete)) == 2_030
    assert complete[2_030:].all()


def test_features_are_never_infinite_and_stay_in_their_ranges() -> None:
    # Arrange
    values = btc_features().values

    # Act
    ranges = {name: (np.nanmin(column(name)), np.nanmax(column(name))) for name in CORE_FEATURES}

    # Assert
    assert not np.isinf(values).any()
    for name in ("rsi", "adx", "atr_pct"):
        assert ranges[name][0] >= 0.0 and ranges[name][1] <= 100.0, name
    for name in ("atr_frac", "bb_width", "rvol", "volume_trend"):
        assert ranges[name][0] > 0.0, name
    assert ranges["ret_std_5"][0] >= 0.0
    assert ranges["atr_frac"][1] < 0.05  # a 5m ATR under 5% of the price
    assert set(np.unique(column("squeeze_on")[20:])) == {0.0, 1.0}
    assert ranges["volume_roc"][0] >= -1.0


def test_hour_and_day_of_week_are_the_utc_clock_of_the_bar_open() -> None:
    # Arrange
    candles = btc()
    times = [datetime.fromtimestamp(t / 1000, tz=UTC) for t in candles.open_time[::97].tolist()]

    # Act
    hour, dow = column("hour")[::97], column("dow")[::97]

    # Assert
    assert hour.tolist() == [float(t.hour) for t in times]
    assert dow.tolist() == [float(t.weekday()) for t in times]
    assert set(np.unique(column("hour"))) == set(map(float, range(24)))


def test_returns_and_rates_of_change_match_pandas() -> None:
    # Arrange
    close = pd.Series(btc().close)
    log_ret = np.log(close).diff()

    # Act / Assert
    for name, bars in (("ret_1h", 12), ("ret_4h", 48), ("ret_24h", 288)):
        np.testing.assert_allclose(
            column(name), np.log(close / close.shift(bars)), rtol=1e-9, atol=ATOL
        )
    for k in (1, 3, 5, 10):
        np.testing.assert_allclose(column(f"roc_{k}"), close.pct_change(k), rtol=1e-9)
    for k in (1, 2, 3):
        np.testing.assert_allclose(column(f"ret_lag_{k}"), log_ret.shift(k), atol=ATOL)
    np.testing.assert_allclose(column("ret_mean_5"), log_ret.rolling(5).mean(), atol=1e-15)
    np.testing.assert_allclose(column("ret_std_5"), log_ret.rolling(5).std(), rtol=1e-7)


def test_volume_features_match_pandas() -> None:
    # Arrange
    volume = pd.Series(btc().volume)

    # Act / Assert
    trend = volume.rolling(5).mean() / volume.rolling(20).mean()
    np.testing.assert_allclose(column("volume_trend"), trend, rtol=1e-9)
    np.testing.assert_allclose(column("volume_roc"), volume.pct_change(), rtol=1e-9)
    rvol = volume / volume.shift(1).rolling(20).mean()
    np.testing.assert_allclose(column("rvol"), rvol, rtol=1e-9)


def test_close_vs_vwap_is_the_distance_to_the_utc_day_vwap() -> None:
    # Arrange
    c = btc()
    frame = pd.DataFrame({"day": c.open_time // 86_400_000, "v": c.volume})
    frame["pv"] = (c.high + c.low + c.close) / 3.0 * c.volume
    vwap = frame.groupby("day")["pv"].cumsum() / frame.groupby("day")["v"].cumsum()

    # Act / Assert
    np.testing.assert_allclose(column("close_vs_vwap"), c.close / vwap - 1.0, atol=ATOL)


def test_squeeze_momentum_is_the_least_squares_line_at_the_newest_bar() -> None:
    # Arrange
    c = btc()
    close, high, low = (pd.Series(a) for a in (c.close, c.high, c.low))
    detrended = (
        close
        - ((high.rolling(20).max() + low.rolling(20).min()) / 2 + close.rolling(20).mean()) / 2
    )
    x = np.arange(20.0)

    # Act / Assert
    for t in (38, 39, 500, 7_777, SAMPLE_BARS - 1):
        slope, intercept = np.polyfit(x, detrended.to_numpy()[t - 19 : t + 1], 1)
        expected = (intercept + slope * 19) / close[t]
        assert column("squeeze_mom")[t] == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert np.isnan(column("squeeze_mom")[37])


def test_hour_based_windows_follow_bar_ms_on_hourly_bars() -> None:
    # Arrange
    hourly = resample(btc(), 300_000, 3_600_000)

    # Act
    features = compute_features(hourly, bar_ms=3_600_000)

    # Assert
    log_close = np.log(hourly.close)
    np.testing.assert_allclose(features.column("ret_1h")[1:], np.diff(log_close), rtol=1e-12)
    np.testing.assert_allclose(
        features.column("ret_24h")[24:], log_close[24:] - log_close[:-24], rtol=1e-12
    )
    assert warmup_bars(bar_ms=3_600_000) == 15 + 7 * 24


def test_taker_imbalance_is_twice_the_taker_share_minus_one() -> None:
    # Arrange
    candles = spot_with_taker()

    # Act
    imbalance = compute_features(candles, TAKER_FEATURE_SET).column("taker_imbalance")

    # Assert
    expected = 2.0 * candles.extra["taker_buy_base"] / candles.volume - 1.0
    np.testing.assert_allclose(imbalance, expected, rtol=1e-12)
    assert np.nanmin(imbalance) >= -1.0 and np.nanmax(imbalance) <= 1.0


# Feature sets and parameters --------------------------------------------------------------------


def test_default_set_holds_the_issue_features_and_the_taker_set_adds_the_imbalance() -> None:
    # Assert
    assert DEFAULT_FEATURE_SET.key == "ml_core@v1"
    assert len(DEFAULT_FEATURE_SET.names) == 27
    assert TAKER_FEATURE_SET.names == (*DEFAULT_FEATURE_SET.names, "taker_imbalance")
    assert TAKER_FEATURE_SET.requires == ("taker_buy_base",)
    assert DEFAULT_FEATURE_SET.requires == ()
    assert set(FEATURE_DOCS) == set(TAKER_FEATURE_SET.names)


def test_feature_set_for_picks_the_taker_set_only_when_the_column_is_there() -> None:
    # Act / Assert
    assert feature_set_for(btc()) is DEFAULT_FEATURE_SET
    assert feature_set_for(spot_with_taker()) is TAKER_FEATURE_SET


def test_a_set_needing_taker_columns_is_refused_on_ohlcv_data() -> None:
    # Act
    with pytest.raises(ConfigError, match="taker_buy_base") as caught:
        compute_features(btc(), TAKER_FEATURE_SET)

    # Assert
    assert caught.value.field == "feature_set"


def test_a_custom_set_computes_only_its_columns_in_its_order() -> None:
    # Arrange
    feature_set = FeatureSet("small", 3, ["rsi", "hour"])

    # Act
    features = compute_features(btc(), feature_set)

    # Assert
    assert features.names == ("rsi", "hour")
    np.testing.assert_array_equal(features.values[:, 0], column("rsi"))
    np.testing.assert_array_equal(features.values[:, 1], column("hour"))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "", "version": 1, "names": ("rsi",)}, "name"),
        ({"name": "x", "version": 0, "names": ("rsi",)}, "version"),
        ({"name": "x", "version": True, "names": ("rsi",)}, "version"),
        ({"name": "x", "version": 1, "names": ()}, "names"),
        ({"name": "x", "version": 1, "names": ("rsi", "nope")}, "names"),
        ({"name": "x", "version": 1, "names": ("rsi", "rsi")}, "names"),
    ],
)
def test_an_invalid_feature_set_is_refused_naming_the_field(kwargs: dict, field: str) -> None:
    # Act
    with pytest.raises(ConfigError) as caught:
        FeatureSet(**kwargs)

    # Assert
    assert caught.value.field == field


@pytest.mark.parametrize("bar_ms", [0, -300_000, 420_000, 60_000, 900_000])
def test_a_bar_length_that_does_not_fit_the_data_is_refused(bar_ms: int) -> None:
    # Act
    with pytest.raises(ConfigError) as caught:
        compute_features(btc().slice(0, 100), bar_ms=bar_ms)

    # Assert
    assert caught.value.field == "bar_ms"


def test_an_empty_series_gives_an_empty_matrix() -> None:
    # Act
    features = compute_features(Candles.empty())

    # Assert
    assert features.values.shape == (0, 27)


# Labels -----------------------------------------------------------------------------------------


def test_trend_label_compares_the_close_horizon_bars_later() -> None:
    # Arrange
    close = np.array([100.0, 101.0, 99.0, 102.0, 102.0])

    # Act
    labels = TrendLabel(horizon=2).compute(close)

    # Assert: 99 < 100, 102 > 101, 102 > 99, then the future is unknown
    np.testing.assert_array_equal(labels, [0.0, 1.0, 1.0, np.nan, np.nan])


def test_trend_label_counts_an_unchanged_close_as_not_higher() -> None:
    # Act / Assert
    np.testing.assert_array_equal(TrendLabel(horizon=1).compute(np.array([5.0, 5.0])), [0, np.nan])


def test_trend_label_on_real_data_is_unknown_exactly_for_the_last_four_hours() -> None:
    # Arrange
    close = btc().close

    # Act
    labels = TrendLabel().compute(close)

    # Assert
    assert np.isnan(labels[-48:]).all()
    np.testing.assert_array_equal(labels[:-48], (close[48:] > close[:-48]).astype(float))


def test_trend_label_is_all_unknown_when_the_series_is_not_longer_than_the_horizon() -> None:
    # Act / Assert
    assert np.isnan(TrendLabel(horizon=3).compute(np.array([1.0, 2.0, 3.0]))).all()


@pytest.mark.parametrize(
    ("close", "threshold", "horizon", "expected"),
    [
        # above the mean (SMA3 at bar 2 = 11, gap 2): back to 12 is half the gap
        ([10, 10, 13, 12, 12], 0.5, 2, [np.nan, np.nan, 1, np.nan, np.nan]),
        # ... but not 60% of it
        ([10, 10, 13, 12, 12], 0.6, 2, [np.nan, np.nan, 0, np.nan, np.nan]),
        # no move within 2 bars; bar 3 (mean 12, gap 1) reverts at bar 5
        ([10, 10, 13, 13, 13, 11], 0.5, 2, [np.nan, np.nan, 0, 1, np.nan, np.nan]),
        # a longer horizon reaches bar 5's move
        ([10, 10, 13, 13, 13, 11], 0.5, 3, [np.nan, np.nan, 1, np.nan, np.nan, np.nan]),
        # below the mean (9, gap −2): up 1 is half the gap; bar 3 crosses its mean
        ([10, 10, 7, 8, 12], 0.5, 1, [np.nan, np.nan, 1, 1, np.nan]),
        ([10, 10, 7, 8, 12], 0.75, 1, [np.nan, np.nan, 0, 1, np.nan]),
        # moving away from the mean never counts
        ([10, 10, 13, 15, 17], 0.1, 2, [np.nan, np.nan, 0, np.nan, np.nan]),
        # a close on its mean has no gap to revert
        ([10, 10, 10, 10, 10], 0.5, 1, [np.nan] * 5),
    ],
)
def test_mean_reversion_label_on_hand_computed_examples(
    close: list[float], threshold: float, horizon: int, expected: list[float]
) -> None:
    # Arrange
    label = MeanReversionLabel(period=3, threshold=threshold, horizon=horizon)

    # Act
    labels = label.compute(np.array(close, dtype=np.float64))

    # Assert
    np.testing.assert_array_equal(labels, expected)


def test_mean_reversion_label_on_real_data_is_known_between_warmup_and_horizon() -> None:
    # Arrange
    close = btc().close
    label = MeanReversionLabel(period=20, threshold=0.5, horizon=12)

    # Act
    labels = label.compute(close)

    # Assert
    assert np.isnan(labels[:19]).all() and np.isnan(labels[-12:]).all()
    known = labels[19:-12]
    assert set(np.unique(known[~np.isnan(known)])) == {0.0, 1.0}
    assert np.isnan(known).mean() < 0.01  # only closes exactly on their mean


def test_mean_reversion_label_ignores_closes_beyond_its_horizon() -> None:
    # Arrange
    close = btc().close.copy()
    label = MeanReversionLabel(horizon=12)
    before = label.compute(close)
    close[5_013:] *= 0.5  # bar 5000's window ends at 5012

    # Act
    after = label.compute(close)

    # Assert
    np.testing.assert_array_equal(after[:5_001], before[:5_001])
    assert not np.array_equal(after, before, equal_nan=True)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: TrendLabel(horizon=0), "horizon"),
        (lambda: TrendLabel(horizon=2.5), "horizon"),
        (lambda: MeanReversionLabel(period=1), "period"),
        (lambda: MeanReversionLabel(horizon=0), "horizon"),
        (lambda: MeanReversionLabel(threshold=0.0), "threshold"),
        (lambda: MeanReversionLabel(threshold=1.5), "threshold"),
        (lambda: MeanReversionLabel(threshold=float("nan")), "threshold"),
        (lambda: MeanReversionLabel(threshold=True), "threshold"),
    ],
)
def test_invalid_label_parameters_are_refused_naming_the_field(make, field: str) -> None:
    # Act
    with pytest.raises(ConfigError) as caught:
        make()

    # Assert
    assert caught.value.field == field
