"""The shipped monitoring (deploy/) against a real Prometheus: Debian's ``prometheus`` scrapes a
real uvicorn server of the app every second while it replays the shipped sample of BTCUSDT fast
with the default ``adaptive`` strategy (its first orders come after its ~8.5 days of warm-up
bars, within seconds), evaluates the shipped alert rules, and answers every PromQL expression of
the Grafana dashboard through its HTTP API.

- Every dashboard query must return data, except those of the panels that read a metric only a
  live venue exports (:data:`LIVE_VENUE_METRICS`): those must parse, and their panel's
  description must say that they appear once a live venue runs.
- An alert rule's condition is normally false (no drawdown beyond 10 %, no 5xx), so its result
  is empty on a healthy server. Each rule must instead load and evaluate without error in
  Prometheus, its expression must parse, and every metric it reads (other than the live-venue
  ones) must be scraped, i.e. have series in Prometheus.
- ``promtool check rules`` and ``promtool check config`` accept the shipped files.

Skipped when ``/usr/bin/prometheus`` is missing (``make test`` installs it), except under
``CI=true``, where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from lootcapital.bootstrap import bootstrap, build_app
from lootcapital.settings import Settings
from tests.e2e.web_fixtures import live_server

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "lootcapital.json"
DATASOURCE = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
TOKEN = "test-token-for-prometheus"

LIVE_VENUE_METRICS = frozenset(
    {
        "lootcapital_reconciliation_drift_total",
        "lootcapital_feed_stale",
        "lootcapital_venue_clock_offset_seconds",
        "lootcapital_venue_requests_total",
        "lootcapital_venue_weight_used",
        "lootcapital_venue_weight_limit",
        "lootcapital_ws_reconnects_total",
    }
)
"""Metrics only a live venue's adapters export: the panels and rules reading them are parsed but
not required to return data here."""
LIVE_VENUE_NOTE = "Appears once a live venue runs"
"""What the description of a panel reading :data:`LIVE_VENUE_METRICS` says."""

DATA_TIMEOUT_S = 35.0  # first fills come in 3 to 8 s (by the machine's load), 2 scrapes more
READY_TIMEOUT_S = 20.0
METRIC_NAME = re.compile(r"\b(up|lootcapital_[a-z0-9_]+)\b")


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a dashboard panel."""

    panel: str
    description: str
    expr: str

    @property
    def live_venue(self) -> bool:
        return bool(metric_names(self.expr) & LIVE_VENUE_METRICS)


