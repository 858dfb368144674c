"""SQLModel tables for the trading state: orders, fills, trades, funding payments, positions,
equity, signals, runs.

Rows are storage shapes only; :mod:`adapters.storage.sql.mappers` converts them to and from the
domain objects. The schema is created and changed only through Alembic
(``alembic/versions/``); a test checks that the migrated schema equals :data:`metadata`.

Conventions: times are ``BigInteger`` ms UTC; money and quantities are :class:`ExactDecimal`
(``NUMERIC(38, 18)`` on PostgreSQL); enums are stored as their string values; nested values
(signal reasons, run parameters, run state, exit plans) are JSON. Every row but a run's and the
model registry's (``models``, ``model_symbols``, ``model_activations``) belongs to one run
(``run_id``); the repositories read and write only the rows of their unit of work's run.
"""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

PRECISION = 38
"""Total significant digits of a money/quantity column."""
SCALE = 18
"""Digits after the decimal point of a money/quantity column."""

_QUANTUM = Decimal(1).scaleb(-SCALE)
_LIMIT = Decimal(10) ** (PRECISION - SCALE)
# Wide enough that quantizing any in-range value is exact before the range check.
_CONTEXT = Context(prec=PRECISION + 30)


def fit_decimal(value: Decimal | int | str) -> Decimal:
    """Round ``value`` to the column's 18 decimal places and check its range.

    Both backends then store the same number: PostgreSQL would round ``NUMERIC(38, 18)`` input the
    same way (half-even here), SQLite stores the text exactly.

    Parameters
    ----------
    value:
        A ``Decimal`` (or an int / numeric string) in any unit.

    Returns
    -------
    Decimal
        ``value`` quantized to ``1e-18`` with ``ROUND_HALF_EVEN``.

    Raises
    ------
    ValueError
        If ``value`` is a float (inexact), NaN or infinite, or ``|value| >= 1e20``.
    """
    if isinstance(value, float):
        raise ValueError(f"money/qty columns take Decimal, not float; was {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal number: {value!r}") from exc
    if not number.is_finite():
        raise ValueError(f"money/qty must be finite, was {number}")
    quantized = number.quantize(_QUANTUM, context=_CONTEXT)
    if abs(quantized) >= _LIMIT:
        raise ValueError(f"money/qty must be < 1e{PRECISION - SCALE} in magnitude, was {number}")
    return quantized


def strip_decimal(value: Decimal) -> Decimal:
    """``value`` without trailing fractional zeros, never in exponent form.

    ``Decimal("0.100000000000000000")`` → ``Decimal("0.1")``; ``Decimal("100.000")`` →
    ``Decimal("100")`` (where ``normalize()`` alone would give ``1E+2``); zero of either sign →
    ``Decimal("0")``.
    """
    if value == 0:
        return Decimal(0)
    if value == value.to_integral_value(context=_CONTEXT):
        return value.quantize(Decimal(1), context=_CONTEXT)
    return value.normalize(_CONTEXT)


