"""Resampling bars to a higher timeframe, and mapping base bars to completed higher buckets.

Buckets are aligned to the Unix epoch and labelled by their left edge (``bucket_open =
open_time // target_ms * target_ms``), the same as pandas ``resample(origin="epoch",
label="left", closed="left")`` and Binance's own kline intervals up to one day.
"""

from __future__ import annotations

import numpy as np

from domain.candles import Candles
from domain.errors import ConfigError

SUMMED_EXTRA_COLUMNS = ("quote_volume", "trades", "taker_buy_base", "taker_buy_quote")
"""Extra columns that are additive over time and therefore summed by :func:`resample`."""


def check_multiple(source_ms: int, target_ms: int) -> int:
    """Number of ``source_ms`` bars in one ``target_ms`` bucket.

    Parameters
    ----------
    source_ms, target_ms:
        Bar lengths in milliseconds.

    Returns
    -------
    int
        ``target_ms // source_ms`` (>= 1).

    Raises
    ------
    ConfigError
        When either length is not positive or ``target_ms`` is not a whole multiple of
        ``source_ms``.

    >>> check_multiple(300_000, 3_600_000)
    12
    """
    if source_ms <= 0 or target_ms <= 0:
        raise ConfigError(
            f"timeframe lengths must be > 0 ms, were source={source_ms} target={target_ms}",
            field="timeframe",
        )
    if target_ms % source_ms != 0:
        raise ConfigError(
            f"target timeframe {target_ms} ms is not a multiple of source timeframe {source_ms} ms",
            field="timeframe",
        )
    return target_ms // source_ms


def resample(candles: Candles, source_ms: int, target_ms: int) -> Candles:
    """Aggregate ``source_ms`` bars into epoch-aligned ``target_ms`` bars, complete buckets only.

    Per bucket: first ``open``, max ``high``, min ``low``, last ``close``, summed ``volume``; the
    extra columns in :data:`SUMMED_EXTRA_COLUMNS` are summed when present, other extra columns
    (e.g. a VWAP, which is not additive) are dropped.

    A bucket is *complete* when it holds ``target_ms // source_ms`` bars spanning the whole
    bucket. A bucket with a gap inside (a missing source bar) is therefore incomplete and
    dropped, as are partial first and last buckets: a higher bar is never built from part of
    its period. Gaps are never filled.

    Parameters
    ----------
    candles:
        Source bars, ``open_time`` strictly increasing (ms UTC), length n.
    source_ms:
        Length of one source bar in ms.
    target_ms:
        Length of one output bar in ms; a whole multiple of ``source_ms``.

    Returns
    -------
    Candles
        m <= n // (target_ms // source_ms) bars, ``open_time`` = bucket start (ms UTC).

    Raises
    ------
    ConfigError
        When ``target_ms`` is not a positive multiple of ``source_ms``.

    Examples
    --------
    Twelve 5m bars from 00:00 make one 1h bar at 00:00; eleven bars make none.
    """
    per = check_multiple(source_ms, target_ms)
    n = len(candles)
    if n == 0:
        return Candles.empty()
    ot = np.asarray(candles.open_time, dtype=np.int64)
    bucket = ot // target_ms * target_ms
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    ends = np.concatenate((starts[1:], [n])) - 1  # index of each bucket's last bar
    # Both conditions: the count alone would accept bars spaced closer than source_ms.
    complete = (ends - starts + 1 == per) & (ot[ends] - ot[starts] == target_ms - source_ms)
    first, last = starts[complete], ends[complete]

    def summed(column: np.ndarray) -> np.ndarray:
        return np.add.reduceat(np.asarray(column, dtype=np.float64), starts)[complete]

    return Candles(
        open_time=bucket[first],
        open=np.asarray(candles.open, dtype=np.float64)[first],
        high=np.maximum.reduceat(np.asarray(candles.high, dtype=np.float64), starts)[complete],
        low=np.minimum.reduceat(np.asarray(candles.low, dtype=np.float64), starts)[complete],
        close=np.asarray(candles.close, dtype=np.float64)[last],
        volume=summed(candles.volume),
        extra={k: summed(v) for k, v in candles.extra.items() if k in SUMMED_EXTRA_COLUMNS},
    )


def completed_index(
    higher_open_time: np.ndarray,
    target_ms: int,
    base_open_time: np.ndarray,
    base_ms: int,
) -> np.ndarray:
    """For each base bar, the index of the last higher-timeframe bar complete at its close.

    Base bar ``i`` closes at ``base_open_time[i] + base_ms``; higher bar ``j`` is complete then
    when ``higher_open_time[j] + target_ms <= base_open_time[i] + base_ms``. Using only these
    indices keeps a multi-timeframe strategy free of lookahead: at base bar ``i`` it sees higher
    bars ``0 .. result[i]`` and nothing still forming.

    Parameters
    ----------
    higher_open_time:
        Shape (m,), int64 ms UTC, strictly increasing (e.g. ``resample(...).open_time``).
    target_ms:
        Length of one higher bar in ms.
    base_open_time:
        Shape (n,), int64 ms UTC, increasing.
    base_ms:
        Length of one base bar in ms; ``target_ms`` must be a multiple of it.

    Returns
    -------
    numpy.ndarray
        Shape (n,), int64; ``-1`` where no higher bar is complete yet.

    Raises
    ------
    ConfigError
        When ``target_ms`` is not a positive multiple of ``base_ms``.

    >>> completed_index(np.array([0, 3_600_000]), 3_600_000,
    ...                 np.array([3_000_000, 3_300_000, 3_600_000]), 300_000).tolist()
    [-1, 0, 0]
    """
    check_multiple(base_ms, target_ms)
    higher_close = np.asarray(higher_open_time, dtype=np.int64) + target_ms
    base_close = np.asarray(base_open_time, dtype=np.int64) + base_ms
    return np.searchsorted(higher_close, base_close, side="right").astype(np.int64) - 1
