"""``trend_follow`` on real data, checked against indicators computed independently here, and
``build_strategy``'s parameter validation.

The 1h trend is rebuilt with pandas ``resample`` (complete hours only), the EMAs and the ATR with
plain Python loops (TA-Lib's definitions: EMA seeded with the SMA of the first ``n`` values,
Wilder's ATR seeded with the mean of the first ``n`` true ranges); ADX, whose seeding has more
steps, comes from TA-Lib applied to the independently resampled hours. The orders are those the
real simulated venue received (a recording wrapper, :mod:`tests.fixtures.venues`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
import talib

from domain.candles import Candles
from domain.errors import ConfigError
from domain.model import Fill, Instrument, Order, OrderType, Side, Signal
from domain.strategies import build_strategy
from tests.fixtures.data import load_sample_candles
from tests.fixtures.venues import backtest_candles, sample_instruments

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
BAR_MS, HOUR_MS = 300_000, 3_600_000
CASH = Decimal(10_000)
ATR_MULT, ADX_MIN, ATR_PERIOD = 2.0, 20.0, 14
# default sizing (the max-notional cap binds on these symbols) and a small risk (risk binds)
PARAM_SETS = {"default": {}, "small_risk": {"risk": "0.001"}}


@dataclass(frozen=True)
class Run:
    candles: Candles
    instrument: Instrument
    orders: list[Order]
    fills: list[Fill]
    signals: list[Signal]
    risk: float


@lru_cache(maxsize=16)
def backtest(strategy: str, symbol: str, params_name: str = "default") -> Run:
    params = PARAM_SETS[params_name] if strategy == "trend_follow" else {}
    candles = load_sample_candles(symbol)
    run = backtest_candles(build_strategy(strategy, params, "5m"), {symbol: candles}, cash=CASH)
    risk = float(params.get("risk", 0.01))
    return Run(candles, sample_instruments(symbol)[symbol], run.orders, run.result.fills,
               run.result.signals, risk)  # fmt: skip


# -- independent indicators -------------------------------------------------------------------
def reference_ema(values: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(values), np.nan)
    if len(values) < n:
        return out
    alpha = 2.0 / (n + 1)
    e = sum(float(v) for v in values[:n]) / n
    out[n - 1] = e
    for i in range(n, len(values)):
        e += alpha * (float(values[i]) - e)
        out[i] = e
    return out


def reference_atr(candles: Candles, n: int) -> np.ndarray:
    h, lo, c = candles.high, candles.low, candles.close
    out = np.full(len(c), np.nan)
    tr = [0.0] + [
        max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, len(c))
    ]
    a = sum(tr[1 : n + 1]) / n
    out[n] = a
    for i in range(n + 1, len(c)):
        a = (a * (n - 1) + tr[i]) / n
        out[i] = a
    return out


@dataclass(frozen=True)
class HourlyTrend:
    open_ms: np.ndarray
    ema_fast: np.ndarray
    ema_slow: np.ndarray
    adx: np.ndarray

    def at_close(self, close_ms: int) -> tuple[float, float, float]:
        """EMA50, EMA200 and ADX of the last hour complete at ``close_ms``."""
        j = int(np.searchsorted(self.open_ms + HOUR_MS, close_ms, "right")) - 1
        assert j >= 0
        return float(self.ema_fast[j]), float(self.ema_slow[j]), float(self.adx[j])


@lru_cache(maxsize=4)
def hourly_trend(symbol: str) -> HourlyTrend:
    c = load_sample_candles(symbol)
    frame = pd.DataFrame(
        {"open": c.open, "high": c.high, "low": c.low, "close": c.close},
        index=pd.to_datetime(c.open_time, unit="ms", utc=True),
    )
    hours = frame.resample("1h", origin="epoch", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last"}
    )
    counts = frame["close"].resample("1h", origin="epoch", label="left", closed="left").count()
    hours = hours[counts == 12]
    open_ms = (hours.index.as_unit("ms").asi8).astype(np.int64)
    high, low, close = (hours[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    return HourlyTrend(
        open_ms,
        reference_ema(close, 50),
        reference_ema(close, 200),
        talib.ADX(high, low, close, timeperiod=14),
    )


def entries(run: Run) -> list[Order]:
    return [o for o in run.orders if o.tag == "trend_follow" and not o.reduce_only]


def decision_bar(run: Run, o: Order) -> int:
    t = int(np.searchsorted(run.candles.open_time, o.created_time - BAR_MS))
    assert int(run.candles.open_time[t]) + BAR_MS == o.created_time
    return t


def cash_before(run: Run, time: int) -> Decimal:
    return CASH + sum((f.realized_pnl - f.fee for f in run.fills if f.time < time), Decimal(0))


def floor_step(qty: Decimal, step: Decimal) -> Decimal:
    return (qty / step).to_integral_value(ROUND_FLOOR) * step


# -- trend_follow -----------------------------------------------------------------------------
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_every_long_entry_has_the_completed_1h_trend_up_and_adx_above_the_minimum(
    symbol: str,
) -> None:
    run, trend = backtest("trend_follow", symbol), hourly_trend(symbol)

    longs = [o for o in entries(run) if o.side is Side.BUY]

    assert longs
    for o in longs:
        fast, slow, strength = trend.at_close(o.created_time)
        assert fast > slow, f"long at {o.created_time} with EMA50 {fast} <= EMA200 {slow}"
        assert strength > ADX_MIN, f"long at {o.created_time} with ADX {strength}"


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_every_short_entry_has_the_completed_1h_trend_down_and_adx_above_the_minimum(
    symbol: str,
) -> None:
    run, trend = backtest("trend_follow", symbol), hourly_trend(symbol)

    shorts = [o for o in entries(run) if o.side is Side.SELL]

    assert shorts
    for o in shorts:
        fast, slow, strength = trend.at_close(o.created_time)
        assert fast < slow and strength > ADX_MIN


@pytest.mark.parametrize("params_name", PARAM_SETS)
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_entry_size_is_equity_times_risk_over_the_stop_distance_capped_by_max_notional(
    symbol: str, params_name: str
) -> None:
    run = backtest("trend_follow", symbol, params_name)
    atr = reference_atr(run.candles, ATR_PERIOD)
    step = run.instrument.step_size

    risk_bound = 0
    for o in entries(run):
        t = decision_bar(run, o)
        equity = cash_before(run, o.created_time)  # entries happen flat: equity is cash
        close = Decimal(repr(float(run.candles.close[t])))
        by_risk = equity * Decimal(repr(run.risk)) / Decimal(repr(ATR_MULT * float(atr[t])))
        by_cap = equity / close  # allocation 1 (one symbol) × max_exposure 1
        expected = floor_step(min(by_risk, by_cap), step)
        assert o.qty == expected, f"entry at {o.created_time}: {o.qty} != {expected}"
        risk_bound += by_risk < by_cap
    assert entries(run)
    if params_name == "small_risk":
        assert risk_bound == len(entries(run))


@pytest.mark.parametrize("params_name", PARAM_SETS)
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_protective_stop_sits_atr_mult_times_atr_from_the_entry_fill(
    symbol: str, params_name: str
) -> None:
    run = backtest("trend_follow", symbol, params_name)
    atr = reference_atr(run.candles, ATR_PERIOD)
    tick = run.instrument.tick_size
    stops = [o for o in run.orders if o.tag == "trend_follow:stop"]

    assert entries(run)
    for o in entries(run):
        (fill,) = [f for f in run.fills if f.order_id == o.id]
        (stop,) = [s for s in stops if s.link_id == o.id]
        distance = (fill.price - stop.stop_price) * o.side.sign  # type: ignore[operator]
        wanted = Decimal(repr(ATR_MULT * float(atr[decision_bar(run, o)])))
        assert stop.type is OrderType.STOP and stop.reduce_only
        assert (stop.side, stop.qty, stop.created_time) == (o.side.opposite, fill.qty, fill.time)
        # the distance is rounded up to the tick: never closer than atr_mult × ATR
        assert wanted - Decimal("1e-9") <= distance < wanted + tick


@pytest.mark.parametrize("strategy", ["trend_follow", "sma_cross"])
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_every_signal_carries_non_empty_reasons(strategy: str, symbol: str) -> None:
    run = backtest(strategy, symbol)

    assert run.signals
    for s in run.signals:
        assert s.reasons, f"signal at {s.time} has no reasons"
        assert all(r.component and r.message for r in s.reasons)


# -- build_strategy ---------------------------------------------------------------------------
def test_build_strategy_rejects_an_unknown_strategy_naming_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        build_strategy("moon_shot", {}, "5m")

    assert err.value.field == "strategy"
    assert "moon_shot" in err.value.message


def test_build_strategy_rejects_an_unknown_parameter_naming_it() -> None:
    with pytest.raises(ConfigError) as err:
        build_strategy("sma_cross", {"fats": 10}, "5m")

    assert err.value.field == "fats"
    assert "fats" in err.value.message


def test_build_strategy_rejects_timeframe_as_a_parameter() -> None:
    with pytest.raises(ConfigError) as err:
        build_strategy("trend_follow", {"timeframe": "1m"}, "5m")

    assert err.value.field == "timeframe"


def test_build_strategy_rejects_a_value_of_the_wrong_type_naming_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        build_strategy("sma_cross", {"fast": "ten"}, "5m")

    assert err.value.field == "fast"
    assert "ten" in err.value.message


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("sma_cross", {"fast": "0"}, "fast"),
        ("sma_cross", {"fast": "30", "slow": "10"}, "slow"),
        ("trend_follow", {"risk": "0.5"}, "risk"),
        ("trend_follow", {"adx_min": "-1"}, "adx_min"),
        ("trend_follow", {"atr_mult": "nan"}, "atr_mult"),
        ("trend_follow", {"ema_fast": 200, "ema_slow": 50}, "ema_slow"),
    ],
)
def test_build_strategy_rejects_an_out_of_range_value_naming_the_field(
    name: str, params: dict[str, str | int], field: str
) -> None:
    with pytest.raises(ConfigError) as err:
        build_strategy(name, params, "5m")

    assert err.value.field == field


def test_build_strategy_rejects_a_trend_timeframe_that_is_not_a_multiple_of_the_bars() -> None:
    with pytest.raises(ConfigError) as err:
        build_strategy("trend_follow", {"trend_timeframe": "5m"}, "15m")

    assert err.value.field == "trend_timeframe"


def test_build_strategy_converts_string_parameters_to_the_field_types() -> None:
    strategy = build_strategy("trend_follow", {"ema_fast": "20", "risk": "0.005"}, "5m")

    assert strategy.params()["ema_fast"] == 20
    assert strategy.params()["risk"] == 0.005


def test_build_strategy_gives_a_fresh_instance_each_call() -> None:
    first = build_strategy("sma_cross", {"fast": "10", "slow": "30"}, "5m")

    second = build_strategy("sma_cross", {"fast": "10", "slow": "30"}, "5m")

    assert first is not second
    assert first.params() == second.params() == {"fast": 10, "slow": 30}
