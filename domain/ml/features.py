"""The ML feature matrix: named, versioned feature sets computed over a whole series at once.

A :class:`FeatureSet` is a named, versioned tuple of feature names; :func:`compute_features`
turns a :class:`~domain.candles.Candles` series into an ``(n, k)`` float64 matrix, one column per
name, NaN where a feature is not defined yet (warm-up, :func:`warmup_bars`) or not defined at
all (a zero denominator, e.g. after a zero-volume bar). Row ``t`` uses bars ``0..t`` only, so it
may be fed to a model at bar ``t``'s close (tested by truncating the future). No loop runs per
bar: standard indicators are the kernel's components (TA-Lib, see :mod:`domain.features`), so an
incremental form can reuse their steppers; the rest is array arithmetic.

Conventions (the definitions are in :data:`FEATURE_DOCS`):

* returns over 1 h / 4 h / 24 h and the 1-bar returns are log returns ``ln(c_t / c_(t−k))``
  (additive over bars, symmetric up and down); ROC keeps its usual simple form
  ``c_t / c_(t−k) − 1``. All are fractions, not percent;
* everything in price units (ATR, MACD, squeeze momentum) is divided by the close, so features
  are scale-free and a model trained on one price level applies at another;
* RSI, ADX and the ATR percentile keep their usual 0–100 scale (``atr_pct`` is in percent);
* hour of day (0–23) and day of week (Monday 0 … Sunday 6) are plain integers of the bar's
  ``open_time`` in UTC: the predictors are tree ensembles, which split integers as well as any
  cyclic encoding, and an explanation can name "hour 14";
* windows and lags are counted in bars; the hour-based ones are converted with ``bar_ms`` (on 5m
  bars 1 h / 4 h / 24 h are 12 / 48 / 288 bars). The data is expected gap-free (the Binance
  archives are); a gap stretches a window in time.

The taker-buy imbalance needs Binance's ``taker_buy_base`` column, so it is only in
:data:`TAKER_FEATURE_SET`; :func:`feature_set_for` picks the set that a series supports. A change
of any definition or parameter here changes what a trained model sees: bump the version of every
feature set that contains the feature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import talib
from numpy.lib.stride_tricks import sliding_window_view

from domain import indicators
from domain.candles import Candles
from domain.errors import ConfigError
from domain.features import ADX, ATR, EMA, MACD, RSI, VWAP, Bollinger
from domain.risk.inputs import atr_percentile, relative_volume

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
TAKER_COLUMN = "taker_buy_base"
"""The :attr:`Candles.extra` column of the taker-buy volume (base asset), as the Binance kline
reader names it."""

_WINDOW = 20  # Bollinger, Keltner, squeeze momentum, RVOL and volume-trend windows (bars)
_KELTNER_MULT = 1.5  # Keltner half-width in mean true ranges (Carter's TTM Squeeze)
_ATR_PCT_DAYS = 7  # the ATR percentile ranks the ATR among the last 7 days of bars


class _Inputs:
    """The candles and the series that several features share, each computed at most once."""

    def __init__(self, candles: Candles, per_hour: int) -> None:
        self.candles = candles
        self.per_hour = per_hour
        self.high = np.ascontiguousarray(candles.high, dtype=np.float64)
        self.low = np.ascontiguousarray(candles.low, dtype=np.float64)
        self.close = np.ascontiguousarray(candles.close, dtype=np.float64)
        self.volume = np.ascontiguousarray(candles.volume, dtype=np.float64)

    @cached_property
    def log_close(self) -> np.ndarray:
        return np.log(self.close)

    @cached_property
    def r1(self) -> np.ndarray:
        """One-bar log returns, NaN at bar 0."""
        return _diff(self.log_close, 1)

    @cached_property
    def atr(self) -> np.ndarray:
        return ATR(14).batch(self.candles)["atr"]

    @cached_property
    def bands(self) -> dict[str, np.ndarray]:
        return Bollinger(_WINDOW, 2.0).batch(self.candles)


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` shifted ``k`` bars later, NaN for the first ``k``."""
    out = np.full(len(x), np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def _diff(x: np.ndarray, k: int) -> np.ndarray:
    return x - _lag(x, k)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den > 0``, NaN elsewhere (every denominator here is >= 0)."""
    out = np.full(len(num), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _window(x: np.ndarray, length: int, reduce: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``reduce`` of each window of the last ``length`` values (rows of a ``(m, length)`` view)."""
    out = np.full(len(x), np.nan)
    if len(x) >= length:
        out[length - 1 :] = reduce(sliding_window_view(x, length))
    return out


def _linreg_end(y: np.ndarray, length: int) -> np.ndarray:
    """Least-squares line through the last ``length`` values, evaluated at the newest one
    (Pine Script's ``linreg(y, length, 0)``). The fit is linear in ``y``, so the value is a fixed
    weighted sum ``Σ w_i y_(t−length+1+i)``, ``w_i = 1/L + (i − m)·m / Σ(i − m)²`` with
    ``m = (L − 1) / 2``; one pass per weight, not per bar."""
    n = len(y)
    out = np.full(n, np.nan)
    if n < length:
        return out
    offsets = np.arange(length) - (length - 1) / 2
    weights = 1.0 / length + offsets * ((length - 1) / 2) / (offsets * offsets).sum()
    acc = np.zeros(n - length + 1)
    for i, w in enumerate(weights.tolist()):
        acc += w * y[i : n - length + 1 + i]
    out[length - 1 :] = acc
    return out


def _squeeze_on(x: _Inputs) -> np.ndarray:
    mean_tr = indicators.sma(talib.TRANGE(x.high, x.low, x.close), _WINDOW)
    middle = x.bands["middle"]
    inside = (x.bands["upper"] < middle + _KELTNER_MULT * mean_tr) & (
        x.bands["lower"] > middle - _KELTNER_MULT * mean_tr
    )
    return np.where(np.isnan(mean_tr) | np.isnan(middle), np.nan, inside.astype(np.float64))


def _squeeze_momentum(x: _Inputs) -> np.ndarray:
    donchian_mid = (talib.MAX(x.high, _WINDOW) + talib.MIN(x.low, _WINDOW)) / 2.0
    detrended = x.close - (donchian_mid + x.bands["middle"]) / 2.0
    return _ratio(_linreg_end(detrended, _WINDOW), x.close)


def _trend_strength(x: _Inputs) -> np.ndarray:
    spread = EMA(20).batch(x.candles)["ema"] - EMA(50).batch(x.candles)["ema"]
    return _ratio(spread, x.atr)


_DOCS = {
    "ret_1h": "log return over the last hour, ln(close_t / close_(t−1h)), fraction",
    "ret_4h": "log return over the last 4 hours, ln(close_t / close_(t−4h)), fraction",
    "ret_24h": "log return over the last 24 hours, ln(close_t / close_(t−24h)), fraction",
    "close_vs_vwap": "close / VWAP anchored at 00:00 UTC − 1, fraction",
    "rvol": "volume / mean volume of the 20 bars before (domain.risk.relative_volume), ratio",
    "volume_trend": "SMA(5) / SMA(20) of volume, ratio",
    "atr_frac": "Wilder ATR(14) / close, fraction",
    "atr_pct": "percentile of ATR(14) among its values in the 7 days of bars before t "
    "(domain.risk.atr_percentile), percent 0–100",
    "bb_width": "Bollinger(20, 2σ) (upper − lower) / middle, fraction",
    "rsi": "Wilder RSI(14), 0–100",
    "macd_hist": "MACD(12, 26, 9) histogram / close, fraction",
    "squeeze_on": "1 when Bollinger(20, 2σ) lies inside Keltner(SMA20 ± 1.5 × SMA20 of true "
    "range), else 0 (J. Carter, Mastering the Trade, ch. 11, the TTM Squeeze; Keltner as in "
    "LazyBear's TradingView 'Squeeze Momentum Indicator')",
    "squeeze_mom": "LazyBear's squeeze momentum / close: the 20-bar least-squares line, at the "
    "newest bar, of close − ((highest high 20 + lowest low 20) / 2 + SMA20) / 2, fraction",
    "adx": "Wilder ADX(14), 0–100",
    "trend_strength": "(EMA(20) − EMA(50)) / ATR(14), signed, in ATRs",
    "hour": "hour of the bar's open_time in UTC, integer 0–23",
    "dow": "day of week of the bar's open_time in UTC, integer Monday 0 … Sunday 6",
    "ret_lag_1": "log return of the previous bar, ln(close_(t−1) / close_(t−2)), fraction",
    "ret_lag_2": "log return 2 bars back, ln(close_(t−2) / close_(t−3)), fraction",
    "ret_lag_3": "log return 3 bars back, ln(close_(t−3) / close_(t−4)), fraction",
    "ret_mean_5": "mean of the last 5 one-bar log returns (bars t−4..t), fraction",
    "ret_std_5": "sample standard deviation (ddof 1) of the last 5 one-bar log returns",
    "roc_1": "rate of change over 1 bar, close_t / close_(t−1) − 1, fraction",
    "roc_3": "rate of change over 3 bars, close_t / close_(t−3) − 1, fraction",
    "roc_5": "rate of change over 5 bars, close_t / close_(t−5) − 1, fraction",
    "roc_10": "rate of change over 10 bars, close_t / close_(t−10) − 1, fraction",
    "volume_roc": "volume_t / volume_(t−1) − 1, fraction; NaN after a zero-volume bar",
    "taker_imbalance": "2 × taker-buy volume / volume − 1, in [−1, 1] (+1: all buys were "
    "aggressive), from the extra column taker_buy_base",
}

_Compute = Callable[[_Inputs], np.ndarray]
_ATR_PCT_WINDOW = _ATR_PCT_DAYS * 24  # hours (× bars per hour = bars)


_COMPUTE: dict[str, _Compute] = {
    **{f"ret_{h}h": lambda x, h=h: _diff(x.log_close, h * x.per_hour) for h in (1, 4, 24)},
    "close_vs_vwap": lambda x: _ratio(x.close, VWAP().batch(x.candles)["vwap"]) - 1.0,
    "rvol": lambda x: relative_volume(x.volume, _WINDOW),
    "volume_trend": lambda x: _ratio(
        indicators.sma(x.volume, 5), indicators.sma(x.volume, _WINDOW)
    ),
    "atr_frac": lambda x: _ratio(x.atr, x.close),
    "atr_pct": lambda x: atr_percentile(x.atr, _ATR_PCT_WINDOW * x.per_hour),
    "bb_width": lambda x: _ratio(x.bands["upper"] - x.bands["lower"], x.bands["middle"]),
    "rsi": lambda x: RSI(14).batch(x.candles)["rsi"],
    "macd_hist": lambda x: _ratio(MACD(12, 26, 9).batch(x.candles)["hist"], x.close),
    "squeeze_on": _squeeze_on,
    "squeeze_mom": _squeeze_momentum,
    "adx": lambda x: ADX(14).batch(x.candles)["adx"],
    "trend_strength": _trend_strength,
    "hour": lambda x: ((x.candles.open_time // HOUR_MS) % 24).astype(np.float64),
    # 1970-01-01 was a Thursday (3 with Monday 0)
    "dow": lambda x: ((x.candles.open_time // DAY_MS + 3) % 7).astype(np.float64),
    **{f"ret_lag_{k}": lambda x, k=k: _lag(x.r1, k) for k in (1, 2, 3)},
    "ret_mean_5": lambda x: _window(x.r1, 5, lambda w: w.mean(axis=1)),
    "ret_std_5": lambda x: _window(x.r1, 5, lambda w: w.std(axis=1, ddof=1)),
    **{f"roc_{k}": lambda x, k=k: _ratio(x.close, _lag(x.close, k)) - 1.0 for k in (1, 3, 5, 10)},
    "volume_roc": lambda x: _ratio(x.volume, _lag(x.volume, 1)) - 1.0,
    "taker_imbalance": lambda x: _ratio(2.0 * x.candles.extra[TAKER_COLUMN], x.volume) - 1.0,
}
# (bars, hours): the first defined row is ``bars − 1 + hours × bars per hour``
_WARMUP: dict[str, tuple[int, int]] = {
    **{f"ret_{h}h": (1, h) for h in (1, 4, 24)},
    "close_vs_vwap": (1, 0), "rvol": (_WINDOW + 1, 0), "volume_trend": (_WINDOW, 0),
    "atr_frac": (15, 0), "atr_pct": (15, _ATR_PCT_WINDOW), "bb_width": (_WINDOW, 0),
    "rsi": (15, 0), "macd_hist": (34, 0), "squeeze_on": (_WINDOW + 1, 0),
    "squeeze_mom": (2 * _WINDOW - 1, 0), "adx": (28, 0), "trend_strength": (50, 0),
    "hour": (1, 0), "dow": (1, 0), **{f"ret_lag_{k}": (k + 2, 0) for k in (1, 2, 3)},
    "ret_mean_5": (6, 0), "ret_std_5": (6, 0), **{f"roc_{k}": (k + 1, 0) for k in (1, 3, 5, 10)},
    "volume_roc": (2, 0), "taker_imbalance": (1, 0),
}  # fmt: skip
_NEEDS: dict[str, tuple[str, ...]] = {"taker_imbalance": (TAKER_COLUMN,)}

FEATURE_DOCS: Mapping[str, str] = MappingProxyType(_DOCS)
"""Every known feature name and its definition with its unit (read-only)."""


@dataclass(frozen=True, slots=True)
class FeatureSet:
    """A named, versioned list of features: the columns a model is trained on, in order.

    ``names`` may be given as any sequence; it is stored as a tuple. :attr:`key` (``"name@vN"``)
    is what model metadata records.

    Raises
    ------
    ConfigError
        When ``name`` is empty (field ``name``), ``version`` is not an integer >= 1
        (``version``), or ``names`` is empty, repeats a name or holds a name not in
        :data:`FEATURE_DOCS` (``names``).
    """

    name: str
    version: int
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        if not self.name:
            raise ConfigError(f"name must not be empty, was {self.name!r}", field="name")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise ConfigError(
                f"version must be an integer >= 1, was {self.version!r}", field="version"
            )
        if not self.names:
            raise ConfigError("names must hold at least one feature, was ()", field="names")
        unknown = [n for n in self.names if n not in _COMPUTE]
        if unknown:
            raise ConfigError(
                f"names holds unknown feature(s) {unknown}; known: {', '.join(_COMPUTE)}",
                field="names",
            )
        repeated = sorted({n for n in self.names if self.names.count(n) > 1})
        if repeated:
            raise ConfigError(f"names must not repeat, repeated {repeated}", field="names")

    @property
    def key(self) -> str:
        """``"<name>@v<version>"``, e.g. ``"ml_core@v1"``."""
        return f"{self.name}@v{self.version}"

    @property
    def requires(self) -> tuple[str, ...]:
        """Extra candle columns the set needs, e.g. ``("taker_buy_base",)``."""
        return tuple(dict.fromkeys(c for n in self.names for c in _NEEDS.get(n, ())))


CORE_FEATURES: tuple[str, ...] = tuple(n for n in _COMPUTE if n not in _NEEDS)
"""The 27 features computable from OHLCV alone, in column order."""
DEFAULT_FEATURE_SET = FeatureSet("ml_core", 1, CORE_FEATURES)
"""The issue's feature set for OHLCV data (no taker columns)."""
TAKER_FEATURE_SET = FeatureSet("ml_core_taker", 1, (*CORE_FEATURES, "taker_imbalance"))
""":data:`DEFAULT_FEATURE_SET` plus the taker-buy imbalance, for data with taker columns."""


class FeatureMatrix(NamedTuple):
    """Features of a series: ``values`` float64 of shape ``(n, k)``, row ``t`` for bar ``t``
    (NaN where undefined), and the ``k`` column ``names``."""

    values: np.ndarray
    names: tuple[str, ...]

    def column(self, name: str) -> np.ndarray:
        """The column of feature ``name``, shape ``(n,)`` (a view). Raises ValueError if absent."""
        return self.values[:, self.names.index(name)]


def compute_features(
    candles: Candles, feature_set: FeatureSet = DEFAULT_FEATURE_SET, *, bar_ms: int = 300_000
) -> FeatureMatrix:
    """Every feature of ``feature_set`` at every bar of ``candles``, vectorized.

    Parameters
    ----------
    candles:
        n bars, ``open_time`` ms UTC spaced ``bar_ms`` apart (gaps allowed but not filled).
    feature_set:
        The columns to compute, in order.
    bar_ms:
        The bar length in ms (300,000 for 5m); converts the hour-based windows into bars.

    Returns
    -------
    FeatureMatrix
        ``values`` of shape ``(n, len(feature_set.names))`` float64, row ``t`` computed from
        bars ``0..t`` only; NaN during each feature's warm-up (:func:`warmup_bars`) and where a
        denominator is 0. Never ±inf.

    Raises
    ------
    ConfigError
        Field ``bar_ms`` when it does not divide one hour or is not the bars' spacing (the
        smallest step between two open times, every step a multiple of it); field
        ``feature_set`` when the set needs an extra column the candles lack.
    """
    per_hour = _bars_per_hour(bar_ms)
    _check_spacing(candles.open_time, bar_ms)
    missing = [c for c in feature_set.requires if c not in candles.extra]
    if missing:
        raise ConfigError(
            f"feature set {feature_set.key} needs candle column(s) {missing}, absent here "
            f"(extra columns: {sorted(candles.extra)})",
            field="feature_set",
        )
    inputs = _Inputs(candles, per_hour)
    values = np.empty((len(candles), len(feature_set.names)), dtype=np.float64)
    for j, name in enumerate(feature_set.names):
        values[:, j] = _COMPUTE[name](inputs)
    return FeatureMatrix(values, feature_set.names)


def warmup_bars(feature_set: FeatureSet = DEFAULT_FEATURE_SET, *, bar_ms: int = 300_000) -> int:
    """Bars needed before every feature of the set is defined: on gap-free bars with non-zero
    volume, row ``warmup_bars − 1`` is the first without NaN (2,031 for the default sets on 5m
    bars, set by the 7-day ATR percentile).

    Raises
    ------
    ConfigError
        Field ``bar_ms`` when it does not divide one hour.
    """
    per_hour = _bars_per_hour(bar_ms)
    return max(_WARMUP[n][0] + _WARMUP[n][1] * per_hour for n in feature_set.names)


def feature_set_for(candles: Candles) -> FeatureSet:
    """:data:`TAKER_FEATURE_SET` when ``candles`` has the taker-buy column, else
    :data:`DEFAULT_FEATURE_SET`."""
    return TAKER_FEATURE_SET if TAKER_COLUMN in candles.extra else DEFAULT_FEATURE_SET


def _bars_per_hour(bar_ms: int) -> int:
    if bar_ms <= 0 or HOUR_MS % bar_ms:
        raise ConfigError(f"bar_ms must divide one hour (3600000), was {bar_ms}", field="bar_ms")
    return HOUR_MS // bar_ms


def _check_spacing(open_time: np.ndarray, bar_ms: int) -> None:
    if len(open_time) < 2:
        return
    steps = np.diff(open_time)
    smallest = int(steps.min())
    if smallest != bar_ms or bool(np.any(steps % bar_ms)):
        raise ConfigError(
            f"bar_ms must be the candles' bar spacing, was {bar_ms} for bars {smallest} ms apart",
            field="bar_ms",
        )
