"""The control centre of the web panel end to end: a real uvicorn server replaying the sample
with ``sma_cross`` (positions within a second), driven over HTTP the way the browser drives it
(form login, HTMX partials and form posts, SSE), checked against the REST API that bots use."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.deps import SESSION_COOKIE, session_value
from domain.futures import PositionMargin
from domain.model import Position
from service_layer.trading import PositionView
from tests.e2e.web_fixtures import sample_server
from web.formatting import money
from web.views import CONTROL_PANELS, render

TOKEN = "e2e-control-centre-token-0123"
WAIT_S = 15.0
PAGE_BUDGET_S = 0.3

CONTROL_ROUTES = [
    ("GET", "/ui/risk"),
    ("GET", "/ui/balance"),
    ("GET", "/ui/alerts"),
    ("GET", "/ui/limits"),
    ("POST", "/ui/limits"),
    ("GET", "/ui/leverage"),
    ("POST", "/ui/leverage/BTCUSDT"),
    ("POST", "/ui/risk/halt"),
    ("POST", "/ui/risk/resume"),
    ("GET", "/ui/close-all"),
    ("GET", "/ui/close-all/confirm"),
    ("POST", "/ui/close-all"),
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A paper server on the sample at 20 bar times a second (started at once)."""
    data_dir: Path = tmp_path_factory.mktemp("control")
    with sample_server(data_dir, TOKEN) as (url, _):
        yield url


@pytest.fixture
def api(base_url: str) -> Iterator[httpx.Client]:
    """A REST API client with the bearer token, as a bot is."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base_url + "/api/v1", headers=headers, timeout=10.0) as client:
        yield client


@pytest.fixture
def browser(base_url: str, api: httpx.Client) -> Iterator[httpx.Client]:
    """A client logged in through the form, as a browser is; the engine is running when the
    test starts, and trading is resumed after it."""
    api.post("/engine/start")  # 409 when it runs already
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        response = client.post("/login", data={"token": TOKEN})
        assert response.status_code == 303
        client.cookies.set(SESSION_COOKIE, response.cookies[SESSION_COOKIE])
        yield client
    api.post("/risk/resume")


def wait_for(read: Callable[[], Any], limit_s: float = WAIT_S) -> Any:
    """The first truthy ``read()`` within ``limit_s`` (fails after)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = read()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {limit_s} s")


def open_positions(api: httpx.Client) -> list[dict[str, Any]]:
    """The open positions once there is one (the strategy opens them as the replay runs)."""
    positions: list[dict[str, Any]] = wait_for(lambda: api.get("/positions").json())
    return positions


