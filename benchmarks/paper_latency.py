"""Paper-trading latency and throughput: the kernel's per-bar latency, and a full-speed replay.

Two figures, each printed with its target and a verdict (nothing asserts):

1. **Kernel latency** (``kernel``): bar close -> orders sent, i.e. ``engine.process(batch)`` then
   ``engine.send(outcome.outbox)`` for one batch (one bar time: one 5m bar of each of the 5
   symbols), timed with ``perf_counter_ns`` on a kernel built as ``lootcapital.bootstrap`` builds
   the paper kernel (simulated venue, ``Engine(window=PAPER_WINDOW)``, the strategy with
   ``incremental=True``), on ``../shared/data/binance_usdm_{BTC,ETH,SOL,BNB,XRP}USDT_5m.csv.gz``.
   Every bar goes through ``process`` + ``send`` from the first (no bulk warm-up), so the ledger,
   venue and wake-ups carry the state a real run accumulates. "After 1 k" is the 2,000 batches
   after 1,000 bar times of history per symbol (5,000 candles in all); "after 100 k" the 2,000
   batches after 20,000 bar times per symbol (5 x 20,000 = 100,000 candles in all: the files hold
   87,840 bars per symbol); "after 25 k" (5,000 bar times per symbol) is printed for reference.
   Target: p99 after 100 k <= 1.2 x p99 after 1 k, with the bar windows and the RSS bounded.
   Each strategy runs ``--repeat`` times (2) on one core; the best p99 of each window counts.
2. **Full-speed replay** (``replay``): the real stack in-process, as ``lootcapital serve --speed
   10000000`` runs it without the HTTP server: ``bootstrap(Settings(...))`` on a temporary data
   directory (SQLite, the shipped sample ``data/sample`` imported: 3 symbols x 60 days of 5m bars
   = 51,840 candles), ``service.start()``, ``service.status().candles_processed`` sampled every
   0.1 s to the end of data. Targets: >= 10,000 candles/s overall, last quarter of the candles
   >= 0.8 x as fast as the first (the figure before the rewrite was ~1,300 candles/s). Where the
   time goes is measured in the same run by ``perf_counter`` wrappers around the calls of the
   runner's step (``engine.process``, ``engine.send``, the units of work, the snapshot, the bus;
   about 1 us per bar of overhead), then by a separate ``cProfile`` run of the engine thread.
   Each strategy is replayed ``--repeat`` times (2) and the best rate counts: a small shared
   machine's speed varies from minute to minute.

Usage: ``python benchmarks/paper_latency.py [--part kernel|replay|all]
[--strategy sma_cross --strategy trend_follow] [--repeat 2] [--profile-seconds 5]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import itertools  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import service_layer.runner as runner_module  # noqa: E402
from adapters.clock import SimulatedClock  # noqa: E402
from adapters.marketdata.binance_csv import read_klines  # noqa: E402
from domain.candles import Candles  # noqa: E402
from domain.ledger import Ledger  # noqa: E402
from domain.strategies import build_strategy  # noqa: E402
from lootcapital.bootstrap import PAPER_WINDOW, Container, bootstrap  # noqa: E402
from lootcapital.settings import Settings  # noqa: E402
from lootcapital.simulation import candle_store, instruments, simulated_venue  # noqa: E402
from service_layer.engine import Engine  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
STRATEGIES = ("sma_cross", "trend_follow")
TOKEN = "benchmark-token-0123456789abcdef"
WINDOWS = {"after 1 k": 1_000, "after 25 k": 5_000, "after 100 k": 20_000}
"""Timed windows: label -> bar times of history per symbol before the window. The target
compares 1 k and 100 k; 25 k (past trend_follow's warm-up of 2,412 bars, which the 1 k window
mostly precedes) is printed for reference."""
TIMED = 2_000
"""Batches (bar times) timed per window."""
P99_RATIO_TARGET = 1.2
RATE_TARGET = 10_000
QUARTER_TARGET = 0.8
RATE_BEFORE = 1_300
POLL_S = 0.1
STORAGE, COMMIT = "storage (with uow: persist + commit)", "  of which uow.commit()"
STEP_PARTS = (
    "engine.process",
    "engine.send (orders out)",
    STORAGE,
    COMMIT,
    "snapshot (for reads)",
    "on_batch (metrics)",
    "bus.publish (metrics, hub)",
)
"""The wrapped calls of the runner's step, in the order they are printed."""


