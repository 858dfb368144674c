"""Leverage brackets, initial and maintenance margin and the liquidation price (domain/margin.py).

The brackets are Binance's real BTCUSDT and ETHUSDT tiers of 2024-10-24 (the sample shipped in
``data/sample``); every expected number is worked out by hand below from Binance's published
formula (one-way mode):

    LP = (WB − TMM1 + UPNL1 + cumB − side × |qty| × EP) / (|qty| × MMR_B − side × |qty|)

BTCUSDT tiers used here (notional in USDT: max leverage, maintenance ratio, cum):
1: [0, 50,000) 125×, 0.004, 0;  2: [50,000, 600,000) 100×, 0.005, 50;
3: [600,000, 3,000,000) 75×, 0.0065, 950.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.marketdata.leverage_brackets import read_leverage_brackets
from domain.margin import LeverageBracket, LeverageBrackets, MarginMode, liquidation_price
from tests.fixtures.data import sample_dir

D = Decimal
BRACKETS = read_leverage_brackets(sample_dir() / "binance_usdm_leverage_brackets_20241024.json")
BTC = BRACKETS["BTCUSDT"]
ETH = BRACKETS["ETHUSDT"]
CENT = D("0.01")


def test_the_sample_holds_the_btcusdt_tiers_the_worked_examples_use() -> None:
    first, second, third = BTC.brackets[:3]

    assert (first.notional_cap, first.initial_leverage, first.maint_margin_ratio, first.cum) == (
        D(50000),
        125,
        D("0.004"),
        D(0),
    )
    assert (second.notional_cap, second.initial_leverage, second.maint_margin_ratio) == (
        D(600000),
        100,
        D("0.005"),
    )
    assert second.cum == D(50)
    assert (third.maint_margin_ratio, third.cum) == (D("0.0065"), D(950))


# --- bracket lookup -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notional", "bracket"),
    [
        (D(0), 1),
        (D("49999.99"), 1),
        (D(50000), 2),  # a cap belongs to the next tier: floor <= notional < cap
        (D("599999.99"), 2),
        (D(600000), 3),
        (D(1_200_000_000), 12),
        (D(1_799_999_999), 12),
        (D(1_800_000_000), 12),  # the last cap and above: the last tier
        (D(5_000_000_000), 12),
    ],
)
def test_for_notional_finds_the_tier_whose_floor_is_at_or_below_and_cap_above(
    notional: Decimal, bracket: int
) -> None:
    assert BTC.for_notional(notional).bracket == bracket


def test_max_leverage_drops_at_the_tier_floor() -> None:
    assert BTC.max_leverage(D("49999.9")) == 125
    assert BTC.max_leverage(D(50000)) == 100
    assert BTC.max_leverage(D(2_000_000_000)) == 1


def test_a_negative_notional_is_refused() -> None:
    with pytest.raises(ValueError, match=r"BTCUSDT: notional must be >= 0, was -1"):
        BTC.for_notional(D(-1))


# --- maintenance and initial margin ---------------------------------------------------------


def test_maintenance_margin_is_notional_times_ratio_less_cum_of_its_tier() -> None:
    # 6,000 USDT, tier 1: 6000 × 0.004 − 0 = 24
    assert BTC.maintenance_margin(D(6000)) == D(24)
    # 500,000 USDT, tier 2: 500000 × 0.005 − 50 = 2,450
    assert BTC.maintenance_margin(D(500000)) == D(2450)
    # 1,000,000 USDT, tier 3: 1000000 × 0.0065 − 950 = 5,550
    assert BTC.maintenance_margin(D(1000000)) == D(5550)


def test_maintenance_margin_is_continuous_at_every_tier_floor() -> None:
    for low, high in zip(BTC.brackets, BTC.brackets[1:], strict=False):
        floor = high.notional_floor

        assert low.maintenance_margin(floor) == high.maintenance_margin(floor)


def test_initial_margin_is_notional_over_leverage() -> None:
    assert BTC.initial_margin(D(6000), 20) == D(300)
    assert BTC.initial_margin(D(50000), 100) == D(500)
    assert BTC.initial_margin(D(30000), 125) == D(240)


@pytest.mark.parametrize(
    ("notional", "leverage", "message"),
    [
        (D(6000), 0, r"leverage must be 1 to 125 for a notional of 6000 \(bracket 1\), was 0"),
        (D(6000), 126, r"leverage must be 1 to 125 .* was 126"),
        (D(50000), 125, r"leverage must be 1 to 100 for a notional of 50000 \(bracket 2\)"),
        (D(6000), D("2.5"), r"leverage must be an integer, was Decimal\('2.5'\)"),
        (D(6000), True, r"leverage must be an integer, was True"),
    ],
)
def test_initial_margin_refuses_a_leverage_outside_one_to_the_tier_maximum(
    notional: Decimal, leverage: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        BTC.initial_margin(notional, leverage)


def test_max_notional_is_the_cap_of_the_last_tier_that_allows_the_leverage() -> None:
    assert BTC.max_notional(125) == D(50000)
    assert BTC.max_notional(101) == D(50000)
    assert BTC.max_notional(100) == D(600000)
    assert BTC.max_notional(20) == D(100_000_000)
    assert BTC.max_notional(1) == D(1_800_000_000)
    with pytest.raises(ValueError, match="was 126"):
        BTC.max_notional(126)


# --- validation -----------------------------------------------------------------------------


def _tiers(index: int, **changes: object) -> list[LeverageBracket]:
    """BTCUSDT's real tiers with tier ``index`` (0-based) changed."""
    tiers = list(BTC.brackets)
    tiers[index] = replace(tiers[index], **changes)
    return tiers


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ([], r"XBTC: no leverage brackets"),
        (
            _tiers(1, notional_floor=D(60000)),
            r"XBTC bracket 2: notional_floor 60000 must equal bracket 1's notional_cap 50000",
        ),
        (
            _tiers(1, maint_margin_ratio=D("0.003")),
            r"XBTC bracket 2: maint_margin_ratio 0.003 is below bracket 1's 0.004",
        ),
        (
            _tiers(1, initial_leverage=126),
            r"XBTC bracket 2: initial_leverage 126 is above bracket 1's 125",
        ),
        (_tiers(1, cum=D(49)), r"XBTC bracket 2: cum must be 50"),
        (_tiers(0, notional_floor=D(1)), r"XBTC: bracket 1 must start at notional 0, was 1"),
        (BTC.brackets[1:], r"position 1 holds bracket 2"),
    ],
)
def test_brackets_that_break_the_rules_are_refused_with_symbol_and_bracket(
    tiers: list[LeverageBracket] | tuple[LeverageBracket, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LeverageBrackets("XBTC", tuple(tiers))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"maint_margin_ratio": D("0.4")}, r"bracket 1: maint_margin_ratio 0.4 must be below"),
        ({"maint_margin_ratio": D(1), "initial_leverage": 1}, r"must be a fraction in \[0, 1\)"),
        ({"notional_cap": D(0)}, r"bracket 1: notional_cap must be > notional_floor 0"),
        ({"initial_leverage": 0}, r"bracket 1: initial_leverage must be an integer >= 1, was 0"),
        ({"cum": D(-1)}, r"bracket 1: cum must be >= 0, was -1"),
        ({"cum": D("NaN")}, r"bracket 1: cum must be a finite Decimal"),
        ({"bracket": 0}, r"bracket 0: the number must be an integer >= 1"),
    ],
)
def test_a_bracket_with_a_bad_value_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(BTC.brackets[0], **changes)