class ExactDecimal(sa.types.TypeDecorator[Decimal]):
    """Money/quantity column: ``NUMERIC(38, 18)`` on PostgreSQL, exact text on SQLite.

    SQLite has no decimal type: a ``NUMERIC`` column there converts values to 64-bit floats
    (about 15 significant digits), so the value is stored as its fixed-point string instead.
    Values are rounded to 18 places on the way in (:func:`fit_decimal`) and come back with
    trailing zeros stripped (:func:`strip_decimal`), identical on both backends.
    """

    impl = sa.Numeric(PRECISION, SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        """``VARCHAR`` on SQLite, ``NUMERIC(38, 18)`` returning ``Decimal`` elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String())
        return dialect.type_descriptor(sa.Numeric(PRECISION, SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Round and range-check ``value``; as a fixed-point string on SQLite."""
        if value is None:
            return None
        fitted = fit_decimal(value)
        if dialect.name == "sqlite":
            return format(strip_decimal(fitted), "f")
        return fitted

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """The stored value as a ``Decimal`` with trailing zeros stripped."""
        if value is None:
            return None
        return strip_decimal(Decimal(value))


def _money(*, nullable: bool = False) -> Any:
    return Field(sa_type=ExactDecimal(), nullable=nullable)


def _text(*, nullable: bool = False) -> Any:
    return Field(sa_type=sa.String(), nullable=nullable)


def _time(*, nullable: bool = False) -> Any:
    return Field(sa_type=sa.BigInteger(), nullable=nullable)


def _run_id() -> Any:
    return Field(sa_type=sa.String(), nullable=False)


def _json(*, nullable: bool = False, server_default: str | None = None) -> Any:
    kwargs = {} if server_default is None else {"server_default": sa.text(server_default)}
    return Field(sa_type=sa.JSON(), nullable=nullable, sa_column_kwargs=kwargs)


class OrderRow(SQLModel, table=True):
    """One order of one run in its latest state (``status``, ``filled_qty``, ``avg_fill_price``).

    ``id`` is the client order id, unique across runs (deterministic ids hash the run id in).
    ``exits`` is the order's :class:`~domain.model.ExitPlan` as JSON with decimal strings
    (``{"stop_distance": "1.5", "take_profits": [{"distance": "3", "fraction": "0.5"}],
    "trailing_distance": "2"}``, absent keys meaning none). ``legacy_client_order_id`` holds the
    user-given client id of orders stored before revision 0002; nothing writes it any more.
    """

    __tablename__ = "orders"
    __table_args__ = (
        sa.Index("ix_orders_run_id_created_time", "run_id", "created_time", "id"),
        sa.Index("ix_orders_run_id_symbol_created_time", "run_id", "symbol", "created_time", "id"),
        sa.Index("ix_orders_run_id_status", "run_id", "status"),
    )

    id: str = Field(sa_type=sa.String(), primary_key=True)
    run_id: str = _run_id()
    symbol: str = _text()
    side: str = _text()
    type: str = _text()
    qty: Decimal = _money()
    created_time: int = _time()
    price: Decimal | None = _money(nullable=True)
    stop_price: Decimal | None = _money(nullable=True)
    legacy_client_order_id: str | None = _text(nullable=True)
    status: str = _text()
    filled_qty: Decimal = _money()
    avg_fill_price: Decimal | None = _money(nullable=True)
    updated_time: int | None = _time(nullable=True)
    reduce_only: bool = Field(sa_type=sa.Boolean(), nullable=False)
    tag: str = _text()
    reject_reason: str | None = _text(nullable=True)
    time_in_force: str = _text()
    venue_order_id: str | None = _text(nullable=True)
    link_id: str | None = _text(nullable=True)
    trailing_offset: Decimal | None = _money(nullable=True)
    exits: dict[str, Any] | None = _json(nullable=True)


class FillRow(SQLModel, table=True):
    """One execution of an order (append-only; the id is the venue's, unique across runs)."""

    __tablename__ = "fills"
    __table_args__ = (
        # Deferred to commit, so a unit of work may write a fill before its order.
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name="fk_fills_order_id_orders",
            deferrable=True,
            initially="DEFERRED",
        ),
        sa.Index("ix_fills_order_id", "order_id"),
        sa.Index("ix_fills_run_id_time", "run_id", "time", "id"),
    )

    id: str = Field(sa_type=sa.String(), primary_key=True)
    run_id: str = _run_id()
    order_id: str = _text()
    symbol: str = _text()
    side: str = _text()
    qty: Decimal = _money()
    price: Decimal = _money()
    fee: Decimal = _money()
    liquidity: str = _text()
    time: int = _time()
    realized_pnl: Decimal = _money()


class TradeRow(SQLModel, table=True):
    """One closed round-trip trade of one run (append-only; ids unique across runs)."""

    __tablename__ = "trades"
    __table_args__ = (
        sa.Index("ix_trades_run_id_exit_time", "run_id", "exit_time", "id"),
        sa.Index("ix_trades_run_id_symbol_exit_time", "run_id", "symbol", "exit_time", "id"),
    )

    id: str = Field(sa_type=sa.String(), primary_key=True)
    run_id: str = _run_id()
    symbol: str = _text()
    side: str = _text()
    qty: Decimal = _money()
    entry_time: int = _time()
    entry_price: Decimal = _money()
    exit_time: int = _time()
    exit_price: Decimal = _money()
    pnl: Decimal = _money()
    fees: Decimal = _money()
    exit_reason: str = Field(
        sa_type=sa.String(), nullable=False, sa_column_kwargs={"server_default": "signal"}
    )


