"""The adaptive-pipeline page's view builders (:mod:`web.analysis_views`) on the shipped sample:
the per-symbol view is the domain's snapshot, the chart the last bars and the profile's levels,
the portfolio the domain's PnL, correlation and diversification, the features the strategy's."""

from __future__ import annotations

import math
from decimal import Decimal as D
from typing import Any

import numpy as np
import pytest

from domain.allocation import portfolio_metrics
from domain.analysis import snapshot
from domain.candles import Candles
from domain.correlation import correlation_at
from domain.model import Position, Side, Trade
from domain.strategies.base import PipelineView
from service_layer.trading import PositionView
from tests.fixtures.data import load_sample_candles
from web.analysis_views import (
    NO_BARS,
    TIMEFRAMES,
    chart_data,
    feature_view,
    portfolio_view,
    price_precision,
    symbol_view,
)
from web.views import render

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
M5, H1 = 300_000, 3_600_000
WEEKS_2 = 14 * 288
"""Two weeks of 5m bars: more than the week of common hourly returns the correlation needs."""


def bars(symbol: str, n: int) -> Candles:
    """The first ``n`` sample bars of ``symbol``."""
    return load_sample_candles(symbol).slice(0, n)


def histories(n: int) -> dict[str, Candles]:
    return {s: bars(s, n) for s in SYMBOLS}


def trade(symbol: str, pnl: str, at: int = 0) -> Trade:
    """A closed long of ``symbol`` netting ``pnl`` (quote currency)."""
    prices = (D(100), at + H1, D(101))
    return Trade(f"t-{symbol}-{at}", symbol, Side.BUY, D(1), at, *prices, D(pnl), D("0.1"))


def held(symbol: str, qty: str, entry: str, mark: str) -> PositionView:
    position = Position(symbol, D(qty), D(entry))
    return PositionView(position, D(mark), position.unrealized_pnl(D(mark)))


def floats(value: Any) -> list[float]:
    """Every float inside ``value`` (dicts and lists walked)."""
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in floats(v)]
    if isinstance(value, list):
        return [x for v in value for x in floats(v)]
    return []


# -- per symbol ---------------------------------------------------------------------------------


def test_symbol_view_is_the_snapshot_with_alignment_rows_in_timeframe_order() -> None:
    candles = bars("BTCUSDT", WEEKS_2)
    expected = snapshot(candles, "BTCUSDT", timeframe="5m")

    view = symbol_view(candles, "BTCUSDT", "5m")

    shot = view["shot"]
    assert view["empty"] is None
    assert shot["time"] == expected["time"] == int(candles.open_time[-1]) + M5
    assert shot["regime"] == expected["regime"]
    assert shot["thresholds"] == expected["thresholds"]
    assert shot["volume_profile"] == expected["volume_profile"]
    assert shot["signal"] == expected["signal"]
    assert [r["timeframe"] for r in view["rows"]] == list(TIMEFRAMES)
    for row in view["rows"]:
        assert row == {"timeframe": row["timeframe"]} | expected["timeframes"][row["timeframe"]]
    assert view["precision"] == 2  # BTCUSDT's tick is 0.1: shown with 2 decimals at least


def test_symbol_view_during_warm_up_shows_undefined_values_as_none() -> None:
    view = symbol_view(bars("ETHUSDT", 40), "ETHUSDT", "5m")

    assert view["shot"] is not None
    assert not [x for x in floats(view["shot"]) if math.isnan(x)]
    assert None in (view["rows"][-1]["momentum"], view["shot"]["thresholds"]["adx"])


def test_symbol_view_without_bars_says_to_start_the_engine() -> None:
    view = symbol_view(Candles.empty(), "SOLUSDT", "5m")

    assert view["shot"] is None and view["rows"] == []
    assert view["empty"] == NO_BARS


@pytest.mark.parametrize(
    ("values", "places"),
    [([109557.3, 109560.0], 1), ([100.0, 2.0], 0), ([1.5, 2.25], 2), ([0.0001234], 7),
     ([1 / 3], 8), ([], 0)],
)  # fmt: skip
def test_price_precision_is_the_decimals_the_prices_need(values: list[float], places: int) -> None:
    assert price_precision(np.array(values, dtype=np.float64)) == places


def test_price_precision_of_real_prices_is_their_tick() -> None:
    assert price_precision(load_sample_candles("BTCUSDT").close) == 1
    assert price_precision(load_sample_candles("SOLUSDT").close) == 2


# -- the chart ----------------------------------------------------------------------------------