# --- liquidation price: worked examples -----------------------------------------------------


def test_isolated_long_in_the_first_tier() -> None:
    # 0.1 BTC long at 60,000 (notional 6,000, tier 1) at 20×: isolated margin 6000 / 20 = 300.
    # LP = (300 + 0 − 0.1 × 60000) / (0.1 × 0.004 − 0.1) = −5700 / −0.0996 = 57,228.915662...
    # Check: notional at LP 5,722.89 is in tier 1; margin 300 + 0.1 × (57228.92 − 60000) =
    # 22.89 = maintenance 5722.89 × 0.004.
    margin = BTC.initial_margin(D(6000), 20)

    price = liquidation_price(BTC, qty=D("0.1"), entry_price=D(60000), wallet_balance=margin)

    assert margin == D(300)
    assert price == D(-5700) / D("-0.0996")
    assert price is not None and price.quantize(CENT) == D("57228.92")


def test_isolated_long_at_the_highest_leverage() -> None:
    # 0.5 BTC at 60,000 (30,000) at 125×: margin 240.
    # LP = (240 − 30000) / (0.5 × 0.004 − 0.5) = 29760 / 0.498 = 59,759.036144...
    price = liquidation_price(BTC, qty=D("0.5"), entry_price=D(60000), wallet_balance=D(240))

    assert price == D(29760) / D("0.498")
    assert price.quantize(CENT) == D("59759.04")


