"""Validation and evaluation of binary predictors on time-ordered samples, pure: splits
(:func:`chronological_split`, :func:`purged_walk_forward`), scores (:func:`classification_report`,
:func:`calibration_error`, :func:`calibrate`), the result of acting on predictions
(:func:`trading_metrics`); the live accuracy that disables a predictor is
:mod:`domain.ml.accuracy`.

Samples are indexed in time order; probabilities are fractions P(label = 1) in [0, 1] (Property
11, :func:`as_probabilities`); labels are 0/1; times are int ms UTC. A prediction ``p`` calls
label 1 when ``p > 0.5`` (as scikit-learn's ``predict`` breaks a 0.5 tie toward class 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import CalibratedClassifierCV

from domain.errors import ConfigError, DataError
from domain.metrics import YEAR_DAYS, max_drawdown, sharpe_ratio

BARS_PER_YEAR_5M = YEAR_DAYS * 288  # 5m bars in a 365-day year (crypto trades every day)
Fold = tuple[np.ndarray, np.ndarray]


def checked_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int ``>= minimum``; ConfigError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, was {value!r}", field=name)
    return int(value)


def checked_fraction(
    name: str, value: float, low: float, high: float, *, closed: bool = True
) -> float:
    """``value`` as a float in ``[low, high]`` (``(low, high)`` unless ``closed``); ConfigError
    naming ``name`` otherwise."""
    number = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    inside = number and (low <= value <= high if closed else low < value < high)
    if not inside:
        bounds = f"[{low}, {high}]" if closed else f"({low}, {high})"
        raise ConfigError(f"{name} must be in {bounds}, was {value!r}", field=name)
    return float(value)


def as_probabilities(proba: Sequence[float] | np.ndarray, *, tol: float = 1e-9) -> np.ndarray:
    """Probabilities as a float64 array of shape ``(n,)`` inside [0, 1] (Property 11): values
    within ``tol`` outside [0, 1] (a calibrator's rounding) are clipped; any other is refused, as
    it means the model is broken.

    Raises
    ------
    DataError
        ``proba`` not one-dimensional, or holding NaN, ±inf or a value outside [−tol, 1 + tol].
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 1:
        raise DataError(f"probabilities must be one-dimensional, had shape {p.shape}")
    bad = ~np.isfinite(p) | (p < -tol) | (p > 1 + tol)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"probability at index {i} must be in [0, 1], was {p[i]!r}")
    return np.clip(p, 0.0, 1.0)


