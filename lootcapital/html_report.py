"""The backtest report as one self-contained HTML file (``lootcapital backtest --report``): the
panel's result view (:mod:`web.backtest_views`, ``partials/backtest_result.html``) with the
panel's styles, the vendored uPlot and the charts script inlined, so that it opens from the
file in any browser, offline, with nothing fetched: what backtesting.py's ``plot()`` gives its
users (metrics, equity and drawdown curves, the trades on each symbol's price chart).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

import web
from web.backtest_views import result_context
from web.formatting import register_filters

WEB_DIR = Path(web.__file__).resolve().parent
STYLES = ("vendor/uPlot.min.css", "app.css", "backtests.css")
"""The stylesheets inlined, from ``web/static``, in order."""
SCRIPTS = ("vendor/uPlot.iife.min.js", "backtest_charts.js")
"""The scripts inlined, from ``web/static``, in order."""


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(WEB_DIR / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    register_filters(env)
    return env


def _inline(name: str) -> str:
    """A static file's text, to inline in a ``<style>`` or ``<script>`` element.

    Raises
    ------
    ValueError
        When the text holds a closing tag, which would end the element early.
    """
    text = (WEB_DIR / "static" / name).read_text(encoding="utf-8")
    if "</" in text:
        raise ValueError(f"web/static/{name} holds '</': it cannot be inlined as it is")
    return text


def render_report(document: Mapping[str, Any]) -> str:
    """The report page of a result ``document``
    (:func:`lootcapital.backtest_runs.result_document`)."""
    result = {k: v for k, v in document.items() if k != "metrics"}
    context = result_context(document["metrics"], result)
    context["styles"] = [_inline(name) for name in STYLES]
    context["scripts"] = [_inline(name) for name in SCRIPTS]
    return _environment().get_template("reports/backtest_report.html").render(context)


def write_report(path: Path, document: Mapping[str, Any]) -> None:
    """Write :func:`render_report` of ``document`` to ``path`` (UTF-8), all at once.

    Raises
    ------
    OSError
        When the file cannot be written.
    """
    path.write_text(render_report(document), encoding="utf-8")
