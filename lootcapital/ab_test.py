"""Feature A/B of the ``adaptive`` strategy (issue 6, "Backtest A/B"):
``lootcapital backtest --strategy adaptive --ab [--json OUT] [--report FILE.html]``.

The pipeline runs once with every feature on (``all``), then once with each feature of
:data:`FEATURES` off and the others on (``no_thresholds``, ``no_regime``, …), on the same bars,
costs and parameters. The comparison holds, per run, the total return (percent), Sharpe, max
drawdown (percent), win rate (percent), profit factor and trades; and, for the ``all`` run, the
trades grouped by the market regime at their entry and by whether they entered at a
volume-profile key level.

A trade's entry is attributed to its *entry signal*: the latest non-FLAT signal of its symbol
at or before its ``entry_time`` that carries the pipeline's ``regime`` reason (the exit rules'
signals carry only ``exits`` reasons). The entry order fills at the open of the bar after the
signal's close, so that signal's ``time`` equals the trade's ``entry_time``. A position closed
in parts (the 33/33/34 % take-profits) is several trades with one entry, as in the backtest's
``trades`` metric; ``entries`` counts the positions.

Rendering is pure (:func:`to_text`, :func:`to_json`, :func:`to_html`); :func:`run_ab` runs the
variants and writes the outputs.
"""

from __future__ import annotations

import bisect
import html
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

from api.numbers import Numbers
from domain.errors import DomainError
from domain.metrics import PerformanceMetrics
from domain.model import Direction, Signal, Trade
from domain.regime import REGIMES
from domain.report import TradeStats, trade_stats
from lootcapital.report import Header, fmt_ms
from service_layer.backtest import BacktestResult

STRATEGY = "adaptive"
"""The only strategy with feature toggles to compare."""
FEATURES = ("thresholds", "regime", "volume_profile", "portfolio")
"""The ``adaptive`` parameters switched off one at a time."""
ALL = "all"
"""Name of the run with every feature on."""
UNKNOWN = "unknown"
"""Group of a trade whose entry signal was not found."""
KEY_LEVELS = ("at_key_level", "away_from_key_levels", "no_profile")
"""Groups of :attr:`Comparison.key_levels`: within 0.5 % of the POC, VAH or VAL at entry; not;
no volume profile at entry (under a day of bars)."""
_KEY_LABELS = {
    "at_key_level": "at a key level",
    "away_from_key_levels": "away from key levels",
    "no_profile": "no volume profile",
    UNKNOWN: "entry signal not found",
}
_REGIME_MESSAGE = re.compile(r"^regime (\S+):")
_UNITS_NOTE = (
    "*_pct fields are percent; profit_factor is gross profit / gross loss (null: no losing "
    "trade); pnl is a decimal string in `currency`, net of fees; trades count round trips (a "
    "position closed in parts is several), entries count positions"
)


class Runner(Protocol):
    """Runs the backtest with strategy parameters ``params`` (name → text, as ``--param``)."""

    def __call__(self, *, params: dict[str, str]) -> BacktestResult:
        """The backtest's result."""
        ...


class Group(NamedTuple):
    """Trades of one group: their :class:`TradeStats` and how many positions (entries) they
    belong to."""

    stats: TradeStats
    entries: int


@dataclass(frozen=True, slots=True)
class Run:
    """One run of the A/B: its ``name`` (``all``, ``no_<feature>``), the feature it turned off
    (None for ``all``), the parameters in effect, its metrics and its number of entries."""

    name: str
    disabled: str | None
    params: dict[str, float | int | str | bool]
    metrics: PerformanceMetrics
    entries: int


@dataclass(frozen=True, slots=True)
class Comparison:
    """The A/B: the runs (``all`` first) and the ``all`` run's trades by the regime at their
    entry (every regime, then :data:`UNKNOWN` when some entry was not found) and by volume-
    profile key level at entry (:data:`KEY_LEVELS`, then :data:`UNKNOWN` likewise)."""

    runs: tuple[Run, ...]
    by_regime: dict[str, Group]
    key_levels: dict[str, Group]


