"""``/docs`` works offline: Swagger UI's page and every asset it loads come from this server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from lootcapital.bootstrap import bootstrap, build_app
from lootcapital.settings import Settings
from tests.e2e.web_fixtures import live_server

TOKEN = "docs-offline-token-0123456789"
CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MIN_BYTES = {".js": 500_000, ".css": 50_000, ".png": 100}
"""Swagger UI's bundle is about 1.7 MB and its CSS 190 kB: a stub or an error page is smaller."""


class _AssetLinks(HTMLParser):
    """Collects every ``<script src>`` and ``<link href>`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        for name, value in attrs:
            if name == wanted and value is not None:
                self.urls.append(value)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir: Path = tmp_path_factory.mktemp("docs")
    settings = Settings(data_dir=data_dir, api_token=TOKEN, autostart=False)
    with live_server(build_app(bootstrap(settings))) as url:
        yield url


@pytest.fixture(scope="module")
def page(base_url: str) -> httpx.Response:
    return httpx.get(base_url + "/docs", timeout=10)


def _asset_urls(html: str) -> list[str]:
    parser = _AssetLinks()
    parser.feed(html)
    return parser.urls


def test_docs_page_is_html_that_loads_swagger_ui(page: httpx.Response) -> None:
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle(" in page.text
    assert "url: '/openapi.json'" in page.text


def test_docs_page_names_no_other_host(page: httpx.Response) -> None:
    urls = _asset_urls(page.text)

    assert len(urls) >= 3  # the bundle, its CSS and the favicon
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    for host in ("cdn.jsdelivr.net", "unpkg.com", "fastapi.tiangolo.com", "validator.swagger"):
        assert host not in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert '"validatorUrl": null' in page.text


def test_every_asset_of_the_docs_page_is_served_locally(
    base_url: str, page: httpx.Response
) -> None:
    for url in _asset_urls(page.text):
        suffix = Path(url).suffix

        response = httpx.get(base_url + url, timeout=10)

        assert response.status_code == 200, url
        assert response.headers["content-type"].split(";")[0] in CONTENT_TYPES[suffix], url
        assert len(response.content) >= MIN_BYTES[suffix], url
    bundle = httpx.get(base_url + "/docs/assets/swagger-ui-bundle.js", timeout=10).text
    assert "SwaggerUIBundle" in bundle


def test_the_oauth2_redirect_page_is_served(base_url: str) -> None:
    response = httpx.get(base_url + "/docs/oauth2-redirect", timeout=10)

    assert response.status_code == 200
    assert "oauth2" in response.text.lower()
    assert "https://" not in response.text


def test_redoc_is_off_rather_than_loading_a_cdn(base_url: str) -> None:
    assert httpx.get(base_url + "/redoc", timeout=10).status_code == 404


def test_the_docs_routes_stay_out_of_the_schema(base_url: str) -> None:
    paths = httpx.get(base_url + "/openapi.json", timeout=10).json()["paths"]

    assert not [p for p in paths if p.startswith("/docs")]


@pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="needs Chromium (Debian package: chromium; `make test` installs it)",
)
def test_swagger_ui_renders_every_operation_with_other_hosts_unreachable(
    base_url: str, tmp_path: Path
) -> None:
    schema = httpx.get(base_url + "/openapi.json", timeout=10).json()
    operations = sum(len(methods) for methods in schema["paths"].values())
    command = [
        str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu",
        f"--user-data-dir={tmp_path}",
        # Every host name but the server's fails to resolve: a CDN load would fail.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--virtual-time-budget=15000", "--dump-dom", base_url + "/docs",
    ]  # fmt: skip

    dom = subprocess.run(command, capture_output=True, text=True, timeout=90, check=True).stdout

    rendered = re.findall(r'class="opblock opblock-(get|post|put|patch|delete)"', dom)
    assert len(rendered) == operations > 0
