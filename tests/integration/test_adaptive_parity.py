"""Issue 6: a backtest of ``adaptive`` over five symbols with every feature on gives the same
trades as the same data replayed through paper mode and through a paper run stopped, killed
and restarted midway (:func:`tests.integration.parity.assert_parity`), and the same stored
pipeline history (threshold adjustments, regime changes).

Data: the first 20 days of the five 5m USD-M files of the shared data folder (the pipeline's
slowest input, the 4h EMA(50), is warm after about 8.5 days), with their funding and mark
files.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from tests.fixtures.data import sample_dir, shared_file
from tests.integration.paper_harness import EXCHANGE_INFO
from tests.integration.parity import assert_parity

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
BARS = 20 * 288
TIMEOUT = 300.0


def _first_bars(target: Path, bars: int, symbols: list[str] = SYMBOLS) -> Path:
    """A data folder holding the first ``bars`` 5m bars of each of :data:`SYMBOLS` from the
    shared data, their funding and mark files, and the exchange info."""
    target.mkdir(parents=True)
    shutil.copy(sample_dir() / EXCHANGE_INFO, target / EXCHANGE_INFO)
    for symbol in symbols:
        name = f"binance_usdm_{symbol}_5m.csv.gz"
        with gzip.open(shared_file(name), "rt") as src:
            lines = [next(src) for _ in range(bars + 1)]
        with gzip.open(target / name, "wt") as dst:
            dst.writelines(lines)
        for kind in ("funding", "mark_1h"):
            other = f"binance_usdm_{symbol}_{kind}.csv.gz"
            shutil.copy(shared_file(other), target / other)
    return target


@pytest.mark.usefixtures("quiet_crashes")
def test_five_symbols_backtest_paper_and_restarted_paper_trade_alike(tmp_path: Path) -> None:
    data = _first_bars(tmp_path / "data", BARS)
    assert_parity(tmp_path, data, SYMBOLS, "adaptive", seed=6, timeout=TIMEOUT)


@pytest.mark.usefixtures("quiet_crashes")
def test_walk_forward_ml_trades_alike_in_backtest_paper_and_restarted_paper(
    tmp_path: Path,
) -> None:
    """Issue 7: with the ML probability as an input, fitted walk-forward every week on the
    last 3 days of bars, the models (fitted again after the restart, at the same boundaries on
    the same bars) predict alike, so the trades, fills and positions are the same."""
    symbols = SYMBOLS[:2]
    data = _first_bars(tmp_path / "data", 24 * 288, symbols)
    params: dict[str, object] = {"ml": True, "ml_train_days": 3}
    with threadpool_limits(limits=1):
        assert_parity(
            tmp_path, data, symbols, "adaptive", seed=7, timeout=TIMEOUT, params=params,
            min_trades=5, min_fundings=5,
        )  # fmt: skip
