"""``lootcapital ml``: training on the shipped BTCUSDT sample, and the model registry on real files
(joblib artifacts, JSON metadata, the index of active models).

Two trainings run once per module (30 days, small ensembles, 3 folds): a trend model with the
report on stdout, a mean-reversion XGBoost model with the text report and the JSON in a file.
Tests that change the registry work on a copy of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from adapters.models import FilesystemModelStore
from adapters.models.filesystem import version_mismatches
from domain.errors import ModelMismatch
from domain.ml.dataset import build_dataset
from lootcapital.cli import main
from tests.fixtures.data import load_sample_candles, sample_dir

BTC = sample_dir() / "binance_usdm_BTCUSDT_5m.csv.gz"
DAY_MS = 86_400_000
BAR_MS = 300_000
TRAIN = ["ml", "train", "--symbol", "BTCUSDT", "--data", str(BTC), "--days", "30", "--folds", "3"]


class Trained(NamedTuple):
    data_dir: Path
    trend: dict[str, Any]  # the report printed by --json -
    trend_stderr: str
    reversion: dict[str, Any]  # the report written by --json FILE
    reversion_stdout: str


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    data_dir = tmp_path_factory.mktemp("ml") / "var"
    out_file = data_dir.parent / "reversion.json"
    # One thread: the test machine's cores are shared, where OpenMP's spinning threads run many
    # times slower than one.
    with pytest.MonkeyPatch.context() as mp, threadpool_limits(limits=1):
        mp.setenv("LOOTCAPITAL_DATA_DIR", str(data_dir))
        capture = _Capture()
        with capture:
            code = main([*TRAIN, "--model", "trend", "--param", "max_iter=30", "--json", "-"])
        assert code == 0, capture.err
        trend_out, trend_err = capture.out, capture.err
        with capture:
            code = main(
                [*TRAIN, "--model", "mean_reversion", "--algo", "xgb", "--param", "n_estimators=30",
                 "--param", "n_jobs=1", "--json", str(out_file)]
            )  # fmt: skip
        assert code == 0, capture.err
    return Trained(
        data_dir, json.loads(trend_out), trend_err, json.loads(out_file.read_text()), capture.out
    )


class _Capture:
    """stdout and stderr of the code run inside ``with`` (pytest's capsys is function-scoped)."""

    def __enter__(self) -> None:
        self._out, self._err = io.StringIO(), io.StringIO()
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(self._out))
        self._stack.enter_context(contextlib.redirect_stderr(self._err))

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self.out, self.err = self._out.getvalue(), self._err.getvalue()