# -- shared helpers -------------------------------------------------------------------------
def rss_mb() -> float:
    """The process's resident set size now (MB; 0 where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _size(obj: object, attr: str) -> str:
    """``len(obj.attr)`` for a sizing report (private state: "n/a" if the name changed)."""
    value = getattr(obj, attr, None)
    try:
        return f"{len(value):,}"  # type: ignore[arg-type]
    except TypeError:
        return "n/a"


# -- part 1: kernel latency ------------------------------------------------------------------
def paper_kernel(settings: Settings, rules: Mapping[str, Any], strategy: str) -> Engine:
    """A fresh paper kernel as ``bootstrap``'s engine factory builds it for a new run."""
    clock = SimulatedClock()
    venue = simulated_venue(settings, rules, settings.initial_cash, clock)
    venue.restore(settings.initial_cash, [], [])
    engine = Engine(
        strategy=build_strategy(strategy, {}, settings.timeframe, incremental=True),
        execution=venue,
        matcher=venue,
        clock=clock,
        instruments=rules,
        symbols=SYMBOLS,
        timeframe=settings.timeframe,
        run_id="benchmark-paper-latency",
        ledger=Ledger(settings.initial_cash, [], []),
        window=PAPER_WINDOW,
    )
    engine.restore({})
    return engine


def kernel_sizes(engine: Engine) -> str:
    """Window lengths and allocations per symbol, and the ledger/venue/wake-up sizes."""
    history = engine.history
    kept = {len(h) for h in history.values()}
    alloc = {len(getattr(h, "_time", ())) for h in history.values()}
    venue = engine.execution
    return (
        f"window bars/symbol {'/'.join(f'{k:,}' for k in sorted(kept))} "
        f"(allocated {'/'.join(f'{a:,}' for a in sorted(alloc))}), ledger orders "
        f"{_size(engine.ledger, '_orders')} (final kept {_size(engine.ledger, '_final')}), "
        f"venue final {_size(venue, '_final')}, wake-ups {len(engine.wakes)}"
    )


def time_kernel(
    strategy: str, candles: Mapping[str, Candles], settings: Settings
) -> dict[str, tuple[float, float]]:
    """Process every bar time up to the last window's end, printing each window's figures;
    returns ``{window: (p50, p99)}`` in microseconds."""
    rules = instruments(settings, SYMBOLS)
    engine = paper_kernel(settings, rules, strategy)
    end = max(WINDOWS.values()) + TIMED
    took = np.zeros(end, dtype=np.int64)
    sent = np.zeros(end, dtype=bool)
    stats: dict[str, tuple[float, float]] = {}
    clock = time.perf_counter_ns
    for i in range(end):
        batch = {s: candles[s].slice(i, i + 1) for s in SYMBOLS}
        t0 = clock()
        outcome = engine.process(batch)
        if outcome.outbox:
            engine.send(outcome.outbox)
        took[i] = clock() - t0
        sent[i] = bool(outcome.outbox)
        for label, start in WINDOWS.items():
            if i + 1 == start + TIMED:
                stats[label] = report_window(label, start, took, sent)
                print(f"      RSS {rss_mb():.0f} MB; {kernel_sizes(engine)}")
    return stats


def report_window(
    label: str, start: int, took: np.ndarray, sent: np.ndarray
) -> tuple[float, float]:
    """Print one window's p50/p99/max (us) and return (p50, p99)."""
    us = took[start : start + TIMED] / 1000
    orders = sent[start : start + TIMED]
    p50, p99 = np.percentile(us, [50, 99])
    with_orders = f", p50 {np.median(us[orders]):.0f} us" if orders.any() else ""
    print(
        f"    {label:<12} history {start:,} bar times/symbol ({start * len(SYMBOLS):,} candles), "
        f"{TIMED:,} batches of {len(SYMBOLS)} bars: p50 {p50:7.0f} us  p99 {p99:7.0f} us  "
        f"max {us.max():7.0f} us  mean {us.mean():6.0f} us; "
        f"{int(orders.sum())} batches sent orders{with_orders}"
    )
    return float(p50), float(p99)