def _labels(y_true: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y_true)
    if y.shape != (n,):
        raise DataError(f"labels must have shape ({n},) like the probabilities, had {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise DataError(f"labels must be 0 or 1, got {np.unique(y)[:5].tolist()}")
    return y.astype(np.int64)


def chronological_split(n: int, holdout: float = 0.2, *, embargo: int = 0) -> Fold:
    """``(train, holdout)`` ascending int64 indices of ``n`` time-ordered samples, never
    shuffled: the holdout is the last ``ceil(holdout × n)``, and the ``embargo`` samples before it
    are purged from training (pass the label horizon in samples: their labels see the holdout).

    >>> [a.tolist() for a in chronological_split(10, 0.2, embargo=1)]
    [[0, 1, 2, 3, 4, 5, 6], [8, 9]]

    Raises
    ------
    ConfigError
        ``n < 2``, ``holdout`` not in (0, 1), ``embargo < 0``, or no training sample left.
    """
    n = checked_int("n", n, 2)
    holdout = checked_fraction("holdout", holdout, 0.0, 1.0, closed=False)
    embargo = checked_int("embargo", embargo, 0)
    n_hold = max(1, math.ceil(n * holdout - 1e-9))  # the tolerance keeps 0.2 × 10 at 2, not 3
    n_train = n - n_hold - embargo
    if n_train < 1:
        raise ConfigError(
            f"n={n} leaves no training sample after a holdout of {n_hold} and embargo {embargo}",
            field="n",
        )
    return np.arange(n_train, dtype=np.int64), np.arange(n - n_hold, n, dtype=np.int64)


def purged_walk_forward(
    n: int, n_splits: int = 5, *, embargo: int, min_train: int | None = None
) -> list[Fold]:
    """Expanding-window walk-forward ``(train, test)`` int64 index folds of ``n`` time-ordered
    samples, with purging and an embargo (López de Prado, *Advances in Financial Machine
    Learning*, Wiley 2018, ch. 7.4), in the form scikit-learn's ``cv`` arguments accept.

    The ``n_splits`` test folds split ``[min_train + embargo, n)`` into contiguous blocks (sizes
    differing by at most one; ``min_train`` defaults to ``n // (n_splits + 1)``). Fold ``k`` tests
    ``[s_k, e_k]`` and trains on ``[0, s_k − embargo)``: ``embargo`` is the label horizon in samples
    (48 for a 4-hour label on 5m bars), and the samples before the test fold whose labels overlap
    it are purged (§7.4.1). Training never uses a sample after its test fold, so the embargo after
    it (§7.4.2) holds too: no train index lies in ``[s_k − embargo, e_k + embargo]``.

    Raises
    ------
    ConfigError
        Naming the field: ``n_splits < 1``, ``embargo < 0``, ``min_train < 1``, or ``n`` too
        small to leave a test sample per fold.
    """
    n = checked_int("n", n, 1)
    n_splits = checked_int("n_splits", n_splits, 1)
    embargo = checked_int("embargo", embargo, 0)
    min_train = max(1, n // (n_splits + 1)) if min_train is None else min_train
    min_train = checked_int("min_train", min_train, 1)
    first_test = min_train + embargo
    if n - first_test < n_splits:
        raise ConfigError(
            f"n={n} leaves {n - first_test} test samples for {n_splits} folds after "
            f"min_train={min_train} and embargo={embargo}",
            field="n",
        )
    tests = np.array_split(np.arange(first_test, n, dtype=np.int64), n_splits)
    return [(np.arange(test[0] - embargo, dtype=np.int64), test) for test in tests]


def classification_report(
    y_true: Sequence[int] | np.ndarray,
    proba: Sequence[float] | np.ndarray,
    *,
    prior: float | None = None,
) -> dict[str, float | int | None]:
    """scikit-learn's scores of probabilities ``proba`` against 0/1 labels ``y_true`` (shape
    ``(n,)`` each), beside the baseline: ``n``, ``positive_rate``; ``accuracy``, ``precision``,
    ``recall`` of the calls ``p > 0.5``; ``roc_auc``; ``log_loss`` (natural log, ``p`` clipped to
    machine epsilon); ``brier`` (mean of ``(p − y)²``); ``ece`` (:func:`calibration_error`);
    ``baseline_accuracy`` (always the majority class of ``y_true``), and ``baseline_log_loss``
    and ``baseline_brier`` of always predicting ``prior`` (pass the training set's positive rate;
    default that of ``y_true``). A metric undefined on the sample is ``None``: ``roc_auc`` when
    ``y_true`` holds one class (a quiet fold), ``precision`` with no positive call, ``recall``
    with no positive label.

    Raises
    ------
    DataError
        Empty input, mismatched shapes, labels other than 0/1, or invalid probabilities.
    ConfigError
        ``prior`` outside [0, 1].
    """
    p = as_probabilities(proba)
    y = _labels(y_true, len(p))
    if len(y) == 0:
        raise DataError("cannot score an empty sample")
    rate = float(y.mean())
    base = rate if prior is None else checked_fraction("prior", prior, 0.0, 1.0)

    calls = (p > 0.5).astype(np.int64)
    constant = np.full(len(y), base)
    precision = skm.precision_score(y, calls, zero_division=0.0) if calls.any() else None
    recall = skm.recall_score(y, calls, zero_division=0.0) if y.any() else None
    return {
        "n": len(y),
        "positive_rate": rate,
        "accuracy": float(skm.accuracy_score(y, calls)),
        "precision": None if precision is None else float(precision),
        "recall": None if recall is None else float(recall),
        "roc_auc": float(skm.roc_auc_score(y, p)) if 0.0 < rate < 1.0 else None,
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y, p, pos_label=1)),
        "ece": calibration_error(y, p),
        "baseline_accuracy": max(rate, 1.0 - rate),
        "baseline_log_loss": float(skm.log_loss(y, constant, labels=[0, 1])),
        "baseline_brier": float(skm.brier_score_loss(y, constant, pos_label=1)),
    }


def calibration_error(
    y_true: Sequence[int] | np.ndarray, proba: Sequence[float] | np.ndarray, bins: int = 10
) -> float:
    """Expected calibration error, a fraction: ``Σ_b (n_b / n) × |mean(y_b) − mean(p_b)|`` over
    ``bins`` equal-width bins of [0, 1] (``p = 1`` in the last); 0 for an empty sample (Naeini,
    Cooper & Hauskrecht, "Obtaining Well Calibrated Probabilities Using Bayesian Binning", AAAI
    2015; Guo et al., "On Calibration of Modern Neural Networks", ICML 2017).

    >>> round(calibration_error([0, 1, 1, 0], [0.1, 0.15, 0.8, 0.9]), 6)
    0.4625

    Raises
    ------
    DataError
        Mismatched shapes, labels other than 0/1, or invalid probabilities.
    ConfigError
        ``bins < 1``.
    """
    bins = checked_int("bins", bins, 1)
    p = as_probabilities(proba)
    y = _labels(y_true, len(p))
    if len(p) == 0:
        return 0.0
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    # Per bin, n_b × |mean(y_b) − mean(p_b)| = |Σ y_b − Σ p_b|.
    gap = np.bincount(which, weights=y, minlength=bins) - np.bincount(which, p, minlength=bins)
    return float(np.abs(gap).sum() / len(p))