@pytest.fixture
def registry(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the trained models' data dir, which the CLI of this test uses."""
    data_dir = tmp_path / "var"
    shutil.copytree(trained.data_dir, data_dir)
    monkeypatch.setenv("LOOTCAPITAL_DATA_DIR", str(data_dir))
    return data_dir / "models"


def _ids(root: Path) -> dict[str, str]:
    return {m.kind: m.model_id for m in FilesystemModelStore(root).list()}


# -- the report ----------------------------------------------------------------------------


def test_the_report_has_metrics_baseline_folds_and_model_id(trained: Trained) -> None:
    for report in (trained.trend, trained.reversion):
        assert {"metrics", "baseline", "folds", "model_id"} <= set(report)
        for key in ("accuracy", "precision", "recall", "roc_auc", "log_loss", "brier"):
            assert key in report["metrics"]
        for key in ("cumulative_return", "sharpe", "max_drawdown", "trades", "hit_rate"):
            assert key in report["metrics"]["trading"]
        assert {"accuracy", "log_loss", "brier", "trading"} <= set(report["baseline"])
        assert len(report["folds"]) == 3
        assert all(0 <= f["metrics"]["accuracy"] <= 1 for f in report["folds"])
        assert isinstance(report["verdict"]["log_loss"], bool)


def test_the_holdout_is_the_last_fifth_of_the_samples_in_time(trained: Trained) -> None:
    window = trained.trend["window"]
    data = build_dataset(load_sample_candles("BTCUSDT"), "trend", days=30)
    n = len(data.y)

    assert window["holdout_rows"] == math.ceil(0.2 * n)
    assert window["train_rows"] == n - window["holdout_rows"] - 48  # the embargo purged
    assert window["holdout_start_ms"] == data.times[n - window["holdout_rows"]]
    assert window["holdout_end_ms"] == data.times[-1] + BAR_MS
    # no training label reads a held-out bar
    assert window["train_end_ms"] <= window["holdout_start_ms"]
    last_close = int(load_sample_candles("BTCUSDT").open_time[-1]) + BAR_MS
    assert window["start_ms"] >= last_close - 30 * DAY_MS


def test_walk_forward_folds_train_before_they_test_and_stay_before_the_holdout(
    trained: Trained,
) -> None:
    window = trained.trend["window"]
    folds = trained.trend["folds"]

    for fold in folds:
        assert fold["train_end_ms"] <= fold["test_start_ms"]
        assert fold["test_end_ms"] <= window["holdout_start_ms"]
    assert [f["train_rows"] for f in folds] == sorted(f["train_rows"] for f in folds)


def test_the_baseline_is_the_majority_and_the_training_prior(trained: Trained) -> None:
    metrics, baseline = trained.trend["metrics"], trained.trend["baseline"]

    rate = metrics["positive_rate"]
    assert baseline["accuracy"] == pytest.approx(max(rate, 1 - rate))
    p = baseline["prior"]
    expected = -(rate * math.log(p) + (1 - rate) * math.log(1 - p))
    assert baseline["log_loss"] == pytest.approx(expected)


def test_json_to_stdout_prints_only_json_and_progress_goes_to_stderr(trained: Trained) -> None:
    assert trained.trend["model_id"].startswith("trend-BTCUSDT-hgb-")
    assert "100%" in trained.trend_stderr.splitlines()[-1]


def test_the_text_report_names_the_model_and_the_verdict(trained: Trained) -> None:
    out = trained.reversion_stdout

    assert trained.reversion["model_id"] in out
    assert "baseline" in out and "the model " in out and "beat" in out
    assert "lootcapital ml activate" in out


# -- the registry --------------------------------------------------------------------------


def test_the_model_is_stored_with_its_metadata_and_sha256(trained: Trained) -> None:
    report = trained.trend
    folder = trained.data_dir / "models" / report["model_id"]

    meta = json.loads((folder / "metadata.json").read_text())

    assert meta["model_id"] == report["model_id"]
    assert (meta["kind"], meta["algo"], meta["symbols"]) == ("trend", "hgb", ["BTCUSDT"])
    assert meta["feature_set"] == "ml_core@v1" and len(meta["feature_names"]) == 27
    assert meta["train_start_ms"] == report["window"]["train_start_ms"]
    assert meta["train_end_ms"] == report["window"]["train_end_ms"]
    assert meta["label"] == {"name": "TrendLabel", "horizon": 48}
    assert meta["metrics"]["holdout"]["log_loss"] == report["metrics"]["log_loss"]
    assert {"python", "numpy", "scikit-learn"} <= set(meta["versions"])
    assert isinstance(meta["created_ms"], int)
    artifact = (folder / "model.joblib").read_bytes()
    assert meta["sha256"] == hashlib.sha256(artifact).hexdigest()
    reversion = json.loads(
        (trained.data_dir / "models" / trained.reversion["model_id"] / "metadata.json").read_text()
    )
    assert "xgboost" in reversion["versions"]


def test_a_stored_model_loads_and_predicts_probabilities(trained: Trained) -> None:
    store = FilesystemModelStore(trained.data_dir / "models")
    data = build_dataset(load_sample_candles("BTCUSDT"), "mean_reversion", days=2)

    model, meta = store.load(trained.reversion["model_id"])

    proba = model.predict_proba(data.X)  # type: ignore[attr-defined]
    assert meta.algo == "xgb" and np.all((proba >= 0) & (proba <= 1))


def test_activate_list_and_rollback(registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = FilesystemModelStore(registry)
    first = _ids(registry)["trend"]
    model, meta = store.load(first)
    later = dataclasses.replace(meta, model_id="", sha256="", created_ms=meta.created_ms + 60_000)
    second = store.save(model, later).model_id

    assert main(["ml", "activate", first]) == 0
    assert main(["ml", "activate", second]) == 0
    assert main(["ml", "list"]) == 0
    listing = capsys.readouterr().out
    assert f"* {second}" in listing and f"  {first}" in listing
    assert main(["ml", "rollback", "--model", "trend", "--symbol", "BTCUSDT"]) == 0
    assert store.active("trend", "BTCUSDT").model_id == first  # type: ignore[union-attr]
    capsys.readouterr()
    assert main(["ml", "rollback", "--model", "trend", "--symbol", "BTCUSDT"]) == 2
    assert "no earlier trend model of BTCUSDT" in capsys.readouterr().err


def test_list_json_marks_the_active_model(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _ids(registry)
    main(["ml", "activate", ids["mean_reversion"]])
    capsys.readouterr()

    assert main(["ml", "list", "--json"]) == 0

    rows = {r["model_id"]: r["active"] for r in json.loads(capsys.readouterr().out)}
    assert rows == {ids["mean_reversion"]: True, ids["trend"]: False}


def test_compare_puts_metrics_side_by_side(registry: Path) -> None:
    ids = _ids(registry)

    table = FilesystemModelStore(registry).compare([ids["trend"], ids["mean_reversion"]])

    assert set(table["holdout.log_loss"]) == {ids["trend"], ids["mean_reversion"]}
    assert main(["ml", "compare", ids["trend"], ids["mean_reversion"]]) == 0


def test_a_tampered_artifact_is_refused_naming_the_sha256(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_id = _ids(registry)["trend"]
    with (registry / model_id / "model.joblib").open("ab") as f:
        f.write(b"\0")

    with pytest.raises(ModelMismatch, match=r"sha256 .* does not match the metadata's"):
        FilesystemModelStore(registry).load(model_id)
    assert main(["ml", "activate", model_id]) == 2
    assert "sha256" in capsys.readouterr().err
    assert FilesystemModelStore(registry).active("trend", "BTCUSDT") is None


def test_a_library_version_mismatch_is_refused_naming_the_library(registry: Path) -> None:
    model_id = _ids(registry)["trend"]
    path = registry / model_id / "metadata.json"
    meta = json.loads(path.read_text())
    meta["versions"]["scikit-learn"] = "0.0.1"
    path.write_text(json.dumps(meta))

    with pytest.raises(ModelMismatch, match=r"scikit-learn 0\.0\.1 \(running 1\."):
        FilesystemModelStore(registry).load(model_id)


def test_python_is_compared_on_major_minor_and_a_missing_library_is_a_mismatch() -> None:
    import platform

    major, minor, _ = platform.python_version_tuple()

    assert version_mismatches({"python": f"{major}.{minor}.999"}) == []
    assert version_mismatches({"python": f"{major}.{int(minor) + 1}.0"})
    assert version_mismatches({"no-such-lib": "1.0"}) == ["no-such-lib 1.0 (running not installed)"]


def test_an_unknown_model_id_is_refused(registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ml", "activate", "trend-BTCUSDT-hgb-nope"]) == 2
    assert "no model 'trend-BTCUSDT-hgb-nope'" in capsys.readouterr().err


def test_training_on_too_few_days_fails_with_a_clear_message(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ml", "train", "--model", "trend", "--symbol", "BTCUSDT", "--days", "0"])

    assert code == 2
    assert "days must be an integer >= 1, was 0" in capsys.readouterr().err
