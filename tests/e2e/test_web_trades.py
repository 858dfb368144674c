"""The trade history page and the attribution API end to end: a real uvicorn server on the
shipped sample running the ``adaptive`` strategy in paper mode (real SQLite), read over HTTP as
the browser and an API client read them. (Trades opened through the API, attributed to ``api``
with no regime or model, are covered on real databases in
``tests/integration/test_attribution_storage.py``: here the strategy could add to such a
position at any bar.)"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from api.deps import SESSION_COOKIE, session_value
from domain.model import Trade
from domain.regime import Regime
from lootcapital.bootstrap import Container, bootstrap, build_app
from lootcapital.settings import Settings
from tests.e2e.html_elements import by_attr, elements, with_class
from tests.e2e.web_fixtures import live_server
from web.trades_views import CSV_COLUMNS, PER_PAGE

TOKEN = "trade-history-token-0123456789"
MIN_TRADES = 3
WAIT_S = 60.0
PARTIALS = ("/ui/trades/table", "/ui/trades/stats", "/ui/trades/attribution", "/ui/trades.csv")
DAY_MS = 86_400_000


def _wait(what: str, ready: Any) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (found := ready()):
        assert time.monotonic() < deadline, f"no {what} within {WAIT_S} s"
        time.sleep(0.05)
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Container]]:
    """The paper server, stopped once the strategy closed :data:`MIN_TRADES` trades."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("trades"),
        api_token=TOKEN,
        speed=10_000_000.0,
        autostart=False,
        strategy="adaptive",
    )
    container = bootstrap(settings)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        live_server(build_app(container)) as url,
        httpx.Client(base_url=url + "/api/v1", headers=headers, timeout=10.0) as api,
    ):
        api.post("/engine/start")
        _wait("trades", lambda: len(api.get("/trades").json()) >= MIN_TRADES)
        assert api.post("/engine/stop").json()["running"] is False
        yield url, container


@pytest.fixture
def browser(served: tuple[str, Container]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[0], timeout=10.0) as client:
        client.cookies.set(SESSION_COOKIE, session_value(TOKEN))
        yield client


@pytest.fixture
def api(served: tuple[str, Container]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=served[0] + "/api/v1", headers=headers, timeout=10.0) as client:
        yield client


@pytest.fixture
def stored(served: tuple[str, Container]) -> list[Trade]:
    """Every stored trade of the run, newest first, as the service reads them."""
    service, out, cursor = served[1].service, [], None
    while True:
        page = service.trades(limit=1000, cursor=cursor)
        out += page.items
        if (cursor := page.next_cursor) is None:
            return out


def _rows(html: str) -> list[dict[str, Any]]:
    return [e for e in elements(html) if "data-trade-id" in e["attrs"]]


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()


# -- access and layout ---------------------------------------------------------------------------


def test_the_page_without_a_session_shows_the_login_form(served: tuple[str, Container]) -> None:
    html = httpx.get(served[0] + "/trades", timeout=10).text

    assert 'action="/login"' in html and "trade-filters" not in html


@pytest.mark.parametrize("path", PARTIALS)
def test_the_partials_and_the_export_need_the_session(
    served: tuple[str, Container], path: str
) -> None:
    assert httpx.get(served[0] + path, timeout=10).status_code == 401


def test_the_page_has_its_filters_partials_and_a_link_from_every_page(
    browser: httpx.Client,
) -> None:
    html = browser.get("/trades").text
    found = by_attr(html, "name")

    assert 'href="/trades" aria-current="page"' in html
    assert {"symbol", "side", "exit_reason", "start", "end", "by"} <= set(found)
    assert by_attr(html, "formaction")["/ui/trades.csv"]["attrs"]["id"] == "export-csv"
    for partial in ("table", "stats", "attribution"):
        assert f'hx-get="/ui/trades/{partial}"' in html
    assert "/static/trades.js" in html and "/static/trades.css" in html
    assert 'name="viewport" content="width=device-width' in html
    for page in ("/", "/control", "/analysis", "/ai"):
        assert 'href="/trades"' in browser.get(page).text


# -- the table, its pages and its filters --------------------------------------------------------


def test_the_first_page_lists_the_newest_trades_and_the_pager_counts_them_all(
    browser: httpx.Client, stored: list[Trade]
) -> None:
    first = browser.get("/ui/trades/table").text
    rows = _rows(first)

    assert [r["attrs"]["data-trade-id"] for r in rows] == [t.id for t in stored[:PER_PAGE]]
    assert f"of {len(stored):,}" in first
    if len(stored) > PER_PAGE:
        second = _rows(browser.get("/ui/trades/table", params={"page": 2}).text)
        assert [r["attrs"]["data-trade-id"] for r in second] == [
            t.id for t in stored[PER_PAGE : 2 * PER_PAGE]
        ]