def test_chart_data_is_the_last_bars_in_seconds_with_the_profiles_levels() -> None:
    candles = bars("SOLUSDT", WEEKS_2)
    shot = symbol_view(candles, "SOLUSDT", "5m")["shot"]

    chart = chart_data(candles, "SOLUSDT", shot, bars=500)

    assert len(chart["bars"]) == 500
    first, last = len(candles) - 500, len(candles) - 1
    assert chart["bars"][0]["time"] == int(candles.open_time[first]) // 1000
    assert chart["bars"][-1] == {
        "time": int(candles.open_time[last]) // 1000,
        "open": candles.open[last], "high": candles.high[last], "low": candles.low[last],
        "close": candles.close[last], "volume": candles.volume[last],
    }  # fmt: skip
    assert np.all(np.diff([b["time"] for b in chart["bars"]]) == M5 // 1000)
    profile = shot["volume_profile"]
    assert chart["levels"] == {"poc": profile["poc"], "vah": profile["vah"], "val": profile["val"]}
    assert chart["levels"]["val"] <= chart["levels"]["poc"] <= chart["levels"]["vah"]
    assert chart["precision"] == 2


def test_chart_data_of_fewer_bars_than_asked_shows_them_all() -> None:
    candles = bars("ETHUSDT", 120)

    chart = chart_data(candles, "ETHUSDT", None, bars=500)

    assert len(chart["bars"]) == 120
    assert chart["levels"] is None


def test_chart_data_without_bars_is_empty() -> None:
    chart = chart_data(Candles.empty(), "BTCUSDT", None)

    assert chart == {"symbol": "BTCUSDT", "bars": [], "levels": None, "precision": 2}


# -- the portfolio ------------------------------------------------------------------------------


def test_portfolio_correlation_is_the_domains_matrix_of_the_traded_symbols() -> None:
    history = histories(WEEKS_2)
    time = int(history["BTCUSDT"].open_time[-1]) + M5
    expected = correlation_at(history, SYMBOLS, time)

    view = portfolio_view(
        symbols=SYMBOLS, histories=history, positions=[], realized={}, equity=D(10_000),
        timeframe="5m",
    )  # fmt: skip

    assert view["symbols"] == list(SYMBOLS)
    assert view["observations"] == expected.observations >= 168
    assert view["time"] == time and view["correlation_note"] is None
    for i, row in enumerate(view["matrix"]):
        assert row["symbol"] == SYMBOLS[i]
        assert row["cells"][i] == 1.0
        assert row["cells"] == [expected.get(SYMBOLS[i], b) for b in SYMBOLS]
    assert view["diversification_ratio"] is None
    assert view["ratio_note"] == "nothing held"


def test_portfolio_pnl_and_diversification_are_what_portfolio_metrics_says() -> None:
    history = histories(WEEKS_2)
    positions = [
        held("BTCUSDT", "0.02", "60000", "61000"),
        held("SOLUSDT", "-3", "150", "160"),
    ]
    trades = [trade("BTCUSDT", "12.5"), trade("BTCUSDT", "-2.5", H1), trade("ETHUSDT", "4")]
    equity = D(10_000)
    time = int(history["BTCUSDT"].open_time[-1]) + M5
    expected = portfolio_metrics(
        equity=equity,
        positions={v.position.symbol: v.position for v in positions},
        marks={v.position.symbol: v.mark_price for v in positions},
        trades=trades,
        stops={"BTCUSDT": D(59_000), "SOLUSDT": D(155)},
        correlation=correlation_at(history, SYMBOLS, time),
    )

    view = portfolio_view(
        symbols=SYMBOLS, histories=history, positions=positions, realized=realized_of(trades),
        equity=equity,
        timeframe="5m",
    )  # fmt: skip

    rows = {r["symbol"]: r for r in view["rows"]}
    assert list(rows) == list(SYMBOLS)
    assert rows["BTCUSDT"]["realized"] == D(10) and rows["BTCUSDT"]["unrealized"] == D(20)
    assert rows["SOLUSDT"]["realized"] == D(0) and rows["SOLUSDT"]["unrealized"] == D(-30)
    assert {s: r["total"] for s, r in rows.items()} == {
        s: expected.per_symbol_pnl.get(s, D(0)) for s in SYMBOLS
    }
    assert view["totals"] == {"realized": D(14), "unrealized": D(-10), "total": D(4)}
    assert view["totals"]["total"] == expected.total_pnl
    assert view["diversification_ratio"] == expected.diversification_ratio
    assert view["diversification_ratio"] > 1.0
    assert view["ratio_note"] is None


def realized_of(trades: list[Trade]) -> dict[str, D]:
    """What the trade repository sums per symbol."""
    out: dict[str, D] = {}
    for t in trades:
        out[t.symbol] = out.get(t.symbol, D(0)) + t.pnl
    return out


def test_portfolio_without_a_week_of_common_hours_shows_unknown_correlations_as_none() -> None:
    view = portfolio_view(
        symbols=SYMBOLS, histories=histories(600), positions=[held("ETHUSDT", "1", "4000", "4100")],
        realized={}, equity=D(10_000), timeframe="5m",
    )  # fmt: skip

    for i, row in enumerate(view["matrix"]):
        assert row["cells"][i] == 1.0
        assert [c for j, c in enumerate(row["cells"]) if j != i] == [None, None]
    assert "fewer than 168 common hours" in view["correlation_note"]
    assert view["diversification_ratio"] is None


def test_portfolio_lists_a_symbol_traded_before_after_the_traded_ones() -> None:
    view = portfolio_view(
        symbols=SYMBOLS[:2], histories=histories(300), positions=[],
        realized={"SOLUSDT": D(3)}, equity=D(10_000), timeframe="5m",
    )  # fmt: skip

    assert [r["symbol"] for r in view["rows"]] == [*SYMBOLS[:2], "SOLUSDT"]
    assert view["totals"]["realized"] == D(3)


# -- the features -------------------------------------------------------------------------------


def pipeline(symbol: str, **states: str) -> PipelineView:
    features = {"timeframes": "on", "regime": "on", "volume_profile": "on"} | states
    failures = {name: 2 if state == "failed" else 0 for name, state in features.items()}
    return PipelineView(symbol, "RANGING", 0.7, 42.0, 21.25, 1.275, features, failures)


def test_feature_view_lists_each_features_state_and_failures_per_symbol() -> None:
    views = [pipeline("BTCUSDT"), pipeline("ETHUSDT", regime="failed", volume_profile="off")]

    view = feature_view(views, "adaptive", pipeline=True)

    assert view["message"] is None
    assert view["features"] == ["timeframes", "regime", "volume_profile"]
    eth = view["rows"][1]
    assert eth["symbol"] == "ETHUSDT" and eth["regime"] == "RANGING"
    assert eth["cells"] == [
        {"name": "timeframes", "state": "on", "failures": 0},
        {"name": "regime", "state": "failed", "failures": 2},
        {"name": "volume_profile", "state": "off", "failures": 0},
    ]
    assert view["counts"] == {"on": 4, "off": 1, "failed": 1}
    html = render("partials/pipeline_features.html", view)
    assert 'data-feature="regime" data-state="failed" data-failures="2"' in html
    assert '<span class="feature failed">failed</span>' in html


def test_feature_view_of_a_strategy_without_a_pipeline_says_so() -> None:
    view = feature_view([], "sma_cross", pipeline=False)

    assert view["message"] == (
        "The strategy sma_cross has no adaptive pipeline: it has no features to show."
    )
    assert view["rows"] == []
    assert "no adaptive pipeline" in render("partials/pipeline_features.html", view)


def test_feature_view_before_the_pipeline_runs_says_to_start_the_engine() -> None:
    view = feature_view([], "adaptive", pipeline=True)

    assert view["message"] == "The adaptive pipeline has not run yet: start the engine."


# -- the partials render whatever the views hold --------------------------------------------------


@pytest.mark.parametrize("n", [0, 40, WEEKS_2])
def test_the_symbol_partial_renders_from_no_bars_to_a_warm_pipeline(n: int) -> None:
    view = symbol_view(bars("BTCUSDT", n), "BTCUSDT", "5m")

    html = render("partials/pipeline_symbol.html", view)

    assert (NO_BARS in html) == (n == 0)
    assert "nan" not in html.lower()
    if n:
        assert html.count("data-timeframe=") == 4
        profile = view["shot"]["volume_profile"]
        assert ("No volume profile yet" in html) == (profile is None)
    if n == WEEKS_2:
        assert f'data-key="volume_profile.poc" data-value="{profile["poc"]}"' in html


def test_the_portfolio_partial_shows_unknown_correlations_as_a_dash() -> None:
    view = portfolio_view(
        symbols=SYMBOLS, histories=histories(600), positions=[], realized={}, equity=D(10_000),
        timeframe="5m",
    )  # fmt: skip

    html = render("partials/pipeline_portfolio.html", view)

    assert html.count(">1.00</td>") == 3
    assert html.count(">—</td>") == 6
    assert "nothing held" in html
