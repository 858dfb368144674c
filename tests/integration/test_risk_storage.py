"""Risk events and risk limit changes on real SQLite and PostgreSQL: stored with who and when,
read back newest first, per run; the daily equity closes the equity-curve VaR reads."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal

from adapters.storage.sql.unit_of_work import SqlUnitOfWork
from domain.model import EquityPoint
from domain.ports import LimitsChange
from domain.risk import AlertKind, Breaker, RiskAlert, StateChange, TradingState
from service_layer.risk_config import RiskConfig

NewUow = Callable[..., SqlUnitOfWork]
T0 = 1_756_771_200_000  # 2025-09-02 00:00 UTC
DAY = 86_400_000


def test_state_changes_and_alerts_come_back_newest_first_with_who(new_uow: NewUow) -> None:
    halt = StateChange("account", TradingState.ACTIVE, TradingState.HALTED, "by hand: news (api)",
                       T0, Breaker.MANUAL)  # fmt: skip
    loud = RiskAlert("BTCUSDT", AlertKind.UNUSUAL_VOLUME, "unusual volume on BTCUSDT: RVOL 7.2 > 5",
                     T0 + 300_000, 7.25)  # fmt: skip
    warming = RiskAlert("ETHUSDT", AlertKind.UNUSUAL_VOLUME, "no value", T0 + 600_000, math.nan)

    with new_uow() as uow:
        uow.risk.add_event(halt, "api")
        uow.risk.add_event(loud)
        uow.risk.add_event(warming)
        uow.commit()
    with new_uow("other-run") as uow:
        uow.risk.add_event(halt, "someone else")
        uow.commit()
    with new_uow() as uow:
        records = uow.risk.events(limit=10)

    assert [r.who for r in records] == [None, None, "api"]
    assert records[2].event == halt
    assert records[1].event == loud
    assert isinstance(records[0].event, RiskAlert) and math.isnan(records[0].event.value)


def test_the_latest_limits_change_is_the_one_in_force(new_uow: NewUow) -> None:
    first = RiskConfig.from_json({"daily_loss": {"enabled": True}}).to_json()
    second = RiskConfig.from_json({"daily_loss": {"enabled": True, "limit": "0.03"}}).to_json()

    with new_uow() as uow:
        before = uow.risk.latest_limits()
        uow.risk.add_limits(LimitsChange(T0, "api", first))
        uow.risk.add_limits(LimitsChange(T0 + 1, "api", second))
        uow.commit()
    with new_uow() as uow:
        latest = uow.risk.latest_limits()

    assert before is None
    assert latest == LimitsChange(T0 + 1, "api", second)
    assert RiskConfig.from_json(latest.limits).breakers.daily_loss.limit == Decimal("0.03")


def test_day_ends_take_the_last_point_of_each_utc_day_a_close_at_midnight_included(
    new_uow: NewUow,
) -> None:
    def point(time: int, equity: str) -> EquityPoint:
        return EquityPoint(time, Decimal(equity), Decimal(equity))

    points = [
        point(T0 + 300_000, "100"), point(T0 + DAY, "101"),  # 00:00 closes day 1
        point(T0 + DAY + 300_000, "99"), point(T0 + 2 * DAY - 300_000, "98.5"),
        point(T0 + 3 * DAY + 300_000, "97"),  # day 3 has no point
    ]  # fmt: skip
    with new_uow() as uow:
        for p in points:
            uow.equity.add(p)
        uow.commit()
    with new_uow() as uow:
        ends = uow.risk.day_ends()
        last_two = uow.risk.day_ends(limit=2)

    assert [p.time for p in ends] == [T0 + DAY, T0 + 2 * DAY - 300_000, T0 + 3 * DAY + 300_000]
    assert [p.equity for p in ends] == [Decimal(101), Decimal("98.5"), Decimal(97)]
    assert last_two == ends[1:]
