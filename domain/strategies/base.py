"""The strategy interface: one stateful instance per run, one decision per timestamp.

A run builds one strategy instance and keeps it for the whole run, in backtest, paper and live
alike. The engine feeds it every newly closed bar of every symbol (:meth:`Strategy.on_bars`:
one block per symbol holding the whole history in a backtest, one bar in paper and live); the
strategy updates its features (vectorized batch form or incremental form, equal by test) and
answers the bar close times at which it wants to decide. At each such time, and when one of
its wake-ups fires, the engine calls :meth:`Strategy.decide` once with the whole portfolio and
every symbol that is due, and the strategy answers with order intents, cancels, modifications,
wake-ups and signals for any symbol. So a backtest costs time per decision, not per bar.

Path-dependent state (trailing highs, hysteresis, last recompute times) lives in
:meth:`Strategy.state` (JSON-serializable), which the engine commits with every bar and
restores after a restart; periodic work is aligned to epoch market time, never to process start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from domain.candles import Candles
from domain.model import (
    ZERO,
    ExitPlan,
    Instrument,
    Order,
    OrderType,
    Position,
    Side,
    Signal,
    TimeInForce,
)
from domain.pipeline_events import PipelineEvent

if TYPE_CHECKING:  # (scikit-learn loads only when a strategy uses ML)
    from domain.ml.signal_input import ActiveModel, ModelSpan


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order a strategy wants placed on ``symbol`` (the engine assigns the client id).

    ``qty`` in base asset; ``price`` the limit price and ``stop_price`` the trigger (quote
    currency); ``trailing_offset`` the distance of a trailing stop behind the best price;
    ``exits`` are placed when the order fills; ``link_id`` links orders (one cancels the
    others). ``leg`` names the exit rule that placed it (``time``, ``regime``...): the order's
    tag is then ``<strategy>:<leg>``, which gives the trade its exit reason
    (:func:`domain.orders.exit_reason`). A zero or negative ``qty`` is allowed here and dropped
    by the engine with a reason.
    """

    symbol: str
    side: Side
    qty: Decimal
    type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    stop_price: Decimal | None = None
    trailing_offset: Decimal | None = None
    reduce_only: bool = False
    time_in_force: TimeInForce = TimeInForce.GTC
    exits: ExitPlan | None = None
    link_id: str | None = None
    leg: str | None = None


@dataclass(frozen=True, slots=True)
class Modify:
    """Amend the working order ``order_id``: new ``qty`` (base asset), ``price`` or
    ``stop_price`` (quote currency); None keeps the value."""

    order_id: str
    qty: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class WakeUp:
    """Ask to decide again on ``symbol`` at the close of the first bar that closes at or after
    ``at_time`` (ms UTC), or whose high reaches ``above``, or whose low reaches ``below`` (quote
    currency), whichever comes first. ``tag`` names it (a later wake-up with the same symbol and
    tag replaces it). The simulator finds that bar vectorized, so a breakeven move or a time
    exit costs one decision."""

    symbol: str
    tag: str
    at_time: int | None = None
    above: float | None = None
    below: float | None = None

    def __post_init__(self) -> None:
        if self.at_time is None and self.above is None and self.below is None:
            raise ValueError(f"wake-up {self.tag!r} needs at_time, above or below")


