"""End to end: the ML model registry over HTTP and the WebSocket on a real uvicorn server with
the shipped sample: a model trained in the background from the API (its progress pushed as
``training`` messages, its job readable), listed, activated, rolled back and compared; a model
the CLI trained and activated while the server was down is in the registry at start-up; unknown
ids are 404s, a tampered artifact and a second concurrent training 409s, bad input 422s naming
the field. Trainings are small (a few days, few trees): each takes well under a second."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from threadpoolctl import threadpool_limits
from websockets.sync.client import ClientConnection, connect

from adapters.models.filesystem import FilesystemModelStore
from domain.ml.models import ModelKind
from service_layer.training import TrainingRequest, train_model
from tests.e2e.web_fixtures import sample_server
from tests.fixtures.data import load_sample_candles

TOKEN = "e2e-models-token-0123456789"
SMALL = {"kind": "trend", "symbol": "BTCUSDT", "days": 3, "folds": 2, "params": {"max_iter": 20}}
LARGER = {**SMALL, "days": 15, "folds": 3, "params": {"max_iter": 100}}
"""Long enough (about half a second) for a second request to find it running."""
WAIT_S = 60.0
CLI_TRAINED_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC


@dataclass(frozen=True)
class Served:
    url: str
    data_dir: Path
    cli_model: str  # trained and activated by the CLI's code before the server started


def _train_like_the_cli(data_dir: Path) -> str:
    """A mean-reversion model of ETHUSDT saved and activated in the model store's files only,
    as ``lootcapital ml train`` and ``ml activate`` do."""
    store = FilesystemModelStore(data_dir / "models")
    request = TrainingRequest(
        kind=ModelKind.MEAN_REVERSION, symbol="ETHUSDT", days=3, n_splits=2, params={"max_iter": 20}
    )
    candles = load_sample_candles("ETHUSDT")
    with threadpool_limits(limits=1):  # the test machine's cores are shared
        report = train_model(candles, request, store=store, created_ms=CLI_TRAINED_MS)
    store.activate(report["model_id"])
    return str(report["model_id"])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("e2e-models")
    cli_model = _train_like_the_cli(data_dir)
    with sample_server(data_dir, TOKEN) as (url, container):
        container.service.stop()  # the replay plays no part here
        yield Served(url, data_dir, cli_model)


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=served.url + "/api/v1", headers=headers, timeout=10) as c:
        yield c


def _finished(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job's body once it is no longer running."""
    deadline = time.monotonic() + WAIT_S
    while True:
        job = client.get(f"/models/train/{job_id}").json()
        if job["status"] != "running":
            return job
        assert time.monotonic() < deadline, f"job {job_id} still running after {WAIT_S} s"
        time.sleep(0.05)


