"""The backtest views' chart data (:mod:`web.backtest_views`): a long run's curves are thinned
to at most about :data:`~web.backtest_views.MAX_POINTS` points that keep every extreme and
every trade's bar; a short run keeps every point. The view stored with a done backtest holds
the first trades and the chart data as HTML-safe JSON, and shows exactly what the result shows;
a comparison reads the views' curves between their points, null outside their periods."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from domain.backtest_records import BacktestRecord
from web.backtest_views import (
    MAX_POINTS,
    TRADES_SHOWN,
    compare_context,
    equity_chart,
    price_chart,
    record_context,
    stored_view,
    thin,
)
from web.views import render

T0 = 1_759_276_800_000
M5 = 300_000


def test_a_short_series_keeps_every_point() -> None:
    assert thin(5, np.arange(5.0)).tolist() == [0, 1, 2, 3, 4]


def test_a_long_series_keeps_its_extremes_and_the_points_asked_for() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(size=50_000).cumsum()
    keep = np.array([123, 45_678])

    shown = thin(len(values), values, keep=keep)

    assert len(shown) <= MAX_POINTS + 2
    assert {0, len(values) - 1, 123, 45_678, int(values.argmin()), int(values.argmax())} <= set(
        shown.tolist()
    )
    assert shown.tolist() == sorted(set(shown.tolist()))


def test_the_equity_chart_keeps_the_deepest_drawdown_of_a_long_run() -> None:
    equity = 10_000 + np.sin(np.arange(40_000) / 500) * 100
    equity[31_234] = 9_000.0  # a one-bar crash
    equity = equity.round(2)  # as the document writes it
    points = [[T0 + k * M5, f"{e:.2f}"] for k, e in enumerate(equity)]

    chart = equity_chart(points)

    assert len(chart["t"]) <= MAX_POINTS + 2
    assert min(chart["equity"]) == 9_000.0
    assert min(chart["drawdown_pct"]) == min(100 * (equity / np.maximum.accumulate(equity) - 1))
    assert chart["t"][0] == T0 / 1000


def test_each_trade_is_marked_at_the_bar_it_filled_in_even_in_a_long_run() -> None:
    closes = [[T0 + k * M5, 100.0 + k % 7] for k in range(30_000)]
    trades = [
        {"symbol": "BTCUSDT", "side": "long", "entry_time": T0 + 10 * M5 + 1, "entry_price": "101",
         "exit_time": T0 + 20_000 * M5, "exit_price": "105"},
        {"symbol": "ETHUSDT", "side": "short", "entry_time": T0, "entry_price": "9",
         "exit_time": T0 + M5, "exit_price": "8"},
    ]  # fmt: skip

    chart = price_chart("BTCUSDT", closes, trades)

    at = {t: k for k, t in enumerate(chart["t"])}
    entry, exit_ = at[(T0 + 10 * M5) / 1000], at[(T0 + 20_000 * M5) / 1000]
    assert chart["long_entry"][entry] == 101.0 and chart["exit"][exit_] == 105.0
    assert sum(v is not None for v in chart["long_entry"] + chart["exit"]) == 2
    assert all(v is None for v in chart["short_entry"])


# -- the stored view -----------------------------------------------------------------------------

HEADER = {"strategy": "sma_cross", "params": {"fast": 5}, "markets": {"BTCUSDT": "perpetual"},
          "start": T0, "end": T0 + 30_000 * M5, "timeframe": "5m", "resampled_from": {},
          "cash": "10000", "fee_taker": "0.0005", "fee_maker": "0.0002",
          "slippage_bps": "2"}  # fmt: skip


def _trade(k: int) -> dict[str, Any]:
    side = "long" if k % 2 else "short"
    return {"symbol": "BTCUSDT", "side": side, "qty": "0.010", "entry_time": T0 + (40 * k + 3) * M5,
            "entry_price": f"{100 + k % 7}.5", "exit_time": T0 + (40 * k + 20) * M5,
            "exit_price": f"{101 + k % 5}.25", "pnl": f"{(k % 9) - 4}.10", "fees": "0.02",
            "exit_reason": "signal"}  # fmt: skip


def _result(n: int = 30_000, trades: int = 600) -> dict[str, Any]:
    """A long result document: ``n`` 5m bars of BTCUSDT and ``trades`` trades."""
    rng = np.random.default_rng(3)
    equity = (10_000 + rng.normal(size=n).cumsum()).round(2)
    return {
        "header": HEADER,
        "trades": [_trade(k) for k in range(trades)],
        "equity": [[T0 + (k + 1) * M5, f"{e:.2f}"] for k, e in enumerate(equity)],
        "closes": {"BTCUSDT": [[T0 + k * M5, 100.0 + k % 11] for k in range(n)]},
        "rejections": {"count": 0, "first": []},
        "units": {"currency": "USDT"},
    }


def _done(backtest_id: str, **stored: Any) -> BacktestRecord:
    return BacktestRecord(
        id=backtest_id, status="done", strategy="sma_cross", symbols=("BTCUSDT",),
        timeframe="5m", request={}, created_ms=1, finished_ms=2,
        metrics={"start_equity": "10000", "trades": 600}, **stored,
    )  # fmt: skip


def test_a_stored_view_keeps_the_first_trades_and_the_charts_as_html_safe_json() -> None:
    result = _result()
    result["closes"]["</script><b>"] = [[T0, 1.0]]

    view = json.loads(json.dumps(stored_view(result)))  # as stored

    assert view["trades"] == result["trades"][:TRADES_SHOWN] and view["trades_total"] == 600
    assert view["chart_symbols"] == ["BTCUSDT", "</script><b>"]
    assert "<" not in view["chart_json"] and ">" not in view["chart_json"]
    chart = json.loads(view["chart_json"])
    assert chart["equity"] == equity_chart(result["equity"])
    assert chart["prices"][0] == price_chart("BTCUSDT", result["closes"]["BTCUSDT"],
                                             result["trades"])  # fmt: skip
    assert view["equity"] == {"t": chart["equity"]["t"], "equity": chart["equity"]["equity"]}


def test_a_result_shows_the_same_from_its_stored_view_as_from_its_result() -> None:
    result = _result()
    view = json.loads(json.dumps(stored_view(result)))

    from_view = render("partials/backtest_view.html", record_context(_done("ab", view=view)))
    from_result = render("partials/backtest_view.html", record_context(_done("ab", result=result)))

    assert from_view == from_result
    assert from_view.count('<tr class="bt-trade">') == TRADES_SHOWN
    assert 'data-symbol="BTCUSDT"' in from_view and "10,000.00 USDT" in from_view


def test_a_comparison_reads_each_curve_between_its_points_and_not_outside_its_period() -> None:
    early, late = _result(n=1_000), _result(n=1_000)
    shift = 500 * M5 + M5 // 2  # half a bar off: the union interleaves their times
    late["equity"] = [[t + shift, e] for t, e in late["equity"]]
    records = [
        _done("a1", result=early),
        _done("b2", view=json.loads(json.dumps(stored_view(late)))),
    ]

    chart = compare_context(records)["chart"]

    t = np.array(chart["t"])
    first, second = (np.array(s["values"], dtype=float) for s in chart["series"])
    own = {p[0] / 1000: 100 * (float(p[1]) / 10_000 - 1) for p in early["equity"]}
    inside = t <= (T0 + 1_000 * M5) / 1000
    assert len(t) == 2_000 and (np.diff(t) > 0).all()
    assert np.isnan(first[~inside]).all() and np.isnan(second[t < (T0 + shift + M5) / 1000]).all()
    at_own = np.array([x in own for x in t])
    assert first[at_own] == pytest.approx([own[x] for x in t[at_own]])
    between = inside & ~at_own  # the late curve's times inside the early one's period
    assert first[between] == pytest.approx((first[np.flatnonzero(between) - 1] +
                                            first[np.flatnonzero(between) + 1]) / 2)  # fmt: skip