def kernel_part(strategies: list[str], repeat: int) -> None:
    print("== 1. kernel latency: bar close -> orders sent (engine.process + engine.send) ==")
    started = time.perf_counter()
    candles = {s: read_klines(DATA / f"binance_usdm_{s}_5m.csv.gz") for s in SYMBOLS}
    print(
        f"loaded {len(SYMBOLS)} x {len(candles[SYMBOLS[0]]):,} bars in "
        f"{time.perf_counter() - started:.1f} s; RSS {rss_mb():.0f} MB; "
        f"PAPER_WINDOW = {PAPER_WINDOW:,} bars/symbol; one core; best p99 of {repeat} run(s) counts"
    )
    print(
        '"after 100 k bars of history" = 5 symbols x 20,000 bar times = 100,000 candles processed '
        "bar by bar before the window (the files hold 87,840 bars per symbol)"
    )
    settings = Settings(data_dir=Path(tempfile.gettempdir()) / "lootcapital-bench-unused")
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if cores:  # one thread: pin it to one core (as backtest_speed.py) for steadier tails
        os.sched_setaffinity(0, {min(cores)})
    try:
        for strategy in strategies:
            warmup = build_strategy(strategy, {}, settings.timeframe).warmup_bars()
            print(f"\n{strategy} (warmup_bars() = {warmup:,} per symbol)")
            runs = []
            for k in range(repeat):
                print(f"  run {k + 1}")
                runs.append(time_kernel(strategy, candles, settings))
            small, mid, large = (min(run[w][1] for run in runs) for w in WINDOWS)
            ratio = large / small
            print(
                f"  best p99 after 100 k {large:.0f} us / best p99 after 1 k {small:.0f} us = "
                f"{ratio:.2f} (target <= {P99_RATIO_TARGET}: {verdict(ratio <= P99_RATIO_TARGET)})"
                f"; for reference, / best p99 after 25 k {mid:.0f} us = {large / mid:.2f}; "
                f"peak RSS so far {peak_rss_mb():.0f} MB"
            )
    finally:
        if cores:
            os.sched_setaffinity(0, cores)