@dataclass
class Monitoring:
    """A running Prometheus scraping the app (``client`` has its base URL), and the dashboard
    queries' ``results`` once every non-live-venue query returned data or
    :data:`DATA_TIMEOUT_S` passed."""

    client: httpx.Client
    results: dict[str, list] = field(default_factory=dict)

    def query(self, expr: str) -> dict:
        """The ``/api/v1/query`` answer to ``expr`` (evaluated now)."""
        return self.client.get("/api/v1/query", params={"query": expr}).json()

    def rules(self) -> list[dict]:
        """The alerting rules Prometheus loaded, with their health."""
        groups = self.client.get("/api/v1/rules").json()["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]


def require(tool: Path) -> None:
    """Skip without ``tool`` (Debian's prometheus package), or fail under ``CI=true``."""
    if tool.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{tool} is missing: install Debian's prometheus package (make test does)")
    pytest.skip(f"{tool} is missing: Debian's prometheus package (make test installs it)")


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` reads (label values in quotes left out)."""
    return set(METRIC_NAME.findall(re.sub(r'"[^"]*"', '""', expr)))


def dashboard_queries() -> list[Query]:
    """Every target expression of every panel of the dashboard (rows' panels included)."""
    found: list[Query] = []

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                found.append(Query(panel["title"], panel.get("description", ""), target["expr"]))
            walk(panel.get("panels", []))

    walk(json.loads(DASHBOARD.read_text())["panels"])
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, timeout=60)


def start_prometheus(target: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start Prometheus scraping ``target`` (host:port) every second as the job of the shipped
    config, with the shipped rules evaluated every second and its storage in ``tmp``; returns
    the process and its URL once it is ready."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": "lootcapital", "static_configs": [{"targets": [target]}]}],
    }
    (tmp / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    url = f"http://127.0.0.1:{free_port()}"
    log = tmp / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address={url.removeprefix('http://')}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"Prometheus did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def wait_for_data(monitoring: Monitoring, queries: list[Query]) -> dict[str, list]:
    """Each query's result, once every one not reading a live-venue metric has data, or as
    they stand when :data:`DATA_TIMEOUT_S` has passed."""
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while True:
        results = {
            q.expr: monitoring.query(q.expr).get("data", {}).get("result", []) for q in queries
        }
        if all(results[q.expr] for q in queries if not q.live_venue):
            return results
        if time.monotonic() > deadline:
            return results
        time.sleep(1.0)


@pytest.fixture(scope="module")
def monitoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitoring]:
    """Prometheus scraping a paper server replaying BTCUSDT at 60 000x (``adaptive``): one
    symbol, so that the warm-up ends three times sooner."""
    require(PROMETHEUS)
    settings = Settings(data_dir=tmp_path_factory.mktemp("prom-app"), api_token=TOKEN,
                        speed=60_000.0, symbols=["BTCUSDT"])  # fmt: skip
    with live_server(build_app(bootstrap(settings))) as app_url:
        process, url = start_prometheus(
            app_url.removeprefix("http://"), tmp_path_factory.mktemp("prometheus")
        )
        try:
            with httpx.Client(base_url=url, timeout=10) as client:
                monitoring = Monitoring(client)
                monitoring.results = wait_for_data(monitoring, dashboard_queries())
                yield monitoring
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_promtool_accepts_the_alert_rules() -> None:
    require(PROMTOOL)

    checked = promtool("check", "rules", str(ALERTS))

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_accepts_the_prometheus_config_and_its_rule_files() -> None:
    require(PROMTOOL)

    checked = promtool("check", "config", str(CONFIG))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 rule files found" in checked.stdout


def test_the_dashboard_reads_the_provisioned_datasource() -> None:
    uid = re.search(r"^\s*uid:\s*(\S+)", DATASOURCE.read_text(), re.MULTILINE)
    dashboard = DASHBOARD.read_text()

    assert uid is not None
    assert set(re.findall(r'"uid": "([^"]+)"', dashboard)) == {uid.group(1), "lootcapital"}


def test_every_dashboard_query_returns_data(monitoring: Monitoring) -> None:
    queries = [q for q in dashboard_queries() if not q.live_venue]

    empty = [f"{q.panel}: {q.expr}" for q in queries if not monitoring.results[q.expr]]

    assert len(queries) > 25
    assert empty == []


def test_live_venue_panels_say_so_and_their_queries_parse(monitoring: Monitoring) -> None:
    queries = dashboard_queries()
    live = [q for q in queries if q.live_venue]

    answers = {q.expr: monitoring.query(q.expr) for q in live}

    assert {q.panel for q in live} == {q.panel for q in queries if LIVE_VENUE_NOTE in q.description}
    assert {name for q in live for name in metric_names(q.expr)} >= LIVE_VENUE_METRICS
    assert {expr: a["status"] for expr, a in answers.items()} == dict.fromkeys(answers, "success")


def test_every_alert_rule_loads_and_evaluates_without_error(monitoring: Monitoring) -> None:
    count = re.search(r"SUCCESS: (\d+) rules found", promtool("check", "rules", str(ALERTS)).stdout)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while (rules := monitoring.rules()) and any(r["health"] == "unknown" for r in rules):
        assert time.monotonic() < deadline, "rules not evaluated"
        time.sleep(0.5)

    assert count is not None and len(rules) == int(count.group(1))
    assert {r["name"]: (r["health"], r.get("lastError", "")) for r in rules} == {
        r["name"]: ("ok", "") for r in rules
    }


def test_every_alert_expression_parses_and_the_metrics_it_reads_are_scraped(
    monitoring: Monitoring,
) -> None:
    rules = monitoring.rules()
    read = {name for r in rules for name in metric_names(r["query"])} - LIVE_VENUE_METRICS

    parsed = {r["name"]: monitoring.query(r["query"])["status"] for r in rules}
    missing = sorted(name for name in read if not monitoring.query(name)["data"]["result"])

    assert parsed == dict.fromkeys(parsed, "success")
    assert {"up", "lootcapital_engine_running", "lootcapital_drawdown_ratio"} <= read
    assert missing == []
