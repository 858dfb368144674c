"""The ML predictors behind one interface (:class:`Predictor`): calibrated tree ensembles that
give P(label = 1) for each row of a feature matrix, and explain a prediction by its features.

Three algorithms, picked by :data:`ALGOS` key (``build_model("hgb", ...)``):

* ``hgb``: scikit-learn's ``HistGradientBoostingClassifier`` (the default);
* ``rf``: scikit-learn's ``RandomForestClassifier`` after a median imputer (see below);
* ``xgb``: XGBoost's ``XGBClassifier`` with the CPU ``hist`` tree method (spec 004's model).

Each is wrapped in :func:`domain.ml.validation.calibrate`: an isotonic (or sigmoid) calibrator
per purged walk-forward fold of the training rows, averaged, so the probabilities are calibrated
on rows the trees did not see and no calibration fold reads labels that overlap its training
window (the ``embargo``, the label horizon in rows). Everything is deterministic for a given
``random_state`` (early stopping is off: its validation split would be a random one).

Missing values (NaN: warm-up, a zero-volume bar) go to the trees as they are for ``hgb`` and
``xgb``, which learn a default direction for them at each split; ``rf`` replaces them with the
training medians first (scikit-learn's ``SimpleImputer(strategy="median")``, inside the fitted
pipeline, so prediction uses the medians of the training rows).

Explanations of ``xgb`` models are by TreeSHAP (XGBoost's ``pred_contribs``, see
:meth:`XGBoostModel.explain`); the others' by occlusion against the training medians (the
fallback the issue names where no TreeSHAP is at hand): the contribution of feature ``j`` at
row ``x`` is ``P(x) − P(x with x_j replaced by the median of feature j over the training
rows)``, in probability units. Positive
means the feature's value pushes towards label 1. Contributions are not additive (interactions
are counted in each feature they involve); a row costs ``k + 1`` predictions, in one batch.

XGBoost is imported only when an ``xgb`` model is built or loaded; the rest of the domain does
not need it.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline

from domain.errors import ConfigError, DataError
from domain.ml.labels import MeanReversionLabel, TrendLabel
from domain.ml.validation import (
    as_probabilities,
    calibrate,
    checked_int,
    purged_walk_forward,
)


class ModelKind(StrEnum):
    """What a model predicts: the trend label or the mean-reversion label."""

    TREND = "trend"
    MEAN_REVERSION = "mean_reversion"


def label_for(kind: ModelKind | str) -> TrendLabel | MeanReversionLabel:
    """The default label of a model ``kind``: :class:`TrendLabel` (48 bars, 4 h of 5m bars) or
    :class:`MeanReversionLabel` (20-bar mean, half the gap, 12 bars).

    Raises
    ------
    ConfigError
        Field ``model`` when ``kind`` is not a :class:`ModelKind` value.
    """
    try:
        kind = ModelKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in ModelKind)
        raise ConfigError(f"model must be one of {known}, was {kind!r}", field="model") from None
    return TrendLabel() if kind is ModelKind.TREND else MeanReversionLabel()


class Contribution(NamedTuple):
    """One feature's part in a prediction: its ``value`` at the row and its ``contribution``
    to P(label = 1), a signed probability difference (see the module's occlusion method)."""

    feature: str
    value: float
    contribution: float


class Predictor(Protocol):
    """A binary classifier of feature rows, calibrated: the interface every model kind (trees
    now, torch later) offers to training, the registry and the engine.

    ``X`` is float64 of shape ``(n, k)`` with the columns ``feature_names`` in order, NaN
    allowed; ``y`` is 0/1 of shape ``(n,)`` in time order.
    """

    algo: str
    feature_names: tuple[str, ...]

    def fit(self, X: np.ndarray, y: np.ndarray) -> Predictor:
        """Fit on time-ordered rows and return ``self``."""
        ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(label = 1) of each row, shape ``(n,)``, every value in [0, 1] (Property 11)."""
        ...

    def explain(self, x_row: np.ndarray, top: int = 5) -> list[Contribution]:
        """The ``top`` features with the largest absolute contribution at one row ``(k,)``."""
        ...

    def library_versions(self) -> dict[str, str]:
        """Versions of the libraries a saved model depends on (``python``, ``numpy``,
        ``scikit-learn``, and ``xgboost`` when used), as distribution name → version."""
        ...


class CalibratedTrees:
    """Common body of the tree models: an estimator from :meth:`_estimator`, calibrated over
    purged walk-forward folds (see the module docstring).

    Parameters
    ----------
    feature_names:
        The ``k`` column names of ``X``, in order.
    embargo:
        Rows purged between each calibration fold's training window and its test rows: the label
        horizon in rows (48 for the trend label on 5m bars). Default 0.
    calibration:
        ``"isotonic"`` (default) or ``"sigmoid"``.
    calibration_folds:
        Walk-forward folds of the calibration, >= 1 (default 3): as many trees are fitted, and
        their calibrated probabilities averaged.
    random_state:
        Seed of every random choice (default 0).
    **params:
        Hyper-parameters of the estimator, overriding :attr:`defaults`.

    Raises
    ------
    ConfigError
        Empty or repeated ``feature_names`` (field ``feature_names``), ``embargo < 0``,
        ``calibration_folds < 1``, an unknown ``calibration`` method, or a parameter the
        estimator does not take (field ``params``).
    """

    algo: ClassVar[str]
    defaults: ClassVar[Mapping[str, Any]]

    def __init__(
        self,
        feature_names: Sequence[str],
        *,
        embargo: int = 0,
        calibration: str = "isotonic",
        calibration_folds: int = 3,
        random_state: int = 0,
        **params: Any,
    ) -> None:
        names = tuple(feature_names)
        if not names or len(set(names)) != len(names):
            raise ConfigError(
                f"feature_names must be non-empty and unique, was {names!r}", field="feature_names"
            )
        if calibration not in ("isotonic", "sigmoid"):
            raise ConfigError(
                f"calibration must be 'isotonic' or 'sigmoid', was {calibration!r}",
                field="calibration",
            )
        self.feature_names = names
        self.embargo = checked_int("embargo", embargo, 0)
        self.calibration = calibration
        self.calibration_folds = checked_int("calibration_folds", calibration_folds, 1)
        self.random_state = checked_int("random_state", random_state, 0)
        self.params = {**self.defaults, **params}
        try:
            self._estimator()  # refuses an unknown parameter now, not at the end of a fit
        except TypeError as exc:
            raise ConfigError(f"{self.algo}: {exc}", field="params") from None
        self._model: Any = None
        self._empty: np.ndarray | None = None
        self.medians: np.ndarray | None = None

    def _estimator(self) -> Any:
        """A fresh, unfitted scikit-learn-compatible estimator."""
        raise NotImplementedError

    def fit(self, X: np.ndarray, y: np.ndarray) -> CalibratedTrees:
        """Fit the calibrated model on time-ordered rows ``X`` ``(n, k)`` and labels ``y``
        ``(n,)`` in {0, 1}; also keeps each feature's median over ``X`` (NaN ignored; a column
        that is all NaN is held at 0, its median too) for :meth:`explain`. Returns ``self``.

        Raises
        ------
        DataError
            ``X`` not ``(n, k)`` or holding ±inf, ``y`` not ``(n,)`` of 0/1, one class only.
        ConfigError
            Too few rows for the calibration folds and the embargo (field ``n``).
        """
        x = self._matrix(X)
        labels = np.asarray(y)
        if labels.shape != (len(x),) or not np.isin(labels, (0, 1)).all():
            raise DataError(f"y must be 0/1 of shape ({len(x)},), had shape {labels.shape}")
        if len(np.unique(labels)) < 2:
            raise DataError(f"y must hold both classes, held only {np.unique(labels).tolist()}")
        # A column with no value at all is held at 0 (scikit-learn's histogram binning fails
        # on it); the trees never split on a constant, so it plays no part.
        self._empty = np.isnan(x).all(axis=0)
        x = self._filled(x)
        folds = purged_walk_forward(len(x), self.calibration_folds, embargo=self.embargo)
        model = calibrate(self._estimator(), self.calibration, folds=folds)
        self._model = model.fit(x, labels.astype(np.int64))
        with np.errstate(all="ignore"):
            self.medians = np.nanmedian(x, axis=0)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(label = 1) of each row of ``X`` (``(n, k)``, or one row ``(k,)``): float64 shape
        ``(n,)`` in [0, 1] (Property 11).

        Raises
        ------
        DataError
            Not fitted, wrong shape, ±inf in ``X``, or a broken model's output.
        """
        if self._model is None:
            raise DataError(f"the {self.algo} model is not fitted")
        x = self._filled(self._matrix(np.atleast_2d(X)))
        if len(x) == 0:
            return np.empty(0)
        proba = self._model.predict_proba(x)
        return as_probabilities(proba[:, list(self._model.classes_).index(1)])

    def occlusion(self, X: np.ndarray) -> np.ndarray:
        """Contributions of every feature at every row of ``X`` ``(m, k)``: shape ``(m, k)``,
        ``P(x) − P(x with x_j := median_j)`` (probability units, see the module docstring).

        Raises
        ------
        DataError
            As :meth:`predict_proba`.
        """
        if self.medians is None:
            raise DataError(f"the {self.algo} model is not fitted")
        x = self._matrix(np.atleast_2d(X))
        m, k = x.shape
        occluded = np.repeat(x, k, axis=0).reshape(m, k, k)
        occluded[:, np.arange(k), np.arange(k)] = self.medians
        proba = self.predict_proba(np.concatenate([x, occluded.reshape(m * k, k)]))
        return proba[:m, None] - proba[m:].reshape(m, k)

    def explain(self, x_row: np.ndarray, top: int = 5) -> list[Contribution]:
        """The ``top`` features (>= 1) of one row ``(k,)`` by absolute occlusion contribution,
        largest first (ties in column order).

        Raises
        ------
        DataError
            As :meth:`predict_proba`, or ``x_row`` not one row.
        ConfigError
            ``top < 1``.
        """
        top = checked_int("top", top, 1)
        row = np.asarray(x_row, dtype=np.float64)
        if row.ndim != 1:
            raise DataError(f"x_row must be one row of shape (k,), had shape {row.shape}")
        contrib = self.occlusion(row[None, :])[0]
        order = np.argsort(-np.abs(contrib), kind="stable")[:top]
        return [
            Contribution(self.feature_names[j], float(row[j]), float(contrib[j])) for j in order
        ]

    def importances(self, X: np.ndarray) -> list[tuple[str, float]]:
        """Global importance: the mean absolute occlusion contribution of each feature over the
        rows of ``X`` ``(m, k)`` (pass a sample of held-out rows), largest first.

        Raises
        ------
        DataError
            As :meth:`predict_proba`.
        """
        mean_abs = np.abs(self.occlusion(X)).mean(axis=0)
        order = np.argsort(-mean_abs, kind="stable")
        return [(self.feature_names[j], float(mean_abs[j])) for j in order]

    def library_versions(self) -> dict[str, str]:
        """``python``, ``numpy`` and ``scikit-learn`` versions (the pickle depends on them)."""
        return {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
        }

    def _filled(self, x: np.ndarray) -> np.ndarray:
        """``x`` with the columns that were empty at fit set to 0 (a copy if any)."""
        if self._empty is None or not self._empty.any():
            return x
        out = x.copy()
        out[:, self._empty] = 0.0
        return out

    def _matrix(self, X: np.ndarray) -> np.ndarray:
        x = np.asarray(X, dtype=np.float64)
        k = len(self.feature_names)
        if x.ndim != 2 or x.shape[1] != k:
            raise DataError(f"X must have shape (n, {k}), had shape {x.shape}")
        if np.isinf(x).any():
            raise DataError("X must not hold ±inf (NaN marks a missing value)")
        return x