def check_options(strategy: str, params: Mapping[str, str], *, ab: bool) -> None:
    """Refuse ``--ab`` where it cannot apply.

    Raises
    ------
    DomainError
        ``--ab`` with a strategy other than ``adaptive``; ``--ab`` with a ``--param`` that sets
        one of the :data:`FEATURES` (the A/B sets them itself).
    """
    if not ab:
        return
    if strategy != STRATEGY:
        raise DomainError(
            f"--ab compares the features of the {STRATEGY} strategy; it cannot run with "
            f"--strategy {strategy}",
            field="ab",
        )
    toggled = [f for f in FEATURES if f in params]
    if toggled:
        raise DomainError(
            f"--ab turns each feature off itself; drop --param {', '.join(toggled)}",
            field="param",
        )


def entry_signals(trades: Sequence[Trade], signals: Sequence[Signal]) -> list[Signal | None]:
    """Each trade's entry signal (see the module docstring), None where there is none."""
    index: dict[str, tuple[list[int], list[Signal]]] = {}
    ordered = sorted(signals, key=lambda s: s.time)  # stable: same-time signals keep order
    for s in ordered:
        if s.direction is not Direction.FLAT and any(r.component == "regime" for r in s.reasons):
            times, found = index.setdefault(s.symbol, ([], []))
            times.append(s.time)
            found.append(s)
    out: list[Signal | None] = []
    for t in trades:
        times, found = index.get(t.symbol, ([], []))
        k = bisect.bisect_right(times, t.entry_time)
        out.append(found[k - 1] if k else None)
    return out


def regime_at_entry(signal: Signal | None) -> str:
    """The regime named by the entry signal's ``regime`` reason (``TRENDING_BULLISH``…, ``off``
    when the feature was off); :data:`UNKNOWN` without one."""
    for reason in signal.reasons if signal else ():
        if reason.component == "regime" and (m := _REGIME_MESSAGE.match(reason.message)):
            return m.group(1)
    return UNKNOWN


def key_level_at_entry(signal: Signal | None) -> str:
    """One of :data:`KEY_LEVELS` by the entry signal's ``volume_profile`` reason;
    :data:`UNKNOWN` without one."""
    for reason in signal.reasons if signal else ():
        if reason.component == "volume_profile":
            if "at a key level" in reason.message:
                return "at_key_level"
            if "away from key levels" in reason.message:
                return "away_from_key_levels"
            return "no_profile"
    return UNKNOWN


def group_trades(
    trades: Sequence[Trade],
    signals: Sequence[Signal],
    classify: Callable[[Signal | None], str],
    always: Sequence[str],
) -> dict[str, Group]:
    """The trades grouped by ``classify`` of their entry signal: the groups ``always`` first
    (empty ones too), then any other group found, sorted."""
    keys = [classify(s) for s in entry_signals(trades, signals)]
    names = list(dict.fromkeys([*always, *sorted(set(keys) - set(always))]))
    out = {}
    for name in names:
        members = [t for t, k in zip(trades, keys, strict=True) if k == name]
        out[name] = Group(trade_stats(members), _entries(members))
    return out


def _entries(trades: Sequence[Trade]) -> int:
    return len({(t.symbol, t.entry_time) for t in trades})


def compare(
    runs: Sequence[tuple[str, str | None, Mapping[str, float | int | str | bool], BacktestResult]],
) -> Comparison:
    """The :class:`Comparison` of ``runs`` (``(name, feature off, params in effect, result)``,
    the ``all`` run first: its trades are grouped).

    Raises
    ------
    ValueError
        When ``runs`` is empty.
    """
    if not runs:
        raise ValueError("an A/B comparison needs at least one run")
    summaries = tuple(
        Run(name, off, dict(params), r.metrics, _entries(r.trades)) for name, off, params, r in runs
    )
    first = runs[0][3]
    return Comparison(
        runs=summaries,
        by_regime=group_trades(first.trades, first.signals, regime_at_entry, REGIMES),
        key_levels=group_trades(first.trades, first.signals, key_level_at_entry, KEY_LEVELS),
    )


def _run_metrics(run: Run) -> dict[str, float | int | None]:
    m = run.metrics
    return {
        "total_return_pct": m.total_return_pct,
        "sharpe": m.sharpe,
        "max_drawdown_pct": m.max_drawdown_pct,
        "win_rate_pct": m.win_rate_pct,
        "profit_factor": None if math.isinf(m.profit_factor) else m.profit_factor,
        "trades": m.trades,
        "entries": run.entries,
    }