class FundingRow(SQLModel, table=True):
    """One funding settlement of one position in one run (``amount`` > 0: the account paid)."""

    __tablename__ = "funding_payments"

    run_id: str = Field(sa_type=sa.String(), primary_key=True)
    symbol: str = Field(sa_type=sa.String(), primary_key=True)
    time: int = Field(
        sa_type=sa.BigInteger(), primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    qty: Decimal = _money()
    mark: Decimal = _money()
    rate: Decimal = _money()
    amount: Decimal = _money()


class PositionRow(SQLModel, table=True):
    """Current net position of one symbol in one run (flat positions stay, with ``qty`` 0)."""

    __tablename__ = "positions"

    run_id: str = Field(sa_type=sa.String(), primary_key=True)
    symbol: str = Field(sa_type=sa.String(), primary_key=True)
    qty: Decimal = _money()
    entry_price: Decimal = _money()
    opened_time: int | None = _time(nullable=True)
    entry_fees: Decimal = _money()


class EquityRow(SQLModel, table=True):
    """Account equity and cash of one run at one bar time (ms UTC)."""

    __tablename__ = "equity"

    run_id: str = Field(sa_type=sa.String(), primary_key=True)
    time: int = Field(
        sa_type=sa.BigInteger(), primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    equity: Decimal = _money()
    cash: Decimal = _money()


class SignalRow(SQLModel, table=True):
    """One strategy signal; ``reasons`` is a JSON list of ``{component, message, values}``.

    A signal is unique per (run_id, symbol, timeframe, strategy, time): writing it again
    replaces it and keeps its ``id`` (the database-assigned tie-breaker of the listing order).
    """

    __tablename__ = "signals"
    __table_args__ = (
        sa.UniqueConstraint(
            "run_id",
            "symbol",
            "timeframe",
            "strategy",
            "time",
            name="uq_signals_run_id_symbol_timeframe_strategy_time",
        ),
        sa.Index("ix_signals_run_id_time", "run_id", "time", "id"),
        sa.Index("ix_signals_run_id_symbol_time", "run_id", "symbol", "time", "id"),
    )

    id: int | None = Field(
        default=None,
        sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
    )
    run_id: str = _run_id()
    symbol: str = _text()
    timeframe: str = _text()
    time: int = _time()
    direction: str = _text()
    confidence: float = Field(sa_type=sa.Float(), nullable=False)
    reasons: list[dict[str, Any]] = _json()
    strategy: str = _text()


class RunRow(SQLModel, table=True):
    """One paper/live run: ``params``, ``symbols``, ``last_bar_time`` and ``state`` are JSON.

    ``state`` is the kernel's and the strategy's path-dependent state, ``candles_processed`` the
    number of bars processed over the run, ``error`` the error that last stopped it.
    """

    __tablename__ = "runs"
    __table_args__ = (sa.Index("ix_runs_mode_started_time", "mode", "started_time"),)

    id: str = Field(sa_type=sa.String(), primary_key=True)
    mode: str = _text()
    strategy: str = _text()
    params: dict[str, Any] = _json()
    symbols: list[str] = _json()
    timeframe: str = _text()
    started_time: int = _time()
    initial_cash: Decimal = _money()
    cash: Decimal = _money()
    last_bar_time: dict[str, int] = _json()
    stopped_reason: str | None = _text(nullable=True)
    state: dict[str, Any] = _json(server_default="'{}'")
    candles_processed: int = Field(
        sa_type=sa.BigInteger(), nullable=False, sa_column_kwargs={"server_default": sa.text("0")}
    )
    error: str | None = _text(nullable=True)


def _serial_id() -> Any:
    return Field(
        default=None,
        sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
    )


class RiskEventRow(SQLModel, table=True):
    """One risk event of one run (append-only): a trading-state change (``kind`` ``state``,
    with ``from_state`` and ``to_state``) or an alert (``kind`` ``unusual_volume`` or
    ``close_all``, with its ``value``), at ``time`` (ms UTC) on ``scope`` (``account`` or a
    symbol), with the ``reason`` shown to the user, the ``source`` that caused it (a breaker
    or ``manual``) and ``who`` did it by hand (null for a breaker)."""

    __tablename__ = "risk_events"
    __table_args__ = (sa.Index("ix_risk_events_run_id_time", "run_id", "time", "id"),)

    id: int | None = _serial_id()
    run_id: str = _run_id()
    time: int = _time()
    scope: str = _text()
    kind: str = _text()
    from_state: str | None = _text(nullable=True)
    to_state: str | None = _text(nullable=True)
    reason: str = _text()
    source: str = _text()
    value: float | None = Field(sa_type=sa.Float(), nullable=True)
    who: str | None = _text(nullable=True)


class RiskLimitsRow(SQLModel, table=True):
    """One change of a run's risk limits (append-only): the whole configuration after it
    (JSON, :mod:`service_layer.risk_config`'s form), set at ``time`` (ms UTC, market clock)
    by ``who``. The latest row is the configuration in force."""

    __tablename__ = "risk_limit_changes"
    __table_args__ = (sa.Index("ix_risk_limit_changes_run_id_time", "run_id", "time", "id"),)

    id: int | None = _serial_id()
    run_id: str = _run_id()
    time: int = _time()
    who: str = _text()
    limits: dict[str, Any] = _json()


class PipelineEventRow(SQLModel, table=True):
    """One change in a symbol's adaptive pipeline (append-only, issue 6): a thresholds
    adjustment or a regime change (``kind``), at ``time`` (ms UTC, the bar close from which
    it holds), with its ``data`` (JSON: old and new thresholds with the percentile and
    multiplier, or the regimes ``from`` and ``to``). Unique per (run_id, symbol, kind, time):
    a replayed bar writes it again in place."""

    __tablename__ = "pipeline_events"
    __table_args__ = (
        sa.UniqueConstraint(
            "run_id", "symbol", "kind", "time", name="uq_pipeline_events_run_id_symbol_kind_time"
        ),
        sa.Index("ix_pipeline_events_run_id_time", "run_id", "time", "id"),
    )

    id: int | None = _serial_id()
    run_id: str = _run_id()
    time: int = _time()
    symbol: str = _text()
    kind: str = _text()
    data: dict[str, Any] = _json()


class AlertRow(SQLModel, table=True):
    """One alert of one run (issue 10), stored when it fired: its ``rule``, ``severity``,
    ``title``, ``message`` and ``data`` (JSON), at ``time`` (ms UTC, market clock), and its
    delivery: the ``channels`` it was sent to, those that took it (``delivered``) and those
    that refused it after every retry (``failed``), JSON lists of channel names."""

    __tablename__ = "alerts"
    __table_args__ = (sa.Index("ix_alerts_run_id_time", "run_id", "time", "id"),)

    id: int | None = _serial_id()
    run_id: str = _run_id()
    time: int = _time()
    rule: str = _text()
    severity: str = _text()
    title: str = _text()
    message: str = _text()
    data: dict[str, Any] = _json()
    channels: list[str] = _json()
    delivered: list[str] = _json()
    failed: list[str] = _json()


class ModelRow(SQLModel, table=True):
    """One stored ML model of the registry (issue 7), shared by every run: its metadata
    (:class:`~domain.ports.ModelMetadata`) as the model store's ``metadata.json`` holds it.
    ``symbols`` keeps their order (``model_symbols`` indexes them for filtering); times are ms
    UTC; ``metrics``, ``versions`` (library → version), ``params``, ``label`` and
    ``feature_names`` are JSON. The artifact itself stays in the model store's files."""

    __tablename__ = "models"
    __table_args__ = (sa.Index("ix_models_kind_created_ms", "kind", "created_ms", "model_id"),)

    model_id: str = Field(sa_type=sa.String(), primary_key=True)
    kind: str = _text()
    algo: str = _text()
    symbols: list[str] = _json()
    timeframe: str = _text()
    feature_set: str = _text()
    feature_names: list[str] = _json()
    label: dict[str, Any] = _json()
    train_start_ms: int = _time()
    train_end_ms: int = _time()
    created_ms: int = _time()
    metrics: dict[str, Any] = _json()
    versions: dict[str, Any] = _json()
    params: dict[str, Any] = _json()
    sha256: str = _text()


class ModelSymbolRow(SQLModel, table=True):
    """One symbol a stored model was trained on (``GET /models?symbol=`` filters on it); goes
    with its model."""

    __tablename__ = "model_symbols"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.model_id"],
            name="fk_model_symbols_model_id_models",
            ondelete="CASCADE",
        ),
        sa.Index("ix_model_symbols_symbol", "symbol"),
    )

    model_id: str = Field(sa_type=sa.String(), primary_key=True)
    symbol: str = Field(sa_type=sa.String(), primary_key=True)


