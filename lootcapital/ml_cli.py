"""``lootcapital ml``: train ML predictors and manage the model registry (issue 7).

``ml train`` runs :func:`service_layer.training.train_model` on a symbol's 5m bars (a kline file
or the candle store) with a progress bar on stderr, and prints the report (JSON with
``--json``); ``ml list``, ``ml activate``, ``ml rollback`` and ``ml compare`` work on the model
store under the settings' ``data_dir`` (``<data_dir>/models``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from domain.errors import DomainError
from domain.symbols import venue_symbol
from lootcapital.ml_models import model_store
from lootcapital.settings import Settings, load_settings

if TYPE_CHECKING:
    from adapters.models.filesystem import FilesystemModelStore
    from domain.ports import ModelMetadata

# scikit-learn, XGBoost and joblib are imported by the commands that use them, not at start-up
# of every CLI command (over a second); these lists equal domain.ml.models' (tested).
TIMEFRAME = "5m"
"""The predictors' bars (the features and label horizons are defined on 5m bars)."""
KINDS = ["trend", "mean_reversion"]
"""``domain.ml.models.ModelKind`` values."""
ALGO_CHOICES = ["hgb", "rf", "xgb"]
"""``domain.ml.models.ALGOS`` keys."""


def add_parser(sub: Any) -> None:
    """Add the ``ml`` subcommand and its own subcommands to the CLI's subparsers ``sub``."""
    ml = sub.add_parser("ml", help="train ML predictors and manage the model registry")
    ml_sub = ml.add_subparsers(dest="ml_command", required=True)

    train = ml_sub.add_parser(
        "train",
        help="train, score and register a model",
        description="Train a calibrated model on the last --days days of a symbol's 5m bars: "
        "the last 20% of samples in time are held out (never shuffled), the rest is "
        "cross-validated by purged walk-forward folds (embargo = the label horizon); the "
        "report gives the holdout scores beside the majority baseline. The model is stored, "
        "not activated.",
    )
    train.add_argument("--model", required=True, choices=KINDS, help="what the model predicts")
    train.add_argument("--symbol", required=True, help="symbol, as BTCUSDT or BTC/USDT:USDT")
    train.add_argument(
        "--data",
        metavar="FILE",
        help="a Binance 5m kline file (.csv or .csv.gz) (default: the candle store)",
    )
    train.add_argument(
        "--days", type=int, default=90, help="days of bars to train on, counted back from the "
        "last bar (default: 90)"
    )  # fmt: skip
    train.add_argument(
        "--algo", choices=ALGO_CHOICES, default="hgb", help="hgb: HistGradientBoosting, rf: "
        "RandomForest, xgb: XGBoost (default: hgb)"
    )  # fmt: skip
    train.add_argument(
        "--folds", type=int, default=5, help="walk-forward cross-validation folds (default: 5)"
    )
    train.add_argument(
        "--calibration",
        choices=["isotonic", "sigmoid"],
        default="isotonic",
        help="probability calibration (default: isotonic)",
    )
    train.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="a hyper-parameter of the algorithm, repeatable, e.g. max_iter=100 (default: the "
        "model's defaults, see domain/ml/models.py)",
    )
    train.add_argument(
        "--json",
        metavar="OUT",
        help="also write the report as JSON to the file OUT, or to stdout with - (then nothing "
        "else is printed on stdout) (default: no JSON)",
    )
    train.set_defaults(func=cmd_train)

    lst = ml_sub.add_parser("list", help="list the stored models (* marks the active ones)")
    lst.add_argument("--model", choices=KINDS, help="only models of this kind (default: all)")
    lst.add_argument("--symbol", help="only models of this symbol (default: every symbol)")
    lst.add_argument("--json", action="store_true", help="print the metadata as JSON")
    lst.set_defaults(func=cmd_list)

    act = ml_sub.add_parser(
        "activate", help="make a model the active one of its kind and symbol (checked first)"
    )
    act.add_argument("model_id", metavar="MODEL_ID", help="a model id from `lootcapital ml list`")
    act.set_defaults(func=cmd_activate)

    back = ml_sub.add_parser("rollback", help="re-activate the previously active model")
    back.add_argument("--model", required=True, choices=KINDS, help="the model kind")
    back.add_argument("--symbol", required=True, help="the symbol")
    back.set_defaults(func=cmd_rollback)

    cmp_ = ml_sub.add_parser("compare", help="models' metrics side by side")
    cmp_.add_argument("model_ids", nargs="+", metavar="MODEL_ID", help="model ids")
    cmp_.add_argument("--json", action="store_true", help="print them as JSON")
    cmp_.set_defaults(func=cmd_compare)


