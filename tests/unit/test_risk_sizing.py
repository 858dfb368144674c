"""Position sizing with caps (domain/risk/sizing.py): hand-computed cases for the risk size and
each cap, a real BTCUSDT case (Binance's lot rules and a 2×ATR stop on the real 5m bars), and
Hypothesis invariants (never above any cap, the largest size that fits, never negative).

Every expected number is worked out by hand in the test: ``qty = equity × risk / |entry − stop|``
(spec 003), then ``min`` with each cap, then rounded down to the lot step.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.marketdata.exchange_info import load_instruments
from domain.errors import ConfigError
from domain.features import ATR
from domain.risk.sizing import (
    RiskLimits,
    Sizing,
    SizingCap,
    drawdown_from_peak,
    size_position,
)
from tests.fixtures.data import load_candles, sample_dir

D = Decimal
BIG = D(10) ** 12  # "no constraint" for the available margin


def size(limits: RiskLimits | None = None, **kwargs: Decimal) -> Sizing:
    """``size_position`` around a base case: equity 10,000, long at 100 with the stop at 98
    (distance 2), whole-unit lot step, unlimited margin; risk 1 % → 50 units uncapped."""
    args = {
        "equity": D(10_000),
        "entry": D(100),
        "stop": D(98),
        "step_size": D(1),
        "available_margin": BIG,
    }
    args.update(kwargs)
    return size_position(limits or RiskLimits(), **args)


# -- the risk size --------------------------------------------------------------------------


def test_spec_003_example_sizes_1000_shares() -> None:
    # Account $100,000, risk 1 %, entry $50, stop $49: 100,000 × 0.01 / 1 = 1,000 shares.
    result = size(equity=D(100_000), entry=D(50), stop=D(49))

    assert result.qty == D(1000)
    assert result.uncapped_qty == D(1000)
    assert result.bound_by is SizingCap.RISK


def test_a_short_with_its_stop_above_the_entry_sizes_on_the_distance() -> None:
    # Short at 100, stop 102: the same distance 2 → 10,000 × 0.01 / 2 = 50.
    assert size(stop=D(102)).qty == D(50)


def test_quantity_is_rounded_down_to_the_lot_step() -> None:
    # 10,000 × 0.01 / (4,050 − 3,993) = 100 / 57 = 1.754385… → 1.754 with 0.001 steps.
    result = size(entry=D(4050), stop=D(3993), step_size=D("0.001"))

    assert result.qty == D("1.754")
    assert result.uncapped_qty == D(100) / D(57)


# -- each cap -------------------------------------------------------------------------------


def test_max_notional_counts_the_position_already_held_in_the_symbol() -> None:
    # (3,000 − 1,000 held) / 100 = 20 < 50.
    result = size(RiskLimits(max_notional=D(3000)), symbol_notional=D(1000))

    assert (result.qty, result.bound_by) == (D(20), SizingCap.MAX_NOTIONAL)
    assert result.uncapped_qty == D(50)


def test_max_leverage_caps_the_gross_notional_of_all_positions() -> None:
    # (2 × 10,000 − 18,000) / 100 = 20.
    result = size(RiskLimits(max_leverage=D(2)), gross_notional=D(18_000))

    assert (result.qty, result.bound_by) == (D(20), SizingCap.MAX_LEVERAGE)


def test_available_margin_is_multiplied_by_the_symbols_leverage() -> None:
    # 500 margin × 3 / 100 = 15.
    result = size(available_margin=D(500), leverage=D(3))

    assert (result.qty, result.bound_by) == (D(15), SizingCap.AVAILABLE_MARGIN)


def test_portfolio_heat_leaves_room_for_the_risk_not_yet_open() -> None:
    # heat 3 % of 10,000 = 300; 260 already at risk → 40 / distance 2 = 20.
    result = size(RiskLimits(heat_fraction=D("0.03")), open_risk=D(260))

    assert (result.qty, result.bound_by) == (D(20), SizingCap.HEAT)


def test_drawdown_steps_scale_the_risk_size() -> None:
    limits = RiskLimits(drawdown_steps=((D("0.1"), D("0.5")), (D("0.2"), D("0.25"))))

    at_threshold = size(limits, drawdown=D("0.1"))  # "> 10 %": exactly 10 % is not above
    half = size(limits, drawdown=D("0.15"))
    quarter = size(limits, drawdown=D("0.25"))  # 50 × 0.25 = 12.5 → 12

    assert (at_threshold.qty, at_threshold.bound_by) == (D(50), SizingCap.RISK)
    assert (half.qty, half.bound_by, half.drawdown_multiplier) == (
        D(25),
        SizingCap.DRAWDOWN,
        D("0.5"),
    )
    assert (quarter.qty, quarter.bound_by) == (D(12), SizingCap.DRAWDOWN)
    assert quarter.uncapped_qty == D(50)


def test_the_smallest_cap_wins_and_every_cap_is_reported() -> None:
    limits = RiskLimits(
        max_notional=D(4000), max_leverage=D(3), heat_fraction=D("0.05")
    )  # 40, (30,000 − 27,000)/100 = 30, (500 − 0)/2 = 250
    result = size(limits, gross_notional=D(27_000), available_margin=D(3500))  # margin: 35

    assert (result.qty, result.bound_by) == (D(30), SizingCap.MAX_LEVERAGE)
    assert result.limits == {
        SizingCap.RISK: D(50),
        SizingCap.MAX_NOTIONAL: D(40),
        SizingCap.MAX_LEVERAGE: D(30),
        SizingCap.AVAILABLE_MARGIN: D(35),
        SizingCap.HEAT: D(250),
    }


def test_a_tie_names_the_risk_size_not_the_cap() -> None:
    assert size(RiskLimits(max_notional=D(5000))).bound_by is SizingCap.RISK


def test_a_cap_that_rounds_up_in_the_division_is_still_never_exceeded() -> None:
    # 0.999…9 (30 nines) / 1 rounds to 1.000… at Decimal's 28 digits; flooring that to the
    # whole-unit step would give 1, worth more than the cap: the check after rounding says 0.
    cap = D("0." + "9" * 30)
    result = size(RiskLimits(max_notional=cap), entry=D(1), stop=D("0.5"))

    assert result.limits[SizingCap.MAX_NOTIONAL] == 1  # the rounded quotient
    assert (result.qty, result.bound_by) == (0, SizingCap.LOT_STEP)


# -- zero, with the reason ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "kwargs", "reason"),
    [
        (RiskLimits(max_leverage=D(2)), {"gross_notional": D(25_000)}, SizingCap.MAX_LEVERAGE),
        (RiskLimits(max_notional=D(1000)), {"symbol_notional": D(1200)}, SizingCap.MAX_NOTIONAL),
        (RiskLimits(heat_fraction=D("0.02")), {"open_risk": D(250)}, SizingCap.HEAT),
        (RiskLimits(), {"available_margin": D(-5)}, SizingCap.AVAILABLE_MARGIN),
        (RiskLimits(), {"equity": D(-100)}, SizingCap.RISK),
        (
            RiskLimits(drawdown_steps=((D("0.3"), D(0)),)),
            {"drawdown": D("0.4")},
            SizingCap.DRAWDOWN,
        ),
    ],
)
def test_nothing_fits_gives_zero_never_negative(
    limits: RiskLimits, kwargs: dict[str, Decimal], reason: SizingCap
) -> None:
    result = size(limits, **kwargs)

    assert result.qty == 0
    assert result.bound_by is reason
    assert all(v >= 0 for v in result.limits.values())


def test_a_size_below_one_lot_step_is_zero_for_the_lot_step() -> None:
    # 10 × 0.01 / 2 = 0.05 < one step of 0.1.
    result = size(equity=D(10), step_size=D("0.1"))

    assert (result.qty, result.bound_by) == (0, SizingCap.LOT_STEP)
    assert "below one lot step 0.1" in result.message


def test_a_size_below_the_minimum_order_value_is_zero() -> None:
    # 50 × 100 = 5,000 < 6,000.
    result = size(min_notional=D(6000))

    assert (result.qty, result.bound_by) == (0, SizingCap.MIN_NOTIONAL)


def test_the_decision_becomes_a_stored_reason_with_its_numbers() -> None:
    reason = size(RiskLimits(max_notional=D(3000))).as_reason()

    assert reason.component == "sizing"
    assert reason.message == "qty 30 (risk size 50): set by the max notional per symbol (30)"
    assert reason.values["qty"] == 30.0
    assert reason.values["uncapped_qty"] == 50.0
    assert reason.values["limit_max_notional"] == 30.0


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"stop": D(100)}, "stop must differ from entry, both were 100"),
        ({"entry": D(0)}, "entry must be > 0, was 0"),
        ({"step_size": D(0)}, "step_size must be > 0, was 0"),
        ({"leverage": D(0)}, "leverage must be > 0, was 0"),
        ({"drawdown": D("1.5")}, "drawdown must be in [0, 1], was 1.5"),
        ({"open_risk": D(-1)}, "open_risk must be >= 0, was -1"),
    ],
)
def test_bad_inputs_are_refused_naming_the_value(kwargs: dict[str, Decimal], text: str) -> None:
    with pytest.raises(ValueError) as caught:
        size(**kwargs)

    assert str(caught.value) == text


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"risk_fraction": D(0)}, "risk_fraction"),
        ({"risk_fraction": 0.01}, "risk_fraction"),  # a float, not a Decimal
        ({"max_notional": D(-1)}, "max_notional"),
        ({"max_leverage": D(0)}, "max_leverage"),
        ({"heat_fraction": D("0.005")}, "heat_fraction"),  # below the 1 % risk fraction
        ({"drawdown_steps": ((D("0.2"), D("0.5")), (D("0.1"), D("0.25")))}, "drawdown_steps"),
        ({"drawdown_steps": ((D("0.1"), D("0.25")), (D("0.2"), D("0.5")))}, "drawdown_steps"),
        ({"drawdown_steps": ((D(1), D("0.5")),)}, "drawdown_steps"),
        ({"drawdown_steps": ((D("0.1"), D("1.5")),)}, "drawdown_steps"),
    ],
)
def test_bad_limits_are_a_config_error_naming_the_field(
    kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        RiskLimits(**kwargs)  # type: ignore[arg-type]

    assert caught.value.field == field


def test_drawdown_from_peak() -> None:
    assert drawdown_from_peak(D(9000), D(10_000)) == D("0.1")
    assert drawdown_from_peak(D(11_000), D(10_000)) == 0  # above the peak: no drawdown
    assert drawdown_from_peak(D(-5), D(10_000)) == 1
    with pytest.raises(ValueError, match="peak must be > 0, was 0"):
        drawdown_from_peak(D(1), D(0))


# -- real data ------------------------------------------------------------------------------


def test_real_btcusdt_entry_with_a_two_atr_stop_on_binance_lot_rules() -> None:
    # Long BTCUSDT at the close of the bar opening 2025-10-10 20:50 UTC (115,328.1, during the
    # sell-off before the 21:15 cascade), the stop 2 × ATR(14) below, on a 10,000 USDT account
    # at 1 % risk, 10× leverage, max leverage 3; Binance's BTCUSDT tick 0.1, lot step 0.001 and
    # min notional 100 (exchange info of 2025-10-30).
    btc = load_instruments(sample_dir() / "binance_usdm_exchange_info_20251030.json")["BTCUSDT"]
    candles = load_candles("binance_usdm_BTCUSDT_5m.csv.gz")
    at = int(dt.datetime(2025, 10, 10, 20, 50, tzinfo=dt.UTC).timestamp() * 1000)
    i = int(np.searchsorted(candles.open_time, at))
    atr = ATR(14).batch(candles)["atr"][i]
    entry = D(str(candles.close[i]))
    stop = btc.round_price(entry - D(str(2 * atr)), up=False)
    common = {
        "equity": D(10_000),
        "entry": entry,
        "stop": stop,
        "step_size": btc.step_size,
        "leverage": D(10),
        "min_notional": btc.min_notional,
    }
    limits = RiskLimits(max_leverage=D(3))

    roomy = size_position(limits, available_margin=D(1500), **common)
    tight = size_position(limits, available_margin=D(1000), **common)

    # ATR 417.045… → stop 115,328.1 − 834.09… = 114,494.009… → 114,494.0 on the tick; risk
    # size 100 / 834.1 = 0.119889… BTC → 0.119. The caps: margin 1,500 × 10 / 115,328.1 =
    # 0.13006… BTC, leverage 30,000 / 115,328.1 = 0.26012… BTC; with 1,000 of margin
    # 10,000 / 115,328.1 = 0.086709… BTC → 0.086, which binds.
    assert (entry, round(atr, 4), stop) == (D("115328.1"), 417.0453, D("114494.0"))
    assert roomy.uncapped_qty == D(100) / D("834.1")
    assert (roomy.qty, roomy.bound_by) == (D("0.119"), SizingCap.RISK)
    assert (tight.qty, tight.bound_by) == (D("0.086"), SizingCap.AVAILABLE_MARGIN)
    assert tight.qty * entry <= D(10_000) < (tight.qty + btc.step_size) * entry


# -- invariants -----------------------------------------------------------------------------

money = st.decimals(min_value=D(0), max_value=D(10) ** 7, places=2)
price = st.decimals(min_value=D("0.01"), max_value=D(10) ** 6, places=2)
fraction = st.decimals(min_value=D("0.001"), max_value=D(1), places=3)
steps = st.sampled_from([D("0.001"), D("0.01"), D(1), D("0.00001")])


@st.composite
def cases(draw: st.DrawFn) -> tuple[RiskLimits, dict[str, Decimal]]:
    risk = draw(st.decimals(min_value=D("0.001"), max_value=D("0.1"), places=3))
    heat = draw(st.none() | st.decimals(min_value=risk, max_value=D(1), places=3))
    cuts = draw(st.lists(fraction.filter(lambda x: x < 1), max_size=3, unique=True))
    mults = sorted(draw(st.lists(fraction, min_size=len(cuts), max_size=len(cuts))), reverse=True)
    limits = RiskLimits(
        risk_fraction=risk,
        max_notional=draw(st.none() | price),
        max_leverage=draw(st.none() | st.decimals(min_value=D("0.1"), max_value=D(125), places=1)),
        heat_fraction=heat,
        drawdown_steps=tuple(zip(sorted(cuts), mults, strict=True)),
    )
    entry, stop = draw(price), draw(price)
    kwargs = {
        "equity": draw(st.decimals(min_value=D(-1000), max_value=D(10) ** 7, places=2)),
        "entry": entry,
        "stop": stop if stop != entry else entry + D(1),
        "step_size": draw(steps),
        "available_margin": draw(money),
        "leverage": draw(st.sampled_from([D(1), D(3), D(20), D(125)])),
        "gross_notional": draw(money),
        "symbol_notional": draw(money),
        "open_risk": draw(money),
        "drawdown": draw(st.decimals(min_value=D(0), max_value=D(1), places=3)),
    }
    return limits, kwargs


def breaks_a_cap(limits: RiskLimits, x: dict[str, Decimal], qty: Decimal) -> list[str]:
    """The caps that ``qty`` breaks, each checked by its defining product (module docstring)."""
    notional = qty * x["entry"]
    distance = abs(x["entry"] - x["stop"])
    risk = x["equity"] * limits.risk_fraction * limits.drawdown_multiplier(x["drawdown"])
    broken = []
    if qty * distance > max(risk, D(0)):
        broken.append("risk")
    if limits.max_notional is not None and x["symbol_notional"] + notional > limits.max_notional:
        broken.append("max_notional")
    if (
        limits.max_leverage is not None
        and x["gross_notional"] + notional > limits.max_leverage * x["equity"]
    ):
        broken.append("max_leverage")
    if notional > x["available_margin"] * x["leverage"]:
        broken.append("available_margin")
    if (
        limits.heat_fraction is not None
        and x["open_risk"] + qty * distance > limits.heat_fraction * x["equity"]
    ):
        broken.append("heat")
    return broken


@settings(max_examples=400, deadline=None)
@given(cases())
def test_sizing_never_exceeds_any_cap_and_is_the_largest_that_fits(
    case: tuple[RiskLimits, dict[str, Decimal]],
) -> None:
    limits, x = case

    result = size_position(limits, **x)

    assert result.qty >= 0
    assert result.qty % x["step_size"] == 0
    if result.qty > 0:
        assert breaks_a_cap(limits, x, result.qty) == []
        assert result.bound_by not in (SizingCap.LOT_STEP, SizingCap.MIN_NOTIONAL)
    # One more lot step would break a cap (the size is not needlessly small).
    assert breaks_a_cap(limits, x, result.qty + x["step_size"]) != []
    assert result.qty == 0 or result.qty <= result.limits[result.bound_by]


@settings(max_examples=200, deadline=None)
@given(cases(), st.decimals(min_value=D(0), max_value=D(10) ** 6, places=2))
def test_the_minimum_order_value_only_ever_turns_a_size_into_zero(
    case: tuple[RiskLimits, dict[str, Decimal]], min_notional: Decimal
) -> None:
    limits, x = case

    plain = size_position(limits, **x)
    floored = size_position(limits, **x, min_notional=min_notional)

    assert floored.qty in (plain.qty, 0)
    if floored.qty == 0 and plain.qty > 0:
        assert floored.bound_by is SizingCap.MIN_NOTIONAL
        assert plain.qty * x["entry"] < min_notional
