"""The panel's AI signal page (``/ai``) end to end: a real uvicorn server wired by ``bootstrap``
runs the ``adaptive`` strategy with ``ml=true`` on BTCUSDT and ETHUSDT. BTCUSDT's trend model
was trained through the CLI on the sample's first 20 days and activated (ETHUSDT has none); the
server's candle store holds the sample from the day after, so every call the model makes is on
bars it never saw. The replay runs until the model has made a dozen calls, then stops.

The page's calls, outcomes, ML states, scores and importances are checked against the REST API
(``/api/v1/signals``, ``/candles``, ``/analysis``, ``/models``); a training started from the
panel is followed over the WebSocket to its end, its model activated and rolled back from the
panel; and Chromium (DevTools protocol) loads the page at desktop and phone width, trains from
the form and sees the job's result arrive."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from threadpoolctl import threadpool_limits
from websockets.sync.client import connect

from api.deps import SESSION_COOKIE, session_value
from lootcapital.bootstrap import Container, bootstrap, build_app
from lootcapital.cli import main
from lootcapital.settings import Settings
from tests.e2e.devtools import CHROMIUM, DevTools, chromium_page
from tests.e2e.html_elements import by_attr, elements, inside, with_class
from tests.e2e.web_fixtures import live_server, sample_server
from tests.fixtures.data import sample_dir

TOKEN = "e2e-ai-page-token-0123456789"
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
TRAIN_DAYS = 20
"""The model's bars: the sample's first 20 days of BTCUSDT; the store holds the rest."""
ML_CALLS = 12
"""ML calls the replay runs for (the list shows 10)."""
WAIT_S = 120.0
M5, H4 = 300_000, 4 * 3_600_000
PARTIALS = ["/ui/ai/symbols", "/ui/ai/signals", "/ui/ai/strategy", "/ui/ai/models", "/ui/ai/jobs"]
PANEL_JOB = {"kind": "trend", "symbol": "BTCUSDT", "days": "7", "algo": "hgb", "folds": "3"}
"""A training job of about a second on 2 cores, started from the panel."""


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _split_sample(root: Path) -> tuple[Path, list[Path]]:
    """BTCUSDT's first :data:`TRAIN_DAYS` days of sample bars, and every symbol's later bars
    (header kept), as kline files under ``root``."""
    early, late = root / "early", root / "late"
    early.mkdir()
    late.mkdir()
    for symbol in SYMBOLS:
        name = f"binance_usdm_{symbol}_5m.csv.gz"
        with gzip.open(sample_dir() / name, "rt") as src:
            lines = src.readlines()
        head, split = lines[:1], TRAIN_DAYS * 288 + 1
        if symbol == "BTCUSDT":
            with gzip.open(early / name, "wt") as dst:
                dst.writelines(lines[:split])
        with gzip.open(late / name, "wt") as dst:
            dst.writelines(head + lines[split:])
    return early / "binance_usdm_BTCUSDT_5m.csv.gz", sorted(late.iterdir())


def _ml_signals(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """The stored signals with an ML call (an ``ml`` reason with ``probability_up``), newest
    first."""
    signals = api.get("/signals", params={"limit": 1000, **params}).json()
    return [s for s in signals if _ml_reason(s) is not None]


def _ml_reason(signal: dict[str, Any]) -> dict[str, Any] | None:
    found = [r for r in signal["reasons"] if r["component"] == "ml"]
    return next((r for r in found if "probability_up" in r["values"]), None)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Container]]:
    """The ``adaptive`` (``ml=true``) paper server described in the module docstring, stopped
    after :data:`ML_CALLS` ML calls."""
    root = tmp_path_factory.mktemp("ai-page")
    data_dir = root / "var"
    early, late = _split_sample(root)
    with pytest.MonkeyPatch.context() as mp, threadpool_limits(limits=1):
        mp.setenv("LOOTCAPITAL_DATA_DIR", str(data_dir))
        assert _cli(["data", "import", *map(str, late)])[0] == 0
        code, out, err = _cli(
            ["ml", "train", "--model", "trend", "--symbol", "BTCUSDT", "--data", str(early),
             "--days", "12", "--folds", "2", "--param", "max_iter=20", "--json", "-"]
        )  # fmt: skip
        assert code == 0, err
        assert _cli(["ml", "activate", json.loads(out)["model_id"]])[0] == 0
    settings = Settings(
        data_dir=data_dir,
        api_token=TOKEN,
        speed=10_000_000.0,
        autostart=False,
        symbols=SYMBOLS,
        strategy="adaptive",
        strategy_params={"ml": True},
    )
    container = bootstrap(settings)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        live_server(build_app(container)) as url,
        httpx.Client(base_url=url + "/api/v1", headers=headers, timeout=10.0) as api,
    ):
        api.post("/engine/start")
        deadline = time.monotonic() + WAIT_S
        while len(_ml_signals(api)) < ML_CALLS:
            assert api.get("/status").json()["running"], "the data ended before enough ML calls"
            assert time.monotonic() < deadline, f"fewer than {ML_CALLS} ML calls"
            time.sleep(0.05)
        assert api.post("/engine/stop").json()["running"] is False
        yield url, container


@pytest.fixture
def base_url(served: tuple[str, Container]) -> str:
    return served[0]


@pytest.fixture
def browser(base_url: str) -> Iterator[httpx.Client]:
    """A client with the session cookie, as a logged-in browser."""
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        client.cookies.set(SESSION_COOKIE, session_value(TOKEN))
        yield client


@pytest.fixture
def api(base_url: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base_url + "/api/v1", headers=headers, timeout=10.0) as client:
        yield client


def _active_model(api: httpx.Client, symbol: str = "BTCUSDT") -> dict[str, Any]:
    (model,) = [
        m for m in api.get("/models", params={"symbol": symbol}).json() if symbol in m["active_on"]
    ]
    return model


# -- the page and its access ---------------------------------------------------------------------


def test_the_page_without_a_session_shows_the_login_form(base_url: str) -> None:
    response = httpx.get(base_url + "/ai", timeout=10)

    assert response.status_code == 200
    assert 'action="/login"' in response.text
    assert "ai-symbols" not in response.text


@pytest.mark.parametrize("path", [*PARTIALS, "/ui/stream?page=ai"])
def test_the_partials_refuse_requests_without_the_session_cookie(base_url: str, path: str) -> None:
    assert httpx.get(base_url + path, timeout=10).status_code == 401


def test_training_from_the_panel_needs_the_session_cookie(base_url: str) -> None:
    response = httpx.post(base_url + "/ui/ai/train", data=PANEL_JOB, timeout=10)

    assert response.status_code == 401


def test_the_page_has_its_live_partials_and_every_page_links_to_it(browser: httpx.Client) -> None:
    html = browser.get("/ai").text

    assert 'sse-connect="/ui/stream?page=ai"' in html
    assert 'href="/ai" aria-current="page"' in html
    for partial in ("symbols", "signals", "strategy", "models", "jobs"):
        assert f'hx-get="/ui/ai/{partial}"' in html
    assert 'hx-post="/ui/ai/train"' in html and "/static/ai.js" in html
    assert 'id="no-ml"' not in html
    for page in ("/", "/control", "/analysis"):
        assert 'href="/ai"' in browser.get(page).text


# -- the last ML signals and their outcomes ------------------------------------------------------


def test_the_list_shows_the_last_ten_ml_signals_with_the_probabilities_of_the_api(
    browser: httpx.Client, api: httpx.Client
) -> None:
    expected = _ml_signals(api)[:10]

    response = browser.get("/ui/ai/signals")

    assert response.status_code == 200
    rows = [e["attrs"] for e in with_class(response.text, "ai-signal")]
    assert [(int(r["data-time"]), r["data-symbol"]) for r in rows] == [
        (s["time"], s["symbol"]) for s in expected
    ]
    explained = [e["text"] for e in with_class(response.text, "ai-explanation")]
    for row, text, signal in zip(rows, explained, expected, strict=True):
        reason = _ml_reason(signal)
        assert reason is not None
        assert float(row["data-probability"]) == reason["values"]["probability_up"]
        assert row["data-direction"] == signal["direction"]
        assert text == reason["message"]


def _close(api: httpx.Client, symbol: str, close_time: int) -> float | None:
    """The close of ``symbol``'s bar closing at ``close_time``, from ``GET /candles``."""
    bars = api.get(
        "/candles", params={"symbol": symbol, "start": close_time - M5, "end": close_time - M5}
    ).json()
    return float(bars[0]["close"]) if bars else None