# -- part 2: full-speed replay ---------------------------------------------------------------
class StepTimers:
    """Seconds spent in each wrapped call of the runner's step, per quarter of the candles."""

    def __init__(self, total_candles: int) -> None:
        self.total = total_candles
        self.seen = 0
        self.quarter = 0
        self.spent: list[dict[str, float]] = [{} for _ in range(4)]
        self.bounds: list[float] = [0.0] * 5  # wall time at each quarter's first batch, end
        self.last_end = 0.0

    def add(self, name: str, seconds: float) -> None:
        spent = self.spent[self.quarter]
        spent[name] = spent.get(name, 0.0) + seconds

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.last_end = time.perf_counter()
                self.add(name, self.last_end - t0)

        return timed

    def wrap_process(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        timed = self.wrap("engine.process", fn)

        def process(batch: Mapping[str, Candles]) -> Any:
            quarter = min(3, 4 * self.seen // self.total)
            now = time.perf_counter()
            if self.seen == 0:
                self.bounds[0] = now
            while self.quarter < quarter:
                self.quarter += 1
                self.bounds[self.quarter] = now
            self.seen += sum(len(bars) for bars in batch.values())
            return timed(batch)

        return process

    def uow_factory(self, factory: Callable[[], Any]) -> Callable[[], Any]:
        timers = self

        class TimedUow:
            """The unit of work, timed from entering to leaving (persist + commit) and at
            commit."""

            def __init__(self) -> None:
                self._inner = factory()

            def __enter__(self) -> TimedUow:
                self._t0 = time.perf_counter()
                self._inner.__enter__()
                return self

            def __exit__(self, *exc: object) -> None:
                try:
                    self._inner.__exit__(*exc)
                finally:
                    timers.add(STORAGE, time.perf_counter() - self._t0)

            def commit(self) -> None:
                t0 = time.perf_counter()
                self._inner.commit()
                timers.add(COMMIT, time.perf_counter() - t0)

            def close(self) -> None:
                self._inner.close()

            def __getattr__(self, name: str) -> Any:
                return getattr(self._inner, name)

        return TimedUow


def instrument(container: Container, timers: StepTimers) -> Callable[[], None]:
    """Wrap the calls of the runner's step; returns a function that undoes the module patch."""
    service = container.service
    engine = service.engine
    wrap, bus = timers.wrap, container.bus
    engine.process = timers.wrap_process(engine.process)  # type: ignore[method-assign]
    engine.send = wrap("engine.send (orders out)", engine.send)  # type: ignore[method-assign]
    service.writer_factory = timers.uow_factory(service.writer_factory)
    bus.publish = wrap("bus.publish (metrics, hub)", bus.publish)  # type: ignore[method-assign]
    if service.on_batch is not None:
        service.on_batch = wrap("on_batch (metrics)", service.on_batch)
    original = getattr(runner_module, "snapshot", None)
    if original is None:
        return lambda: None
    runner_module.snapshot = timers.wrap("snapshot (for reads)", original)

    def undo() -> None:
        runner_module.snapshot = original

    return undo


def replay_settings(data_dir: Path, strategy: str) -> Settings:
    return Settings(
        data_dir=data_dir, speed=10_000_000, autostart=False, api_token=TOKEN, strategy=strategy
    )


def total_candles(settings: Settings) -> int:
    store = candle_store(settings)
    return sum(len(store.read(settings.exchange, s, settings.timeframe)) for s in settings.symbols)


def sample_until_done(container: Container) -> list[tuple[float, int]]:
    """Start the engine and sample (wall s, candles_processed) until it stops."""
    service = container.service
    samples = [(time.perf_counter(), service.status().candles_processed)]
    service.start()
    while True:
        time.sleep(POLL_S)
        status = service.status()
        samples.append((time.perf_counter(), status.candles_processed))
        if not status.running:
            if status.stopped_reason != "end of data" or status.error:
                print(f"  engine stopped: {status.stopped_reason} {status.error or ''}")
            return samples


def crossing(samples: list[tuple[float, int]], count: float) -> float:
    """Wall time at which ``candles_processed`` reached ``count`` (linear between samples)."""
    for (t0, c0), (t1, c1) in itertools.pairwise(samples):
        if c1 >= count:
            return t0 + (t1 - t0) * (count - c0) / (c1 - c0) if c1 > c0 else t1
    return samples[-1][0]


def replay_rates(strategy: str, samples: list[tuple[float, int]], total: int) -> float:
    """Print a replay's overall and per-quarter rates; returns the overall rate (candles/s)."""
    done = samples[-1][1]
    start = samples[0][0]
    end = crossing(samples, done)
    q1, q3 = crossing(samples, done / 4), crossing(samples, 3 * done / 4)
    overall = done / (end - start)
    first, last = done / 4 / (q1 - start), done / 4 / (end - q3)
    ratio = last / first
    print(
        f"  {strategy}: {done:,} of {total:,} candles in {end - start:.1f} s: "
        f"{overall:,.0f} candles/s (target >= {RATE_TARGET:,}: {verdict(overall >= RATE_TARGET)}; "
        f"~{RATE_BEFORE:,} before the rewrite)"
    )
    print(
        f"    first quarter {first:,.0f} candles/s, last quarter {last:,.0f} candles/s: "
        f"ratio {ratio:.2f} (target >= {QUARTER_TARGET}: {verdict(ratio >= QUARTER_TARGET)})"
    )
    return overall


def print_breakdown(timers: StepTimers) -> None:
    """Microseconds per candle in each wrapped call, per quarter and over the run."""
    timers.bounds[4] = timers.last_end
    per_q = timers.total / 4
    seen = {n for spent in timers.spent for n in spent}
    names = [n for n in STEP_PARTS if n in seen] + sorted(seen - set(STEP_PARTS))
    walls = [timers.bounds[q + 1] - timers.bounds[q] for q in range(4)]
    print(
        f"    where the time goes (us per candle; {RATE_TARGET:,} candles/s is "
        f"{1e6 / RATE_TARGET:.0f} us): quarters 1-4 and overall"
    )
    rows = [(n, [timers.spent[q].get(n, 0.0) for q in range(4)]) for n in names]
    nested = {n for n in names if n.startswith("  ")}
    counted = [sum(v[q] for n, v in rows if n not in nested) for q in range(4)]
    other = [w - c for w, c in zip(walls, counted, strict=True)]
    rows.append(("other (feed, state, portfolio, events)", other))
    rows.append(("engine thread wall", walls))
    for name, values in rows:
        cells = " ".join(f"{v / per_q * 1e6:7.1f}" for v in values)
        overall = sum(values) / timers.total * 1e6
        share = sum(values) / sum(walls) * 100
        print(f"      {name:<40} {cells}   {overall:7.1f}  {share:5.1f}%")


def run_replay(strategy: str) -> float:
    """One full-speed replay of the sample with ``strategy``, printed; its rate (candles/s)."""
    with tempfile.TemporaryDirectory(prefix="lootcapital-bench-") as tmp:
        started = time.perf_counter()
        settings = replay_settings(Path(tmp), strategy)
        container = bootstrap(settings)
        total = total_candles(settings)
        print(
            f"\n  bootstrap (migrate, import sample, build kernel) "
            f"{time.perf_counter() - started:.1f} s, not counted; "
            f"{len(settings.symbols)} symbols, {total:,} candles"
        )
        timers = StepTimers(total)
        undo = instrument(container, timers)
        try:
            samples = sample_until_done(container)
        finally:
            container.service.stop("benchmark done")
            undo()
        rate = replay_rates(strategy, samples, total)
        print_breakdown(timers)
        return rate


def profile_replay(strategy: str, seconds: float) -> None:
    """cProfile the engine thread for ``seconds`` of a fresh full-speed replay."""
    with tempfile.TemporaryDirectory(prefix="lootcapital-bench-") as tmp:
        container = bootstrap(replay_settings(Path(tmp), strategy))
        service = container.service
        engine = service.engine
        profiler, done = cProfile.Profile(), threading.Event()
        state = {"t0": 0.0, "from": 0, "to": 0}
        process = engine.process

        def profiled(batch: Mapping[str, Candles]) -> Any:
            if not state["t0"]:
                state["t0"], state["from"] = time.perf_counter(), engine.candles_processed
                profiler.enable()  # in the engine thread: cProfile follows the calling thread
            elif not done.is_set() and time.perf_counter() - state["t0"] >= seconds:
                profiler.disable()
                state["to"] = engine.candles_processed
                done.set()
            return process(batch)

        engine.process = profiled  # type: ignore[method-assign]
        service.start()
        while not done.wait(0.1) and service.status().running:
            pass
        service.stop("benchmark done")
        if not done.is_set():
            print(f"  {strategy}: the replay ended before the profile was taken")
            return
        print_profile(strategy, pstats.Stats(profiler), state["to"] - state["from"])


def print_profile(strategy: str, stats: pstats.Stats, candles: int) -> None:
    raw: dict = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in raw.values())
    print(
        f"\n  cProfile of the engine thread, {strategy}: {candles:,} candles in {total:.1f} s of "
        f"profiled time (profiling slows it; read the shares)"
    )
    for title, key in (("own time", 2), ("cumulative", 3)):
        print(f"    top by {title} (us per candle, share of profiled time):")
        mine = [k for k in raw if not k[0].endswith("paper_latency.py")]  # not our wrapper
        ranked = sorted(mine, key=lambda k: raw[k][key], reverse=True)[:14]
        for path, line, func in ranked:
            values = raw[(path, line, func)]
            where = "/".join(Path(path).parts[-3:]) if path != "~" else "builtin"
            us = values[key] / max(candles, 1) * 1e6
            print(f"      {us:8.1f} {values[key] / total * 100:5.1f}%  {func} ({where}:{line})")


def replay_part(strategies: list[str], profile_seconds: float, repeat: int) -> None:
    print(
        "\n== 2. full-speed paper replay of the shipped sample (serve --speed 10000000, "
        "every bar committed) =="
    )
    for strategy in strategies:
        best = max(run_replay(strategy) for _ in range(repeat))
        if repeat > 1:
            print(
                f"  {strategy}: best of {repeat} replays {best:,.0f} candles/s "
                f"(target >= {RATE_TARGET:,}: {verdict(best >= RATE_TARGET)})"
            )
    if profile_seconds > 0:
        for strategy in strategies:
            profile_replay(strategy, profile_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("kernel", "replay", "all"), default="all")
    parser.add_argument("--strategy", action="append", choices=STRATEGIES)
    parser.add_argument("--profile-seconds", type=float, default=5.0, help="0: no cProfile run")
    parser.add_argument(
        "--repeat", type=int, default=2,
        help="runs of each part per strategy: the best p99 and the best replay rate count",
    )  # fmt: skip
    args = parser.parse_args()
    strategies = args.strategy or list(STRATEGIES)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on "
          f"{os.cpu_count()} CPUs (other processes inflate the tails)")  # fmt: skip
    if args.part in ("kernel", "all"):
        kernel_part(strategies, args.repeat)
    if args.part in ("replay", "all"):
        replay_part(strategies, args.profile_seconds, args.repeat)
    print(f"\npeak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
