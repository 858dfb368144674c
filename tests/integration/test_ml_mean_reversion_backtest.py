"""Issue 7: the ``ml_mean_reversion`` strategy as a trader runs it. A mean-reversion model is
trained with the CLI (``lootcapital ml train --model mean_reversion``) on the sample's first 20
days of BTCUSDT and activated; :func:`lootcapital.simulation.backtest` of the later bars hands it
to the strategy (the registry's active ``mean_reversion`` model, not a trend one), which trades,
and its trades leave by the exit manager's stops and take-profits. A symbol without a
mean-reversion model takes no entry and says why; a backtest inside the model's training window
is refused.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from domain.errors import ConfigError
from domain.model import Direction, ExitReason
from lootcapital.cli import main
from lootcapital.settings import Settings
from lootcapital.simulation import backtest, load_candles
from service_layer.backtest import BacktestResult
from tests.fixtures.data import sample_dir

BTC = sample_dir() / "binance_usdm_BTCUSDT_5m.csv.gz"
ETH = sample_dir() / "binance_usdm_ETHUSDT_5m.csv.gz"
DAYS = 20
AFTER = int(datetime(2025, 9, 23, tzinfo=UTC).timestamp() * 1000)  # after its training window


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data dir whose registry holds an active BTCUSDT mean-reversion model fitted on the
    sample's first 20 days."""
    root = tmp_path_factory.mktemp("mrbt")
    early = root / "binance_usdm_BTCUSDT_5m.csv.gz"
    with gzip.open(BTC, "rt") as src, gzip.open(early, "wt") as dst:
        dst.writelines(line for _, line in zip(range(DAYS * 288 + 1), src, strict=False))
    with pytest.MonkeyPatch.context() as mp, threadpool_limits(limits=1):
        mp.setenv("LOOTCAPITAL_DATA_DIR", str(root / "var"))
        code, out, err = _run(
            ["ml", "train", "--model", "mean_reversion", "--symbol", "BTCUSDT", "--data",
             str(early), "--days", "12", "--folds", "2", "--param", "max_iter=20", "--json", "-"]
        )  # fmt: skip
        assert code == 0, err
        assert _run(["ml", "activate", json.loads(out)["model_id"]])[0] == 0
    yield root / "var"


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _backtest(data_dir: Path, data: Path, start: int) -> BacktestResult:
    settings = Settings(data_dir=data_dir)  # type: ignore[call-arg]
    candles = load_candles(
        settings, data=[data], symbols=[], timeframe="5m", start_ms=start, end_ms=None
    )
    with threadpool_limits(limits=1):
        return backtest(
            settings, strategy="ml_mean_reversion", params={}, candles=candles, timeframe="5m",
            cash=Decimal(10_000), fee=settings.fee_taker, slippage_bps=settings.slippage_bps,
        )  # fmt: skip


def _active_id(data_dir: Path) -> str:
    index = json.loads((data_dir / "models" / "index.json").read_text())
    return str(index["active"]["mean_reversion/BTCUSDT"])


def test_the_active_mean_reversion_model_trades_and_the_exit_manager_closes(
    data_dir: Path,
) -> None:
    result = _backtest(data_dir, BTC, AFTER)

    reasons = {t.exit_reason for t in result.trades}
    assert len(result.trades) >= 5
    assert {ExitReason.TAKE_PROFIT, ExitReason.STOP} <= reasons
    assert reasons <= {ExitReason.TAKE_PROFIT, ExitReason.STOP, ExitReason.TIME, ExitReason.END}
    ((span,),) = [result.models]
    assert span.model_id == _active_id(data_dir) and span.first >= AFTER
    entered = [s for s in result.signals if s.reasons and s.reasons[0].component == "bollinger"
               and s.direction is not Direction.FLAT]  # fmt: skip
    assert entered
    for signal in entered:
        (ml,) = [r for r in signal.reasons if r.component == "ml"]
        assert ml.values["probability"] >= 0.6 and span.model_id in ml.message


def test_a_symbol_without_a_mean_reversion_model_takes_no_entry_and_says_why(
    data_dir: Path,
) -> None:
    result = _backtest(data_dir, ETH, AFTER)

    seen = [s for s in result.signals if s.reasons and s.reasons[0].component == "bollinger"]
    assert seen and not result.trades and result.models == []
    assert all(
        s.reasons[-1].message == "ML off: no active mean_reversion model for ETHUSDT: no entry"
        for s in seen
    )


def test_a_backtest_inside_the_models_training_window_is_refused(data_dir: Path) -> None:
    with pytest.raises(ConfigError, match="would have seen the future") as caught:
        _backtest(data_dir, BTC, AFTER - 10 * 86_400_000)

    assert _active_id(data_dir) in str(caught.value) and caught.value.field == "model"