def _store(args: argparse.Namespace) -> FilesystemModelStore:
    """The model registry of the command's settings."""
    return model_store(_settings(args))


class ProgressBar:
    """A text progress bar on ``stream`` (stderr): redrawn in place on a terminal, one line per
    update otherwise (logs, pipes)."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()

    def __call__(self, fraction: float, message: str) -> None:
        """Show ``fraction`` (0 to 1) done and ``message``."""
        filled = round(self.width * min(max(fraction, 0.0), 1.0))
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction:4.0%} {message}"
        if self.tty:
            end = "\n" if fraction >= 1.0 else ""
            self.stream.write(f"\r\x1b[K{line}{end}")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def cmd_train(args: argparse.Namespace) -> int:
    """Train and register a model; print the report (JSON with ``--json``)."""
    from adapters.clock import SystemClock
    from adapters.models.filesystem import plain
    from lootcapital.simulation import load_candles
    from service_layer.training import TrainingRequest, train_model

    settings = _settings(args)
    symbol = _symbol(args.symbol)
    request = TrainingRequest(
        kind=args.model,
        symbol=symbol,
        algo=args.algo,
        days=args.days,
        n_splits=args.folds,
        calibration=args.calibration,
        timeframe=TIMEFRAME,
        params=_params(args.param),
    )
    bars = load_candles(
        settings,
        data=[Path(args.data)] if args.data else [],
        symbols=[symbol],
        timeframe=TIMEFRAME,
        start_ms=None,
        end_ms=None,
    )[symbol]
    report = plain(
        train_model(
            bars,
            request,
            store=model_store(settings),
            created_ms=SystemClock().now_ms(),
            progress=ProgressBar(),
        )
    )
    if args.json == "-":
        _write(json.dumps(report, indent=2))
        return 0
    _write(render_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        _write(f"wrote {args.json}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List the stored models, the active ones marked."""
    from adapters.models.filesystem import plain

    store = _store(args)
    symbol = _symbol(args.symbol) if args.symbol else None
    models = store.list(args.model, symbol)
    active = set(store.active_ids().values())
    if args.json:
        rows = [{**plain(_fields(m)), "active": m.model_id in active} for m in models]
        _write(json.dumps(rows, indent=2))
        return 0
    if not models:
        _write("no models stored; train one with `lootcapital ml train`")
        return 0
    _write(
        f"  {'model id':<52}{'train window (UTC)':<35}{'log loss':>9}{'base':>8}{'acc':>7}"
        f"{'auc':>7}"
    )
    for m in models:
        hold, base = m.metrics.get("holdout", {}), m.metrics.get("baseline", {})
        mark = "*" if m.model_id in active else " "
        window = f"{_day(m.train_start_ms)} → {_day(m.train_end_ms)}"
        _write(
            f"{mark} {m.model_id:<52}{window:<35}{_num(hold.get('log_loss')):>9}"
            f"{_num(base.get('log_loss')):>8}{_num(hold.get('accuracy'), 3):>7}"
            f"{_num(hold.get('roc_auc'), 3):>7}"
        )
    return 0


