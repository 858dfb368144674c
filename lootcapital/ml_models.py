"""Hand the model registry's active models to a strategy that reads them (composition root).

A strategy with ML inputs (:class:`~domain.strategies.base.UsesModels`) gets each traded
symbol's active model of the kind it names in ``model_kind`` (``trend`` when it names none, as
``adaptive``; ``mean_reversion`` for ``ml_mean_reversion``) from the
:class:`~domain.ports.ModelStore`. A model that cannot be loaded (none active, a tampered
artifact, other library versions) leaves ML off on that symbol with the reason, logged; the
rest of the strategy runs on. In a backtest, a model trained on bars after the backtest's first
bar is refused: it would have seen the future.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from domain.errors import ConfigError, DomainError
from domain.ports import ModelMetadata
from domain.strategies.base import Strategy, UsesModels
from lootcapital.settings import Settings

if TYPE_CHECKING:  # scikit-learn (a second to import) loads only when a strategy uses ML
    from adapters.models.filesystem import FilesystemModelStore
    from domain.ml.signal_input import ActiveModel

log = logging.getLogger(__name__)
TREND = "trend"
"""The model kind a strategy with ML inputs reads when it names none."""


@runtime_checkable
class NamesModelKind(Protocol):
    """A strategy that names the kind of model it reads (a
    :class:`~domain.ml.models.ModelKind` value: ``trend``, ``mean_reversion``)."""

    model_kind: str


def hand_over_models(
    strategy: Strategy,
    settings: Settings,
    symbols: Sequence[str],
    *,
    backtest_start: int | None = None,
) -> None:
    """Give ``strategy`` the active model of each of ``symbols`` when it wants them, of the
    kind it names (:class:`NamesModelKind`; ``trend`` otherwise), from the registry under
    ``<data_dir>/models``.

    ``backtest_start`` (ms UTC, the open of the backtest's first bar; None in paper and live):
    a model whose training labels read bars at or after it is refused.

    Raises
    ------
    ConfigError
        (field ``model``) In a backtest, a model trained on bars after the backtest starts;
        the message names both dates and the ways out.
    """
    if not isinstance(strategy, UsesModels) or not strategy.wants_models:
        return
    kind = strategy.model_kind if isinstance(strategy, NamesModelKind) else TREND
    store = model_store(settings)
    for symbol in symbols:
        meta = store.active(kind, symbol)
        if meta is None:
            strategy.use_model(symbol, None, f"no active {kind} model for {symbol}")
            log.warning("ML off on %s: no active %s model in the registry", symbol, kind)
            continue
        if backtest_start is not None and meta.train_end_ms > backtest_start:
            raise ConfigError(
                f"model {meta.model_id} for {symbol} was trained on bars up to "
                f"{_utc(meta.train_end_ms)}, after the backtest starts ({_utc(backtest_start)}):"
                " it would have seen the future; start the backtest after its training window,"
                " activate an older model, or fit walk-forward (ml_train_days=N)",
                field="model",
            )
        try:
            model, meta = store.load(meta.model_id)
            active = _active(model, meta)
        except DomainError as exc:
            strategy.use_model(symbol, None, f"model {meta.model_id} not loaded: {exc}")
            log.warning("ML off on %s: model %s not loaded: %s", symbol, meta.model_id, exc)
            continue
        strategy.use_model(symbol, active)
        log.info("ML on %s: model %s (trained to %s)", symbol, meta.model_id,
                 _utc(meta.train_end_ms))  # fmt: skip


def model_store(settings: Settings) -> FilesystemModelStore:
    """The model registry of ``settings``: ``<data_dir>/models`` (joblib is imported only
    here, when a command or a strategy needs the registry)."""
    from adapters.models.filesystem import FilesystemModelStore

    return FilesystemModelStore(settings.data_dir / "models")


def _active(model: object, meta: ModelMetadata) -> ActiveModel:
    from domain.ml.features import DEFAULT_FEATURE_SET, TAKER_FEATURE_SET, FeatureSet
    from domain.ml.signal_input import ActiveModel

    known = {f.key: f for f in (DEFAULT_FEATURE_SET, TAKER_FEATURE_SET)}
    feature_set = known.get(meta.feature_set)
    if feature_set is None or feature_set.names != tuple(meta.feature_names):
        feature_set = FeatureSet(meta.feature_set.split("@")[0] or "custom", 1, meta.feature_names)
    if not hasattr(model, "predict_proba"):
        raise ConfigError(f"model {meta.model_id} is not a predictor", field="model")
    return ActiveModel(model, meta.model_id, feature_set, meta.train_end_ms)  # type: ignore[arg-type]


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
