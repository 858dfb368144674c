"""Risk overhead: backtest speed with every futures and risk feature on vs off.

Off: perpetuals margined at 1x with no leverage brackets and no funding (no liquidation search,
no settlement), no risk gate. On: 3x isolated margin with Binance's leverage brackets
(liquidation searched on the 1 h mark prices), funding from the funding files, and the risk
gate with every rule on (sizing with caps and drawdown steps, daily loss, consecutive losses,
volatility spike, unusual volume, max open positions, max leverage). Same strategy, data and
costs; the full 305-day 5m USD-M files of ``../shared/data``, one core.
Three strategies:

* ``adaptive``, the pipeline ``serve`` runs by default: what a trader's backtest costs. The
  target applies here: "on" < 20 % slower than "off", on one symbol and on five.
* the two minimal ones, ``sma_cross`` and ``trend_follow``: a decision costs them next to
  nothing (the "off" run spends well under a microsecond per bar), so their slowdown is the
  risk machinery's fixed cost per event over an empty loop, not what a trader waits for. They
  are reported as microseconds of extra time per event (decision, fill or funding payment),
  with no verdict.

The candles, funding rates and mark prices are read before the clock starts, as
a backtest's data is. Each case runs ``--repeat`` off/on pairs, alternating which goes first;
the slowdown is the median of the pairs' ratios, with its quartiles (this VM's speed drifts by
up to 25 % within minutes: a pair's two runs share the same minutes, the best of each mode
need not). The bars/s are the best runs'. Each run starts after a full garbage collection:
without it, a full (oldest-generation) collection of the earlier runs' leftovers, 60 to 100 ms
here, fell inside whichever run crossed the collector's threshold, off or on, and moved that
pair's ratio by 20 to 30 points.

With ``--instructions`` the targeted cases are also counted in instructions, one run of each
mode under valgrind's callgrind (:mod:`instructions`): the same code on the same data gives
the same count however busy the machine is, so the slowdown there does not drift; it leaves
out what instructions do not show (cache misses), which the wall-clock pairs include.

Usage: ``python benchmarks/risk_overhead.py [--repeat 11] [--instructions]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import time  # noqa: E402
from argparse import SUPPRESS  # noqa: E402
from decimal import Decimal  # noqa: E402
from pathlib import Path  # noqa: E402

import instructions  # noqa: E402

from adapters.marketdata.binance_csv import read_klines  # noqa: E402
from lootcapital.settings import Settings  # noqa: E402
from lootcapital.simulation import FundingFeed, backtest, read_funding_feeds  # noqa: E402
from service_layer.backtest import BacktestResult  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
TARGET = 0.20
TARGETED = ("adaptive",)
"""The strategies the target applies to (see the module docstring)."""

ALL_ON = {
    "sizing": {
        "enabled": True,
        "risk_fraction": "0.01",
        "max_notional": "50000",
        "max_leverage": "5",
        "heat_fraction": "0.1",
        "drawdown_steps": [["0.1", "0.5"], ["0.2", "0.25"]],
    },
    "daily_loss": {"enabled": True, "limit": "0.05", "close_all": True},
    "consecutive_losses": {"enabled": True, "count": 4, "cooldown_ms": 86_400_000},
    "volatility_spike": {"enabled": True},
    "unusual_volume": {"enabled": True},
    "max_open_positions": {"enabled": True, "limit": 5},
    "max_leverage": {"enabled": True, "limit": "5"},
}
"""Every rule on, at limits a trader of 3x perpetuals might set (they bind now and then: the
refusals are counted in the output)."""


def _run(
    settings: Settings, candles: dict, strategy: str, funding: dict[str, FundingFeed] | None
) -> BacktestResult:
    return backtest(
        settings,
        strategy=strategy,
        params={},
        candles=candles,
        timeframe="5m",
        cash=Decimal(10_000),
        fee=Decimal("0.0005"),
        slippage_bps=Decimal(2),
        funding=funding,
        leverage=1 if funding is None else 3,
    )


def _cases(count: int) -> tuple[dict, dict[str, tuple[Settings, dict | None]]]:
    """The first ``count`` symbols' candles, and the off and on cases on them."""
    subset = SYMBOLS[:count]
    candles = {s: read_klines(DATA / f"binance_usdm_{s}_5m.csv.gz") for s in subset}
    funding = read_funding_feeds({s: DATA / f"binance_usdm_{s}_funding.csv.gz" for s in subset})
    off = Settings(data_dir=Path("var/bench"), leverage_brackets_file=None)
    on = Settings(data_dir=Path("var/bench"), risk=ALL_ON)  # type: ignore[arg-type]
    return candles, {"off": (off, None), "on": (on, funding)}


