"""The live venues' exporter: reconciliation drift is exported for every kind from 0 once a
venue was reconciled (so that a healthy run has the series an alert and a panel read), and not
for a venue never reconciled (a market-data connection)."""

from __future__ import annotations

from api.venue_metrics import VenueCollector
from domain.reconciliation import DriftKind
from domain.venues import VenueStatus

DRIFT = "lootcapital_reconciliation_drift_total"


def _drift(*venues: VenueStatus) -> dict[tuple[str, str], float]:
    collector = VenueCollector()
    collector.update(venues)
    return {
        (s.labels["venue"], s.labels["kind"]): s.value
        for family in collector.collect()
        for s in family.samples
        if s.name == DRIFT
    }


def test_a_reconciled_venue_exports_every_drift_kind_from_zero_with_its_counts() -> None:
    venue = VenueStatus("binance-usdm", 2_000, True, last_reconciliation=1_000,
                        drift={"missed_fill": 2})  # fmt: skip

    exported = _drift(venue)

    assert exported == {("binance-usdm", str(k)): 0.0 for k in DriftKind} | {
        ("binance-usdm", "missed_fill"): 2.0
    }


def test_a_venue_never_reconciled_exports_no_drift() -> None:
    market_data = VenueStatus("mexc", 2_000, True)

    assert _drift(market_data) == {}