class FormReader(HTMLParser):
    """What a browser submits for the form ``form_id``: text and hidden inputs, checked boxes
    and each select's selected option."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.select: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        elif not self.inside:
            return
        elif tag == "input" and "name" in a and (a.get("type") != "checkbox" or "checked" in a):
            self.fields[str(a["name"])] = a.get("value") or ""
        elif tag == "select":
            self.select = a.get("name")
        elif tag == "option" and self.select and "selected" in a:
            self.fields[self.select] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None


def limits_form(browser: httpx.Client) -> dict[str, str]:
    """The stop-rules form as the browser would post it unchanged."""
    reader = FormReader("limits-form")
    reader.feed(browser.get("/ui/limits").text)
    assert "max_open_positions.limit" in reader.fields
    return reader.fields


def field_error(html: str, field: str) -> str | None:
    """The error shown next to ``field``, if any."""
    match = re.search(rf'class="field-error"[^>]*data-field="{re.escape(field)}">([^<]*)<', html)
    return match.group(1) if match else None


def account_state(html: str) -> str:
    match = re.search(r'data-account-state="(\w+)"', html)
    assert match, "no trading state in the answer"
    return match.group(1)


def position_row(html: str, symbol: str) -> str:
    match = re.search(rf'<tr data-symbol="{symbol}">.*?</tr>', html, re.S)
    assert match, f"no row for {symbol} in the positions table"
    return match.group(0)


# -- the page -----------------------------------------------------------------------------------


def test_control_centre_has_every_section_and_its_own_live_stream(browser: httpx.Client) -> None:
    response = browser.get("/control")

    assert response.status_code == 200
    page = response.text
    assert 'sse-connect="/ui/stream?page=control"' in page
    for name in CONTROL_PANELS:
        assert f'hx-get="/ui/{name}"' in page and f'sse-swap="{name}"' in page
    assert 'hx-get="/ui/limits"' in page and 'hx-get="/ui/leverage"' in page
    assert 'hx-post="/ui/risk/halt"' in page and 'hx-post="/ui/risk/resume"' in page
    assert 'hx-get="/ui/close-all/confirm"' in page
    assert 'hx-post="/ui/engine/start"' in page and 'hx-post="/ui/engine/stop"' in page
    assert '<a href="/control" aria-current="page">' in page
    assert '<a href="/control"' in browser.get("/").text  # linked from the dashboard


def test_control_centre_without_a_session_shows_the_login_form(base_url: str) -> None:
    response = httpx.get(base_url + "/control")

    assert response.status_code == 200
    assert 'action="/login"' in response.text
    assert "sse-connect" not in response.text


@pytest.mark.parametrize(("method", "path"), CONTROL_ROUTES)
def test_control_routes_refuse_requests_without_the_session_cookie(
    base_url: str, method: str, path: str
) -> None:
    response = httpx.request(method, base_url + path)

    assert response.status_code == 401


def test_every_part_of_the_control_centre_renders_in_under_300_ms(
    browser: httpx.Client, api: httpx.Client
) -> None:
    open_positions(api)  # the tables have rows
    paths = ["/control", "/ui/status", "/ui/positions", "/ui/close-all/confirm"]
    paths += [f"/ui/{name}" for name in ("risk", "balance", "alerts", "limits", "leverage")]

    # Best of three: the budget is for rendering, not for a pause of a loaded test machine.
    best = {p: min(browser.get(p).elapsed.total_seconds() for _ in range(3)) for p in paths}

    assert all(browser.get(p).status_code == 200 for p in paths)
    slow = {p: s for p, s in best.items() if s >= PAGE_BUDGET_S}
    assert not slow, f"over {PAGE_BUDGET_S} s: {slow}"


def test_the_control_stream_sends_the_control_panels_and_no_chart_points(base_url: str) -> None:
    cookies = {SESSION_COOKIE: session_value(TOKEN)}
    seen: set[str] = set()
    with (
        httpx.Client(base_url=base_url, cookies=cookies, timeout=WAIT_S) as sse,
        sse.stream("GET", "/ui/stream", params={"page": "control"}) as response,
    ):
        assert response.status_code == 200
        deadline = time.monotonic() + WAIT_S
        for line in response.iter_lines():
            if line.startswith("event:"):
                seen.add(line.removeprefix("event:").strip())
            if seen >= set(CONTROL_PANELS) or time.monotonic() > deadline:
                break

    assert seen == set(CONTROL_PANELS)


# -- trading state: halt and resume -------------------------------------------------------------


def test_halt_shows_the_account_halted_with_the_reason_and_resume_makes_it_active(
    browser: httpx.Client, api: httpx.Client
) -> None:
    halted = browser.post("/ui/risk/halt", data={"reason": "panel drill: CPI at 14:30"})
    state_then = api.get("/risk").json()["status"]
    alerts = browser.get("/ui/alerts").text
    resumed = browser.post("/ui/risk/resume")
    state_now = api.get("/risk").json()["status"]

    assert halted.status_code == 200
    assert account_state(halted.text) == "halted"  # the trading state, swapped out of band
    assert 'data-breaker="manual"' in halted.text
    assert "panel drill: CPI at 14:30" in halted.text
    assert "Trading halted: panel drill: CPI at 14:30" in halted.text
    assert state_then["account_state"] == "halted"
    assert "panel drill: CPI at 14:30" in state_then["holds"][0]["reason"]
    newest = re.search(r'<tr data-kind="state" data-scope="account">.*?</tr>', alerts, re.S)
    assert newest, "the halt is not in the alert log"
    assert "halted" in newest.group(0) and "CPI at 14:30" in newest.group(0)
    assert "<td>panel</td>" in newest.group(0)  # who: stored as made in the panel
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", newest.group(0))
    assert resumed.status_code == 200
    assert account_state(resumed.text) == "active"
    assert "Trading resumed" in resumed.text
    assert state_now["account_state"] == "active"


def test_a_halt_without_a_reason_shows_the_error_next_to_the_reason_and_halts_nothing(
    browser: httpx.Client, api: httpx.Client
) -> None:
    response = browser.post("/ui/risk/halt", data={"reason": "   "})

    assert response.status_code == 200
    assert field_error(response.text, "reason") == "String should have at least 1 character"
    assert 'aria-invalid="true"' in response.text
    assert api.get("/risk").json()["status"]["account_state"] == "active"


# -- close all ----------------------------------------------------------------------------------


def test_close_all_asks_to_confirm_then_closes_every_position(
    browser: httpx.Client, api: httpx.Client
) -> None:
    open_positions(api)
    browser.post("/ui/risk/halt", data={"reason": "flatten the book"})  # positions stay put
    held = {p["symbol"] for p in api.get("/positions").json()}
    start = browser.get("/ui/close-all").text
    confirm = browser.get("/ui/close-all/confirm").text
    unconfirmed = browser.post("/ui/close-all")
    still_open = api.get("/positions").json()

    done = browser.post("/ui/close-all", data={"confirm": "true"})
    flat = wait_for(lambda: api.get("/positions").json() == [])

    assert 'data-step="start"' in start and 'hx-get="/ui/close-all/confirm"' in start
    assert 'data-step="confirm"' in confirm
    assert '<input type="hidden" name="confirm" value="true">' in confirm
    assert all(f'<span class="sym">{s}</span>' in confirm for s in held)
    assert 'data-step="confirm"' in unconfirmed.text  # asked again, nothing sent
    assert (
        field_error(unconfirmed.text, "confirm") == "confirm must be true to close every position"
    )
    assert {p["symbol"] for p in still_open} == held
    assert done.status_code == 200
    assert 'data-step="done"' in done.text
    ids = re.findall(r'<tr data-order-id="([^"]+)">', done.text)
    orders = [api.get(f"/orders/{i}").json() for i in ids]
    assert {o["symbol"] for o in orders} == held
    assert all(o["reduce_only"] and o["type"] == "market" for o in orders)
    assert flat
    assert "No open positions." in browser.get("/ui/positions").text
    assert 'data-kind="close_all"' in browser.get("/ui/alerts").text


# -- stop rules ---------------------------------------------------------------------------------


def test_editing_max_open_positions_saves_only_that_and_the_api_shows_it(
    browser: httpx.Client, api: httpx.Client
) -> None:
    before = api.get("/risk").json()["limits"]
    form = limits_form(browser)
    form["max_open_positions.enabled"] = "true"
    form["max_open_positions.limit"] = "2"

    saved = browser.post("/ui/limits", data=form)
    after = api.get("/risk").json()["limits"]
    shown = limits_form(browser)
    api.put("/risk/limits", json={"max_open_positions": before["max_open_positions"]})

    assert saved.status_code == 200
    assert "Saved: max_open_positions.enabled, max_open_positions.limit." in saved.text
    assert 'data-breaker="max_open_positions"' in saved.text  # the breakers, out of band
    assert after["max_open_positions"] == {"enabled": True, "limit": 2}
    assert after["changed_by"] == "panel"
    assert {k: v for k, v in after.items() if k not in ("max_open_positions", "changed_by",
            "changed_time")} == {k: v for k, v in before.items() if k not in (
            "max_open_positions", "changed_by", "changed_time")}  # fmt: skip
    assert shown["max_open_positions.limit"] == "2"
    assert shown["max_open_positions.enabled"] == "true"


def test_posting_the_form_unchanged_saves_nothing(browser: httpx.Client, api: httpx.Client) -> None:
    before = api.get("/risk").json()["limits"]

    response = browser.post("/ui/limits", data=limits_form(browser))

    assert "Nothing changed." in response.text
    assert api.get("/risk").json()["limits"] == before


@pytest.mark.parametrize(
    ("typed", "field", "message"),
    [
        ({"daily_loss.limit": "1.5"}, "daily_loss.limit", "Input should be less than 1"),
        ({"max_open_positions.limit": "many"}, "max_open_positions.limit", "valid integer"),
        ({"consecutive_losses.count": "0"}, "consecutive_losses.count", "greater than or equal"),
        (
            {"sizing.risk_fraction": "0.05", "sizing.heat_fraction": "0.01"},
            "sizing.heat_fraction",
            "heat_fraction",
        ),
        ({"sizing.drawdown_steps": "0.1-0.5"}, "sizing.drawdown_steps", "drawdown:multiplier"),
        ({"sizing.drawdown_steps": "1.5:0.5"}, "sizing.drawdown_steps", "less than 1"),
    ],
)
def test_an_invalid_stop_rule_is_shown_next_to_its_field_and_nothing_is_saved(
    browser: httpx.Client, api: httpx.Client, typed: dict[str, str], field: str, message: str
) -> None:
    before = api.get("/risk").json()["limits"]
    form = limits_form(browser) | typed

    response = browser.post("/ui/limits", data=form)

    assert response.status_code == 200
    error = field_error(response.text, field)
    assert error is not None and message in error, error
    assert "Not saved" in response.text
    for name, value in typed.items():  # what was typed stays, marked
        input_id = "f-" + name.replace(".", "-")
        assert re.search(rf'id="{input_id}"[^>]*value="{re.escape(value)}"', response.text)
    assert f'aria-describedby="f-{field.replace(".", "-")}-error"' in response.text
    assert api.get("/risk").json()["limits"] == before


# -- leverage and positions ---------------------------------------------------------------------


def _stopped_with_a_position(api: httpx.Client) -> dict[str, Any] | None:
    open_positions(api)
    api.post("/engine/stop")
    held = api.get("/positions").json()
    if not held:  # closed just before the stop
        api.post("/engine/start")
    return held[0] if held else None


@pytest.fixture
def still_book(api: httpx.Client) -> Iterator[dict[str, Any]]:
    """An open position with the engine stopped (nothing moves), started again after."""
    position: dict[str, Any] = wait_for(lambda: _stopped_with_a_position(api))
    yield position
    api.put(f"/positions/{position['symbol']}/leverage", json={"leverage": 1})
    api.post("/engine/start")


def test_changing_leverage_shows_on_the_positions_table(
    browser: httpx.Client, api: httpx.Client, still_book: dict[str, Any]
) -> None:
    symbol = still_book["symbol"]

    response = browser.post(f"/ui/leverage/{symbol}", data={"leverage": "4"})
    table = browser.get("/ui/positions").text
    (after,) = [p for p in api.get("/positions").json() if p["symbol"] == symbol]

    assert response.status_code == 200
    assert f"{symbol} now at 4×" in response.text
    assert '<div id="positions" hx-swap-oob="innerHTML">' in response.text
    assert '<td class="num lev">4×</td>' in position_row(response.text, symbol)
    row = position_row(table, symbol)
    assert '<td class="num lev">4×</td>' in row
    assert after["leverage"] == 4
    assert money(Decimal(after["initial_margin"])) in row
    assert re.search(r'<td class="num liq"[^>]*>[^<]+</td>', row)


def test_a_refused_leverage_is_shown_next_to_that_symbols_field(
    browser: httpx.Client, api: httpx.Client
) -> None:
    too_high = browser.post("/ui/leverage/ETHUSDT", data={"leverage": "50"})
    not_a_number = browser.post("/ui/leverage/SOLUSDT", data={"leverage": "lots"})

    assert field_error(too_high.text, "leverage") == (
        "leverage 50 for ETHUSDT must be in [1, 20] (the configured cap)"
    )
    assert re.search(r'id="lev-ETHUSDT"[^>]*value="50"', too_high.text)
    assert "Input should be a valid integer" in (field_error(not_a_number.text, "leverage") or "")
    assert all(p["leverage"] != 50 for p in api.get("/positions").json())


def test_the_balance_shows_the_api_breakdown_in_money_format(
    browser: httpx.Client, api: httpx.Client, still_book: dict[str, Any]
) -> None:
    balance = api.get("/balance").json()

    html = browser.get("/ui/balance").text

    for name in ("wallet", "margin_balance", "margin_in_use", "maintenance_margin", "available",
                 "fees_paid", "funding_paid"):  # fmt: skip
        figure = re.search(rf'data-figure="{name}">.*?<dd[^>]*>([^<]*)</dd>', html, re.S)
        assert figure, name
        assert figure.group(1) == money(Decimal(balance[name])), name
    assert re.search(r'data-figure="unrealized_pnl">.*?<dd[^>]*>[+-][\d,]+\.\d\d</dd>', html, re.S)
    assert re.search(r'data-figure="margin_ratio">.*?<dd[^>]*>[\d.]+%</dd>', html, re.S)


def test_positions_show_leverage_liquidation_price_and_margin() -> None:
    long = Position("BTCUSDT", qty=Decimal("0.020"), entry_price=Decimal("60000"))
    margin = PositionMargin(
        "BTCUSDT", 10, Decimal("1210"), Decimal("120"), Decimal("4.84"), Decimal("54321.1")
    )
    spot = Position("ETHUSDT", qty=Decimal("-1"), entry_price=Decimal("3000"))
    views = [
        PositionView(long, Decimal("60500"), Decimal("10"), margin),
        PositionView(spot, Decimal("3000"), Decimal("0")),
    ]

    html = render("partials/positions.html", {"positions": views, "total_upnl": Decimal(10)})

    row = position_row(html, "BTCUSDT")
    assert '<td class="num lev">10×</td>' in row
    assert ">54,321.10</td>" in row
    assert ">120.00</td>" in row and 'title="maintenance margin 4.84"' in row
    assert '<td class="num lev">—</td>' in position_row(html, "ETHUSDT")
    assert '<th class="num">Leverage</th>' in html
    plain = render("partials/positions.html", {"positions": views[1:], "total_upnl": 0})
    assert "Leverage" not in plain and "Liq. price" not in plain
