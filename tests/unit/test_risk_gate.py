"""The risk gate (service_layer/risk_gate.py): its configuration's JSON form, the order checks
(Hypothesis: halted admits no new exposure, reducing never lets exposure grow, sized entries
never break a cap), and that feeding the breakers sparsely (at a few observations, from
vectorized inputs) moves them exactly as feeding every bar close of real data would."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.candles import Candles
from domain.errors import ConfigError
from domain.ledger import LedgerChanges
from domain.model import ExitPlan, Order, OrderType, Position, Side
from domain.ports import LimitsChange
from domain.resample import resample
from domain.risk import (
    Breaker,
    CircuitBreakers,
    RiskAlert,
    StateChange,
    TradingState,
    atr_percentile,
    position_after,
    relative_volume,
)
from domain.strategies.base import Portfolio
from lootcapital.settings import Settings
from lootcapital.simulation import risk_config, risk_gate
from service_layer.history import CandleHistory
from service_layer.risk_config import RiskConfig
from service_layer.risk_gate import RiskGate
from service_layer.risk_inputs import BarInputs, simple_atr
from tests.fixtures.data import load_sample_candles
from tests.fixtures.venues import sample_instruments

D = Decimal
BTC, ETH = "BTCUSDT", "ETHUSDT"
T0 = 1_756_771_200_000  # 2025-09-02 00:00 UTC, the sample's first bar
RULES = sample_instruments(BTC, ETH)
MARKS = {BTC: D(110_000), ETH: D(4_000)}


EQUITY = D(10_000)


def portfolio(
    positions: dict[str, Decimal] | None = None,
    equity: Decimal = EQUITY,
    open_orders: dict[str, tuple[Order, ...]] | None = None,
) -> Portfolio:
    held = {s: Position(s, q, MARKS[s], T0) for s, q in (positions or {}).items() if q != 0}
    gross = sum((abs(p.qty) * MARKS[s] for s, p in held.items()), D(0))
    return Portfolio(
        time=T0,
        equity=equity,
        cash=equity,
        margin_used=gross,
        positions=MappingProxyType(held),
        open_orders=MappingProxyType(open_orders or {}),
        marks=MARKS,
        instruments=RULES,
    )


def order(
    symbol: str = BTC,
    side: Side = Side.BUY,
    qty: str = "0.01",
    *,
    reduce_only: bool = False,
    stop_distance: Decimal | None = None,
    n: int = 0,
) -> Order:
    exits = None if stop_distance is None else ExitPlan(stop_distance=stop_distance)
    return Order(f"o{n}", symbol, side, OrderType.MARKET, D(qty), T0,
                 reduce_only=reduce_only, exits=exits)  # fmt: skip


def gate(limits: dict | None = None) -> RiskGate:
    return RiskGate(RiskConfig.from_json(limits or {}), timeframe="5m")


# -- configuration ------------------------------------------------------------------------------


def test_the_default_config_enforces_nothing_and_its_json_round_trips() -> None:
    config = RiskConfig()

    again = RiskConfig.from_json(json.loads(json.dumps(config.to_json())))

    assert not config.enforces_anything
    assert again == config
    assert all(not section["enabled"] for section in config.to_json().values())


def test_a_partial_document_keeps_the_rest() -> None:
    base = RiskConfig.from_json({"daily_loss": {"enabled": True, "limit": "0.03"}})

    changed = RiskConfig.from_json({"daily_loss": {"close_all": True}}, base=base)

    assert changed.breakers.daily_loss.limit == D("0.03")
    assert changed.breakers.daily_loss.enabled and changed.breakers.daily_loss.close_all


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"daily_loss": {"limit": "1.5"}}, "daily_loss.limit"),
        ({"daily_loss": {"limit": 0.05}}, "daily_loss.limit"),
        ({"daily_loss": {"state": "active"}}, "daily_loss.state"),
        ({"sizing": {"risk_fraction": "0.02", "heat_fraction": "0.01"}}, "sizing.heat_fraction"),
        ({"sizing": {"drawdown_steps": [["0.2", "0.5"], ["0.1", "0.25"]]}},
         "sizing.drawdown_steps"),
        ({"volatility_spike": {"release_pct": 99}}, "volatility_spike.release_pct"),
        ({"volatility_spike": {"window": 0}}, "volatility_spike.window"),
        ({"volatility_spike": {"timeframe": "7x"}}, "volatility_spike.timeframe"),
        ({"unusual_volume": {"period": 0}}, "unusual_volume.period"),
        ({"consecutive_losses": {"count": 0}}, "consecutive_losses.count"),
        ({"max_leverage": {"limit": "-1"}}, "max_leverage.limit"),
        ({"daily_loss": {"limt": "0.05"}}, "daily_loss.limt"),
        ({"dayly_loss": {}}, "dayly_loss"),
    ],
)  # fmt: skip
def test_a_bad_value_is_a_config_error_naming_section_and_field(document: dict, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RiskConfig.from_json(document)

    assert caught.value.field == field


# -- order checks -------------------------------------------------------------------------------


def test_a_gate_with_nothing_on_passes_every_order_unchanged() -> None:
    orders = [order(n=0), order(ETH, Side.SELL, "0.5", n=1)]

    kept, notes = gate().screen(orders, portfolio({BTC: D("0.02")}), T0)

    assert kept == orders and notes == []


def test_a_manual_halt_refuses_every_order_and_says_why() -> None:
    g = gate()
    (change,) = g.halt(T0, "news at 14:30", "alice")

    kept, notes = g.screen([order(reduce_only=True)], portfolio({BTC: D("-0.02")}), T0 + 1)

    assert change == StateChange(
        "account", TradingState.ACTIVE, TradingState.HALTED, "by hand: news at 14:30 (alice)",
        T0, Breaker.MANUAL,
    )  # fmt: skip
    assert kept == []
    assert "trading is halted" in notes[0] and "news at 14:30" in notes[0]


def test_closed_names_the_symbols_a_lasting_hold_keeps_from_new_exposure() -> None:
    g = gate()
    assert g.closed((BTC, ETH), T0) == frozenset()

    g.halt(T0, "news", "alice", scope=BTC, state=TradingState.REDUCING)
    assert g.closed((BTC, ETH), T0 + 1) == {BTC}

    g.halt(T0 + 2, "fed day", "bob")  # the account's hold closes every symbol
    assert g.closed((BTC, ETH), T0 + 3) == {BTC, ETH}

    g.resume(T0 + 4)
    g.resume(T0 + 4, scope=BTC)
    assert g.closed((BTC, ETH), T0 + 5) == frozenset()


def test_a_volatility_hold_does_not_close_a_symbol_for_sure() -> None:
    g = gate({"volatility_spike": {"enabled": True}})
    g.breakers.on_bar(BTC, T0, 99.5, 1.0)  # lifts on the bars: not known before catching up
    g.halt(T0, "news", "alice", scope=ETH)

    assert [h.scope for h in g.breakers.holds_of(Breaker.VOLATILITY_SPIKE)] == [BTC]
    assert g.closed((BTC, ETH), T0 + 1) == {ETH}


def test_entries_are_counted_as_they_pass_within_one_decision() -> None:
    g = gate({"max_open_positions": {"enabled": True, "limit": 1}})

    kept, notes = g.screen([order(BTC, n=0), order(ETH, n=1)], portfolio(), T0)

    assert [o.symbol for o in kept] == [BTC]
    assert "max open positions: 1 open ≥ limit 1" in notes[0]


def test_an_entry_over_the_max_leverage_is_refused_with_the_numbers() -> None:
    g = gate({"max_leverage": {"enabled": True, "limit": "2"}})

    refused = g.check(order(qty="0.1"), D(0), portfolio({ETH: D(3)}), T0)

    # 3 ETH × 4,000 + 0.1 BTC × 110,000 = 23,000 on equity 10,000: 2.30×.
    assert refused is not None and "2.30× > limit 2×" in refused


def test_sizing_cuts_an_entry_to_the_risk_fraction_at_its_stop() -> None:
    g = gate({"sizing": {"enabled": True, "risk_fraction": "0.01"}})

    # 1 % of 10,000 = 100 at risk; a 2,000 stop distance allows 0.05 BTC.
    kept, notes = g.screen([order(qty="0.2", stop_distance=D(2_000))], portfolio(), T0)

    assert kept[0].qty == D("0.05")
    assert "cut to 0.05 by sizing" in notes[0]


def test_sizing_caps_an_entry_without_a_stop_by_the_notional_caps() -> None:
    g = gate({"sizing": {"enabled": True, "max_notional": "5500"}})

    # No stop: no risk size; the max notional per symbol allows 5,500 / 110,000 = 0.05 BTC.
    kept, notes = g.screen([order(qty="0.2")], portfolio(), T0)

    assert kept[0].qty == D("0.05")
    assert "the max notional per symbol" in notes[0]


def test_sizing_refuses_an_entry_when_nothing_fits() -> None:
    g = gate({"sizing": {"enabled": True, "max_notional": "5500"}})

    kept, notes = g.screen([order(qty="0.2")], portfolio({BTC: D("0.05")}), T0)

    assert kept == []
    assert notes[0].startswith(f"{BTC} at {T0}: refused by sizing")


positions = st.decimals(min_value=-5, max_value=5, places=3)
quantities = st.decimals(min_value=D("0.001"), max_value=10, places=3)
sides = st.sampled_from(Side)


@settings(max_examples=300, deadline=None)
@given(positions, sides, quantities, st.booleans())
def test_halted_accepts_no_new_exposure(
    held: Decimal, side: Side, qty: Decimal, reduce_only: bool
) -> None:
    g = gate({"max_open_positions": {"enabled": True}})
    g.halt(T0, "test", "tester")
    new = Order("x", BTC, side, OrderType.MARKET, qty, T0, reduce_only=reduce_only)

    kept, _ = g.screen([new], portfolio({BTC: held}), T0)

    assert kept == []
    assert g.check(new, held, portfolio({BTC: held}), T0) is not None


@settings(max_examples=300, deadline=None)
@given(positions, sides, quantities, st.booleans())
def test_while_reducing_no_order_that_passes_increases_exposure_or_flips(
    held: Decimal, side: Side, qty: Decimal, reduce_only: bool
) -> None:
    g = gate()
    g.halt(T0, "test", "tester", state=TradingState.REDUCING)
    new = Order("x", BTC, side, OrderType.MARKET, qty, T0, reduce_only=reduce_only)

    kept, _ = g.screen([new], portfolio({BTC: held}), T0)

    for passed in kept:
        after = position_after(held, passed.side, passed.qty, passed.reduce_only)
        assert abs(after) <= abs(held)
        assert after == 0 or (after > 0) == (held > 0)


caps = st.fixed_dictionaries(
    {
        "max_notional": st.none() | st.decimals(min_value=100, max_value=50_000, places=2),
        "max_leverage": st.none() | st.decimals(min_value=D("0.5"), max_value=5, places=2),
        "heat_fraction": st.none() | st.decimals(min_value=D("0.02"), max_value=1, places=3),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    caps,
    st.decimals(min_value=0, max_value=2, places=3),  # ETH already held
    st.decimals(min_value=D("0.001"), max_value=1, places=3),  # BTC asked
    st.decimals(min_value=100, max_value=20_000, places=0),  # stop distance
)
def test_sized_entries_never_exceed_any_cap(
    limits: dict[str, Decimal | None], eth: Decimal, qty: Decimal, distance: Decimal
) -> None:
    sizing = {"enabled": True, "risk_fraction": "0.02"}
    sizing.update({k: None if v is None else str(v) for k, v in limits.items()})
    g = RiskGate(RiskConfig.from_json({"sizing": sizing}), timeframe="5m", leverage=D(3))
    book = portfolio({ETH: eth})
    equity = book.equity

    kept, _ = g.screen([order(qty=str(qty), stop_distance=distance)], book, T0)

    for entry in kept:
        notional = entry.qty * MARKS[BTC]
        gross = book.margin_used + notional
        assert entry.qty <= qty
        assert entry.qty * distance <= D("0.02") * equity
        assert gross <= 3 * equity  # the available margin at 3x
        if limits["max_notional"] is not None:
            assert notional <= limits["max_notional"]
        if limits["max_leverage"] is not None:
            assert gross <= limits["max_leverage"] * equity
        if limits["heat_fraction"] is not None:
            open_risk = eth * MARKS[ETH]  # no stop order: its whole notional is at risk
            assert open_risk + entry.qty * distance <= limits["heat_fraction"] * equity


# -- sparse feeding equals feeding every bar ----------------------------------------------------

HOUR = 3_600_000


def windows(**bars: Candles) -> dict[str, CandleHistory]:
    out = {}
    for symbol, candles in bars.items():
        out[symbol] = history = CandleHistory()
        history.append(candles)
    return out


def every_bar_reference(config: RiskConfig, bars: dict[str, Candles]) -> list[object]:
    """The breakers fed at every 5m close: the ATR percentile of the last complete hour (as of
    that close) and the bar's RVOL, computed by the domain's batch functions."""
    inputs = config.inputs
    breakers = CircuitBreakers(config.breakers)
    feed = []
    for symbol, candles in bars.items():
        hours = resample(candles, 300_000, HOUR)
        pct = atr_percentile(simple_atr(hours, inputs.atr_period), inputs.atr_window)
        hour_close = hours.open_time + HOUR
        close = candles.open_time + 300_000
        at = np.searchsorted(hour_close, close, "right") - 1
        pct_now = np.where(at >= 0, pct[np.maximum(at, 0)], np.nan)
        rvol = relative_volume(candles.volume, inputs.rvol_period)
        feed += [(int(t), symbol, float(p), float(r))
                 for t, p, r in zip(close, pct_now, rvol, strict=True)]  # fmt: skip
    feed.sort(key=lambda x: x[0])
    events: list[object] = []
    for time, symbol, p, r in feed:
        events += breakers.on_bar(symbol, time, p, r)
    return events


def test_input_flips_move_the_breakers_as_every_bar_of_real_data_would() -> None:
    bars = {s: load_sample_candles(s) for s in (BTC, ETH)}
    config = RiskConfig.from_json(
        {
            "volatility_spike": {"enabled": True, "percentile_pct": 90, "release_pct": 70,
                                 "window": 240},
            "unusual_volume": {"enabled": True, "rvol": 6},
        }
    )  # fmt: skip
    g = RiskGate(config, timeframe="5m")
    flat = portfolio()
    end = int(bars[BTC].open_time[-1]) + 300_000

    for t in range(T0 + 7 * 86_400_000, end + 1, 9 * 86_400_000):  # a few sparse looks
        g.observe(t, flat, windows(**bars), LedgerChanges())
    g.observe(end, flat, windows(**bars), LedgerChanges())

    reference = every_bar_reference(config, bars)
    assert g.drain_events() == reference
    assert sum(isinstance(e, StateChange) for e in reference) >= 4  # trips and lifts
    assert sum(isinstance(e, RiskAlert) for e in reference) >= 4


def test_nan_inputs_while_warming_up_raise_nothing() -> None:
    short = load_sample_candles(BTC).slice(0, 300)  # 25 hours: no 30-day percentile yet
    config = RiskConfig.from_json({"volatility_spike": {"enabled": True}})
    g = RiskGate(config, timeframe="5m")

    g.observe(int(short.open_time[-1]) + 300_000, portfolio(), windows(BTCUSDT=short),
              LedgerChanges())  # fmt: skip

    assert g.drain_events() == []


def test_state_round_trips_through_json() -> None:
    g = gate({"consecutive_losses": {"enabled": True}})
    g.halt(T0, "why", "bob")
    g.observe(T0 + HOUR, portfolio({BTC: D("0.01")}), windows(BTCUSDT=load_sample_candles(BTC)),
              LedgerChanges())  # fmt: skip

    again = gate({"consecutive_losses": {"enabled": True}})
    again.restore(json.loads(json.dumps(g.state())))

    assert again.state() == g.state()
    assert again.status(T0 + HOUR, [BTC]).account is TradingState.HALTED


def test_a_state_of_another_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        gate().restore({"version": 99})


def test_inputs_config_refuses_a_zero_window() -> None:
    with pytest.raises(ConfigError) as caught:
        BarInputs(atr_window=0)

    assert caught.value.field == "atr_window"


# -- settings -----------------------------------------------------------------------------------


def test_settings_by_environment_build_the_gate_and_stored_limits_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOOTCAPITAL_RISK__DAILY_LOSS__ENABLED", "true")
    monkeypatch.setenv("LOOTCAPITAL_RISK__DAILY_LOSS__LIMIT", "0.03")
    settings = Settings.model_validate({"data_dir": tmp_path})
    stored = LimitsChange(T0, "api", {"daily_loss": {"limit": "0.02"}})

    from_settings = risk_config(settings)
    from_storage = risk_config(settings, stored)

    assert from_settings.breakers.daily_loss.enabled
    assert from_settings.breakers.daily_loss.limit == D("0.03")
    assert from_storage.breakers.daily_loss.limit == D("0.02")
    assert risk_gate(settings, "5m") is not None


def test_by_default_a_backtest_has_no_gate_and_paper_one_that_enforces_nothing(
    tmp_path: Path,
) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path})

    paper = risk_gate(settings, "5m", paper=True)

    assert risk_gate(settings, "5m") is None
    assert paper is not None and not paper.config.enforces_anything