def test_each_outcome_is_the_close_four_hours_on_against_the_close_at_the_signal(
    browser: httpx.Client, api: httpx.Client
) -> None:
    clock = api.get("/status").json()["clock_time"]

    response = browser.get("/ui/ai/signals")

    rows = [e["attrs"] for e in with_class(response.text, "ai-signal")]
    judged = 0
    for row in rows:
        time_ms, symbol = int(row["data-time"]), row["data-symbol"]
        entry = _close(api, symbol, time_ms)
        assert entry is not None and float(row["data-entry"]) == entry
        if time_ms + H4 > clock:
            assert row["data-outcome"] == "pending"
            continue
        exit_ = _close(api, symbol, time_ms + H4)
        assert exit_ is not None and float(row["data-exit"]) == exit_
        assert float(row["data-move"]) == pytest.approx(exit_ / entry - 1, rel=1e-12)
        up = {"long": exit_ > entry, "short": exit_ < entry}[row["data-direction"]]
        assert row["data-outcome"] == ("right" if up else "wrong")
        judged += 1
    assert judged >= 5
    (tally,) = by_attr(response.text, "data-right").values()
    outcomes = [r["data-outcome"] for r in rows]
    assert int(tally["attrs"]["data-right"]) == outcomes.count("right")
    assert int(tally["attrs"]["data-wrong"]) == outcomes.count("wrong")


