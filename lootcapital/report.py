"""The report of a backtest: its header, performance summary, breakdown, trade table and
rejections as text, and the same as the ``--json`` document.

Text money is rounded to cents for reading; JSON money, prices and quantities are decimal
strings at the instrument's precision (:class:`api.numbers.Numbers`), listed in the document's
``units``.
"""

# A text report is printed, as the CLI's output is.

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from api.numbers import Numbers
from domain.metrics import PerformanceMetrics
from domain.model import Trade
from domain.report import Breakdown, TradeStats
from service_layer.backtest import MONEY_METRICS, BacktestResult, breakdown_json

SHOWN_REJECTIONS = 5
"""Distinct rejection reasons printed after a backtest's summary."""
JSON_REJECTIONS = 10
"""Distinct rejection reasons in a backtest's ``--json`` output (``rejections.first``)."""

_BREAKDOWN_MONEY = ("pnl", "fees", "gross_profit", "gross_loss", "average_win", "average_loss")
UNITS = {
    "money": [
        *(f"$.metrics.{k}" for k in MONEY_METRICS),
        "$.equity[*][1]",
        "$.trades[*].pnl",
        "$.trades[*].fees",
        "$.header.cash",
        *(f"$.breakdown..{k}" for k in _BREAKDOWN_MONEY),
    ],
    "price": ["$.trades[*].entry_price", "$.trades[*].exit_price"],
    "qty": ["$.trades[*].qty"],
}
"""The ``--json`` fields (JSONPath, RFC 9535) that are decimal strings, by kind."""
_UNITS_NOTE = (
    "money, price and qty fields are decimal strings: money in `currency` at its precision, "
    "prices at the symbol's tick (quote currency), quantities at its lot step (base asset); "
    "times are ms UTC, *_pct fields percent, other numbers ratios or counts"
)