class HistGradientBoostingModel(CalibratedTrees):
    """scikit-learn's ``HistGradientBoostingClassifier``, calibrated; NaN handled natively.

    The defaults are a priori choices for noisy, weakly predictive bar data (not tuned on any
    holdout): a small learning rate, shallow trees with large leaves, L2 regularization.
    """

    algo = "hgb"
    defaults: ClassVar[Mapping[str, Any]] = {
        "max_iter": 200,
        "learning_rate": 0.05,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 200,
        "l2_regularization": 1.0,
    }

    def _estimator(self) -> Any:
        return HistGradientBoostingClassifier(
            **self.params, early_stopping=False, random_state=self.random_state
        )


class RandomForestModel(CalibratedTrees):
    """scikit-learn's ``RandomForestClassifier`` behind a median imputer (NaN → the training
    median of the column, learnt at fit), calibrated."""

    algo = "rf"
    defaults: ClassVar[Mapping[str, Any]] = {
        "n_estimators": 100,
        "min_samples_leaf": 100,
        "max_features": "sqrt",
        "n_jobs": None,
    }

    def _estimator(self) -> Any:
        return make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            RandomForestClassifier(**self.params, random_state=self.random_state),
        )


class XGBoostModel(CalibratedTrees):
    """XGBoost's ``XGBClassifier``, CPU ``hist`` tree method, calibrated; NaN handled natively.

    Raises
    ------
    ConfigError
        (at construction) XGBoost is not installed (field ``algo``).
    """

    algo = "xgb"
    defaults: ClassVar[Mapping[str, Any]] = {
        "n_estimators": 200,
        "max_depth": 4,
        "learning_rate": 0.05,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 50,
    }

    def _estimator(self) -> Any:
        try:
            from xgboost import XGBClassifier
        except ImportError:
            raise ConfigError(
                "algo xgb needs the xgboost package, which is not installed "
                "(pip install 'xgboost>=2', the project's ml extra)",
                field="algo",
            ) from None
        return XGBClassifier(
            **self.params,
            tree_method="hist",
            device="cpu",
            random_state=self.random_state,
        )

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """As :meth:`CalibratedTrees.predict_proba`; with isotonic calibration, by XGBoost's
        ``Booster.inplace_predict`` (no DMatrix, no scikit-learn checks) through each fold's
        fitted isotonic step function (``IsotonicRegression.X_thresholds_`` /
        ``y_thresholds_``, clipped at the ends as it predicts), averaged over the folds as
        ``CalibratedClassifierCV(ensemble=True)`` does: the same probabilities (to float32
        rounding) at a fraction of the cost for one row (well under a millisecond).

        Raises
        ------
        DataError
            As :meth:`CalibratedTrees.predict_proba`.
        """
        model = self._model
        if model is None or self.calibration != "isotonic":
            return super().predict_proba(X)
        x = self._filled(self._matrix(np.atleast_2d(X)))
        if len(x) == 0:
            return np.empty(0)
        if list(model.classes_) != [0, 1]:
            return super().predict_proba(X)
        total = np.zeros(len(x))
        for pair in model.calibrated_classifiers_:
            (calibrator,) = pair.calibrators
            p_up = pair.estimator.get_booster().inplace_predict(x)
            total += np.interp(p_up, calibrator.X_thresholds_, calibrator.y_thresholds_)
        return as_probabilities(total / len(model.calibrated_classifiers_))

    def explain(self, x_row: np.ndarray, top: int = 5) -> list[Contribution]:
        """The ``top`` features of one row ``(k,)`` by TreeSHAP (XGBoost's ``pred_contribs``:
        the exact Shapley values of each fold's trees, in log-odds; Lundberg et al., "From local
        explanations to global understanding with explainable AI for trees", Nature Machine
        Intelligence 2020), averaged over the calibration folds and put in probability units:
        each feature's share of the log-odds change from the trees' base value times the
        calibrated probability's change from :meth:`base_probability`, so the contributions
        of all features add up to ``P(x) − base``. Largest absolute first (ties in column
        order). Sigmoid calibration falls back to occlusion.

        Raises
        ------
        DataError
            As :meth:`CalibratedTrees.explain`.
        ConfigError
            ``top < 1``.
        """
        model = self._model
        if model is None or self.calibration != "isotonic" or list(model.classes_) != [0, 1]:
            return super().explain(x_row, top)
        top = checked_int("top", top, 1)
        row = np.asarray(x_row, dtype=np.float64)
        if row.ndim != 1:
            raise DataError(f"x_row must be one row of shape (k,), had shape {row.shape}")
        x = self._filled(self._matrix(row[None, :]))
        phi, base = self._shap(x)
        total = float(phi.sum())
        change = float(self.predict_proba(x)[0]) - base
        contrib = phi * (change / total) if total != 0.0 else np.zeros_like(phi)
        order = np.argsort(-np.abs(contrib), kind="stable")[:top]
        return [
            Contribution(self.feature_names[j], float(row[j]), float(contrib[j])) for j in order
        ]

    def base_probability(self) -> float:
        """The calibrated probability of the trees' base value (their expected log-odds over
        the training rows), averaged over the folds: where :meth:`explain`'s contributions
        start from.

        Raises
        ------
        DataError
            Not fitted.
        """
        if self._model is None or self.medians is None:
            raise DataError(f"the {self.algo} model is not fitted")
        return self._shap(self.medians[None, :])[1]

    def _shap(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """Mean TreeSHAP values ``(k,)`` of the folds' trees at one row ``x`` ``(1, k)`` and the
        mean calibrated probability of their base values."""
        from xgboost import DMatrix

        assert self._model is not None
        matrix = DMatrix(x)
        pairs = self._model.calibrated_classifiers_
        phi = np.zeros(x.shape[1])
        base = 0.0
        for pair in pairs:
            (calibrator,) = pair.calibrators
            values = pair.estimator.get_booster().predict(matrix, pred_contribs=True)[0]
            phi += values[:-1]
            p_base = 1.0 / (1.0 + np.exp(-float(values[-1])))
            base += float(np.interp(p_base, calibrator.X_thresholds_, calibrator.y_thresholds_))
        return phi / len(pairs), base / len(pairs)

    def library_versions(self) -> dict[str, str]:
        """As :meth:`CalibratedTrees.library_versions`, plus ``xgboost``."""
        import xgboost

        return {**super().library_versions(), "xgboost": xgboost.__version__}


ALGOS: Mapping[str, Callable[..., CalibratedTrees]] = {
    "hgb": HistGradientBoostingModel,
    "rf": RandomForestModel,
    "xgb": XGBoostModel,
}
"""Model classes by algorithm key; ``hgb`` is the default."""


def build_model(
    algo: str, feature_names: Sequence[str], *, embargo: int = 0, **options: Any
) -> CalibratedTrees:
    """An unfitted model of algorithm ``algo`` (a key of :data:`ALGOS`) on ``feature_names``;
    ``options`` are :class:`CalibratedTrees`'s keyword arguments and hyper-parameters.

    Raises
    ------
    ConfigError
        Unknown ``algo`` (field ``algo``), or as :class:`CalibratedTrees`.
    """
    if algo not in ALGOS:
        raise ConfigError(f"algo must be one of {', '.join(ALGOS)}, was {algo!r}", field="algo")
    return ALGOS[algo](feature_names, embargo=embargo, **options)