def test_the_symbol_filter_lists_only_that_symbols_ml_signals(browser: httpx.Client) -> None:
    btc = browser.get("/ui/ai/signals", params={"symbol": "BTCUSDT"}).text
    eth = browser.get("/ui/ai/signals", params={"symbol": "ETHUSDT"}).text

    symbols = [e["attrs"]["data-symbol"] for e in elements(btc) if "data-probability" in e["attrs"]]
    assert len(symbols) == 10 and set(symbols) == {"BTCUSDT"}
    assert "No ML signal yet on ETHUSDT" in eth
    assert browser.get("/ui/ai/signals", params={"symbol": "not a symbol!"}).status_code == 404


# -- per symbol: the next signal and the ML state ------------------------------------------------


def test_each_symbol_shows_its_latest_call_and_whether_ml_acts_there(
    browser: httpx.Client, api: httpx.Client
) -> None:
    latest = _ml_signals(api, symbol="BTCUSDT")[0]
    reason = _ml_reason(latest)
    assert reason is not None
    model = _active_model(api)
    features = {s: api.get(f"/analysis/{s}").json()["features"] for s in SYMBOLS}

    response = browser.get("/ui/ai/symbols")

    cards = {c["attrs"]["data-symbol"]: c for c in with_class(response.text, "ai-card")}
    assert list(cards) == SYMBOLS
    for symbol in SYMBOLS:
        assert cards[symbol]["attrs"]["data-ml-state"] == features[symbol]["ml"]
    assert features["BTCUSDT"]["ml"] == "on" and features["ETHUSDT"]["ml"] == "off"
    btc, eth = cards["BTCUSDT"]["text"], cards["ETHUSDT"]["text"]
    call = by_attr(response.text, "data-probability")
    (shown,) = call.values()
    assert int(shown["attrs"]["data-time"]) == latest["time"]
    assert float(shown["attrs"]["data-probability"]) == reason["values"]["probability_up"]
    assert float(shown["attrs"]["data-confidence"]) == latest["confidence"]
    actions = {"long": "buy", "short": "sell", "flat": "hold"}
    assert shown["attrs"]["data-action"] == actions[latest["direction"]]
    contributions = {k.removeprefix("contribution."): v for k, v in reason["values"].items()
                     if k.startswith("contribution.")}  # fmt: skip
    rows = {e["attrs"]["data-feature"]: float(e["attrs"]["data-value"])
            for e in elements(response.text) if e["attrs"].get("data-feature")}  # fmt: skip
    assert rows == contributions and len(rows) == 5
    (explanation,) = with_class(response.text, "ai-explanation")
    assert explanation["text"] == reason["message"]
    assert model["model_id"] in btc
    assert "no active trend model for ETHUSDT" in eth and "No ML call yet" in eth


# -- the strategy's own calls beside the ML's -----------------------------------------------------


def test_with_ml_the_strategys_own_calls_follow_the_ml_and_carry_its_reasons(
    browser: httpx.Client, api: httpx.Client
) -> None:
    signals = api.get("/signals", params={"limit": 1000}).json()
    expected = [s for s in signals if any(r["component"] != "isolation" for r in s["reasons"])]

    page = browser.get("/ai").text
    response = browser.get("/ui/ai/strategy")

    assert 'id="no-ml"' not in page
    assert page.index('id="ai-symbols"') < page.index('id="ai-strategy"')
    rows = [e["attrs"] for e in with_class(response.text, "strategy-signal")]
    assert [(int(r["data-time"]), r["data-symbol"]) for r in rows] == [
        (s["time"], s["symbol"]) for s in expected[:10]
    ]
    ml = {r["message"] for s in expected[:10] for r in s["reasons"] if r["component"] == "ml"}
    shown = {e["text"] for e in with_class(response.text, "ai-reason")}
    assert ml and ml <= shown