@dataclass(frozen=True, slots=True)
class Decision:
    """What a strategy decided at one timestamp: ``signals`` (with their reasons), orders to
    place, order ids to cancel, amendments, wake-ups to set and wake-up tags to drop
    (``(symbol, tag)`` pairs)."""

    signals: tuple[Signal, ...] = ()
    orders: tuple[OrderIntent, ...] = ()
    cancel: tuple[str, ...] = ()
    modify: tuple[Modify, ...] = ()
    wake: tuple[WakeUp, ...] = ()
    drop_wakes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Portfolio:
    """The account as the strategy sees it at a decision (quote currency, ms UTC).

    ``equity`` = ``cash`` (wallet balance) + unrealized PnL at ``marks`` (each symbol's last
    close); ``margin_used`` = gross notional of the positions / leverage 1; ``positions`` holds
    non-flat positions; ``open_orders`` the working orders by symbol; ``leverage`` the
    account's leverage per symbol (see :meth:`leverage_of`).
    """

    time: int
    equity: Decimal
    cash: Decimal
    margin_used: Decimal
    positions: Mapping[str, Position]
    open_orders: Mapping[str, tuple[Order, ...]]
    marks: Mapping[str, Decimal]
    instruments: Mapping[str, Instrument]
    leverage: Mapping[str, int] = field(default_factory=dict)

    def margin_available(self, symbol: str) -> Decimal | None:
        """What a position in ``symbol`` may put up as initial margin (quote currency): the
        equity less the initial margin of the positions in other symbols at their marks
        (``|qty| × mark / leverage``); None when the account is not margined as futures (no
        ``leverage`` known). A new position's notional fits when it is at most this times
        :meth:`leverage_of` (the venue's initial-margin check)."""
        if not self.leverage:
            return None
        used = ZERO
        for other, position in self.positions.items():
            if other != symbol:
                mark = self.marks.get(other, position.entry_price)
                used += abs(position.qty) * mark / self.leverage_of(other)
        return self.equity - used

    def leverage_of(self, symbol: str) -> int:
        """The leverage ``symbol`` trades at (1 when the venue names none): a position's
        initial margin is its notional / this."""
        return self.leverage.get(symbol, 1)

    def position(self, symbol: str) -> Position:
        """The net position in ``symbol`` (flat when none)."""
        return self.positions.get(symbol) or Position(symbol)

    def orders(self, symbol: str) -> tuple[Order, ...]:
        """Working orders of ``symbol``, oldest first."""
        return self.open_orders.get(symbol, ())

    @property
    def gross_exposure(self) -> Decimal:
        """Sum of |qty| × mark over the positions."""
        return sum(
            (abs(p.qty) * self.marks.get(s, p.entry_price) for s, p in self.positions.items()),
            ZERO,
        )


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """One decision: at bar close ``time`` (ms UTC) on ``timeframe``, the symbols the strategy
    asked to decide on (``due``), the wake-ups that fired (``woken``) and the symbols on which
    no new exposure can open now (``closed``: a lasting risk hold, such as the daily loss
    limit or a losing streak, holds them reducing or halted). A strategy skips the entries of
    a closed symbol (the risk gate would refuse them) and still manages what it holds."""

    time: int
    timeframe: str
    portfolio: Portfolio
    due: frozenset[str]
    woken: tuple[WakeUp, ...] = ()
    closed: frozenset[str] = frozenset()


class Strategy(Protocol):
    """A named, parameterized, stateful strategy (one instance per run)."""

    name: str

    def params(self) -> dict[str, float | int | str | bool]:
        """The parameters in effect (for storage and display)."""
        ...

    def warmup_bars(self) -> int:
        """Base-timeframe bars of history the strategy needs before its first decision (also
        the bounded window paper and live keep per symbol)."""
        ...

    def prepare(self, symbols: tuple[str, ...], instruments: Mapping[str, Instrument]) -> None:
        """Set up per-symbol state for the run's ``symbols`` (called once, before any bar)."""
        ...

    def on_bars(self, bars: Mapping[str, Candles]) -> dict[str, np.ndarray]:
        """Take newly closed bars (time-ordered per symbol, after every bar seen before) and
        return, per symbol, the close times (ms UTC, sorted int64) among them at which the
        strategy wants to decide."""
        ...

    def decide(self, ctx: DecisionContext) -> Decision:
        """The decision at ``ctx.time`` for the due symbols and fired wake-ups."""
        ...

    def state(self) -> dict[str, Any]:
        """Path-dependent state to commit with the bar (JSON-serializable)."""
        ...

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state`` (as returned by :meth:`state`) after a restart."""
        ...


NO_ROWS = np.empty(0, dtype=np.intp)
"""No row of a block (read-only): the candidates of a one-bar block where nothing is due."""
NO_ROWS.flags.writeable = False
FIRST_ROW = np.zeros(1, dtype=np.intp)
"""Row 0 of a block (read-only): the candidates of a one-bar block whose bar is due."""
FIRST_ROW.flags.writeable = False


def zero_crossings(previous: float, values: np.ndarray) -> np.ndarray:
    """Rows ``i`` of ``values`` where it crosses zero strictly: ``values[i-1] < 0 < values[i]``
    or ``values[i-1] > 0 > values[i]``, with ``previous`` the value before ``values[0]`` (NaN
    never crosses; touching zero is no cross). Returns sorted indices (read-only).

    A one-row block (a paper or live bar) is answered in scalar arithmetic: the same
    comparisons without the cost of building arrays.
    """
    if len(values) == 1:
        value = float(values[0])
        crossed = previous < 0 < value or previous > 0 > value
        return FIRST_ROW if crossed else NO_ROWS
    before = np.r_[previous, values[:-1]]
    return np.flatnonzero(((before < 0) & (values > 0)) | ((before > 0) & (values < 0)))


def floor_qty(notional: Decimal, price: Decimal, instrument: Instrument) -> Decimal:
    """The largest lot-step quantity whose value at ``price`` is at most ``notional``;
    zero when that is below the instrument's minimum notional."""
    if price <= 0 or notional <= 0:
        return Decimal(0)
    qty = instrument.round_qty(notional / price)
    if qty <= 0 or qty * price < instrument.min_notional:
        return Decimal(0)
    return qty


