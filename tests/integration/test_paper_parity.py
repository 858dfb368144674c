"""Backtest and paper trading never drift apart; a restarted server resumes without loss."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from domain.errors import EndOfData
from domain.model import Trade
from lootcapital.bootstrap import bootstrap
from lootcapital.simulation import backtest, load_candles
from tests.integration.paper_harness import every, paper_settings, run_until, start, trimmed_sample

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def _key(t: Trade) -> tuple:
    return (t.symbol, t.side, t.qty, t.entry_time, t.entry_price, t.exit_time, t.exit_price)


def _backtest_trades(settings, strategy: str, params: dict) -> list[Trade]:
    files = [settings.sample_dir / f"binance_usdm_{s}_5m.csv.gz" for s in settings.symbols]
    candles = load_candles(
        settings, data=files, symbols=settings.symbols, timeframe="5m", start_ms=None, end_ms=None
    )
    result = backtest(
        settings,
        strategy=strategy,
        params={k: str(v) for k, v in params.items()},
        candles=candles,
        timeframe="5m",
        cash=settings.initial_cash,
        fee=settings.fee_taker,
        slippage_bps=settings.slippage_bps,
    )
    end = max(int(c.open_time[-1]) for c in candles.values()) + 300_000
    # The backtest closes open positions at the last close; paper keeps them open.
    return [t for t in result.trades if t.exit_time < end]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trimmed_sample(tmp_path_factory.mktemp("sample"), SYMBOLS, bars=3500)


@pytest.mark.parametrize(
    ("strategy", "params"),
    [
        ("sma_cross", {"fast": 10, "slow": 30}),
        ("trend_follow", {"trend_timeframe": "15m", "ema_fast": 8, "ema_slow": 21}),
    ],
)
def test_paper_replay_makes_the_same_trades_as_the_backtest(
    tmp_path: Path, sample: Path, strategy: str, params: dict
) -> None:
    settings = paper_settings(tmp_path, sample, SYMBOLS, strategy=strategy, strategy_params=params)
    expected = _backtest_trades(settings, strategy, params)

    container = start(settings)
    run_until(container)
    paper = every(container.service.trades)

    assert len(expected) > 10
    assert sorted(map(_key, paper)) == sorted(map(_key, expected))
    assert sum(t.pnl for t in paper) == pytest.approx(
        sum(t.pnl for t in expected), abs=Decimal("1e-9")
    )


def test_restart_resumes_after_the_last_bar_without_losing_or_duplicating(
    tmp_path: Path, sample: Path
) -> None:
    params = {"fast": 10, "slow": 30}
    settings = paper_settings(
        tmp_path, sample, SYMBOLS, strategy="sma_cross", strategy_params=params
    )
    expected = _backtest_trades(settings, "sma_cross", params)

    first = start(settings)
    run_until(first, candles=2000)
    stopped_at = first.service.status()
    orders_before = {o.id for o in every(first.service.orders)}

    second = bootstrap(settings)
    resumed = second.service.status()
    second.service.start()
    run_until(second)
    trades = every(second.service.trades)
    orders_after = {o.id for o in every(second.service.orders)}
    equity_times = [p.time for p in second.service.equity(limit=100_000)]

    assert 0 < stopped_at.candles_processed < 2 * 3500
    assert resumed.equity == pytest.approx(stopped_at.equity, abs=Decimal("1e-6"))
    assert orders_before <= orders_after
    assert sorted(map(_key, trades)) == sorted(map(_key, expected))
    assert len(equity_times) == len(set(equity_times)) == 3500
    assert second.service.status().stopped_reason == "end of data"


def test_starting_again_after_the_end_of_data_keeps_the_saved_progress(
    tmp_path: Path, sample: Path
) -> None:
    settings = paper_settings(
        tmp_path, sample, SYMBOLS, strategy="sma_cross", strategy_params={"fast": 10, "slow": 30}
    )
    first = start(settings)
    run_until(first)
    trades = len(every(first.service.trades))
    with pytest.raises(EndOfData):
        first.service.start()  # nothing left to replay

    restarted = bootstrap(settings)
    with pytest.raises(EndOfData):
        restarted.service.start()

    assert first.service.status().stopped_reason == "end of data"
    assert restarted.service.status().running is False
    assert restarted.service.status().candles_processed == 2 * 3500
    assert restarted.service.status().stopped_reason == "end of data"
    assert len(every(restarted.service.trades)) == trades