# -- the models ----------------------------------------------------------------------------------


def test_the_models_show_the_active_models_scores_and_global_importances(
    browser: httpx.Client, api: httpx.Client
) -> None:
    model = _active_model(api)
    metrics = model["metrics"]

    response = browser.get("/ui/ai/models")

    assert response.status_code == 200
    found = elements(response.text)
    (article,) = [e for e in found if e["attrs"].get("data-model-id") == model["model_id"]]
    assert article["attrs"]["data-active"] == "true"
    within = inside(found, article)
    scores = {e["attrs"]["data-metric"]: e["attrs"] for e in within if "data-metric" in e["attrs"]}
    assert list(scores) == ["accuracy", "roc_auc", "log_loss"]
    for key, attrs in scores.items():
        assert float(attrs["data-model"]) == metrics["holdout"][key]
    assert float(scores["accuracy"]["data-baseline"]) == metrics["baseline"]["accuracy"]
    assert float(scores["log_loss"]["data-baseline"]) == metrics["baseline"]["log_loss"]
    bars = [(e["attrs"]["data-feature"], float(e["attrs"]["data-value"]))
            for e in within if e["tag"] == "li" and "data-value" in e["attrs"]]  # fmt: skip
    importances = metrics["importances"]
    assert len(importances) == 10
    assert bars == sorted(importances.items(), key=lambda kv: -kv[1])


# -- training from the panel ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def panel_job(served: tuple[str, Container]) -> dict[str, Any]:
    """A training job started with the panel's form while a WebSocket client (with the
    session cookie, as the page's script) listens: ``{"answer": the form's HTML, "pushed":
    the job's training messages in order}``."""
    url, _ = served
    cookie = f"{SESSION_COOKIE}={session_value(TOKEN)}"
    ws_url = url.replace("http://", "ws://") + "/api/v1/ws"
    with (
        connect(ws_url, additional_headers={"Cookie": cookie}, open_timeout=10) as ws,
        httpx.Client(base_url=url, headers={"Cookie": cookie}, timeout=10.0) as client,
    ):
        answer = client.post("/ui/ai/train", data=PANEL_JOB)
        assert answer.status_code == 200, answer.text
        (card,) = by_attr(answer.text, "data-job-id").values()
        job_id = card["attrs"]["data-job-id"]
        pushed: list[dict[str, Any]] = []
        while not pushed or pushed[-1]["status"] == "running":
            message = json.loads(ws.recv(timeout=WAIT_S))
            if message["type"] == "training" and message["data"]["job_id"] == job_id:
                pushed.append(message["data"])
    return {"answer": answer.text, "job_id": job_id, "pushed": pushed}


def test_a_training_started_in_the_panel_pushes_its_progress_until_done(
    panel_job: dict[str, Any], browser: httpx.Client
) -> None:
    pushed, job_id = panel_job["pushed"], panel_job["job_id"]

    assert f"Training job {job_id} started" in panel_job["answer"]
    assert 'data-status="running"' in panel_job["answer"]
    progress = [m["progress"] for m in pushed]
    assert progress == sorted(progress) and any(0 < p < 1 for p in progress)
    done = pushed[-1]
    assert done["status"] == "done", done
    card = by_attr(browser.get(f"/ui/ai/train/{job_id}").text, "data-key")
    (model,) = card["model_id"]["text"].split()
    assert model == done["model_id"]
    assert done["verdict"] in card["verdict"]["text"]
    assert f'data-job-id="{job_id}"' in browser.get("/ui/ai/jobs").text
    listed = by_attr(browser.get("/ui/ai/models").text, "data-model-id")
    assert listed[model]["attrs"]["data-active"] == "false"


def test_a_refused_training_is_shown_next_to_its_field(browser: httpx.Client) -> None:
    answer = browser.post("/ui/ai/train", data=PANEL_JOB | {"days": "0"})

    assert answer.status_code == 200
    (error,) = by_attr(answer.text, "data-field").values()
    assert error["attrs"]["data-field"] == "days" and "greater than or equal to 1" in error["text"]
    assert "data-job-id" not in answer.text


def test_activating_and_rolling_back_in_the_panel_change_the_registrys_active_model(
    panel_job: dict[str, Any], browser: httpx.Client, api: httpx.Client
) -> None:
    before = _active_model(api)["model_id"]
    trained = panel_job["pushed"][-1]["model_id"]

    activated = browser.post(f"/ui/ai/models/{trained}/activate")
    after_activate = _active_model(api)["model_id"]
    rolled = browser.post("/ui/ai/models/rollback", data={"kind": "trend", "symbol": "BTCUSDT"})
    after_rollback = _active_model(api)["model_id"]

    assert after_activate == trained and after_rollback == before
    assert by_attr(activated.text, "data-model-id")[trained]["attrs"]["data-active"] == "true"
    assert f"{trained} is the active trend model on BTCUSDT" in activated.text
    assert f"Rolled back: {before} is the active trend model on BTCUSDT again" in rolled.text
    whos = [a["who"] for a in api.get(f"/models/{trained}").json()["activations"]]
    assert "panel" in whos


