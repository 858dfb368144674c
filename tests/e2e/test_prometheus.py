"""The shipped monitoring (deploy/) against a real Prometheus: two deployments, each Debian's
``prometheus`` scraping one real server every second with the shipped alert rules, answer every
PromQL expression of the Grafana dashboard and of the rules through their HTTP API.

- The replay target: a uvicorn server of the app replaying the shipped sample of BTCUSDT fast
  with the default ``adaptive`` strategy (its first orders come after its ~8.5 days of warm-up
  bars, within seconds): the account, orders, engine, API and strategy panels.
- The live target: the real ``lootcapital serve --mode live --venue binance-usdm --demo`` in a
  subprocess against the fake Binance USDⓈ-M on loopback, trading ``sma_cross`` on 40 streamed
  bars (orders, fills, reconciliation, signed requests), its user-data stream dropped once (a
  reconnect): the live-venue panels.

- Every dashboard query must return data from one of the two (most from both).
- An alert rule's condition is normally false (no drawdown beyond 10 %, no 5xx), so its result
  is empty on a healthy server. Its left-hand side (the expression without its last top-level
  comparison and threshold) must return data instead, from one of the two: every rule reads
  series that exist. Each rule must also load and evaluate without error in both.
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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import yaml

from adapters.clock import SimulatedClock
from lootcapital.bootstrap import bootstrap, build_app
from lootcapital.settings import Settings
from tests.e2e.live_serve_helpers import Server, serving
from tests.e2e.web_fixtures import live_server
from tests.venues.binance_fake import FakeBinanceUsdm
from tests.venues.binance_fake_private import API_KEY, API_SECRET

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "lootcapital.json"
DATASOURCE = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
TOKEN = "test-token-for-prometheus"
LIVE_VENUE_ROW = "Live venue"
LIVE_VENUE_NOTE = "Appears once a live venue runs"
"""What the description of each panel of the :data:`LIVE_VENUE_ROW` says."""

M5 = 300_000
T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC: the live run's first bar
LIVE_SYMBOLS = ["BTCUSDT", "ETHUSDT"]
LIVE_BARS = 40  # sma_cross(3, 8) crosses in them: orders and fills at the venue
LIVE_ARGS = ["serve", "--mode", "live", "--venue", "binance-usdm", "--demo",
             "--symbols", *LIVE_SYMBOLS]  # fmt: skip
LIVE_ENV = {
    "LOOTCAPITAL_STRATEGY_PARAMS": json.dumps({"fast": 3, "slow": 8}),
    "LOOTCAPITAL_HISTORY_DAYS": "0.5",
    "LOOTCAPITAL_VENUES__BINANCE_USDM__API_KEY": API_KEY,
    "LOOTCAPITAL_VENUES__BINANCE_USDM__API_SECRET": API_SECRET,
    "LOOTCAPITAL_VENUES__BINANCE_USDM__POLL_S": "0.05",
}

DATA_TIMEOUT_S = 35.0  # replay: first fills in 3 to 8 s (by the machine's load), 2 scrapes more
READY_TIMEOUT_S = 20.0
COMPARISON = re.compile(r"==|!=|>=|<=|>|<")
REPLAY, LIVE = "replay", "live"
FINAL = {"filled", "canceled", "rejected", "expired"}


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a dashboard panel (``row``: the title of the row it is in)."""

    row: str
    panel: str
    description: str
    expr: str


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus (``client`` has its base URL)."""

    client: httpx.Client

    def query(self, expr: str) -> dict:
        """The ``/api/v1/query`` answer to ``expr`` (evaluated now)."""
        return self.client.get("/api/v1/query", params={"query": expr}).json()

    def result(self, expr: str) -> list[dict]:
        """The series ``expr`` returns now (none when it fails)."""
        return self.query(expr).get("data", {}).get("result", [])

    def rules(self) -> list[dict]:
        """The alerting rules Prometheus loaded, with their health."""
        groups = self.client.get("/api/v1/rules").json()["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]


@dataclass
class Monitoring:
    """The Prometheus of each target by name (:data:`REPLAY`, :data:`LIVE`), and
    ``results``: each expression's series by target, once every expression had data from one
    of them or :data:`DATA_TIMEOUT_S` passed."""

    servers: dict[str, Prometheus]
    results: dict[str, dict[str, list[dict]]] = field(default_factory=dict)

    def answered_by(self, expr: str) -> set[str]:
        """The targets whose Prometheus returned data for ``expr``."""
        return {name for name, result in self.results[expr].items() if result}


def require(tool: Path) -> None:
    """Skip without ``tool`` (Debian's prometheus package), or fail under ``CI=true``."""
    if tool.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{tool} is missing: install Debian's prometheus package (make test does)")
    pytest.skip(f"{tool} is missing: Debian's prometheus package (make test installs it)")


def dashboard_queries() -> list[Query]:
    """Every target expression of every panel of the dashboard, in order (a row's panels
    included, collapsed or not)."""
    found: list[Query] = []
    row = ""
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
        for p in [panel, *panel.get("panels", [])]:
            found.extend(
                Query(row, p["title"], p.get("description", ""), t["expr"])
                for t in p.get("targets", [])
            )
    return found


def alert_rules() -> dict[str, str]:
    """The shipped alert rules' expressions by alert name."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def left_of_comparison(expr: str) -> str:
    """``expr`` up to its last comparison operator outside parentheses, braces, brackets and
    quotes (an alert's condition without its threshold).

    Raises:
        ValueError: ``expr`` has no such comparison.
    """
    depth, quote, last = 0, "", -1
    i = 0
    while i < len(expr):
        c = expr[i]
        if quote:
            quote = "" if c == quote else quote
            i += 2 if c == "\\" else 1
            continue
        if c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and (op := COMPARISON.match(expr, i)):
            last = i
            i += len(op.group())
            continue
        i += 1
    if last < 0:
        raise ValueError(f"no top-level comparison in {expr!r}")
    return expr[:last].strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, timeout=60)


@contextmanager
def prometheus(target: str, tmp: Path) -> Iterator[Prometheus]:
    """Prometheus scraping ``target`` (host:port) every second as the job of the shipped
    config, with the shipped rules evaluated every second and its storage in ``tmp``, once it
    is ready; terminated on the way out."""
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
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Prometheus did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=10) as client:
            yield Prometheus(client)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(done: Callable[[], bool], what: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll ``done`` every 0.1 s; fail with ``what`` after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        time.sleep(0.1)


def trade_live(server: Server, fake: FakeBinanceUsdm, prom: Prometheus) -> None:
    """Stream the live run's bars (its orders filled at the fake), wait until its orders are
    final and ``prom`` has scraped its user-data stream's reopenings at 0, then drop that
    stream once and wait until ``prom`` has scraped the reopening."""
    server.play(fake, LIVE_SYMBOLS, T0 + LIVE_BARS * M5 + 1, LIVE_BARS)

    def settled() -> bool:
        orders = server.client.get("/orders", params={"limit": 1000}).json()
        return bool(orders) and {o["status"] for o in orders} <= FINAL

    wait_until(settled, "the live run's orders placed and final")
    reopened = 'lootcapital_ws_reconnects_total{stream="user-data"}'
    wait_until(lambda: bool(prom.result(f"{reopened} == 0")), "no reopening scraped")
    fake.drop_user_streams()
    wait_until(lambda: bool(prom.result(f"{reopened} > 0")), "the reopening scraped")


def wait_for_data(servers: dict[str, Prometheus], exprs: list[str]) -> dict:
    """Each expression's series by target, once every one has data from one target or
    as they stand when :data:`DATA_TIMEOUT_S` has passed."""
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while True:
        results = {e: {name: p.result(e) for name, p in servers.items()} for e in exprs}
        if all(any(by.values()) for by in results.values()) or time.monotonic() > deadline:
            return results
        time.sleep(1.0)


@pytest.fixture(scope="module")
def monitoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitoring]:
    """A Prometheus scraping a paper server replaying BTCUSDT at 60 000x (``adaptive``: one
    symbol, so that the warm-up ends three times sooner) and one scraping a live run at the
    fake venue (:func:`trade_live`); both servers run at once."""
    require(PROMETHEUS)
    settings = Settings(data_dir=tmp_path_factory.mktemp("prom-app"), api_token=TOKEN,
                        speed=60_000.0, symbols=["BTCUSDT"])  # fmt: skip
    clock = SimulatedClock(T0 + 60_000)
    with ExitStack() as stack:
        fake = stack.enter_context(FakeBinanceUsdm(clock=clock, symbols=tuple(LIVE_SYMBOLS)))
        fake.account.wallet = Decimal(100_000)  # more than the run's capital (initial_cash)
        server = stack.enter_context(
            serving(tmp_path_factory.mktemp("prom-live"), fake, LIVE_ARGS, LIVE_ENV)
        )
        app_url = stack.enter_context(live_server(build_app(bootstrap(settings))))
        servers = {
            REPLAY: stack.enter_context(
                prometheus(app_url.removeprefix("http://"), tmp_path_factory.mktemp("prom-r"))
            ),
            LIVE: stack.enter_context(
                prometheus(f"127.0.0.1:{server.port}", tmp_path_factory.mktemp("prom-l"))
            ),
        }
        trade_live(server, fake, servers[LIVE])
        exprs = [q.expr for q in dashboard_queries()]
        exprs += [left_of_comparison(e) for e in alert_rules().values()]
        yield Monitoring(servers, wait_for_data(servers, exprs))


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


@pytest.mark.parametrize(
    ("expr", "left"),
    [
        ('up{job="lootcapital"} == 0', 'up{job="lootcapital"}'),
        ("sum by (a) (increase(x[15m])) > 0", "sum by (a) (increase(x[15m]))"),
        (
            '(sum(x{s=~"5.."}) or vector(0)) / sum(x) >= 0.05',
            '(sum(x{s=~"5.."}) or vector(0)) / sum(x)',
        ),
        ("r == 1 and (time() - t) > 3 * b", "r == 1 and (time() - t)"),
        ('x{a!="b>c"} != 1', 'x{a!="b>c"}'),
    ],
)
def test_a_condition_is_cut_at_its_last_top_level_comparison(expr: str, left: str) -> None:
    assert left_of_comparison(expr) == left


def test_a_condition_without_a_top_level_comparison_is_refused() -> None:
    with pytest.raises(ValueError, match="no top-level comparison"):
        left_of_comparison('absent(up{job=~"a|b"} == 1)')


def test_every_dashboard_query_returns_data(monitoring: Monitoring) -> None:
    queries = dashboard_queries()

    empty = [f"{q.panel}: {q.expr}" for q in queries if not monitoring.answered_by(q.expr)]

    assert len(queries) > 35
    assert empty == []


def test_the_live_venue_panels_have_data_from_the_live_run_and_say_when_they_appear(
    monitoring: Monitoring,
) -> None:
    live = [q for q in dashboard_queries() if q.row == LIVE_VENUE_ROW]

    missing = [f"{q.panel}: {q.expr}" for q in live if LIVE not in monitoring.answered_by(q.expr)]
    replayed = [q.panel for q in live if REPLAY in monitoring.answered_by(q.expr)]
    silent = [q.panel for q in live if LIVE_VENUE_NOTE not in q.description]

    assert {q.panel for q in live} >= {"Reconciliation drift", "Venue connected",
                                       "Stream reconnects", "Order latency by venue"}  # fmt: skip
    assert missing == []
    assert replayed == []
    assert silent == []


def test_the_live_runs_panels_show_its_connection_and_its_reconnect(
    monitoring: Monitoring,
) -> None:
    live = monitoring.servers[LIVE]
    reconnects = "sum by (venue, stream) (increase(lootcapital_ws_reconnects_total[1h]))"
    drift = "sum by (venue, kind) (increase(lootcapital_reconciliation_drift_total[1h]))"

    connected = {s["metric"]["venue"]: s["value"][1] for s in live.result(
        "lootcapital_venue_connected")}  # fmt: skip
    reopened = {s["metric"]["stream"]: float(s["value"][1]) for s in live.result(reconnects)}
    drifted = {s["metric"]["kind"]: float(s["value"][1]) for s in live.result(drift)}

    assert connected == {"binance-usdm": "1"}
    assert reopened["user-data"] > 0
    assert {f"{s.lower()}@kline_5m" for s in LIVE_SYMBOLS} <= {s.lower() for s in reopened}
    assert drifted == dict.fromkeys(drifted, 0.0) and "missed_fill" in drifted


def test_every_alert_rule_loads_and_evaluates_without_error(monitoring: Monitoring) -> None:
    count = re.search(r"SUCCESS: (\d+) rules found", promtool("check", "rules", str(ALERTS)).stdout)
    for prom in monitoring.servers.values():
        deadline = time.monotonic() + READY_TIMEOUT_S
        while (rules := prom.rules()) and any(r["health"] == "unknown" for r in rules):
            assert time.monotonic() < deadline, "rules not evaluated"
            time.sleep(0.5)

        assert count is not None and len(rules) == int(count.group(1))
        assert {r["name"]: (r["health"], r.get("lastError", "")) for r in rules} == {
            r["name"]: ("ok", "") for r in rules
        }


def test_every_alert_rules_condition_without_its_threshold_reads_series_that_exist(
    monitoring: Monitoring,
) -> None:
    rules = alert_rules()
    sides = {name: left_of_comparison(expr) for name, expr in rules.items()}

    empty = [f"{name}: {side}" for name, side in sides.items() if not monitoring.answered_by(side)]

    assert {"LootCapitalDown", "ReconciliationDrift", "VenueDisconnected"} <= set(rules)
    assert empty == []
