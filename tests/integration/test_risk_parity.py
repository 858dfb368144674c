"""A risk gate that closes everything on a daily-loss trip trades alike in a backtest and in a
paper replay of the same bars: the shipped sample (60 days, three symbols) at 3x leverage with
funding, where the limit trips many times."""

from __future__ import annotations

from pathlib import Path

from service_layer.risk_gate import RISK_TAG
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


def test_a_daily_loss_close_all_closes_the_same_positions_at_the_same_bars(tmp_path: Path) -> None:
    data = sample_dir()
    settings = paper_settings(
        tmp_path,
        data,
        SYMBOLS,
        strategy="sma_cross",
        leverage=3,
        risk={"daily_loss": {"enabled": True, "limit": "0.01", "close_all": True}},
    )
    expected, fundings = backtest_run(
        settings, [data / f"binance_usdm_{s}_5m.csv.gz" for s in SYMBOLS]
    )

    container = start(settings)
    run_until(container, timeout=300)
    paper = read_run(settings.database)

    risk_closes = [o for o in paper.orders if o.tag == RISK_TAG and o.filled_qty > 0]
    assert len(risk_closes) >= 3  # the limit tripped and closed positions
    assert sorted(map(trade_key, paper.trades)) == sorted(map(trade_key, expected))
    assert paper.fundings == sorted(fundings, key=lambda p: (p.time_ms, p.symbol))
