"""``lootcapital analyze``: the adaptive pipeline's snapshot of one symbol at one bar close
(:func:`domain.analysis.snapshot`), printed as a table and, with ``--json``, written as JSON."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.analysis import snapshot
from domain.errors import DomainError

TIMEFRAME = "5m"
"""The pipeline runs on 5m bars (its higher timeframes are resampled from them)."""


def add_parser(sub: Any) -> None:
    """Add the ``analyze`` subcommand to the CLI's subparsers ``sub``."""
    cmd = sub.add_parser(
        "analyze",
        help="the adaptive pipeline's view of a symbol at a bar close",
        description="Show what every component of the adaptive pipeline says about a symbol "
        "at the last 5m bar closed at --at: adaptive thresholds, market regime, timeframe "
        "alignment, volume profile, allocation and the assembled signal with its reasons.",
    )
    cmd.add_argument("--symbol", required=True, help="symbol, as BTCUSDT or BTC/USDT:USDT")
    cmd.add_argument(
        "--at",
        help="ISO date/time (UTC when no offset is given): the last bar closed then "
        "(default: the last bar)",
    )
    cmd.add_argument(
        "--data",
        metavar="FILE",
        help="a Binance 5m kline file (.csv or .csv.gz) to read the bars from (default: the "
        "candle store)",
    )
    cmd.add_argument(
        "--json",
        metavar="OUT",
        help="also write the snapshot as JSON to the file OUT, or to stdout with - (then "
        "nothing else is printed) (default: no JSON)",
    )


def run(
    settings: Any, *, symbol: str, at: int | None, data: Path | None, json_to: str | None
) -> int:
    """Print the snapshot of ``symbol`` at ``at`` (ms UTC; None: the last bar) from the kline
    file ``data`` or the candle store of ``settings``; with ``json_to``, also write it as JSON
    there (``-``: stdout only).

    Raises
    ------
    DomainError
        A file or stored series that cannot be read, or no bar closed by ``at`` (``field``
        names the option).
    """
    from lootcapital.simulation import load_candles

    bars = load_candles(
        settings,
        data=[data] if data else [],
        symbols=[symbol],
        timeframe=TIMEFRAME,
        start_ms=None,
        end_ms=None,
    )[symbol]
    if not len(bars):
        raise DomainError(f"no {TIMEFRAME} bars stored for {symbol}", field="symbol")
    try:
        shot = snapshot(bars, symbol, timeframe=TIMEFRAME, at=at)
    except DomainError as exc:
        raise DomainError(exc.message, field="at") from None
    if json_to == "-":
        json.dump(shot, sys.stdout, indent=2)
        print()
        return 0
    print(render(shot))
    if json_to:
        Path(json_to).write_text(json.dumps(shot, indent=2))
        print(f"wrote {json_to}")
    return 0


def render(shot: dict[str, Any]) -> str:
    """The snapshot as a few lines of text for the console."""
    th, regime, tf = shot["thresholds"], shot["regime"], shot["timeframes"]
    signal = shot["signal"]
    frames = "  ".join(f"{name} {tf[name]['trend'].lower()}" for name in ("5m", "15m", "1h", "4h"))
    lines = [
        f"{shot['symbol']} at {_utc(shot['time'])} UTC, close {shot['price']:g}",
        f"  thresholds   volatility percentile {th['volatility_percentile']:.0f} "
        f"(× {th['multiplier']:g}): ADX ≥ {th['adx']:.1f}, RVOL ≥ {th['rvol']:.2f}",
        f"  regime       {regime['current']} (candidate {regime['candidate']})",
        f"  timeframes   {frames}: {tf['aligned']}/4 aligned {tf['vote']}, "
        f"confidence {tf['confidence']:.2f}",
    ]
    profile = shot["volume_profile"]
    if profile is None:
        lines.append("  volume       no profile (off, or under a day of bars)")
    else:
        key = ", at a key level" if profile["at_key_level"] else ""
        lines.append(
            f"  volume       POC {profile['poc']:g}  VAL {profile['val']:g}  "
            f"VAH {profile['vah']:g}{key}"
        )
    lines.append(
        f"  allocation   {shot['allocation']['fraction']:.0%} of equity, size × "
        f"{shot['allocation']['size_factor']:g}"
    )
    lines.append(
        f"  signal       {signal['direction']} (confidence {signal['confidence']:.2f}), "
        f"{'entry allowed' if signal['enter'] else 'no entry'}"
    )
    lines += [f"    {r['component']}: {r['message']}" for r in signal["reasons"]]
    return "\n".join(lines)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