class ModelActivationRow(SQLModel, table=True):
    """One activation (append-only): ``model_id`` became the active model of ``kind`` on
    ``symbol`` at ``time`` (ms UTC, wall clock) by ``who`` through ``action`` (``activate``,
    ``rollback``, ``sync``); a null ``model_id`` means none is active any more. The latest row
    of a kind and symbol is its active model. No foreign key: the history outlives a model
    whose files were deleted."""

    __tablename__ = "model_activations"
    __table_args__ = (
        sa.Index("ix_model_activations_kind_symbol", "kind", "symbol", "id"),
        sa.Index("ix_model_activations_model_id", "model_id"),
    )

    id: int | None = _serial_id()
    kind: str = _text()
    symbol: str = _text()
    model_id: str | None = _text(nullable=True)
    time: int = _time()
    who: str = _text()
    action: str = _text()


class BacktestRow(SQLModel, table=True):
    """One backtest run from the API or the panel (issue 10), shared by every run: its
    ``status`` (``running``, ``done``, ``failed``), what ran (``strategy``, ``symbols``,
    ``timeframe``, the whole ``request`` as JSON), when it was asked and ended (ms UTC, wall
    clock), and once done its ``metrics``, ``result`` (the CLI's ``--json`` document less
    the metrics, with the closes of its symbols) and ``view`` (what the panel shows of the
    result: the first trades and the thinned chart data; null before revision 0009) as JSON;
    once failed, ``error``."""

    __tablename__ = "backtests"
    __table_args__ = (sa.Index("ix_backtests_created_ms", "created_ms", "id"),)

    id: str = Field(sa_type=sa.String(), primary_key=True)
    status: str = _text()
    strategy: str = _text()
    symbols: list[str] = _json()
    timeframe: str = _text()
    request: dict[str, Any] = _json()
    created_ms: int = _time()
    finished_ms: int | None = _time(nullable=True)
    error: str | None = _text(nullable=True)
    metrics: dict[str, Any] | None = _json(nullable=True)
    result: dict[str, Any] | None = _json(nullable=True)
    view: dict[str, Any] | None = _json(nullable=True)