def test_isolated_short_whose_liquidation_notional_crosses_into_the_next_tier() -> None:
    # 1 BTC short at 49,000 (notional 49,000: tier 1) at 10×: margin 4,900.
    # Tier 1 would give (4900 + 0 + 49000) / (0.004 + 1) = 53,685.26, a notional of 53,685 that
    # is not in tier 1 (cap 50,000). Tier 2: (4900 + 50 + 49000) / (1 × 0.005 + 1)
    # = 53950 / 1.005 = 53,681.592039..., notional 53,681.59 in [50,000, 600,000): the answer.
    price = liquidation_price(BTC, qty=D(-1), entry_price=D(49000), wallet_balance=D(4900))

    assert D(53900) / D("1.004") > BTC.brackets[0].notional_cap  # tier 1's answer is outside it
    assert price == D(53950) / D("1.005")
    assert price.quantize(CENT) == D("53681.59")
    assert BTC.for_notional(price).bracket == 2


def test_isolated_long_whose_liquidation_notional_falls_into_the_lower_tier() -> None:
    # 10 BTC long at 61,000 (610,000: tier 3, 75× max) at 20×: margin 30,500.
    # Tier 3: (30500 + 950 − 610000) / (10 × 0.0065 − 10) = 578550 / 9.935 = 58,233.52 → notional
    # 582,335 is below tier 3's floor 600,000. Tier 2: (30500 + 50 − 610000) / (0.05 − 10)
    # = 579450 / 9.95 = 58,236.180904..., notional 582,361.81 in tier 2: the answer.
    margin = BTC.initial_margin(D(610000), 20)

    price = liquidation_price(BTC, qty=D(10), entry_price=D(61000), wallet_balance=margin)

    assert margin == D(30500)
    assert D(578550) / D("9.935") * 10 < BTC.brackets[2].notional_floor
    assert price == D(579450) / D("9.95")
    assert price.quantize(CENT) == D("58236.18")


def test_a_liquidation_notional_exactly_on_a_tier_floor() -> None:
    # 1 BTC long at 60,000 with 10,200 margin: at 50,000 the margin is 10200 − 10000 = 200 and
    # the maintenance 50000 × 0.004 − 0 = 50000 × 0.005 − 50 = 200: LP = 50,000 exactly
    # (tier 2's line: (10200 + 50 − 60000) / (0.005 − 1) = 49750 / 0.995 = 50,000).
    price = liquidation_price(BTC, qty=D(1), entry_price=D(60000), wallet_balance=D(10200))

    assert price == D(50000)


