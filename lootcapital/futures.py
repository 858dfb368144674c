"""Where the futures data of a kline file sits: its funding-rate and mark-price files beside it
(paths only; :mod:`lootcapital.bootstrap` reads them into the simulated venue's futures book)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from lootcapital.settings import Settings

_KLINE_NAME = re.compile(
    r"^(?P<stem>.*_(?P<symbol>[A-Z0-9]+))_[0-9]+[mhdwM](?P<ext>\.csv(?:\.gz)?)$"
)
"""A normalized kline file name: ``binance_usdm_BTCUSDT_5m.csv.gz``."""


def beside(path: Path, kind: str) -> Path | None:
    """The ``kind`` file (``funding`` or ``mark_1h``) next to the kline file ``path``, named as
    the shared data names it (``binance_usdm_BTCUSDT_5m.csv.gz`` →
    ``binance_usdm_BTCUSDT_funding.csv.gz``); None when the name does not follow that pattern
    or the file is not there."""
    match = _KLINE_NAME.match(path.name)
    if match is None:
        return None
    found = path.with_name(f"{match['stem']}_{kind}{match['ext']}")
    return found if found.exists() else None


def sample_files(settings: Settings, symbols: Sequence[str], timeframe: str) -> dict[str, Path]:
    """The shipped sample's kline file of each symbol that has one (the candle store's bars of
    the default exchange came from them): where their funding and mark files sit."""
    out = {}
    for symbol in symbols:
        path = settings.sample_dir / f"binance_usdm_{symbol}_{timeframe}.csv.gz"
        if path.exists():
            out[symbol] = path
    return out