def cmd_activate(args: argparse.Namespace) -> int:
    """Activate a model (refused when its artifact or library versions do not match)."""
    meta = _store(args).activate(args.model_id)
    _write(f"active {meta.kind} model of {', '.join(meta.symbols)}: {meta.model_id}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Re-activate the model that was active before the current one."""
    symbol = _symbol(args.symbol)
    meta = _store(args).rollback(args.model, symbol)
    _write(f"rolled back: active {meta.kind} model of {symbol}: {meta.model_id}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Print the models' metrics side by side."""
    from adapters.models.filesystem import plain

    table = _store(args).compare(args.model_ids)
    if args.json:
        _write(json.dumps(plain(table), indent=2))
        return 0
    ids = args.model_ids
    for k, mid in enumerate(ids, 1):
        _write(f"[{k}] {mid}")
    _write(f"{'metric':<40}" + "".join(f"{f'[{k}]':>12}" for k in range(1, len(ids) + 1)))
    for name, values in table.items():
        if any(isinstance(v, list | str | bool) for v in values.values()):
            continue  # the verdict's sentence and flags: see `ml list` or the metadata
        _write(f"{name:<40}" + "".join(f"{_num(values[mid]):>12}" for mid in ids))
    return 0


def render_report(report: dict[str, Any]) -> str:
    """The training report as a few lines of text for the console."""
    model, window, m, b = report["model"], report["window"], report["metrics"], report["baseline"]
    lines = [
        f"{report['model_id']}",
        f"  {model['kind']} {model['symbol']} {model['algo']} ({model['calibration']}), "
        f"features {model['feature_set']}",
        f"  train   {_day(window['train_start_ms'])} → {_day(window['train_end_ms'])} "
        f"{window['train_rows']:,} samples; holdout {_day(window['holdout_start_ms'])} → "
        f"{_day(window['holdout_end_ms'])} {window['holdout_rows']:,} samples; embargo "
        f"{window['embargo_bars']} bars",
        f"  {'holdout':<10}{'accuracy':>10}{'log loss':>10}{'brier':>9}{'roc auc':>9}{'ece':>8}",
        f"  {'model':<10}{_num(m['accuracy']):>10}{_num(m['log_loss']):>10}"
        f"{_num(m['brier']):>9}{_num(m['roc_auc']):>9}{_num(m['ece']):>8}",
        f"  {'baseline':<10}{_num(b['accuracy']):>10}{_num(b['log_loss']):>10}"
        f"{_num(b['brier']):>9}",
        f"  trading: {m['trading']['trades']} trades, return "
        f"{_num(m['trading']['cumulative_return'])} (always in: "
        f"{_num(b['trading']['cumulative_return'])}), max drawdown "
        f"{_num(m['trading']['max_drawdown'])}",
        f"  the model {report['verdict']['summary']}",
        "  folds:  " + "  ".join(
            f"{f['fold']}: acc {_num(f['metrics']['accuracy'], 3)} "
            f"ll {_num(f['metrics']['log_loss'], 3)}"
            for f in report["folds"]
        ),
        "  top features: " + ", ".join(
            f"{name} {value:.3f}" for name, value in list(report["importances"].items())[:5]
        ),
        f"activate it with: lootcapital ml activate {report['model_id']}",
    ]  # fmt: skip
    return "\n".join(lines)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(Path(args.config) if args.config else None)


def _symbol(text: str) -> str:
    try:
        return venue_symbol(text)
    except ValueError as exc:
        raise DomainError(f"--symbol: {exc}", field="symbol") from None


def _params(items: list[str]) -> dict[str, Any]:
    """``--param K=V`` values: ints, floats, ``none``, ``true``/``false``, else text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise DomainError(f"--param must look like key=value, was {item!r}", field="param")
        out[key.strip()] = _value(text.strip())
    return out


def _value(text: str) -> Any:
    words = {"none": None, "true": True, "false": False}
    if text.lower() in words:
        return words[text.lower()]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _fields(meta: ModelMetadata) -> dict[str, Any]:
    return dataclasses.asdict(meta)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")
