"""The risk gate trades alike in a backtest and in a paper replay of the same bars (the shipped
sample: 60 days, three symbols, at 3x leverage with funding): a daily loss limit that closes
everything when it trips, and halts after losing streaks whose refusals the backtest makes
without catching up (lasting holds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.risk import Breaker, StateChange, TradingState
from service_layer.risk_gate import RISK_TAG
from service_layer.risk_service import RiskControl
from tests.fixtures.data import sample_dir
from tests.integration.paper_harness import (
    backtest_run,
    paper_settings,
    read_run,
    run_until,
    start,
    trade_key,
)

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


DAILY_LOSS = {"daily_loss": {"enabled": True, "limit": "0.01", "close_all": True}}
STREAKS = {"consecutive_losses": {"enabled": True, "count": 2, "cooldown_ms": 43_200_000}}


@pytest.mark.parametrize("strategy", ["sma_cross", "trend_follow"])
def test_a_daily_loss_close_all_and_losing_streak_halts_trade_alike(
    tmp_path: Path, strategy: str
) -> None:
    data = sample_dir()
    settings = paper_settings(
        tmp_path,
        data,
        SYMBOLS,
        strategy=strategy,
        leverage=3,
        risk=DAILY_LOSS | STREAKS,
    )
    expected, fundings, _ = backtest_run(
        settings, [data / f"binance_usdm_{s}_5m.csv.gz" for s in SYMBOLS]
    )

    container = start(settings)
    run_until(container, timeout=300)
    paper = read_run(settings.database)
    halts = {
        r.event.source
        for r in RiskControl(container.service).events(limit=10_000)
        if isinstance(r.event, StateChange) and r.event.to_state is not TradingState.ACTIVE
    }

    risk_closes = [o for o in paper.orders if o.tag == RISK_TAG and o.filled_qty > 0]
    assert risk_closes  # the limit tripped and closed positions
    assert halts == {Breaker.DAILY_LOSS, Breaker.CONSECUTIVE_LOSSES}
    assert len(paper.trades) > 10
    assert sorted(map(trade_key, paper.trades)) == sorted(map(trade_key, expected))
    assert paper.fundings == sorted(fundings, key=lambda p: (p.time_ms, p.symbol))