def test_cross_long_with_a_losing_ethusdt_short_beside_it() -> None:
    # Cross wallet 10,000 USDT. Other position: 5 ETH short at 2,500, mark 2,600:
    # UPNL1 = −5 × (2600 − 2500) = −500; notional 5 × 2600 = 13,000, ETHUSDT tier 1
    # (0.004, cum 0): TMM1 = 13000 × 0.004 = 52.
    # BTC: 0.5 long at 60,000 (30,000, tier 1):
    # LP = (10000 − 52 − 500 + 0 − 0.5 × 60000) / (0.5 × 0.004 − 0.5) = 20552 / 0.498
    # = 41,269.076305..., notional 20,634.54 in tier 1.
    other_mm = ETH.maintenance_margin(5 * D(2600))
    other_upnl = D(-5) * (D(2600) - D(2500))

    price = liquidation_price(
        BTC,
        qty=D("0.5"),
        entry_price=D(60000),
        wallet_balance=D(10000),
        mode=MarginMode.CROSS,
        other_maintenance_margin=other_mm,
        other_unrealized_pnl=other_upnl,
    )

    assert (other_mm, other_upnl) == (D(52), D(-500))
    assert price == D(20552) / D("0.498")
    assert price.quantize(CENT) == D("41269.08")


def test_cross_short_is_pulled_closer_by_the_other_positions_loss() -> None:
    # Cross wallet 5,000; 0.5 BTC short at 60,000; other positions: TMM1 52, UPNL1 −500.
    # LP = (5000 − 52 − 500 + 0 + 0.5 × 60000) / (0.5 × 0.004 + 0.5) = 34448 / 0.502
    # = 68,621.513944... (notional 34,310.76, tier 1). Alone (TMM1 = UPNL1 = 0):
    # 35000 / 0.502 = 69,721.11.
    def cross(other_mm: Decimal, other_upnl: Decimal) -> Decimal | None:
        return liquidation_price(
            BTC,
            qty=D("-0.5"),
            entry_price=D(60000),
            wallet_balance=D(5000),
            mode="cross",
            other_maintenance_margin=other_mm,
            other_unrealized_pnl=other_upnl,
        )

    assert cross(D(52), D(-500)) == D(34448) / D("0.502")
    assert cross(D(0), D(0)) == D(35000) / D("0.502")


def test_cross_without_other_positions_equals_isolated_with_the_same_balance() -> None:
    isolated = liquidation_price(BTC, qty=D("-2"), entry_price=D(65000), wallet_balance=D(9000))
    cross = liquidation_price(
        BTC, qty=D("-2"), entry_price=D(65000), wallet_balance=D(9000), mode=MarginMode.CROSS
    )

    assert isolated == cross


def test_a_long_whose_margin_covers_the_whole_notional_has_no_liquidation_price() -> None:
    # 1× long: margin 60,000 = notional; LP = (60000 − 60000) / (…) = 0: never liquidated.
    assert liquidation_price(BTC, qty=D(1), entry_price=D(60000), wallet_balance=D(60000)) is None
    assert liquidation_price(BTC, qty=D(1), entry_price=D(60000), wallet_balance=D(70000)) is None


def test_a_short_below_maintenance_at_every_price_is_liquidated_at_any_price() -> None:
    # Cross wallet −40,000 with a 0.5 BTC short at 60,000: even at price 0 the margin balance
    # −40000 + 30000 is negative. The formula gives −10000 / 0.502 < 0; returned as 0.
    price = liquidation_price(
        BTC, qty=D("-0.5"), entry_price=D(60000), wallet_balance=D(-40000), mode="cross"
    )

    assert price == D(0)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"qty": D(0)}, r"qty must not be 0"),
        ({"entry_price": D(0)}, r"entry_price must be > 0, was 0"),
        ({"wallet_balance": D(-1)}, r"isolated wallet_balance must be >= 0, was -1"),
        ({"other_maintenance_margin": D(5)}, r"isolated mode ignores other positions"),
        ({"other_unrealized_pnl": D(-5)}, r"isolated mode ignores other positions"),
        (
            {"other_maintenance_margin": D(-5), "mode": MarginMode.CROSS},
            r"other_maintenance_margin must be >= 0, was -5",
        ),
        ({"mode": "portfolio"}, r"'portfolio' is not a valid MarginMode"),
    ],
)
def test_liquidation_price_refuses_bad_input(arguments: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "qty": D(1),
        "entry_price": D(60000),
        "wallet_balance": D(3000),
        **arguments,
    }

    with pytest.raises(ValueError, match=message):
        liquidation_price(BTC, **values)  # type: ignore[arg-type]


