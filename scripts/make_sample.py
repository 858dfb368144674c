"""Cut the small real-data sample shipped in ``data/sample`` from the team's ``shared/data``.

For BTCUSDT, ETHUSDT and SOLUSDT it keeps the LAST 60 days of Binance USDⓈ-M 5m klines
(60 × 288 = 17,280 bars) and the funding and 1h mark-price rows of the same period, byte for
byte as in the source (same normalized CSV, gzip), copies the 2025-10-30 USDⓈ-M exchange-info
snapshot, cuts the 2023-08-13 spot exchange-info snapshot and the 2024-10-24 USDⓈ-M leverage
brackets down to the symbols the sample and the tests trade (same JSON layout, symbols in the
source's order) and writes a README with the period and row counts. The output is reproducible:
gzip headers carry no time.

Usage::

    .venv/bin/python scripts/make_sample.py [--source ../shared/data] [--dest data/sample]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
BAR_MS = 300_000
DAYS = 60
EXCHANGE_INFO = "binance_usdm_exchange_info_20251030.json"
SPOT_EXCHANGE_INFO = "binance_spot_exchange_info_20230813.json"
SPOT_INFO_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
LEVERAGE_BRACKETS = "binance_usdm_leverage_brackets_20241024.json"
BRACKET_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")


def read_lines(path: Path) -> tuple[str, list[str]]:
    """Header and data lines of a gzip CSV."""
    lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
    return lines[0], lines[1:]


def write_gzip(path: Path, header: str, rows: list[str]) -> None:
    """Write a gzip CSV whose bytes depend only on its content (mtime 0, no file name)."""
    with path.open("wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as out:
        out.write(("\n".join([header, *rows]) + "\n").encode("utf-8"))


def cut_klines(source: Path, dest: Path, bars: int) -> tuple[int, int, int]:
    """Keep the last ``bars`` rows; returns (first open_time, last open_time, rows)."""
    header, rows = read_lines(source)
    kept = rows[-bars:]
    times = [int(row.split(",", 1)[0]) for row in kept]
    if any(b - a != BAR_MS for a, b in pairwise(times)):
        raise SystemExit(f"{source}: the last {bars} bars are not a gap-free 5m series")
    write_gzip(dest, header, kept)
    return times[0], times[-1], len(kept)


def cut_period(source: Path, dest: Path, start_ms: int, end_ms: int) -> int:
    """Keep the rows whose first column (``funding_time``, ``open_time``) is in
    ``[start_ms, end_ms)``; returns the row count."""
    header, rows = read_lines(source)
    kept = [row for row in rows if start_ms <= int(row.split(",", 1)[0]) < end_ms]
    write_gzip(dest, header, kept)
    return len(kept)


def cut_exchange_info(source: Path, dest: Path, symbols: tuple[str, ...]) -> int:
    """Copy an ``exchangeInfo`` JSON keeping only ``symbols`` (in the source's order) and every
    other key as it is, written as Binance's snapshot is (2-space indent, UTF-8, final newline).
    Returns the number of symbols kept; exits when one of ``symbols`` is not in the source."""
    document = json.loads(source.read_text(encoding="utf-8"))
    kept = [entry for entry in document["symbols"] if entry["symbol"] in symbols]
    missing = set(symbols) - {entry["symbol"] for entry in kept}
    if missing:
        raise SystemExit(f"{source}: no symbol(s) {', '.join(sorted(missing))}")
    document["symbols"] = kept
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    dest.write_text(text, encoding="utf-8")
    return len(kept)


def utc(ms: int) -> str:
    """``ms`` as ``YYYY-MM-DD HH:MM`` UTC."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def cut_leverage_brackets(source: Path, dest: Path, symbols: tuple[str, ...]) -> int:
    """Keep the ``symbols``' entries of a ``leverageBracket`` answer, byte for byte in the
    source's order and compact layout; returns how many were kept."""
    entries = json.loads(source.read_text(encoding="utf-8"))
    kept = [e for e in entries if e["symbol"] in symbols]
    if missing := set(symbols) - {e["symbol"] for e in kept}:
        raise SystemExit(f"{source}: no symbol(s) {', '.join(sorted(missing))}")
    dest.write_text(json.dumps(kept, separators=(",", ":")), encoding="utf-8")
    return len(kept)


def readme(stats: list[tuple[str, int, int, int, int, int]]) -> str:
    """The sample's README.md text from (symbol, first, last, bars, funding rows, mark rows)."""
    first, last = stats[0][1], stats[0][2]
    table = "\n".join(
        f"| {s} | `binance_usdm_{s}_5m.csv.gz` | {n:,} | `binance_usdm_{s}_funding.csv.gz` | {f} "
        f"| `binance_usdm_{s}_mark_1h.csv.gz` | {m:,} |"
        for s, _, _, n, f, m in stats
    )
    return f"""# Sample market data

Real Binance USDⓈ-M perpetual-futures data, small enough to ship with the repo, so that the
server, the examples and the tests run without the full data set.

* **What**: 5-minute klines (`open_time,open,high,low,close,volume`, open_time = bar start in
  integer ms UTC, prices in USDT, volume in base asset) and 8-hourly funding rates
  (`funding_time,funding_rate`, rate as a fraction per 8 h, funding_time on the 00:00/08:00/16:00
  UTC grid) and 1-hour mark-price klines (`open_time,open,high,low,close`, mark price in USDT, no
  volume) for BTCUSDT, ETHUSDT and SOLUSDT, plus the exchange-info snapshots (tick size, lot
  step, quantity caps, min notional) of the USDⓈ-M perpetuals, `{EXCHANGE_INFO}`, and of spot,
  `{SPOT_EXCHANGE_INFO}` (cut to {", ".join(SPOT_INFO_SYMBOLS)}).
* **Leverage brackets**: `{LEVERAGE_BRACKETS}`, Binance's USDⓈ-M `GET /fapi/v1/leverageBracket`
  answer of 2024-10-24 (per symbol, notional tiers in USDT with the maximum leverage, the
  maintenance margin ratio as a fraction and the maintenance amount `cum` in USDT), cut to
  {", ".join(BRACKET_SYMBOLS)}: the kept entries are the source's byte for byte, in its order and
  compact layout. These tiers are a year older than the exchange-info snapshot.
* **Period**: the last {DAYS} days of the team's data set, {utc(first)} to {utc(last)} UTC
  (last bar open), {DAYS} × 288 bars per symbol, no gaps. It includes the 2025-10-10 liquidation
  cascade (SOLUSDT low 141.28 in the 21:20 UTC bar): real, keep it.
* **Source**: cut byte for byte from `shared/data` (see its README for provenance: Binance
  public market data via public GitHub repositories, cross-checked against independent
  downloads) by `scripts/make_sample.py`, which reproduces these files exactly.

| symbol | klines | bars | funding | rows | mark prices | bars |
|---|---|---|---|---|---|---|
{table}
"""


def main(argv: list[str] | None = None) -> None:
    """Write the sample; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--dest", type=Path, default=REPO_ROOT / "data" / "sample")
    args = parser.parse_args(argv)
    args.dest.mkdir(parents=True, exist_ok=True)
    stats = []
    for symbol in SYMBOLS:
        name = f"binance_usdm_{symbol}"
        first, last, bars = cut_klines(
            args.source / f"{name}_5m.csv.gz", args.dest / f"{name}_5m.csv.gz", DAYS * 288
        )
        funding, marks = (
            cut_period(
                args.source / f"{name}_{kind}.csv.gz",
                args.dest / f"{name}_{kind}.csv.gz",
                first,
                last + BAR_MS,
            )
            for kind in ("funding", "mark_1h")
        )
        stats.append((symbol, first, last, bars, funding, marks))
    shutil.copyfile(args.source / EXCHANGE_INFO, args.dest / EXCHANGE_INFO)
    cut_exchange_info(
        args.source / SPOT_EXCHANGE_INFO, args.dest / SPOT_EXCHANGE_INFO, SPOT_INFO_SYMBOLS
    )
    cut_leverage_brackets(
        args.source / LEVERAGE_BRACKETS, args.dest / LEVERAGE_BRACKETS, BRACKET_SYMBOLS
    )
    (args.dest / "README.md").write_text(readme(stats), encoding="utf-8")
    sys.stdout.write(f"wrote {len(SYMBOLS)} symbols to {args.dest}: {stats}\n")


if __name__ == "__main__":
    main()