def _group_json(group: Group, numbers: Numbers) -> dict[str, object]:
    s = group.stats
    return {
        "trades": s.trades,
        "entries": group.entries,
        "wins": s.wins,
        "win_rate_pct": 100.0 * s.win_rate,
        "pnl": numbers.money(s.pnl),
    }


def to_json(comparison: Comparison, header: Header, numbers: Numbers) -> dict[str, object]:
    """The ``--json`` document: ``runs`` (``name``, ``disabled``, ``params``, ``metrics``:
    ``total_return_pct``, ``sharpe``, ``max_drawdown_pct``, ``win_rate_pct``, ``profit_factor``
    (null when infinite), ``trades``, ``entries``), ``by_regime`` and ``key_levels`` (group →
    ``trades``, ``entries``, ``wins``, ``win_rate_pct``, ``pnl`` as a decimal string), the
    ``header`` of the ``all`` run and ``units``."""
    return {
        "runs": [
            {"name": r.name, "disabled": r.disabled, "params": r.params, "metrics": _run_metrics(r)}
            for r in comparison.runs
        ],
        "by_regime": {k: _group_json(g, numbers) for k, g in comparison.by_regime.items()},
        "key_levels": {k: _group_json(g, numbers) for k, g in comparison.key_levels.items()},
        "header": header.to_json(numbers),
        "units": {"currency": header.currency, "note": _UNITS_NOTE},
    }


_RUN_COLUMNS = (
    "run",
    "total return %",
    "Sharpe",
    "max drawdown %",
    "win rate %",
    "profit factor",
    "trades",
    "entries",
)
_GROUP_COLUMNS = ("trades", "entries", "win rate %", "net pnl")


def _run_cells(run: Run) -> list[str]:
    m = run.metrics
    pf = "inf" if math.isinf(m.profit_factor) else f"{m.profit_factor:.2f}"
    return [
        run.name,
        f"{m.total_return_pct:.2f}",
        f"{m.sharpe:.2f}",
        f"{m.max_drawdown_pct:.2f}",
        f"{m.win_rate_pct:.2f}",
        pf,
        f"{m.trades}",
        f"{run.entries}",
    ]


def _group_cells(name: str, group: Group) -> list[str]:
    s = group.stats
    return [name, f"{s.trades}", f"{group.entries}", f"{100 * s.win_rate:.2f}", f"{s.pnl:,.2f}"]


def _total(groups: Mapping[str, Group]) -> Group:
    """The sum of ``groups`` (they partition one run's trades)."""
    fields = zip(*(astuple(g.stats) for g in groups.values()), strict=True)
    return Group(TradeStats(*(sum(f) for f in fields)), sum(g.entries for g in groups.values()))


def _tables(comparison: Comparison) -> list[tuple[str, tuple[str, ...], list[list[str]]]]:
    """The three tables as ``(title, columns, rows)``, cells as text; the grouped ones end
    with their total."""
    regimes = [_group_cells(k, g) for k, g in comparison.by_regime.items()]
    regimes.append(_group_cells("total", _total(comparison.by_regime)))
    levels = [_group_cells(_KEY_LABELS[k], g) for k, g in comparison.key_levels.items()]
    levels.append(_group_cells("total", _total(comparison.key_levels)))
    return [
        (
            "feature A/B: every feature on, then each one off",
            _RUN_COLUMNS,
            [_run_cells(r) for r in comparison.runs],
        ),
        ("all features: trades by regime at entry", ("regime", *_GROUP_COLUMNS), regimes),
        (
            "all features: trades by volume-profile key level at entry",
            ("entry", *_GROUP_COLUMNS),
            levels,
        ),
    ]


