"""Issue 7: the ``adaptive`` strategy with the ML probability as an input, through the CLI a
trader uses: a trend model trained (``lootcapital ml train``) on the sample's first 20 days of
BTCUSDT and activated acts in a backtest of the later bars, and the report names it and when it
acted; a backtest starting inside its training window is refused with the dates; a symbol with
no model, or a tampered artifact, runs with ML off and says why in every entry's reasons.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_limits

from domain.errors import ConfigError
from domain.strategies import build_strategy
from lootcapital.cli import main
from lootcapital.settings import Settings
from lootcapital.simulation import backtest
from tests.fixtures.data import load_sample_candles, sample_dir
from tests.integration.paper_harness import paper_settings, run_until, start

BTC = sample_dir() / "binance_usdm_BTCUSDT_5m.csv.gz"
ETH = sample_dir() / "binance_usdm_ETHUSDT_5m.csv.gz"
DAYS = 20
FIRST = "2025-09-02"  # the sample's first bar
AFTER = "2025-09-23"  # the day after the model's training window


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data dir whose registry holds an active BTCUSDT trend model fitted on the sample's
    first 20 days (its training labels end on 2025-09-19, before the holdout)."""
    root = tmp_path_factory.mktemp("mlbt")
    early = root / "binance_usdm_BTCUSDT_5m.csv.gz"
    with gzip.open(BTC, "rt") as src, gzip.open(early, "wt") as dst:
        dst.writelines(line for _, line in zip(range(DAYS * 288 + 1), src, strict=False))
    with pytest.MonkeyPatch.context() as mp, threadpool_limits(limits=1):
        mp.setenv("LOOTCAPITAL_DATA_DIR", str(root / "var"))
        code, out, err = _run(
            ["ml", "train", "--model", "trend", "--symbol", "BTCUSDT", "--data", str(early),
             "--days", "12", "--folds", "2", "--param", "max_iter=20", "--json", "-"]
        )  # fmt: skip
        assert code == 0, err
        model_id = json.loads(out)["model_id"]
        assert _run(["ml", "activate", model_id])[0] == 0
        yield root / "var"


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _backtest(data_dir: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> dict[str, Any]:
    monkeypatch.setenv("LOOTCAPITAL_DATA_DIR", str(data_dir))
    code, out, err = _run(
        ["backtest", "--strategy", "adaptive", "--param", "ml=true", "--json", "-", *extra]
    )
    assert code == 0, err
    return json.loads(out)


def _model_id(data_dir: Path) -> str:
    index = json.loads((data_dir / "models" / "index.json").read_text())
    return str(index["active"]["trend/BTCUSDT"])


def test_an_active_model_acts_after_its_training_window_and_the_report_names_it(
    registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with threadpool_limits(limits=1):
        result = _backtest(registry, monkeypatch, "--data", str(BTC), "--start", AFTER)

    model_id = _model_id(registry)
    ((span,),) = [result["models"]]
    assert span["symbol"] == "BTCUSDT" and span["model_id"] == model_id
    assert span["predictions"] >= 10
    assert span["first"] >= 1758585600000 and span["last"] > span["first"]  # 2025-09-23 on


def test_a_backtest_inside_the_training_window_is_refused_with_the_dates(
    registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOTCAPITAL_DATA_DIR", str(registry))
    code, _, err = _run(
        ["backtest", "--strategy", "adaptive", "--param", "ml=true", "--data", str(BTC),
         "--start", FIRST]
    )  # fmt: skip

    assert code != 0
    assert _model_id(registry) in err
    assert "2025-09-02 00:00 UTC" in err and "2025-09-19" in err and "walk-forward" in err


def test_no_model_or_a_tampered_one_runs_with_ml_off_and_says_why(
    registry: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    plain = _backtest(registry, monkeypatch, "--data", str(ETH), "--start", AFTER)
    assert plain["models"] == [] and plain["metrics"]["trades"] > 0
    assert "ML off on ETHUSDT: no active trend model" in caplog.text

    tampered = tmp_path / "var"
    (tampered / "models").mkdir(parents=True)
    for item in (registry / "models").rglob("*"):
        target = tampered / "models" / item.relative_to(registry / "models")
        if item.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(item.read_bytes())
    artifact = tampered / "models" / _model_id(registry) / "model.joblib"
    artifact.write_bytes(artifact.read_bytes() + b"\0")

    result = _backtest(tampered, monkeypatch, "--data", str(BTC), "--start", AFTER)

    assert result["models"] == [] and result["metrics"]["trades"] > 0
    assert f"ML off on BTCUSDT: model {_model_id(registry)} not loaded" in caplog.text
    assert "sha256" in caplog.text


def test_activating_a_model_hands_it_to_the_running_strategy(
    registry: Path, tmp_path: Path
) -> None:
    """A paper server trading adaptive with ML on starts with no active model (ML off); an
    activation (API, panel or CLI through the registry service) reaches the strategy at once."""
    data_dir = tmp_path / "var"
    shutil.copytree(registry / "models", data_dir / "models")
    (data_dir / "models" / "index.json").unlink()  # stored, none active
    model_id = _model_id(registry)
    settings = paper_settings(
        data_dir, sample_dir(), ["BTCUSDT", "ETHUSDT"], strategy="adaptive",
        strategy_params={"ml": True},
    )  # fmt: skip
    container = start(settings)
    run_until(container, candles=2 * 6_000, timeout=120)

    def ml_states() -> dict[str, str]:
        return {v.symbol: v.features["ml"] for v in container.service.pipeline_view()}

    before = ml_states()
    container.models.activate(model_id, "alice")
    after = ml_states()

    assert before == {"BTCUSDT": "off", "ETHUSDT": "off"}
    assert after == {"BTCUSDT": "on", "ETHUSDT": "off"}


def test_walk_forward_fits_the_chosen_algorithm_and_a_bad_one_names_the_field(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    candles = {"BTCUSDT": load_sample_candles("BTCUSDT").slice(0, 30 * 288)}
    params = {"ml": "true", "ml_train_days": "5", "ml_algo": "xgb"}

    with threadpool_limits(limits=1):
        result = backtest(
            settings, strategy="adaptive", params=params, candles=candles, timeframe="5m",
            cash=Decimal(10_000), fee=Decimal("0.0005"), slippage_bps=Decimal(2),
        )  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        build_strategy("adaptive", {**params, "ml_algo": "svm"}, "5m")

    assert result.models and all(m.model_id.startswith("wf-BTCUSDT-") for m in result.models)
    ml = [r for s in result.signals for r in s.reasons if r.component == "ml" and r.values]
    assert ml and all(any(k.startswith("contribution.") for k in r.values) for r in ml)
    assert caught.value.field == "ml_algo"
