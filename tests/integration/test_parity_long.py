"""Parity trade for trade on long data: backtest ≡ paper replay ≡ paper replay stopped, crashed
and restarted (:func:`tests.integration.parity.assert_parity`), for both minimal strategies
with their default parameters.

Data: the whole shipped sample (60 days, three symbols) for both; two 305-day files of the shared
data folder (BTCUSDT and ETHUSDT 5m) for trend_follow under the ``slow`` marker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.data import sample_dir, shared_file
from tests.integration.parity import assert_parity

STRATEGIES = ["sma_cross", "trend_follow"]
SAMPLE_SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
LONG_SYMBOLS = ["BTCUSDT", "ETHUSDT"]
TIMEOUT = 600.0
"""Seconds one replay may take (a 305-day paper replay takes 1.5 to 2.5 minutes)."""


@pytest.mark.usefixtures("quiet_crashes")
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_shipped_sample_backtest_paper_and_restarted_paper_trade_alike(
    tmp_path: Path, strategy: str
) -> None:
    assert_parity(tmp_path, sample_dir(), SAMPLE_SYMBOLS, strategy, seed=60, timeout=TIMEOUT)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.usefixtures("quiet_crashes")
def test_305_days_backtest_paper_and_restarted_paper_trade_alike(tmp_path: Path) -> None:
    """trend_follow only: its stops, take-profits and trailing exits cover every path of
    sma_cross's crossings and more; sma_cross keeps its sample parity here and its SIGKILL
    runs (test_crash_recovery.py), which keeps the suite under its 15 minutes."""
    data = shared_file("binance_usdm_BTCUSDT_5m.csv.gz").parent
    shared_file("binance_usdm_ETHUSDT_5m.csv.gz")
    assert_parity(tmp_path, data, LONG_SYMBOLS, "trend_follow", seed=305, timeout=TIMEOUT)
