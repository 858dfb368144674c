"""The adaptive pipeline's events on real SQLite and PostgreSQL: stored per run, read back
newest first, filtered by symbol, kind and time, paged; a replayed bar writes in place."""

from __future__ import annotations

from collections.abc import Callable

from adapters.storage.sql.unit_of_work import SqlUnitOfWork
from domain.pipeline_events import PipelineEvent, regime_event, threshold_event
from domain.regime import Regime
from domain.thresholds import ThresholdChange

NewUow = Callable[..., SqlUnitOfWork]
T0 = 1_756_771_200_000  # 2025-09-02 00:00 UTC
H = 3_600_000


def _events() -> list[PipelineEvent]:
    return [
        regime_event("BTCUSDT", T0, None, Regime.UNCERTAIN),
        threshold_event("BTCUSDT", ThresholdChange(T0 + H, 25.0, 1.5, 32.5, 1.95, 100.0, 1.3)),
        regime_event("ETHUSDT", T0 + H, None, Regime.RANGING),
        regime_event("BTCUSDT", T0 + 2 * H, Regime.UNCERTAIN, Regime.TRENDING_BULLISH),
    ]


def test_events_come_back_newest_first_per_run_and_filtered(new_uow: NewUow) -> None:
    events = _events()
    with new_uow() as uow:
        for event in events:
            uow.pipeline.add(event)
        uow.commit()
    with new_uow("other-run") as uow:
        uow.pipeline.add(events[0])
        uow.commit()

    with new_uow() as uow:
        every = uow.pipeline.page(limit=10).items
        btc = uow.pipeline.page(symbol="BTCUSDT", kind="regime").items
        later = uow.pipeline.page(start=T0 + H, end=T0 + H).items
        first = uow.pipeline.page(limit=2)
        rest = uow.pipeline.page(limit=2, cursor=first.next_cursor)
    with new_uow("other-run") as uow:
        other = uow.pipeline.page().items

    assert every == [events[3], events[2], events[1], events[0]]
    assert every[1].message == "ETHUSDT regime none -> RANGING"
    assert btc == [events[3], events[0]]
    assert {(e.symbol, e.kind) for e in later} == {("ETHUSDT", "regime"), ("BTCUSDT", "thresholds")}
    assert first.items + rest.items == every and rest.next_cursor is None
    assert other == [events[0]]


def test_a_replayed_bar_writes_its_event_in_place(new_uow: NewUow) -> None:
    event = _events()[1]
    for _ in range(2):
        with new_uow() as uow:
            uow.pipeline.add(event)
            uow.commit()

    with new_uow() as uow:
        stored = uow.pipeline.page().items

    assert stored == [event]
    assert stored[0].values["volatility_pct"] == 100.0