metadata: sa.MetaData = SQLModel.metadata
"""The metadata holding every table above; Alembic's ``env.py`` compares against it."""

ALL_TABLES: tuple[type[SQLModel], ...] = (
    OrderRow,
    FillRow,
    TradeRow,
    FundingRow,
    PositionRow,
    EquityRow,
    SignalRow,
    RunRow,
    RiskEventRow,
    RiskLimitsRow,
    PipelineEventRow,
    ModelRow,
    ModelSymbolRow,
    ModelActivationRow,
    AlertRow,
    BacktestRow,
)
"""Every row class, parents before children (orders before fills)."""


class ReconciliationEventRow(SQLModel, table=True):
    """One difference between a live run's ledger and its venue that reconciliation found and
    repaired (append-only): ``kind`` (:class:`~domain.reconciliation.DriftKind`), ``venue``,
    ``symbol`` and ``details`` for the user, at ``time`` (ms UTC, the run's wall clock)."""

    __tablename__ = "reconciliation_events"
    __table_args__ = (sa.Index("ix_reconciliation_events_run_id_time", "run_id", "time", "id"),)

    id: int | None = _serial_id()
    run_id: str = _run_id()
    time: int = _time()
    kind: str = _text()
    venue: str = _text()
    symbol: str = _text()
    details: str = _text()