def next_aligned(time: int, period_ms: int) -> int:
    """The first instant strictly after ``time`` (ms UTC) that is a whole multiple of
    ``period_ms`` since the Unix epoch.

    Periodic work ("every hour", "every 4 hours") is scheduled with it, e.g. as
    ``WakeUp(symbol, "recompute", at_time=next_aligned(ctx.time, 4 * 3_600_000))``, so it runs at
    00:00, 04:00, … UTC of market time whatever the process start, in backtest, paper and live
    alike, and a restarted run keeps the schedule.

    >>> next_aligned(3_600_000 * 5 + 1, 4 * 3_600_000) // 3_600_000
    8

    Raises
    ------
    ValueError
        When ``period_ms`` is not positive.
    """
    if period_ms <= 0:
        raise ValueError(f"period_ms must be > 0, was {period_ms}")
    return (time // period_ms + 1) * period_ms


@dataclass(frozen=True, slots=True)
class PipelineView:
    """What an adaptive strategy's pipeline says about ``symbol`` at its last bar: the
    confirmed ``regime`` (None when off or failed), the coordinator's ``confidence`` [0, 1],
    the ``volatility_pct`` (percent) and the ADX (points) and RVOL (ratio) thresholds an entry
    must reach, and each feature's state (``on``, ``off``, ``failed``) with its failures so
    far (for ``lootcapital_feature_errors_total``)."""

    symbol: str
    regime: str | None
    confidence: float
    volatility_pct: float
    adx_threshold: float
    rvol_threshold: float
    features: dict[str, str]
    failures: dict[str, int]


@runtime_checkable
class ReportsEvents(Protocol):
    """A strategy whose pipeline reports its changes as it takes bars (threshold
    adjustments, regime changes: :mod:`domain.pipeline_events`), for the run to store."""

    def drain_events(self) -> list[PipelineEvent]:
        """The events of the bars taken since the last call, then forgets them."""
        ...


@runtime_checkable
class UsesModels(Protocol):
    """A strategy with trained models as inputs (:mod:`domain.ml.signal_input`): the
    composition root hands over the registry's active model per symbol when
    :attr:`wants_models`, and the run reports which model acted when."""

    @property
    def wants_models(self) -> bool:
        """True when the registry's active models are to be handed over."""
        ...

    def use_model(self, symbol: str, model: ActiveModel | None, error: str | None = None) -> None:
        """Put ``model`` in effect on ``symbol`` (None: none, ``error`` saying why)."""
        ...

    def model_spans(self) -> list[ModelSpan]:
        """Which model predicted on which symbol when."""
        ...


@runtime_checkable
class ExplainsPipeline(Protocol):
    """A strategy that shows its pipeline (the metrics and the API read it between bars)."""

    def pipeline_view(self) -> list[PipelineView]:
        """One view per traded symbol."""
        ...