def _training_messages(ws: ClientConnection, job_id: str) -> list[dict[str, Any]]:
    """The ``training`` messages of ``job_id`` up to the one that ends it."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_S
    while not messages or messages[-1]["data"]["status"] == "running":
        assert time.monotonic() < deadline, f"no end of job {job_id} within {WAIT_S} s"
        message = json.loads(ws.recv(timeout=WAIT_S))
        if message["type"] == "training" and message["data"]["job_id"] == job_id:
            messages.append(message)
    return messages


@dataclass(frozen=True)
class Trained:
    accepted: httpx.Response
    refused: httpx.Response  # a second training while the first ran
    messages: list[dict[str, Any]]
    job: dict[str, Any]  # GET /models/train/{job_id} once done


@pytest.fixture(scope="module")
def trained(served: Served, client: httpx.Client) -> Trained:
    """A model trained from the API, watched over the WebSocket."""
    url = served.url.replace("http://", "ws://") + f"/api/v1/ws?token={TOKEN}"
    with connect(url) as ws:
        accepted = client.post("/models/train", json=LARGER)
        refused = client.post("/models/train", json=SMALL)
        assert accepted.status_code == 202, accepted.text
        messages = _training_messages(ws, accepted.json()["job_id"])
    job = client.get(f"/models/train/{accepted.json()['job_id']}").json()
    return Trained(accepted, refused, messages, job)


def _train(client: httpx.Client, **body: Any) -> str:
    """Train a model (waiting for the job); its id."""
    response = client.post("/models/train", json=body)
    assert response.status_code == 202, response.text
    job = _finished(client, response.json()["job_id"])
    assert job["status"] == "done", job
    return str(job["model_id"])


# -- training ---------------------------------------------------------------------------------


def test_training_runs_in_the_background_with_progress_over_the_websocket(
    trained: Trained,
) -> None:
    started, messages, job = trained.accepted.json(), trained.messages, trained.job

    assert started["status"] == "running" and started["progress"] == 0.0
    assert (started["kind"], started["symbol"], started["algo"], started["days"]) == (
        "trend", "BTCUSDT", "hgb", 15,
    )  # fmt: skip
    progress = [m["data"]["progress"] for m in messages]
    assert progress == sorted(progress) and len(progress) >= 5
    assert {"fold 1/3", "fold 3/3"} <= {m["data"]["message"] for m in messages}
    assert all(isinstance(m["ts"], int) for m in messages)
    assert messages[-1]["data"] == job
    assert job["status"] == "done" and job["progress"] == 1.0 and job["error"] is None
    assert job["model_id"].startswith("trend-BTCUSDT-hgb-")
    assert {"accuracy", "log_loss", "brier", "roc_auc"} <= set(job["metrics"])
    assert "log_loss" in job["baseline"] and "baseline" in job["verdict"]


def test_a_second_training_while_one_runs_is_refused(trained: Trained) -> None:
    body = trained.refused.json()

    assert trained.refused.status_code == 409, trained.refused.text
    assert body["error"] == "training_running"
    assert trained.accepted.json()["job_id"] in body["detail"]


def test_the_trained_model_is_listed_with_its_metadata_and_not_active(
    trained: Trained, client: httpx.Client
) -> None:
    model_id = trained.job["model_id"]

    listed = client.get("/models", params={"kind": "trend", "symbol": "BTC/USDT:USDT"})
    one = client.get(f"/models/{model_id}")

    assert listed.status_code == 200, listed.text
    assert model_id in [m["model_id"] for m in listed.json()]
    assert all(m["kind"] == "trend" and "BTCUSDT" in m["symbols"] for m in listed.json())
    body = one.json()
    assert one.status_code == 200 and body["model_id"] == model_id
    assert body["active"] is False and body["active_on"] == [] and body["activations"] == []
    assert body["metrics"]["holdout"] == trained.job["metrics"]
    assert len(body["sha256"]) == 64 and "scikit-learn" in body["versions"]
    assert body["train_start_ms"] < body["train_end_ms"] < body["created_ms"]
    assert body["params"]["max_iter"] == 100


def test_a_model_the_cli_trained_while_the_server_was_down_is_registered_at_start(
    served: Served, client: httpx.Client
) -> None:
    listed = client.get("/models", params={"kind": "mean_reversion"}).json()
    one = client.get(f"/models/{served.cli_model}").json()

    assert [m["model_id"] for m in listed] == [served.cli_model]
    assert one["active"] is True and one["active_on"] == ["ETHUSDT"]
    assert [(a["who"], a["action"]) for a in one["activations"]] == [("sync", "sync")]


# -- activation, roll-back, comparison ----------------------------------------------------


def test_activate_then_roll_back_is_recorded_with_who_and_when(
    trained: Trained, client: httpx.Client
) -> None:
    first = trained.job["model_id"]
    second = _train(client, **{**SMALL, "algo": "rf", "params": {"n_estimators": 10}})

    activated = client.post(f"/models/{first}/activate")
    replaced = client.post(f"/models/{second}/activate")
    flags = {m["model_id"]: m["active"] for m in client.get("/models?kind=trend").json()}
    back = client.post("/models/rollback", json={"kind": "trend", "symbol": "BTCUSDT"})
    again = client.post("/models/rollback", json={"kind": "trend", "symbol": "BTCUSDT"})
    history = client.get(f"/models/{first}").json()["activations"]

    assert activated.status_code == 200 and activated.json()["active"] is True
    assert replaced.json()["active_on"] == ["BTCUSDT"]
    assert flags[first] is False and flags[second] is True
    assert back.status_code == 200, back.text
    assert back.json()["model_id"] == first and back.json()["active"] is True
    assert (again.status_code, again.json()["error"]) == (409, "no_earlier_model")
    assert "no earlier trend model of BTCUSDT" in again.json()["detail"]
    assert [(a["action"], a["who"]) for a in history] == [("rollback", "api"), ("activate", "api")]
    assert history[0]["time"] >= history[1]["time"] > 0


def test_compare_puts_the_models_metrics_side_by_side(
    trained: Trained, served: Served, client: httpx.Client
) -> None:
    ids = [trained.job["model_id"], served.cli_model]

    response = client.get("/models/compare", params={"ids": ",".join(ids)})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_ids"] == ids
    rows = {row["name"]: row["values"] for row in body["metrics"]}
    assert rows["holdout.log_loss"][0] == trained.job["metrics"]["log_loss"]
    assert all(0 <= v <= 1 for v in rows["holdout.accuracy"])
    assert all(len(values) == 2 for values in rows.values())


# -- refusals ---------------------------------------------------------------------------------


def test_a_tampered_artifact_is_refused_on_activation_with_the_stores_message(
    served: Served, client: httpx.Client
) -> None:
    model_id = _train(client, **{**SMALL, "days": 4})
    with (served.data_dir / "models" / model_id / "model.joblib").open("ab") as f:
        f.write(b"\0")

    response = client.post(f"/models/{model_id}/activate")

    assert response.status_code == 409, response.text
    assert response.json()["error"] == "model_mismatch"
    assert "sha256" in response.json()["detail"] and model_id in response.json()["detail"]
    assert client.get(f"/models/{model_id}").json()["active"] is False


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "named"),
    [
        ("GET", "/models/trend-BTCUSDT-hgb-nope", None, "model_id", "trend-BTCUSDT-hgb-nope"),
        ("POST", "/models/trend-BTCUSDT-hgb-nope/activate", None, "model_id", "hgb-nope"),
        ("GET", "/models/compare?ids=trend-BTCUSDT-hgb-nope", None, "ids", "hgb-nope"),
        ("GET", "/models/train/0123abcd", None, "job_id", "0123abcd"),
        ("POST", "/models/train", {**SMALL, "symbol": "DOGEUSDT"}, "symbol", "DOGEUSDT"),
    ],
)
def test_unknown_things_are_404s_naming_them(
    client: httpx.Client, method: str, path: str, body: dict | None, field: str, named: str
) -> None:
    response = client.request(method, path, json=body)

    assert response.status_code == 404, response.text
    assert response.json()["field"] == field
    assert named in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/models/train", {**SMALL, "kind": "momentum"}, "kind"),
        ("POST", "/models/train", {**SMALL, "days": 0}, "days"),
        ("POST", "/models/train", {**SMALL, "algo": "svm"}, "algo"),
        ("POST", "/models/train", {**SMALL, "params": {"max_itr": 5}}, "params"),
        ("POST", "/models/train", {**SMALL, "epochs": 5}, "epochs"),
        ("POST", "/models/rollback", {"kind": "trend"}, "symbol"),
        ("GET", "/models?kind=momentum", None, "kind"),
        ("GET", "/models/compare?ids=a,,b", None, "ids"),
        ("GET", "/models/compare?ids=" + ",".join(f"m{i}" for i in range(11)), None, "ids"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    client: httpx.Client, method: str, path: str, body: dict | None, field: str
) -> None:
    response = client.request(method, path, json=body)

    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_the_model_routes_need_the_token(served: Served) -> None:
    assert httpx.get(served.url + "/api/v1/models").status_code == 401
    assert httpx.post(served.url + "/api/v1/models/train", json=SMALL).status_code == 401
