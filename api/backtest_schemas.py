"""Bodies of ``/api/v1/backtests``: the request (the CLI's ``lootcapital backtest`` options),
the job pushed over the WebSocket, a listed backtest, one backtest's result and a comparison.

Money, prices and quantities are decimal strings as in the CLI's ``--json`` document (money at
the quote asset's precision, prices at the tick, quantities at the lot step); times are ms UTC;
``*_pct`` fields are percent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from api.deps import MAX_TIME_MS
from api.schemas import SymbolIn
from domain.backtest_records import BacktestRecord
from service_layer.backtest_jobs import BacktestJob, BacktestRequest

ParamValue = int | float | bool | str
StatusName = Literal["running", "done", "failed"]


class BacktestIn(BaseModel):
    """What to backtest on the server's stored bars, as ``lootcapital backtest --symbol``:
    ``strategy`` (see ``lootcapital strategies``) with ``params`` over its defaults (e.g.
    ``{"fast": 5, "slow": 20}``), ``symbols``, ``timeframe`` (the stored 5m bars are resampled
    to a longer one), the period from ``start`` (first bar's open, ms UTC, inclusive) to
    ``end`` (exclusive), starting ``cash`` (quote currency), taker ``fee`` (fraction of
    notional; the maker fee keeps the settings' ratio), ``slippage_bps`` (basis points),
    ``leverage`` (x, up to the ``max_leverage`` setting) and the ``margin`` mode of
    perpetuals. Left out: the server's settings, the whole stored period."""

    model_config = ConfigDict(extra="forbid")

    strategy: str = Field(min_length=1, max_length=40, examples=["sma_cross"])
    params: dict[str, ParamValue] = Field(default_factory=dict, max_length=32)
    symbols: list[SymbolIn] = Field(min_length=1, max_length=10, examples=[["BTCUSDT"]])
    timeframe: str | None = Field(default=None, pattern=r"^[1-9][0-9]{0,3}[mhdw]$")
    start: int | None = Field(default=None, ge=0, le=MAX_TIME_MS)
    end: int | None = Field(default=None, ge=0, le=MAX_TIME_MS)
    cash: Decimal | None = Field(default=None, gt=0, le=Decimal(10**12))
    fee: Decimal | None = Field(default=None, ge=0, lt=1)
    slippage_bps: Decimal | None = Field(default=None, ge=0, le=1000)
    leverage: int | None = Field(default=None, ge=1, le=1000)
    margin: Literal["isolated", "cross"] | None = None

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: int | None, info: ValidationInfo) -> int | None:
        start = info.data.get("start")
        if start is not None and end is not None and end <= start:
            raise ValueError(f"end ({end}) must be after start ({start})")
        return end

    def request(self) -> BacktestRequest:
        """The service's request."""
        return BacktestRequest(
            strategy=self.strategy, symbols=tuple(self.symbols), params=dict(self.params),
            timeframe=self.timeframe, start_ms=self.start, end_ms=self.end, cash=self.cash,
            fee=self.fee, slippage_bps=self.slippage_bps, leverage=self.leverage,
            margin=self.margin,
        )  # fmt: skip


class BacktestJobOut(BaseModel):
    """A backtest job: ``running`` with ``progress`` (the fraction of its period done, 0 to
    1), then ``done`` (read the result at ``GET /backtests/{id}``) or ``failed`` (``error``).
    The WebSocket pushes this body as ``backtest`` messages as it runs."""

    id: str
    status: StatusName
    progress: float = Field(ge=0, le=1)
    started_ms: int
    updated_ms: int
    finished_ms: int | None
    error: str | None


class BacktestSummaryOut(BaseModel):
    """A backtest as listed: what ran (``strategy``, ``symbols``, ``timeframe``, the whole
    ``request`` as given), when it was asked and ended (ms UTC), ``progress`` while it runs
    (null otherwise), its ``metrics`` once done (the CLI's ``--json`` metrics) or ``error``."""

    id: str
    status: StatusName
    strategy: str
    symbols: list[str]
    timeframe: str
    request: dict[str, Any]
    created_ms: int
    finished_ms: int | None
    progress: float | None
    error: str | None
    metrics: dict[str, Any] | None


class BacktestPointOut(BaseModel):
    """The equity at a bar close ``time`` (ms UTC): ``equity`` (money) and ``drawdown_pct``,
    percent below the highest equity so far (0 or negative)."""

    time: int
    equity: str
    drawdown_pct: float


class BacktestTradeOut(BaseModel):
    """A round trip: ``side`` ``long`` or ``short``, ``qty`` (base asset), entry and exit
    (ms UTC, prices in quote currency), ``pnl`` net of ``fees`` (``fee_currency``), and what
    closed it."""

    symbol: str
    side: str
    qty: str
    entry_time: int
    entry_price: str
    exit_time: int
    exit_price: str
    pnl: str
    fees: str
    fee_currency: str
    exit_reason: str


class BacktestOut(BacktestSummaryOut):
    """One backtest with its result once done: the ``header`` (what ran, with the defaults
    filled in), ``equity`` (with the drawdown) at every bar close, ``trades``, the
    ``breakdown`` (by symbol and side) and ``rejections``, as the CLI's ``--json`` has them."""

    header: dict[str, Any] | None
    equity: list[BacktestPointOut]
    trades: list[BacktestTradeOut]
    breakdown: dict[str, Any] | None
    rejections: dict[str, Any] | None


class BacktestMetricOut(BaseModel):
    """One metric of each compared backtest, in the order of ``ids`` (null where missing)."""

    name: str
    values: list[int | float | str | None]


class BacktestComparisonOut(BaseModel):
    """Backtests side by side: ``ids``, each one's summary (``backtests``) and its metrics by
    name (``metrics``)."""

    ids: list[str]
    backtests: list[BacktestSummaryOut]
    metrics: list[BacktestMetricOut]


def job_out(job: BacktestJob) -> BacktestJobOut:
    """The body of a backtest job's state."""
    return BacktestJobOut(
        id=job.id, status=job.status, progress=job.progress, started_ms=job.started_ms,
        updated_ms=job.updated_ms, finished_ms=job.finished_ms, error=job.error,
    )  # fmt: skip


def _summary(record: BacktestRecord, running: BacktestJob | None) -> dict[str, Any]:
    progress = None
    if record.status == "running" and running is not None and running.id == record.id:
        progress = running.progress
    return {
        "id": record.id, "status": record.status, "strategy": record.strategy,
        "symbols": list(record.symbols), "timeframe": record.timeframe,
        "request": dict(record.request), "created_ms": record.created_ms,
        "finished_ms": record.finished_ms, "progress": progress, "error": record.error,
        "metrics": None if record.metrics is None else dict(record.metrics),
    }  # fmt: skip


def summary_out(record: BacktestRecord, running: BacktestJob | None) -> BacktestSummaryOut:
    """The listed body of ``record`` (``running``: the job running now, for its progress)."""
    return BacktestSummaryOut(**_summary(record, running))


def _equity(points: list[list[Any]]) -> list[BacktestPointOut]:
    out, peak = [], 0.0
    for time, equity in points:
        value = float(equity)
        peak = max(peak, value)
        drawdown = 100.0 * (value / peak - 1.0) if peak > 0 else 0.0
        out.append(BacktestPointOut(time=int(time), equity=str(equity), drawdown_pct=drawdown))
    return out


def backtest_out(record: BacktestRecord, running: BacktestJob | None) -> BacktestOut:
    """The body of one backtest with its result (empty curves and trades until done)."""
    result = record.result or {}
    return BacktestOut(
        **_summary(record, running),
        header=result.get("header"),
        equity=_equity(result.get("equity", [])),
        trades=[BacktestTradeOut(**t) for t in result.get("trades", [])],
        breakdown=result.get("breakdown"),
        rejections=result.get("rejections"),
    )


def comparison_out(records: list[BacktestRecord]) -> BacktestComparisonOut:
    """The body of a comparison of ``records`` (every metric any of them has, in the order
    the first one lists them)."""
    names = list(dict.fromkeys(k for r in records for k in (r.metrics or {})))
    return BacktestComparisonOut(
        ids=[r.id for r in records],
        backtests=[summary_out(r, None) for r in records],
        metrics=[
            BacktestMetricOut(name=n, values=[(r.metrics or {}).get(n) for r in records])
            for n in names
        ],
    )