def main() -> None:
    """Print, per strategy and symbol count, bars/s off and on and the slowdown; with
    ``--instructions``, the instruction counts of the targeted strategies too."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=11, help="off/on pairs per case")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count the instructions of one run per targeted case (valgrind; minutes)",
    )
    parser.add_argument("--child", nargs=3, metavar=("MODE", "STRATEGY", "COUNT"), help=SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, strategy, count = args.child
        candles, cases = _cases(int(count))
        settings, fed = cases[mode]
        instructions.measure(lambda: _run(settings, candles, strategy, fed))
        return
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    for count in (1, 5):
        candles, cases = _cases(count)
        for strategy in ("sma_cross", "trend_follow", "adaptive"):
            best = {"off": float("inf"), "on": float("inf")}
            ratios: list[float] = []
            results: dict[str, BacktestResult] = {}
            for k in range(args.repeat):
                took = {}
                for name in ("off", "on") if k % 2 == 0 else ("on", "off"):
                    settings, fed = cases[name]
                    gc.collect()  # each run starts from a collected heap (see the docstring)
                    t0 = time.perf_counter()
                    results[name] = _run(settings, candles, strategy, fed)
                    took[name] = time.perf_counter() - t0
                    best[name] = min(best[name], took[name])
                ratios.append(took["on"] / took["off"] - 1)
            _report(strategy, count, results, best, sorted(ratios))
    if args.instructions:
        _count_instructions()


def _count_instructions() -> None:
    """One line per targeted case: instructions of one run off and on, and the difference."""
    why = instructions.unavailable()
    if why is not None:
        print(f"instructions: not counted ({why})")
        return
    script = str(Path(__file__).resolve())
    with instructions.scratch() as tmp:
        for strategy in TARGETED:
            for count in (1, 5):
                n = {
                    mode: instructions.count(
                        [script, "--child", mode, strategy, str(count)], Path(tmp)
                    )
                    for mode in ("off", "on")
                }
                print(
                    f"{strategy:<13} {count} symbol(s) instructions off {n['off']:,} on"
                    f" {n['on']:,}: {n['on'] / n['off'] - 1:+.1%} (target < +{TARGET:.0%}: "
                    + ("ok)" if n["on"] / n["off"] - 1 < TARGET else "MISSED)")
                )


def _report(
    strategy: str,
    count: int,
    results: dict[str, BacktestResult],
    best: dict[str, float],
    ratios: list[float],
) -> None:
    """One line: bars/s of the best runs, the median slowdown of the pairs with its quartiles,
    the verdict (or the extra time per event) and what the "on" run did."""
    bars = results["off"].bars
    slower = ratios[len(ratios) // 2]
    spread = f"{ratios[len(ratios) // 4]:+.0%}..{ratios[3 * len(ratios) // 4]:+.0%}"
    r = results["on"]
    if strategy in TARGETED:
        verdict = f"target < +{TARGET:.0%}: " + ("ok" if slower < TARGET else "MISSED")
    else:
        events = len(r.signals) + len(r.fills) + len(r.fundings)
        extra_us = (best["on"] - best["off"]) / max(events, 1) * 1e6
        verdict = f"{extra_us:.0f} µs extra per event over {events:,} events"
    off_rate, on_rate = bars / best["off"], bars / best["on"]
    print(
        f"{strategy:<13} {count} symbol(s) {bars:>9,} bars  off {off_rate:>11,.0f}"
        f" bars/s  on {on_rate:>11,.0f} bars/s  median {slower:+6.1%} (quartiles {spread};"
        f" {verdict})  on: {r.metrics.trades} trades, {len(r.fundings)} fundings,"
        f" {r.liquidations} liquidations, {len(r.rejections)} refusals"
    )


if __name__ == "__main__":
    main()