def to_text(comparison: Comparison) -> str:
    """The comparison as console tables (money in the quote currency, rounded to cents)."""
    lines: list[str] = []
    for title, columns, rows in _tables(comparison):
        first = max(len(r[0]) for r in [list(columns), *rows]) + 2
        widths = [max(len(c), 8) + 2 for c in columns[1:]]
        lines += [
            title,
            f"{columns[0]:<{first}}"
            + "".join(f"{c:>{w}}" for c, w in zip(columns[1:], widths, strict=True)),
        ]
        for row in rows:
            cells = zip(row[1:], widths, strict=True)
            lines.append(f"{row[0]:<{first}}" + "".join(f"{c:>{w}}" for c, w in cells))
        lines.append("")
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #1d2433; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.4em 0; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #d8dde6; }
th { background: #eef1f6; text-align: right; white-space: nowrap; } td { text-align: right; }
th:first-child, td:first-child { text-align: left; }
td { font-variant-numeric: tabular-nums; } p.note { color: #5b6475; font-size: 0.9em; }
table.header td { text-align: left; border: none; padding: 0.1em 0.8em 0.1em 0; }
table.grouped tr:last-child td { font-weight: 600; border-top: 2px solid #b8c0cc; }
"""


def _html_table(columns: Sequence[str] | None, rows: Sequence[Sequence[str]], cls: str) -> str:
    head = ""
    if columns is not None:
        head = "<thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        head += "</tr></thead>"
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f'<table class="{cls}">{head}<tbody>{body}</tbody></table>'


def _header_rows(header: Header) -> list[list[str]]:
    days = (header.end - header.start) / 86_400_000
    return [
        ["strategy", header.strategy],
        ["symbols", ", ".join(f"{s} ({m})" for s, m in header.markets.items())],
        ["period (UTC)", f"{fmt_ms(header.start)} → {fmt_ms(header.end)} ({days:.1f} days)"],
        ["timeframe", header.timeframe],
        ["bars", ", ".join(f"{s} {n:,}" for s, n in header.bars.items())],
        ["cash", f"{header.cash:,.2f} {header.currency}"],
        ["fees", f"taker {header.fee_taker}, maker {header.fee_maker} (fractions of notional)"],
        ["slippage", f"{header.slippage_bps} bps"],
    ]


def to_html(comparison: Comparison, header: Header) -> str:
    """The comparison as one self-contained HTML page: inline CSS, no script, no external
    asset; the same tables as :func:`to_text`, after the backtest's header."""
    sections = [
        f"<h2>{html.escape(title)}</h2>{_html_table(columns, rows, cls)}"
        for (title, columns, rows), cls in zip(
            _tables(comparison), ("runs", "grouped", "grouped"), strict=True
        )
    ]
    note = (
        f"Money in {html.escape(header.currency)}, net of fees. A position closed in parts "
        "counts one trade per part; entries count positions. Regime and key level are those "
        "of the entry signal."
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>LootCapital feature A/B: {html.escape(header.strategy)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>LootCapital feature A/B: {html.escape(header.strategy)}</h1>"
        f"{_html_table(None, _header_rows(header), 'header')}"
        f'{"".join(sections)}<p class="note">{note}</p></body></html>\n'
    )


def run_ab(
    result: BacktestResult,
    header: Header,
    run: Runner,
    params: Mapping[str, str],
    *,
    json_to: str | None = None,
    html_to: str | None = None,
) -> int:
    """Complete the A/B whose ``all`` run is ``result`` (run with ``params``, ``header`` its
    header): run each ``no_<feature>`` variant with ``run``, then print the header and the
    tables, write the JSON to the file ``json_to`` (``-``: print only the JSON) and the HTML
    page to the file ``html_to``. Progress goes to stderr. Returns the exit status (0)."""
    runs: list[tuple[str, str | None, Mapping[str, float | int | str | bool], BacktestResult]]
    runs = [(ALL, None, header.params, result)]
    for k, feature in enumerate(FEATURES, 2):
        name = f"no_{feature}"
        sys.stderr.write(f"A/B run {k}/{len(FEATURES) + 1}: {name}\n")
        variant = run(params={**params, feature: "false"})
        runs.append((name, feature, {**header.params, feature: False}, variant))
    comparison = compare(runs)
    rules = result.instruments
    numbers = Numbers(rules, max(r.quote_precision for r in rules.values()))
    document = to_json(comparison, header, numbers)
    if html_to:
        Path(html_to).write_text(to_html(comparison, header), encoding="utf-8")
    if json_to == "-":
        sys.stdout.write(json.dumps(document) + "\n")
        return 0
    header.print()
    sys.stdout.write(to_text(comparison))
    if json_to:
        Path(json_to).write_text(json.dumps(document), encoding="utf-8")
        sys.stdout.write(f"wrote {json_to}\n")
    if html_to:
        sys.stdout.write(f"wrote {html_to}\n")
    return 0
