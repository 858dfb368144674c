"""Backtest speed: bars per second for sma_cross and trend_follow, one and five symbols.

Runs on the full 305-day 5m USD-M files of ``../shared/data`` (87,840 bars per symbol), one core,
and prints bars/s (engine time only; file parsing is reported apart) and the peak RSS.
Targets (one symbol): sma_cross >= 1,500,000 bars/s, trend_follow >= 1,000,000 bars/s;
peak RSS < 300 MB.

Usage: ``python benchmarks/backtest_speed.py [--repeat 3]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from decimal import Decimal  # noqa: E402
from pathlib import Path  # noqa: E402

from adapters.marketdata.binance_csv import read_klines  # noqa: E402
from lootcapital.settings import Settings  # noqa: E402
from lootcapital.simulation import backtest  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
TARGETS = {"sma_cross": 1_500_000, "trend_follow": 1_000_000}


def main() -> None:
    """Print one line per (strategy, symbol count) and the peak RSS."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best counts")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    started = time.perf_counter()
    candles = {s: read_klines(DATA / f"binance_usdm_{s}_5m.csv.gz") for s in SYMBOLS}
    print(f"loaded {len(SYMBOLS)} x {len(candles['BTCUSDT']):,} bars "
          f"in {time.perf_counter() - started:.2f} s (not counted below)")  # fmt: skip
    settings = Settings(data_dir=Path("var/bench"))
    for strategy in ("sma_cross", "trend_follow"):
        for count in (1, 5):
            subset = {s: candles[s] for s in SYMBOLS[:count]}
            best, result = float("inf"), None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                result = backtest(
                    settings,
                    strategy=strategy,
                    params={},
                    candles=subset,
                    timeframe="5m",
                    cash=Decimal(10_000),
                    fee=Decimal("0.0005"),
                    slippage_bps=Decimal(2),
                )
                best = min(best, time.perf_counter() - t0)
            assert result is not None
            rate = result.bars / best
            verdict = "ok" if rate >= TARGETS[strategy] else "BELOW TARGET"
            print(
                f"{strategy:<13} {count} symbol(s) {result.bars:>9,} bars {best * 1000:8.1f} ms "
                f"{rate:>12,.0f} bars/s  trades {result.metrics.trades:>5}  "
                f"(target {TARGETS[strategy]:,}: {verdict})"
            )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB (target < 300 MB)")


if __name__ == "__main__":
    main()
