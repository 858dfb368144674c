"""The adaptive pipeline's Prometheus gauges from a real run's view: each symbol's regime (1 for
the current one), signal confidence, thresholds and volatility percentile, and the features'
failures counted once each."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from prometheus_client import generate_latest

from adapters.clock import SimulatedClock
from adapters.venues.simulated.venue import SimulatedVenue
from api.metrics import Metrics
from domain.execution import FeeSchedule
from domain.ledger import Ledger
from domain.strategies import build_strategy
from domain.strategies.base import ExplainsPipeline
from service_layer.engine import Engine
from tests.fixtures.data import load_sample_candles
from tests.fixtures.venues import sample_instruments

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def views() -> list:
    rules = sample_instruments(*SYMBOLS)
    clock = SimulatedClock()
    venue = SimulatedVenue(instruments=rules, cash=Decimal(10_000), clock=clock, fees=FeeSchedule())
    strategy = build_strategy("adaptive", {}, "5m")
    engine = Engine(
        strategy=strategy, execution=venue, matcher=venue, clock=clock, instruments=rules,
        symbols=SYMBOLS, timeframe="5m", run_id="m", ledger=Ledger(Decimal(10_000)),
    )  # fmt: skip
    engine.process({s: load_sample_candles(s).slice(0, 3_000) for s in SYMBOLS})
    assert isinstance(strategy, ExplainsPipeline)
    return strategy.pipeline_view()


def test_the_pipelines_gauges_show_each_symbols_regime_confidence_and_thresholds() -> None:
    metrics = Metrics("5m")
    seen = views()

    metrics.set_pipeline(seen)

    text = generate_latest(metrics.registry).decode()
    for view in seen:
        assert view.regime is not None
        assert f'lootcapital_regime{{regime="{view.regime}",symbol="{view.symbol}"}} 1.0' in text
        assert f'lootcapital_signal_confidence{{symbol="{view.symbol}"}}' in text
        assert f'lootcapital_threshold{{name="adx",symbol="{view.symbol}"}}' in text
        assert f'lootcapital_volatility_percentile{{symbol="{view.symbol}"}}' in text
        assert set(view.features) >= {"timeframes", "thresholds", "regime", "volume_profile"}
    assert text.count("lootcapital_regime{") == 5 * len(seen)  # one series per regime


def test_feature_failures_are_counted_once_each_across_scrapes() -> None:
    metrics = Metrics("5m")
    view = views()[0]
    failed = replace(view, failures=view.failures | {"volume_profile": 3})

    metrics.set_pipeline([failed])
    metrics.set_pipeline([failed])
    metrics.set_pipeline([replace(failed, failures=failed.failures | {"volume_profile": 4})])

    text = generate_latest(metrics.registry).decode()
    line = f'lootcapital_feature_errors_total{{feature="volume_profile",symbol="{view.symbol}"}}'
    assert f"{line} 4.0" in text
