"""The trading rules of every known instrument, keyed by venue, market and symbol.

One symbol names different instruments on different markets: Binance's ``BTCUSDT`` perpetual
quotes prices in 0.1 USDT ticks and caps market orders at 120 BTC, while spot ``BTCUSDT`` ticks
in 0.01 USDT. :class:`InstrumentCatalog` keeps them apart so that each is traded by its own rules.
Pure domain code: the catalog is filled by an adapter (``adapters.marketdata.exchange_info``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from domain.errors import UnknownSymbol
from domain.model import Instrument, MarketType

DEFAULT_VENUE = "binance"
"""The venue :meth:`InstrumentCatalog.get` assumes when none is named."""

InstrumentKey = tuple[str, MarketType, str]
"""``(venue, market, symbol)``, e.g. ``("binance", MarketType.SPOT, "BTCUSDT")``."""

_SHOWN = 10  # known symbols listed in an UnknownSymbol message


def instrument_key(instrument: Instrument) -> InstrumentKey:
    """The catalog key ``(venue, market, symbol)`` of ``instrument``."""
    return (instrument.venue, instrument.market, instrument.symbol)


class InstrumentCatalog:
    """An immutable set of instruments, at most one per ``(venue, market, symbol)``.

    Parameters
    ----------
    instruments:
        The instruments of one source (e.g. one exchange-info file), in any order.

    Raises
    ------
    ValueError
        When two of ``instruments`` have the same venue, market and symbol (the message names
        them). Use :meth:`merge` to combine sources where a later one may update an earlier one.

    Examples
    --------
    >>> from decimal import Decimal
    >>> catalog = InstrumentCatalog([
    ...     Instrument("BTCUSDT", tick_size=Decimal("0.1")),
    ...     Instrument("BTCUSDT", tick_size=Decimal("0.01"), market=MarketType.SPOT),
    ... ])
    >>> catalog.get("BTCUSDT").tick_size, catalog.get("BTCUSDT", market="spot").tick_size
    (Decimal('0.1'), Decimal('0.01'))
    """

    __slots__ = ("_by_key",)

    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        by_key: dict[InstrumentKey, Instrument] = {}
        for instrument in instruments:
            key = instrument_key(instrument)
            if key in by_key:
                raise ValueError(f"two instruments for {_describe(*key)}")
            by_key[key] = instrument
        self._by_key = by_key

    def merge(self, *others: InstrumentCatalog) -> InstrumentCatalog:
        """A new catalog with the instruments of ``self`` and then of each of ``others``.

        Where several hold the same venue, market and symbol, the last one wins (a newer
        exchange-info snapshot listed after an older one updates its rules). ``self`` and
        ``others`` are not changed.
        """
        merged = dict(self._by_key)
        for other in others:
            merged.update(other._by_key)
        catalog = InstrumentCatalog()
        catalog._by_key = merged
        return catalog

    def get(
        self,
        symbol: str,
        *,
        venue: str = DEFAULT_VENUE,
        market: MarketType | str = MarketType.PERPETUAL,
    ) -> Instrument:
        """The instrument ``symbol`` on ``venue``'s ``market``.

        Parameters
        ----------
        symbol:
            The venue's spelling, e.g. ``"BTCUSDT"`` (matched exactly, case included).
        venue:
            E.g. ``"binance"``.
        market:
            A :class:`MarketType` or its value (``"perpetual"``, ``"spot"``, ``"stock"``).

        Raises
        ------
        UnknownSymbol
            (``field="symbol"``) When the catalog has no such instrument; the message names
            the symbol, venue and market, the markets where the symbol is known, if any, and
            some symbols the venue's market does have.
        ValueError
            When ``market`` is not a :class:`MarketType` value.
        """
        market = MarketType(market)
        found = self._by_key.get((venue, market, symbol))
        if found is None:
            raise UnknownSymbol(self._unknown_message(symbol, venue, market), field="symbol")
        return found

    def find(
        self,
        symbol: str,
        *,
        venue: str = DEFAULT_VENUE,
        market: MarketType | str = MarketType.PERPETUAL,
    ) -> Instrument | None:
        """Like :meth:`get`, but None when the catalog has no such instrument."""
        return self._by_key.get((venue, MarketType(market), symbol))

    def for_market(
        self, *, venue: str = DEFAULT_VENUE, market: MarketType | str = MarketType.PERPETUAL
    ) -> dict[str, Instrument]:
        """Every instrument of ``venue``'s ``market`` keyed by symbol (the ``{symbol:
        Instrument}`` mapping a broker or engine trading that one market takes)."""
        market = MarketType(market)
        return {
            key[2]: instrument
            for key, instrument in self._by_key.items()
            if key[0] == venue and key[1] is market
        }

    def markets_of(self, symbol: str) -> list[tuple[str, MarketType]]:
        """The ``(venue, market)`` pairs on which ``symbol`` is known, in catalog order."""
        return [(key[0], key[1]) for key in self._by_key if key[2] == symbol]

    def __contains__(self, key: object) -> bool:
        """True for a ``(venue, market, symbol)`` key the catalog holds."""
        return key in self._by_key

    def __iter__(self) -> Iterator[Instrument]:
        """The instruments, in the order they were added."""
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def __repr__(self) -> str:
        markets = sorted({f"{key[0]} {key[1]}" for key in self._by_key})
        return f"InstrumentCatalog({len(self)} instruments: {', '.join(markets) or 'none'})"

    def _unknown_message(self, symbol: str, venue: str, market: MarketType) -> str:
        message = f"unknown symbol {symbol!r}: no instrument for {_describe(venue, market, symbol)}"
        elsewhere = self.markets_of(symbol)
        if elsewhere:
            where = ", ".join(f"{v} {m}" for v, m in elsewhere)
            return f"{message}; {symbol} is known on {where}"
        known = sorted(self.for_market(venue=venue, market=market))
        if not known:
            return f"{message}; the catalog has no {venue} {market} instruments at all"
        shown = ", ".join(known[:_SHOWN]) + (", ..." if len(known) > _SHOWN else "")
        return f"{message}; known {venue} {market} symbols: {shown}"


def _describe(venue: str, market: MarketType, symbol: str) -> str:
    return f"{venue} {market} {symbol}"