@pytest.mark.parametrize(
    "params",
    [
        {"symbol": "BTCUSDT"},
        {"side": "short"},
        {"exit_reason": "stop"},
        {"symbol": "ETHUSDT", "side": "long"},
    ],
)
def test_filters_select_the_matching_trades(
    browser: httpx.Client, stored: list[Trade], params: dict[str, str]
) -> None:
    def matches(t: Trade) -> bool:
        return (
            t.symbol == params.get("symbol", t.symbol)
            and t.direction.value == params.get("side", t.direction.value)
            and t.exit_reason.value == params.get("exit_reason", t.exit_reason.value)
        )

    html = browser.get("/ui/trades/table", params=params | {"page": 1}).text
    expected = [t.id for t in stored if matches(t)]

    assert [r["attrs"]["data-trade-id"] for r in _rows(html)] == expected[:PER_PAGE]


def test_a_date_range_keeps_the_trades_that_exited_on_those_days(
    browser: httpx.Client, stored: list[Trade]
) -> None:
    day = _day(stored[len(stored) // 2].exit_time)

    html = browser.get("/ui/trades/table", params={"start": day, "end": day}).text

    expected = [t.id for t in stored if _day(t.exit_time) == day]
    assert expected
    assert [r["attrs"]["data-trade-id"] for r in _rows(html)] == expected[:PER_PAGE]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"start": "10/10/2025"}, "start"), ({"side": "up"}, "side"),
     ({"start": "2025-10-10", "end": "2025-10-01"}, "end"), ({"exit_reason": "boredom"},
     "exit_reason")],
)  # fmt: skip
def test_a_bad_filter_is_refused_naming_it(
    browser: httpx.Client, params: dict[str, str], field: str
) -> None:
    response = browser.get("/ui/trades/table", params=params)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert 'id="filter-error"' in browser.get("/trades", params=params).text


# -- the CSV export ------------------------------------------------------------------------------