# --- liquidation price: invariants ----------------------------------------------------------

sizes = st.decimals(D("0.001"), D("2000"), places=3)  # up to ~300M USDT: tiers 1 to 8
prices = st.decimals(D("1000"), D("150000"), places=1)
sides = st.sampled_from([1, -1])


def _opened(size: Decimal, entry: Decimal, data: st.DataObject) -> tuple[Decimal, int]:
    """The notional of ``size`` at ``entry`` and a leverage allowed for it."""
    notional = size * entry
    leverage = data.draw(st.integers(1, BTC.max_leverage(notional)), label="leverage")
    return notional, leverage


@settings(max_examples=300, deadline=None)
@given(size=sizes, entry=prices, side=sides, data=st.data())
def test_liquidation_price_lies_on_the_losing_side_of_the_entry(
    size: Decimal, entry: Decimal, side: int, data: st.DataObject
) -> None:
    notional, leverage = _opened(size, entry, data)
    margin = BTC.initial_margin(notional, leverage)

    price = liquidation_price(BTC, qty=side * size, entry_price=entry, wallet_balance=margin)

    if side > 0:
        assert (price is None) == (leverage == 1)
        assert price is None or 0 < price < entry
    else:
        assert price is not None and price > entry


@settings(max_examples=300, deadline=None)
@given(
    size=sizes,
    entry=prices,
    side=sides,
    added=st.decimals(D("0.01"), D("1000000"), places=2),
    data=st.data(),
)
def test_adding_isolated_margin_moves_the_liquidation_price_away_from_the_entry(
    size: Decimal, entry: Decimal, side: int, added: Decimal, data: st.DataObject
) -> None:
    notional, leverage = _opened(size, entry, data)
    margin = BTC.initial_margin(notional, leverage)

    before = liquidation_price(BTC, qty=side * size, entry_price=entry, wallet_balance=margin)
    after = liquidation_price(
        BTC, qty=side * size, entry_price=entry, wallet_balance=margin + added
    )

    if side > 0:
        assert after is None or (before is not None and after < before)
    else:
        assert before is not None and after is not None and after > before


@settings(max_examples=200, deadline=None)
@given(size=sizes, entry=prices, extra=st.decimals(D(0), D("1000000"), places=2))
def test_a_long_with_margin_at_least_its_notional_has_no_liquidation_price(
    size: Decimal, entry: Decimal, extra: Decimal
) -> None:
    margin = size * entry + extra

    assert liquidation_price(BTC, qty=size, entry_price=entry, wallet_balance=margin) is None


@settings(max_examples=300, deadline=None)
@given(
    size=sizes,
    entry=prices,
    side=sides,
    wallet=st.decimals(D(0), D("50000000"), places=2),
    other_mm=st.decimals(D(0), D("100000"), places=2),
    other_upnl=st.decimals(D("-100000"), D("100000"), places=2),
)
def test_at_the_liquidation_price_the_margin_balance_equals_the_maintenance_margin(
    size: Decimal,
    entry: Decimal,
    side: int,
    wallet: Decimal,
    other_mm: Decimal,
    other_upnl: Decimal,
) -> None:
    # The defining equation, with the tier of the notional at the liquidation price: it checks
    # that the tier search picks the right tier wherever the price lands.
    price = liquidation_price(
        BTC,
        qty=side * size,
        entry_price=entry,
        wallet_balance=wallet,
        mode=MarginMode.CROSS,
        other_maintenance_margin=other_mm,
        other_unrealized_pnl=other_upnl,
    )

    if price is None or price == 0:
        # No positive root: the margin balance at price 0 is on the safe side (long) or already
        # below maintenance (short).
        balance_at_zero = wallet - other_mm + other_upnl - side * size * entry
        assert side * balance_at_zero >= 0
        return
    balance = wallet - other_mm + other_upnl + side * size * (price - entry)
    assert abs(balance - BTC.maintenance_margin(size * price)) < D("1e-12")
