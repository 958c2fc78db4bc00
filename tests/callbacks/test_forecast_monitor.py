"""ForecastMonitor in a user's own model.fit: logs, recomputation, early stop."""

import math

import keras
import numpy as np
import pytest

from keras_grok.callbacks import CollapseMonitor, ForecastMonitor, GrokkingMonitor
from keras_grok.data.modular import modular_dataset
from keras_grok.forecast import forecast
from keras_grok.models import modular_mlp


@pytest.fixture(scope="module")
def split():
    return modular_dataset(11, "a+b", 0.5, seed=0)


def make_model(optimizer=None):
    keras.utils.set_random_seed(0)
    model = modular_mlp(11, embed_dim=8, hidden=32)
    model.compile(
        optimizer or keras.optimizers.AdamW(3e-3, weight_decay=1.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def monitors(split, **forecast_args):
    train, test = (split.x_train, split.y_train), (split.x_test, split.y_test)
    return [
        GrokkingMonitor(train, test, schedule="geometric"),
        ForecastMonitor(**forecast_args),  # before the collapse monitor: reordered
        CollapseMonitor(train, test, layer="features", schedule="geometric"),
    ]


def test_logs_the_forecast_of_the_rows_the_others_measured(split):
    model = make_model()
    grokking, forecaster, collapse = monitors(split)
    history = model.fit(
        split.x_train, split.y_train, batch_size=16, epochs=40, verbose=0,
        callbacks=[grokking, forecaster, collapse],
    )  # fmt: skip
    assert "forecast_generalized_at" in history.history
    rows = {r["step"]: dict(r) for r in grokking.records}
    for record in collapse.records:
        rows[record["step"]].update(record)
    rows = [rows[s] for s in sorted(rows)]
    assert [r["step"] for r in forecaster.records] == [r["step"] for r in rows]
    for record in forecaster.records[1:]:
        expected = forecast(
            rows, 3e-3, 1.0, step=record["step"], budget=40 * 4, threshold=0.99
        )
        # rel 1e-6: the monitor reads the optimizer's float32 learning rate
        assert record["forecast_generalized_at"] == pytest.approx(
            expected.generalized_at, rel=1e-6
        )
        assert record["forecast_generalized_low"] <= record["forecast_generalized_high"]
        p = record["forecast_probability"]
        assert math.isnan(p) or 0.0 <= p <= 1.0
    # it read the collapse rows of its own step: RNC1 entered its signals
    assert any("test_rnc1" in r for r in rows)


def test_stops_once_generalizing_within_the_budget_is_unlikely(split):
    model = make_model()
    # budget 1: P(generalized within it) is 0 from the first step, so it stops
    # at the first measurement after the fit (train accuracy >= 0.9 here)
    grokking, forecaster, collapse = monitors(
        split, stop_below=0.5, budget=1, threshold=0.9
    )
    model.fit(
        split.x_train, split.y_train, batch_size=16, epochs=200, verbose=0,
        callbacks=[grokking, forecaster, collapse],
    )  # fmt: skip
    stopped = forecaster.summary()["forecast_stopped_at"]
    assert stopped is not None
    fitted = next(r["step"] for r in grokking.records if r["train_accuracy"] >= 0.9)
    assert stopped == fitted
    assert grokking.latest["step"] < 200 * 4


def test_a_resumed_run_keeps_the_step_its_forecast_stopped_it_at(split):
    # A run killed after its forecast stop (while refining, say) is resumed from
    # its metrics rows with no training left: its summary keeps the stop.
    model = make_model()
    stopping = dict(stop_below=0.5, budget=1, threshold=0.9)
    first = monitors(split, **stopping)
    model.fit(
        split.x_train, split.y_train, batch_size=16, epochs=200, verbose=0,
        callbacks=first,
    )  # fmt: skip
    stopped = first[1].summary()["forecast_stopped_at"]
    assert stopped is not None
    rows = {}
    for monitor in first:
        for record in monitor.records:
            rows.setdefault(record["step"], {}).update(record)
    rows = [rows[s] for s in sorted(rows)]
    resumed = monitors(split, **stopping)
    for monitor in resumed:
        monitor.restore(rows)
    model.fit(
        split.x_train, split.y_train, batch_size=16, epochs=200,
        initial_epoch=200, verbose=0, callbacks=resumed,
    )  # fmt: skip
    assert resumed[1].summary()["forecast_stopped_at"] == stopped
    fresh = monitors(split)[1]  # no stop rule: nothing to restore
    fresh.restore(rows)
    assert fresh._restored_stop is None


def test_refuses_an_optimizer_without_weight_decay(split):
    model = make_model(keras.optimizers.Adam(1e-3))
    with pytest.raises(ValueError, match="weight decay"):
        model.fit(
            split.x_train, split.y_train, epochs=1, verbose=0,
            callbacks=monitors(split),
        )  # fmt: skip


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"stop_below": 1.5}, "stop_below"),
        ({"budget": 0}, "budget"),
        ({"threshold": 0.0}, "threshold"),
    ],
)
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ForecastMonitor(**kwargs)


def test_explicit_rates_need_no_weight_decay_in_the_optimizer(split):
    model = make_model(keras.optimizers.Adam(1e-3))
    grokking, forecaster, collapse = monitors(
        split, learning_rate=1e-3, weight_decay=0.5
    )
    model.fit(
        split.x_train, split.y_train, batch_size=16, epochs=2, verbose=0,
        callbacks=[grokking, forecaster, collapse],
    )  # fmt: skip
    assert np.isfinite(forecaster.latest["forecast_generalized_at"])


def test_alone_it_says_what_it_reads(split):
    model = make_model()
    with pytest.raises(ValueError, match="GrokkingMonitor"):
        model.fit(
            split.x_train, split.y_train, epochs=1, verbose=0,
            callbacks=[ForecastMonitor()],
        )  # fmt: skip


@pytest.mark.parametrize("forecaster", ["no/such/forecaster.json", 5, {"sigma": 1}])
def test_a_bad_forecaster_is_refused_when_built(forecaster):
    with pytest.raises((ValueError, TypeError), match="forecaster"):
        ForecastMonitor(forecaster=forecaster)


def test_a_subnormal_rate_is_refused_when_built():
    with pytest.raises(ValueError, match="weight_decay"):
        ForecastMonitor(weight_decay=1e-320)