def calibrate(estimator: Any, method: str = "isotonic", *, folds: Sequence[Fold]) -> Any:
    """An unfitted ``sklearn.calibration.CalibratedClassifierCV`` around ``estimator`` over
    ``folds`` (e.g. :func:`purged_walk_forward`'s): per fold, a clone fitted on the train window
    and its calibrator on the test fold; ``predict_proba`` averages the pairs (``ensemble=True``:
    walk-forward folds do not partition the samples, as ``ensemble=False`` needs). ``method``:
    ``"isotonic"`` (monotone, non-parametric; the default, as 90 days of 5m bars give thousands of
    samples per fold) or ``"sigmoid"`` (Platt scaling; prefer it below ~1000 calibration samples,
    where isotonic overfits: Niculescu-Mizil & Caruana, ICML 2005).

    Raises
    ------
    ConfigError
        Unknown ``method`` or empty ``folds``.
    """
    if method not in ("isotonic", "sigmoid"):
        raise ConfigError(f"method must be 'isotonic' or 'sigmoid', was {method!r}", field="method")
    if len(folds) == 0:
        raise ConfigError("folds must hold a (train, test) pair, was empty", field="folds")

    return CalibratedClassifierCV(estimator, method=method, cv=list(folds), ensemble=True)


def trading_metrics(
    proba: Sequence[float] | np.ndarray,
    future_returns: Sequence[float] | np.ndarray,
    *,
    threshold_long: float = 0.5,
    threshold_short: float | None = None,
    fee: float = 0.0005,
    periods_per_year: int = BARS_PER_YEAR_5M,
) -> dict[str, float | int | None]:
    """The result of acting on predictions bar by bar, all returns fractions.

    Bar ``i`` is long when ``proba[i] > threshold_long``, short when ``proba[i] <
    threshold_short`` (if set), flat otherwise, and earns ``future_returns[i]``, the return of the
    bar after prediction ``i`` (e.g. ``open[i+1] → open[i+2]``: a signal on a close fills at the
    next open at the earliest). A trade is a run of bars on one side; each entry and each exit
    costs ``fee`` of the equity (a flip pays two; a position open at the end is closed there).
    Per bar ``r_i = max((1 + side_i × future_returns[i]) × (1 − fee)^{entries + exits in i}, 0) −
    1``. Keys: ``trades``; ``hit_rate`` (share of trades with net return > 0) and
    ``mean_trade_return`` (net), ``None`` without trades; ``cumulative_return`` (``Π(1 + r) −
    1``); ``sharpe`` (``mean(r) / std(r, ddof=1) × √periods_per_year``, flat bars included,
    zero risk-free rate; by default 5m bars in a 365-day year, 105 120); ``max_drawdown``
    (fraction of peak equity); ``exposure`` (share of bars in a position); ``buy_and_hold_return``
    (``Π(1 + future_returns) − 1``, no fees).

    Raises
    ------
    DataError
        Empty input, mismatched shapes, returns NaN or below −1, invalid probabilities.
    ConfigError
        Thresholds outside [0, 1], ``threshold_short > threshold_long``, ``fee`` outside
        [0, 1), ``periods_per_year < 1``.
    """
    checked_fraction("threshold_long", threshold_long, 0.0, 1.0)
    if threshold_short is not None:
        checked_fraction("threshold_short", threshold_short, 0.0, threshold_long)
    if checked_fraction("fee", fee, 0.0, 1.0) == 1.0:
        raise ConfigError("fee must be in [0, 1), was 1.0", field="fee")
    periods_per_year = checked_int("periods_per_year", periods_per_year, 1)
    p = as_probabilities(proba)
    r = np.asarray(future_returns, dtype=np.float64)
    if len(p) == 0 or r.shape != p.shape:
        raise DataError(f"need matching non-empty arrays, had shapes {p.shape} and {r.shape}")
    if not (np.isfinite(r).all() and (r >= -1.0).all()):
        raise DataError("future returns must be finite fractions >= -1")

    side = np.where(p > threshold_long, 1, 0)
    if threshold_short is not None:
        side[p < threshold_short] = -1
    entries = (side != 0) & (side != np.r_[0, side[:-1]])
    exits = (side != 0) & (side != np.r_[side[1:], 0])
    growth = np.maximum((1.0 + side * r) * (1.0 - fee) ** (entries + exits.astype(np.int64)), 0.0)
    equity = np.cumprod(growth)
    starts = np.flatnonzero(entries)
    # Flat bars grow by exactly 1, so each segment from one entry to the next is one trade.
    trade_returns = np.multiply.reduceat(growth, starts) - 1.0 if len(starts) else np.empty(0)
    return {
        "trades": len(starts),
        "hit_rate": float(np.mean(trade_returns > 0)) if len(starts) else None,
        "mean_trade_return": float(np.mean(trade_returns)) if len(starts) else None,
        "cumulative_return": float(equity[-1] - 1.0),
        "sharpe": sharpe_ratio(growth - 1.0, periods_per_year),
        "max_drawdown": max_drawdown(np.r_[1.0, equity]),
        "exposure": float(np.mean(side != 0)),
        "buy_and_hold_return": float(np.prod(1.0 + r) - 1.0),
    }
