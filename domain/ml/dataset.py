"""Training samples of a model kind and their scores, pure: :func:`build_dataset` turns bars into
feature rows, labels and the returns of acting on them; :func:`score` rates predictions against
them beside the majority baseline.

One sample per bar ``t`` (5m bars by default): features at ``t``'s close, the label resolved
``horizon`` bars later, and the return of the bar after the signal, ``open[t+2] / open[t+1] −
1`` (a signal on ``t``'s close fills at ``t+1``'s open at the earliest), signed in the direction
the model trades: up for the trend model, towards the 20-bar mean for the mean-reversion model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from domain import indicators
from domain.candles import Candles
from domain.errors import DataError
from domain.ml.features import (
    DAY_MS,
    FeatureSet,
    compute_features,
    feature_set_for,
    warmup_bars,
)
from domain.ml.labels import MeanReversionLabel, TrendLabel
from domain.ml.models import ModelKind, label_for
from domain.ml.validation import checked_int, classification_report, trading_metrics

MIN_SAMPLES = 200
"""Fewest usable samples :func:`build_dataset` accepts: below it no split or fold means much."""


class Dataset(NamedTuple):
    """Samples in time order: ``X`` float64 ``(n, k)`` (NaN where a feature is undefined),
    ``y`` int64 ``(n,)`` in {0, 1}, ``times`` the bars' ``open_time`` (ms UTC, ``(n,)``),
    ``returns`` the next bar's return in the model's trading direction (fraction, ``(n,)``), the
    ``feature_set`` and ``label`` used, and ``bar_ms``."""

    X: np.ndarray
    y: np.ndarray
    times: np.ndarray
    returns: np.ndarray
    feature_set: FeatureSet
    label: TrendLabel | MeanReversionLabel
    bar_ms: int

    @property
    def horizon(self) -> int:
        """Bars a label looks ahead: the embargo of every split."""
        return self.label.horizon

    def label_end_ms(self, i: int) -> int:
        """Exclusive end (ms UTC) of the last bar that sample ``i``'s label reads."""
        return int(self.times[i]) + (self.horizon + 1) * self.bar_ms


def build_dataset(
    candles: Candles, kind: ModelKind | str, *, days: int, bar_ms: int = 300_000
) -> Dataset:
    """The samples of model ``kind`` over the last ``days`` days of ``candles``.

    The window is ``[end − days, end)``, ``end`` the close of the last bar. Features are computed
    from up to :func:`~domain.ml.features.warmup_bars` bars before the window, so its first
    rows are defined when the data reaches back that far; rows still in the warm-up, rows
    whose label is unknown (the last ``horizon`` bars; for mean reversion also bars at their
    mean) and the last rows without a next-bar return are dropped. The feature set is
    :func:`~domain.ml.features.feature_set_for` the candles.

    Raises
    ------
    ConfigError
        ``days < 1`` (field ``days``), an unknown ``kind`` (field ``model``), or ``bar_ms`` not
        the candles' spacing.
    DataError
        Fewer than :data:`MIN_SAMPLES` usable samples in the window.
    """
    days = checked_int("days", days, 1)
    label = label_for(kind)
    if len(candles) == 0:
        raise DataError("no bars to train on")
    feature_set = feature_set_for(candles)
    warm = warmup_bars(feature_set, bar_ms=bar_ms)
    start = int(candles.open_time[-1]) + bar_ms - days * DAY_MS
    bars = candles.between(start - (warm - 1) * bar_ms, None)
    X = compute_features(bars, feature_set, bar_ms=bar_ms).values
    y = label.compute(bars.close)
    returns = np.full(len(bars), np.nan)
    returns[:-2] = bars.open[2:] / bars.open[1:-1] - 1.0
    if isinstance(label, MeanReversionLabel):
        returns *= -np.sign(bars.close - indicators.sma(bars.close, label.period))
    usable = ~np.isnan(y) & np.isfinite(returns) & (bars.open_time >= start)
    usable[: warm - 1] = False
    if usable.sum() < MIN_SAMPLES:
        raise DataError(
            f"only {int(usable.sum())} usable samples in the last {days} days of "
            f"{len(candles)} bars (warm-up {warm} bars, label horizon {label.horizon}); "
            f"need at least {MIN_SAMPLES}"
        )
    return Dataset(
        X=X[usable],
        y=y[usable].astype(np.int64),
        times=bars.open_time[usable].astype(np.int64),
        returns=returns[usable],
        feature_set=feature_set,
        label=label,
        bar_ms=bar_ms,
    )


def score(
    y: np.ndarray,
    proba: np.ndarray,
    returns: np.ndarray,
    *,
    kind: ModelKind | str,
    prior: float,
    fee: float = 0.0005,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(metrics, baseline)`` of probabilities ``proba`` against labels ``y`` and the
    :attr:`Dataset.returns` ``returns`` (all ``(n,)``).

    ``metrics``: :func:`~domain.ml.validation.classification_report`'s scores (without its
    ``baseline_*``) and ``trading``, :func:`~domain.ml.validation.trading_metrics` of acting
    on the predictions with ``fee`` per entry and exit: the trend model is long above 0.5 and
    short below; the mean-reversion model trades towards the mean above 0.5 and is flat
    otherwise (a run of bars is one trade even where the side of the mean changes inside it,
    so such a flip pays no fee: a slight flattery). ``baseline``: ``accuracy`` of always calling
    the majority class of ``y`` (the sample's own: the stricter bar), ``log_loss`` and ``brier``
    of always predicting ``prior`` (the training rows' positive rate), ``trading`` of always
    being in the market (buy and hold with fees, or always towards the mean).

    Raises
    ------
    DataError, ConfigError
        As the two functions named.
    """
    report = classification_report(y, proba, prior=prior)
    long_short = ModelKind(kind) is ModelKind.TREND
    trading = trading_metrics(proba, returns, threshold_short=0.5 if long_short else None, fee=fee)
    always = trading_metrics(np.ones(len(returns)), returns, fee=fee)
    metrics = {k: v for k, v in report.items() if not k.startswith("baseline_")}
    metrics["trading"] = trading
    baseline = {
        "accuracy": report["baseline_accuracy"],
        "log_loss": report["baseline_log_loss"],
        "brier": report["baseline_brier"],
        "prior": prior,
        "trading": always,
    }
    return metrics, baseline


def verdict(metrics: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Any]:
    """Whether the model beats the baseline on the holdout (lower log loss and Brier score,
    higher accuracy), with one sentence saying so or saying that it does not."""
    beats = {
        "log_loss": metrics["log_loss"] < baseline["log_loss"],
        "brier": metrics["brier"] < baseline["brier"],
        "accuracy": metrics["accuracy"] > baseline["accuracy"],
    }
    if beats["log_loss"]:
        text = (
            f"beats the baseline's log loss on the holdout ({metrics['log_loss']:.4f} < "
            f"{baseline['log_loss']:.4f})"
        )
    else:
        text = (
            f"does NOT beat the baseline's log loss on the holdout ({metrics['log_loss']:.4f} "
            f">= {baseline['log_loss']:.4f}): no evidence of an edge; do not trade on it"
        )
    return {**beats, "summary": text}