# -- in a browser --------------------------------------------------------------------------------

PAGE_STATE = """JSON.stringify({
  cards: document.querySelectorAll('#ai-symbols .ai-card').length,
  rows: document.querySelectorAll('#ai-signals tr.ai-signal').length,
  models: document.querySelectorAll('#ai-models .model').length,
  ws: document.getElementById('training-jobs').getAttribute('data-ws'),
  jobs: Array.from(document.querySelectorAll('#training-jobs .job')).map(function (e) {
    return {id: e.dataset.jobId, status: e.dataset.status,
            model: (e.querySelector('[data-key="model_id"]') || {}).textContent || null};
  }),
  overflow: document.documentElement.scrollWidth - window.innerWidth,
})"""


def _state(page: DevTools) -> dict[str, Any]:
    raw = page.evaluate(PAGE_STATE)
    return json.loads(raw) if raw else {}


def _wait(page: DevTools, done: Any, what: str) -> dict[str, Any]:
    """The page's :data:`PAGE_STATE` once ``done(state)`` holds; fails naming ``what`` after
    :data:`WAIT_S`."""
    deadline = time.monotonic() + WAIT_S
    while True:
        state = _state(page)
        if state and done(state):
            return state
        assert time.monotonic() < deadline, f"{what}: {state}"
        time.sleep(0.1)


SUBMIT = """(function () {
  var form = document.getElementById('train-form');
  form.querySelector('[name=days]').value = '%(days)s';
  form.querySelector('[name=folds]').value = '%(folds)s';
  form.querySelector('[name=symbol]').value = '%(symbol)s';
  form.querySelector('button[type=submit]').click();
  return true;
})()"""


@pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="needs Chromium (Debian package: chromium; `make test` installs it)",
)
def test_the_page_trains_from_its_form_and_fits_desktop_and_phone_widths(
    base_url: str, api: httpx.Client, tmp_path: Path
) -> None:
    with chromium_page(tmp_path / "chromium") as page:
        cookie = {"name": SESSION_COOKIE, "value": session_value(TOKEN), "url": base_url}
        page.send("Network.setCookie", **cookie, httpOnly=True, sameSite="Strict")
        page.send("Page.navigate", url=base_url + "/ai")
        loaded = _wait(
            page,
            lambda s: s["cards"] == 2 and s["rows"] == 10 and s["models"] and s["ws"] == "open",
            "the page's partials and its WebSocket",
        )
        before = {j["id"] for j in loaded["jobs"]}
        page.evaluate(SUBMIT % PANEL_JOB)
        trained = _wait(
            page,
            lambda s: any(j["id"] not in before and j["status"] != "running" for j in s["jobs"]),
            "the job started from the form ending",
        )
        (job,) = [j for j in trained["jobs"] if j["id"] not in before]
        finished = api.get(f"/models/train/{job['id']}").json()
        refreshed = _wait(page, lambda s: s["models"] > loaded["models"], "the new model listed")
        page.send(
            "Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2,
            mobile=True,
        )  # fmt: skip
        phone = _wait(page, lambda s: s["cards"] == 2, "the page at phone width")
        problems = page.problems()

    assert loaded["overflow"] <= 0
    assert job["status"] == "done" and job["model"] == finished["model_id"]
    assert refreshed["models"] == loaded["models"] + 1
    assert phone["overflow"] <= 0
    assert problems == []


def test_a_strategy_without_ml_gets_a_clear_note_not_an_error(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with (
        sample_server(tmp_path_factory.mktemp("ai-sma"), TOKEN) as (url, _),
        httpx.Client(base_url=url, timeout=10.0) as client,
    ):
        client.cookies.set(SESSION_COOKIE, session_value(TOKEN))
        page = client.get("/ai")
        cards = client.get("/ui/ai/symbols")
        listing = client.get("/ui/ai/signals")

    assert page.status_code == cards.status_code == listing.status_code == 200
    assert 'id="no-ml"' in page.text and "sma_cross" in page.text
    assert cards.text.count("The strategy sma_cross takes no ML input") == 3
    assert cards.text.count('data-ml-state="off"') == 3
    assert "the strategy takes no ML input" in listing.text