def fmt_ms(ms: int) -> str:
    """``ms`` (ms UTC) as ``YYYY-MM-DD HH:MM``."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class Header:
    """What a backtest ran: strategy and parameters in effect, symbols and their markets, the
    period (``start`` first bar open, ``end`` last bar close, ms UTC), the timeframe (and the
    stored one each symbol was resampled from), bars per symbol, cash (quote currency), taker
    and maker fees (fractions of notional) and slippage (basis points); for perpetuals the
    ``margin`` mode, the ``leverage`` per symbol and each symbol's ``funding`` file (None: no
    funding)."""

    strategy: str
    params: dict[str, float | int | str | bool]
    markets: dict[str, str]
    timeframe: str
    resampled_from: dict[str, str]
    start: int
    end: int
    bars: dict[str, int]
    cash: Decimal
    currency: str
    fee_taker: Decimal
    fee_maker: Decimal
    slippage_bps: Decimal
    margin: str | None = None
    leverage: dict[str, int] = field(default_factory=dict)
    funding: dict[str, str | None] = field(default_factory=dict)

    def to_json(self, numbers: Numbers) -> dict[str, object]:
        """``--json``'s ``header`` (cash at the quote asset's precision, costs as strings)."""
        return {
            "strategy": self.strategy,
            "params": self.params,
            "symbols": list(self.markets),
            "markets": self.markets,
            "timeframe": self.timeframe,
            "resampled_from": self.resampled_from,
            "start": self.start,
            "end": self.end,
            "bars": self.bars,
            "cash": numbers.money(self.cash),
            "currency": self.currency,
            "fee_taker": str(self.fee_taker),
            "fee_maker": str(self.fee_maker),
            "slippage_bps": str(self.slippage_bps),
            "margin": self.margin,
            "leverage": self.leverage,
            "funding": self.funding,
        }

    def print(self) -> None:
        """The header of the text report, one labelled row per item."""
        days = (self.end - self.start) / 86_400_000
        timeframe = self.timeframe
        if self.resampled_from:
            timeframe += f" (resampled from {', '.join(sorted(set(self.resampled_from.values())))})"
        taker, maker = self.fee_taker, self.fee_maker
        rows = [
            ("strategy", self.strategy),
            ("parameters", " ".join(f"{k}={v}" for k, v in self.params.items()) or "(none)"),
            ("symbols", ", ".join(f"{s} ({m})" for s, m in self.markets.items())),
            ("period (UTC)", f"{fmt_ms(self.start)} → {fmt_ms(self.end)} ({days:.1f} days)"),
            ("timeframe", timeframe),
            ("bars", ", ".join(f"{s} {n:,}" for s, n in self.bars.items())),
            ("cash", f"{self.cash:,.2f} {self.currency}"),
            ("fee", f"taker {taker} ({_pct(taker)} %), maker {maker} ({_pct(maker)} %)"),
            ("slippage", f"{self.slippage_bps} bps"),
        ]
        if self.margin is not None:
            leverage = ", ".join(f"{s} {n}x" for s, n in self.leverage.items())
            funding = ", ".join(
                f"{s} {Path(f).name if f else 'none'}" for s, f in self.funding.items()
            )
            rows += [("margin", f"{self.margin}, {leverage}"), ("funding", funding)]
        for name, value in rows:
            lines = textwrap.wrap(value, 76) or [""]
            print(f"{name:<14}{lines[0]}")
            for line in lines[1:]:
                print(f"{'':<14}{line}")
        print()


def print_report(
    result: BacktestResult,
    header: Header,
    report: Breakdown,
    *,
    trades: bool = False,
    json_to: str | None = None,
) -> None:
    """Print the backtest's header, summary, breakdown, the trade table (``trades``) and the
    rejections, and write the JSON :func:`document` to the file ``json_to``; with ``json_to``
    ``-`` print only the document."""
    rules = result.instruments
    numbers = Numbers(rules, max(r.quote_precision for r in rules.values()))
    content = document(result, numbers, header, report)
    if json_to == "-":
        json.dump(content, sys.stdout)
        print()
        return
    header.print()
    _print_metrics(result.metrics, result.bars)
    _print_ledger(result)
    _print_breakdown(report)
    _print_models(result)
    if trades:
        _print_trades(result.trades, numbers)
    print()
    print_rejections(result.rejections)
    if json_to:
        Path(json_to).write_text(json.dumps(content))
        print(f"wrote {json_to}")


def document(
    result: BacktestResult, numbers: Numbers, header: Header, report: Breakdown
) -> dict[str, object]:
    """The ``--json`` document: ``metrics``, ``trades``, ``equity``, ``rejections``,
    ``header``, ``breakdown`` and ``units`` (the :data:`UNITS` in ``header.currency``)."""
    return {
        **result.to_json(numbers),
        "rejections": rejections_json(result.rejections),
        "header": header.to_json(numbers),
        "breakdown": breakdown_json(report, numbers, result.instruments),
        "units": {"currency": header.currency, **UNITS, "note": _UNITS_NOTE},
    }


def _print_models(result: BacktestResult) -> None:
    """Which ML model predicted on which symbol when (nothing without ML)."""
    if not result.models:
        return
    print()
    print("ML models that acted:")
    for m in result.models:
        print(
            f"  {m.symbol:<10} {m.model_id:<36} {fmt_ms(m.first)} .. {fmt_ms(m.last)}"
            f"  {m.predictions} prediction(s)"
        )


def _print_metrics(m: PerformanceMetrics, bars: int) -> None:
    pf = "inf" if m.profit_factor == float("inf") else f"{m.profit_factor:.2f}"
    rows = [
        ("bars", f"{bars:,}"),
        ("period (days)", f"{m.days:.1f}"),
        ("start equity", f"{m.start_equity:,.2f}"),
        ("end equity", f"{m.end_equity:,.2f}"),
        ("total return %", f"{m.total_return_pct:.2f}"),
        ("annualized return %", f"{m.annualized_return_pct:.2f}"),
        ("Sharpe", f"{m.sharpe:.2f}"),
        ("Sortino", f"{m.sortino:.2f}"),
        ("max drawdown %", f"{m.max_drawdown_pct:.2f}"),
        ("win rate %", f"{m.win_rate_pct:.2f}"),
        ("profit factor", pf),
        ("trades", f"{m.trades}"),
        ("fees paid", f"{m.fees_paid:,.2f}"),
        ("exposure %", f"{m.exposure_pct:.2f}"),
    ]
    for name, value in rows:
        print(f"{name:<22}{value:>16}")


def _distinct(reasons: Sequence[object], limit: int) -> list[str]:
    """The first ``limit`` distinct reasons, as text, in the order they happened."""
    return list(dict.fromkeys(str(r) for r in reasons))[:limit]


def rejections_json(reasons: Sequence[object]) -> dict[str, object]:
    """``{"count": N, "first": [...]}``: every rejected order counted, the first
    :data:`JSON_REJECTIONS` distinct reasons listed."""
    return {"count": len(reasons), "first": _distinct(reasons, JSON_REJECTIONS)}


def print_rejections(reasons: Sequence[object]) -> None:
    """``rejected orders: N`` and, when N > 0, the first :data:`SHOWN_REJECTIONS` distinct
    reasons (e.g. why every order of a backtest was refused and it made no trade)."""
    print(f"rejected orders: {len(reasons)}")
    for reason in _distinct(reasons, SHOWN_REJECTIONS):
        print(f"  - {reason}")


def _pct(fraction: Decimal) -> str:
    """``fraction`` in percent without trailing zeros (0.0005 → 0.05)."""
    return format((fraction * 100).normalize(), "f")


def _money(x: Decimal | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _stats_row(name: str, x: TradeStats, extra: str = "") -> str:
    return (
        f"{name:<12}{x.trades:>7}{100 * x.win_rate:>8.2f}{_money(x.pnl):>14}{_money(x.fees):>12}"
        f"{_money(x.average_win):>12}{_money(x.average_loss):>12}{extra}"
    )


def _print_breakdown(report: Breakdown) -> None:
    """Per-symbol and long/short statistics, averages, the losing streak and buy-and-hold."""
    head = f"{'trades':>7}{'win %':>8}{'net pnl':>14}{'fees':>12}{'avg win':>12}{'avg loss':>12}"
    print()
    print(f"{'symbol':<12}{head}{'buy&hold %':>12}")
    for symbol, x in report.by_symbol.items():
        print(_stats_row(symbol, x, f"{100 * report.buy_and_hold.symbols[symbol]:>12.2f}"))
    basket = f"{100 * report.buy_and_hold.basket:>12.2f}"
    print(_stats_row("all", report.total, basket))
    print(f"{'side':<12}{head}")
    for side, x in report.by_direction.items():
        print(_stats_row(str(side), x))
    rows = [
        ("average win", _money(report.total.average_win)),
        ("average loss", _money(report.total.average_loss)),
        ("longest losing streak", f"{report.longest_losing_streak}"),
        ("buy & hold % (basket)", f"{100 * report.buy_and_hold.basket:.2f}"),
    ]
    for name, value in rows:
        print(f"{name:<22}{value:>16}")


def _print_ledger(result: BacktestResult) -> None:
    """The money the ledger booked: realized PnL (gross), fees, funding, liquidations and the
    final balance they add up to."""
    money = result.money
    rows = [
        ("realized PnL", _money(money.realized_pnl)),
        ("funding paid", _money(money.funding_paid)),
        ("liquidations", f"{result.liquidations}"),
        ("final balance", _money(money.final_balance)),
    ]
    for name, value in rows:
        print(f"{name:<22}{value:>16}")


def _print_trades(trades: Sequence[Trade], numbers: Numbers) -> None:
    """The trade table: one round trip a line, times UTC, money in quote currency."""
    print()
    print(f"{'#':>4}  {'symbol':<10}{'side':<6}{'qty':>12}  {'entry (UTC)':<17}{'entry price':>13}"
          f"  {'exit (UTC)':<17}{'exit price':>13}{'pnl':>12}{'fees':>10}  exit")  # fmt: skip
    for k, t in enumerate(trades, 1):
        print(
            f"{k:>4}  {t.symbol:<10}{t.direction:<6}{numbers.qty(t.symbol, t.qty):>12}  "
            f"{fmt_ms(t.entry_time):<17}{numbers.price(t.symbol, t.entry_price):>13}  "
            f"{fmt_ms(t.exit_time):<17}{numbers.price(t.symbol, t.exit_price):>13}"
            f"{_money(t.pnl):>12}{_money(t.fees):>10}  {t.exit_reason}"
        )