def test_the_csv_export_round_trips_every_trade_exactly(
    browser: httpx.Client, stored: list[Trade]
) -> None:
    response = browser.get("/ui/trades.csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))

    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [r["id"] for r in rows] == [t.id for t in stored]
    for row, t in zip(rows, stored, strict=True):
        assert (row["symbol"], row["side"], row["exit_reason"]) == (
            t.symbol, t.direction.value, t.exit_reason.value,
        )  # fmt: skip
        for name in ("qty", "entry_price", "exit_price", "pnl", "fees"):
            assert Decimal(row[name]) == getattr(t, name)
            assert row[name] == format(getattr(t, name), "f")  # as stored, not rounded
        assert (int(row["entry_time"]), int(row["exit_time"])) == (t.entry_time, t.exit_time)
        iso = datetime.fromisoformat(row["exit_time_utc"].replace("Z", "+00:00"))
        assert int(iso.timestamp() * 1000) == t.exit_time and row["currency"] == "USDT"


def test_the_csv_export_takes_the_filters(browser: httpx.Client, stored: list[Trade]) -> None:
    rows = list(csv.DictReader(io.StringIO(browser.get("/ui/trades.csv?side=long").text)))

    assert [r["id"] for r in rows] == [t.id for t in stored if t.direction.value == "long"]


# -- statistics, calendar and attribution in the panel -------------------------------------------


def test_the_statistics_add_up_the_stored_trades(
    browser: httpx.Client, stored: list[Trade]
) -> None:
    html = browser.get("/ui/trades/stats").text
    found = by_attr(html, "id")
    wins = sum(1 for t in stored if t.pnl > 0)
    pnl = sum((t.pnl for t in stored), Decimal(0))
    fees = sum((t.fees for t in stored), Decimal(0))

    assert found["stat-trades"]["text"] == f"{len(stored):,}"
    assert found["stat-win-rate"]["text"] == f"{Decimal(wins) / len(stored) * 100:,.2f}%"
    assert found["stat-pnl"]["text"] == f"{pnl:+,.2f}"
    assert found["stat-fees"]["text"] == f"{fees:,.2f}"
    assert found["stat-leverage"]["text"].endswith("×")
    assert "trade-charts-data" in found


def test_the_calendar_colours_each_day_with_the_pnl_of_the_trades_closed_then(
    browser: httpx.Client, stored: list[Trade]
) -> None:
    month = _day(stored[0].exit_time)[:7]

    html = browser.get("/ui/trades/stats", params={"month": month}).text
    days = [e for e in with_class(html, "day") if int(e["attrs"]["data-trades"])]

    expected: dict[str, Decimal] = {}
    for t in stored:
        if _day(t.exit_time).startswith(month):
            expected[_day(t.exit_time)] = expected.get(_day(t.exit_time), Decimal(0)) + t.pnl
    assert {d["attrs"]["data-date"]: Decimal(d["attrs"]["data-pnl"]) for d in days} == expected
    assert all(
        d["attrs"]["class"].split()[1].startswith("pos" if Decimal(d["attrs"]["data-pnl"]) > 0
                                                  else "neg")
        for d in days if Decimal(d["attrs"]["data-pnl"]) != 0
    )  # fmt: skip


def test_the_attribution_table_groups_the_trades_by_regime(
    browser: httpx.Client, stored: list[Trade]
) -> None:
    html = browser.get("/ui/trades/attribution", params={"by": "regime"}).text
    rows = [e for e in elements(html) if "data-key" in e["attrs"]]

    keys = {r["attrs"]["data-key"] for r in rows}
    assert keys <= {r.value for r in Regime} | {"none", "off"}
    assert keys & {r.value for r in Regime}  # the strategy's entries name their regime
    assert sum(int(r["attrs"]["data-trades"]) for r in rows) == len(stored)
    assert sum(Decimal(r["attrs"]["data-pnl"]) for r in rows) == sum(t.pnl for t in stored)
    assert "attribution-data" in by_attr(html, "id")


# -- the attribution API -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "by", ["strategy", "model", "symbol", "regime", "exit_reason", "hour", "weekday"]
)
def test_every_dimension_accounts_for_every_trade(
    api: httpx.Client, stored: list[Trade], by: str
) -> None:
    body = api.get("/analytics/attribution", params={"by": by}).json()
    groups = body["groups"]

    assert body["by"] == by and body["trades"] == len(stored)
    assert sum(g["trades"] for g in groups) == len(stored)
    assert sum(Decimal(g["pnl"]) for g in groups) == Decimal(body["pnl"])
    assert Decimal(body["pnl"]) == sum(t.pnl for t in stored)
    assert all(g["profit_factor"] is None or g["profit_factor"] >= 0 for g in groups)
    assert all(g["profit_factor"] is None for g in groups if g["losses"] == 0)
    if by == "hour":
        assert [g["key"] for g in groups] == [f"{h:02d}" for h in range(24)]


def test_every_trade_is_the_strategys_and_its_entries_name_their_regime(
    api: httpx.Client, stored: list[Trade]
) -> None:
    strategy = api.get("/analytics/attribution", params={"by": "strategy"}).json()["groups"]
    regime = api.get("/analytics/attribution", params={"by": "regime"}).json()["groups"]
    model = api.get("/analytics/attribution", params={"by": "model"}).json()["groups"]

    assert [(g["key"], g["trades"]) for g in strategy] == [("adaptive", len(stored))]
    assert {g["key"] for g in regime} <= {r.value for r in Regime}
    assert [(g["key"], g["trades"]) for g in model] == [("none", len(stored))]  # ML is off


def test_attribution_takes_the_trade_filters(api: httpx.Client, stored: list[Trade]) -> None:
    body = api.get(
        "/analytics/attribution", params={"by": "symbol", "symbol": "BTCUSDT", "side": "long"}
    ).json()

    expected = [t for t in stored if t.symbol == "BTCUSDT" and t.direction.value == "long"]
    assert body["trades"] == len(expected)
    assert [g["key"] for g in body["groups"]] == (["BTCUSDT"] if expected else [])


@pytest.mark.parametrize(
    ("params", "field"),
    [({"by": "moon"}, "by"), ({}, "by"), ({"by": "hour", "start": 5, "end": 1}, "end"),
     ({"by": "hour", "side": "buy"}, "side"), ({"by": "hour", "bye": "x"}, "bye")],
)  # fmt: skip
def test_a_bad_attribution_request_is_a_422_naming_the_field(
    api: httpx.Client, params: dict[str, Any], field: str
) -> None:
    response = api.get("/analytics/attribution", params=params)

    assert response.status_code == 422
    assert response.json()["field"] == field


def test_attribution_needs_the_token(served: tuple[str, Container]) -> None:
    url = served[0] + "/api/v1/analytics/attribution?by=hour"

    assert httpx.get(url, timeout=10).status_code == 401
