"""The ML predictors (domain/ml/models.py) and their training samples (domain/ml/dataset.py).

Every algorithm is fitted on real features of the BTCUSDT sample (with small ensembles, to stay
fast); probabilities stay in [0, 1] for any row, NaN included (Property 11); explanations name
features of the set and are the occlusion differences the module documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from threadpoolctl import threadpool_limits

from domain.errors import ConfigError, DataError
from domain.ml.dataset import Dataset, build_dataset, score, verdict
from domain.ml.features import DEFAULT_FEATURE_SET
from domain.ml.labels import MeanReversionLabel, TrendLabel
from domain.ml.models import (
    ALGOS,
    CalibratedTrees,
    ModelKind,
    XGBoostModel,
    build_model,
    label_for,
)
from lootcapital import ml_cli
from tests.fixtures.data import load_sample_candles

# Small ensembles and one thread each: the test machine's cores are shared, where OpenMP's
# spinning threads run many times slower than one.
SMALL = {
    "hgb": {"max_iter": 20},
    "rf": {"n_estimators": 10, "n_jobs": 1},
    "xgb": {"n_estimators": 20, "n_jobs": 1},
}
N_FIT = 3_000
K = len(DEFAULT_FEATURE_SET.names)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield


@cache
def trend_data() -> Dataset:
    return build_dataset(load_sample_candles("BTCUSDT"), ModelKind.TREND, days=20)


@cache
def fitted(algo: str) -> CalibratedTrees:
    data = trend_data()
    model = build_model(algo, data.feature_set.names, embargo=data.horizon, **SMALL[algo])
    with threadpool_limits(limits=1):
        return model.fit(data.X[:N_FIT], data.y[:N_FIT])


@pytest.mark.parametrize("algo", list(ALGOS))
def test_each_algo_fits_real_features_and_gives_probabilities_in_0_1(algo: str) -> None:
    data = trend_data()

    proba = fitted(algo).predict_proba(data.X[N_FIT:])

    assert proba.shape == (len(data.y) - N_FIT,)
    assert np.all((proba >= 0.0) & (proba <= 1.0))
    assert proba.std() > 0  # not a constant: the trees split on something


@pytest.mark.parametrize("algo", list(ALGOS))
def test_explain_returns_the_top_features_of_the_set_largest_first(algo: str) -> None:
    row = trend_data().X[N_FIT + 10]

    top = fitted(algo).explain(row, top=5)

    assert len(top) == 5
    assert {c.feature for c in top} <= set(DEFAULT_FEATURE_SET.names)
    sizes = [abs(c.contribution) for c in top]
    assert sizes == sorted(sizes, reverse=True)
    for c in top:
        assert c.value == row[DEFAULT_FEATURE_SET.names.index(c.feature)] or np.isnan(c.value)


def test_a_contribution_is_the_probability_change_when_the_feature_takes_its_median() -> None:
    model = fitted("hgb")
    row = trend_data().X[N_FIT + 20].copy()

    first = model.explain(row, top=1)[0]

    j = DEFAULT_FEATURE_SET.names.index(first.feature)
    occluded = row.copy()
    occluded[j] = model.medians[j]
    expected = model.predict_proba(row)[0] - model.predict_proba(occluded)[0]
    assert first.contribution == pytest.approx(expected, abs=1e-12)


def test_global_importances_rank_every_feature_once() -> None:
    ranked = fitted("xgb").importances(trend_data().X[N_FIT : N_FIT + 50])

    assert sorted(name for name, _ in ranked) == sorted(DEFAULT_FEATURE_SET.names)
    values = [v for _, v in ranked]
    assert values == sorted(values, reverse=True) and min(values) >= 0


@pytest.mark.parametrize("algo", list(ALGOS))
def test_missing_features_are_handled_in_training_and_prediction(algo: str) -> None:
    data = trend_data()
    x = data.X[:N_FIT].copy()
    x[::7, 3] = np.nan  # a feature missing in one row in seven
    x[:, 5] = np.nan  # and one never defined
    model = build_model(algo, data.feature_set.names, embargo=data.horizon, **SMALL[algo])

    proba = model.fit(x, data.y[:N_FIT]).predict_proba(np.full((2, K), np.nan))

    assert np.all((proba >= 0.0) & (proba <= 1.0))
    assert model.medians is not None and model.medians[5] == 0.0


@pytest.mark.parametrize("algo", list(ALGOS))
def test_fitting_twice_with_the_same_seed_gives_the_same_probabilities(algo: str) -> None:
    data = trend_data()
    again = build_model(algo, data.feature_set.names, embargo=data.horizon, **SMALL[algo])

    again.fit(data.X[:N_FIT], data.y[:N_FIT])

    rows = data.X[N_FIT : N_FIT + 200]
    np.testing.assert_array_equal(again.predict_proba(rows), fitted(algo).predict_proba(rows))


@settings(max_examples=100, deadline=None)
@given(
    algo=st.sampled_from(list(ALGOS)),
    rows=arrays(
        np.float64,
        st.tuples(st.integers(1, 5), st.just(K)),
        elements=st.floats(-1e6, 1e6) | st.just(np.nan),
    ),
)
def test_property_11_every_probability_is_in_0_1_for_any_row(algo: str, rows: np.ndarray) -> None:
    proba = fitted(algo).predict_proba(rows)

    assert proba.shape == (len(rows),)
    assert np.all((proba >= 0.0) & (proba <= 1.0))


def test_xgboost_s_fast_path_gives_the_calibrated_ensemble_s_probabilities() -> None:
    model = fitted("xgb")
    rows = trend_data().X[N_FIT:].copy()
    rows[::7, 3] = np.nan  # missing values take the trees' default branches in both paths

    fast = model.predict_proba(rows)
    library = model._model.predict_proba(model._filled(rows))[:, 1]

    assert len(rows) > 1_000
    np.testing.assert_allclose(fast, library, rtol=0, atol=1e-6)  # float32 in XGBoost
    assert [model.predict_proba(r)[0] for r in rows[:20]] == list(fast[:20])


def test_xgboost_explains_by_treeshap_adding_up_to_the_probability_s_change() -> None:
    model = fitted("xgb")
    assert isinstance(model, XGBoostModel)
    base = model.base_probability()
    rows = trend_data().X[N_FIT : N_FIT + 200 : 20]

    for row in rows:
        every = model.explain(row, top=K)
        top = model.explain(row, top=5)
        p = model.predict_proba(row)[0]

        assert sum(c.contribution for c in every) == pytest.approx(p - base, abs=1e-9)
        assert top == every[:5]
        assert [abs(c.contribution) for c in every] == sorted(
            (abs(c.contribution) for c in every), reverse=True
        )
        assert sorted(c.feature for c in every) == sorted(model.feature_names)


def test_a_single_row_may_be_given_flat() -> None:
    row = trend_data().X[N_FIT]

    assert fitted("hgb").predict_proba(row).shape == (1,)


def test_infinite_features_and_wrong_shapes_are_refused() -> None:
    model = fitted("hgb")

    with pytest.raises(DataError, match="inf"):
        model.predict_proba(np.full((1, K), np.inf))
    with pytest.raises(DataError, match=f"shape \\(n, {K}\\)"):
        model.predict_proba(np.zeros((1, K - 1)))


def test_an_unfitted_model_refuses_to_predict() -> None:
    with pytest.raises(DataError, match="not fitted"):
        build_model("hgb", DEFAULT_FEATURE_SET.names).predict_proba(np.zeros((1, K)))


def test_labels_of_one_class_are_refused() -> None:
    model = build_model("hgb", DEFAULT_FEATURE_SET.names, max_iter=5)

    with pytest.raises(DataError, match="both classes"):
        model.fit(trend_data().X[:500], np.ones(500, dtype=np.int64))


@pytest.mark.parametrize(
    ("algo", "options", "field"),
    [
        ("gbm", {}, "algo"),
        ("hgb", {"max_iterations": 5}, "params"),
        ("rf", {"n_trees": 5}, "params"),
        ("hgb", {"calibration": "platt"}, "calibration"),
        ("hgb", {"calibration_folds": 0}, "calibration_folds"),
        ("hgb", {"embargo": -1}, "embargo"),
    ],
)
def test_build_model_names_the_bad_field(algo: str, options: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_model(algo, DEFAULT_FEATURE_SET.names, **options)

    assert info.value.field == field


def test_each_model_kind_has_its_label_and_an_unknown_kind_is_refused() -> None:
    assert label_for("trend") == TrendLabel(horizon=48)
    assert label_for(ModelKind.MEAN_REVERSION) == MeanReversionLabel()
    with pytest.raises(ConfigError) as info:
        label_for("momentum")
    assert info.value.field == "model"


def test_library_versions_name_what_the_pickle_depends_on() -> None:
    import sklearn
    import xgboost

    assert fitted("hgb").library_versions()["scikit-learn"] == sklearn.__version__
    assert set(fitted("rf").library_versions()) == {"python", "numpy", "scikit-learn"}
    assert fitted("xgb").library_versions()["xgboost"] == xgboost.__version__


def test_the_cli_choices_are_the_model_kinds_and_algorithms() -> None:
    assert [k.value for k in ModelKind] == ml_cli.KINDS
    assert list(ALGOS) == ml_cli.ALGO_CHOICES


def test_dataset_rows_are_warm_labelled_and_inside_the_window() -> None:
    candles = load_sample_candles("BTCUSDT")
    data = trend_data()

    end = int(candles.open_time[-1]) + 300_000
    assert data.times[0] >= end - 20 * 86_400_000
    assert np.all(np.diff(data.times) > 0)
    assert not np.isnan(data.X).any()  # the sample reaches back past the warm-up
    assert set(np.unique(data.y)) == {0, 1}
    # the last labelled bar is `horizon` bars before the end; its next-bar return is known
    assert data.times[-1] == int(candles.open_time[-1]) - 48 * 300_000


def test_dataset_returns_are_the_next_bars_open_to_open_towards_the_mean() -> None:
    candles = load_sample_candles("BTCUSDT")
    data = build_dataset(candles, "mean_reversion", days=3)

    t = int(np.searchsorted(candles.open_time, data.times[0]))
    raw = candles.open[t + 2] / candles.open[t + 1] - 1.0
    gap = candles.close[t] - candles.close[t - 19 : t + 1].mean()
    assert data.returns[0] == pytest.approx(-np.sign(gap) * raw, rel=1e-12)


def test_too_little_data_is_refused_with_the_counts() -> None:
    candles = load_sample_candles("BTCUSDT").slice(0, 2_100)

    with pytest.raises(DataError, match="usable samples"):
        build_dataset(candles, "trend", days=1)


def test_score_keeps_the_baseline_apart_and_the_verdict_says_when_it_is_not_beaten() -> None:
    y = np.array([1, 0, 1, 1, 0, 1])
    returns = np.full(6, 0.001)

    metrics, baseline = score(y, np.full(6, 0.5), returns, kind="trend", prior=0.5)

    assert "baseline_accuracy" not in metrics and metrics["trading"]["trades"] == 0
    assert baseline["accuracy"] == pytest.approx(4 / 6)
    assert baseline["trading"]["trades"] == 1
    said = verdict(metrics, baseline)
    assert said["log_loss"] is False and "does NOT beat" in said["summary"]
