"""SpectralDensityMonitor: per-matrix alpha in logs and in a recorded run."""

import math

import keras
import numpy as np
import pytest

from keras_grok.callbacks import Schedule, SpectralDensityMonitor
from keras_grok.data.modular import modular_dataset
from keras_grok.measures.spectral_density import (
    esd_power_law,
    esd_stable_rank,
    spectral_density,
)
from keras_grok.models import modular_mlp
from keras_grok.runs.run_folder import RunFolder
from keras_grok.runs.train_and_record import train_and_record
from tests.testing import to_numpy

# embedding (23, 24), features (48, 32), logits (32, 23): every side >= 20.
MATRICES = ("embedding/embeddings", "features/kernel", "logits/kernel")


@pytest.fixture(scope="module")
def split():
    return modular_dataset(23, "a+b", 0.5, seed=0)


def make_model(embed_dim: int = 24, hidden: int = 32):
    keras.utils.set_random_seed(0)
    model = modular_mlp(23, embed_dim=embed_dim, hidden=hidden)
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def fit(model, split, callbacks):
    return model.fit(
        split.x_train,
        split.y_train,
        batch_size=64,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )


def test_per_matrix_alpha_and_stable_rank_reach_history(split):
    model = make_model()
    monitor = SpectralDensityMonitor(model, schedule=Schedule((7,)))
    assert monitor.matrices == MATRICES
    history = fit(model, split, [monitor])
    names = {
        "esd_alpha",
        *(f"esd_alpha/{path}" for path in MATRICES),
        *(f"stable_rank/{path}" for path in MATRICES),
    }
    assert set(monitor.metric_names) == names
    assert names <= set(history.history)
    assert math.isnan(history.history["esd_alpha"][0])  # first measured at 7
    assert [r["step"] for r in monitor.records] == [7, 15]
    weights = {w.path: to_numpy(w) for w in model.trainable_weights}
    alphas = []
    for path in MATRICES:
        density = spectral_density(weights[path])
        alpha = esd_power_law(density).alpha
        alphas.append(alpha)
        assert history.history[f"esd_alpha/{path}"][-1] == pytest.approx(alpha)
        assert history.history[f"stable_rank/{path}"][-1] == pytest.approx(
            esd_stable_rank(density)
        )
    assert history.history["esd_alpha"][-1] == pytest.approx(np.mean(alphas))
    assert monitor.summary()["final_esd_alpha"] == history.history["esd_alpha"][-1]
    assert monitor.panels()[0].keys == tuple(f"esd_alpha/{p}" for p in MATRICES)


def test_matrices_with_a_side_under_min_dimension_are_skipped():
    model = make_model()
    assert SpectralDensityMonitor(model, min_dimension=24).matrices == (
        "features/kernel",
    )
    with pytest.warns(UserWarning, match="features/kernel"):
        monitor = SpectralDensityMonitor(model, min_dimension=33)
    assert monitor.matrices == () and monitor.metric_names == ("esd_alpha",)
    assert monitor.panels() == ()
    with pytest.raises(ValueError, match="Received: min_dimension=0"):
        SpectralDensityMonitor(model, min_dimension=0)


def test_a_model_without_large_matrices_logs_nan(split):
    model = make_model(embed_dim=8, hidden=16)
    with pytest.warns(UserWarning, match="no trainable weight matrix"):
        monitor = SpectralDensityMonitor(model, schedule=Schedule((2,)))
    history = fit(model, split, [monitor])
    assert math.isnan(history.history["esd_alpha"][-1])


def test_a_monitor_made_for_another_model_says_so(split):
    deeper = modular_mlp(23, embed_dim=24, hidden=32, depth=2)
    monitor = SpectralDensityMonitor(deeper, schedule=Schedule((1,)))
    with pytest.raises(ValueError, match="another model is training"):
        fit(make_model(), split, [monitor])


def test_measuring_does_not_change_training(split):
    measured = make_model()
    fit(measured, split, [SpectralDensityMonitor(measured, Schedule((1, 3, 5)))])
    plain = make_model()
    fit(plain, split, [])
    for a, b in zip(measured.weights, plain.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_a_diverged_matrix_gets_nan(split):
    model = make_model()
    monitor = SpectralDensityMonitor(model, schedule=Schedule((1,)))
    fit(model, split, [monitor])
    kernel = next(w for w in model.trainable_weights if w.path == "features/kernel")
    kernel.assign(np.full(kernel.shape, np.inf, "float32"))
    values = monitor.measure(16, None)
    assert math.isnan(values["esd_alpha/features/kernel"])
    assert math.isnan(values["stable_rank/features/kernel"])
    assert math.isfinite(values["esd_alpha"])  # the mean of the finite ones


def test_a_recorded_run_has_the_alphas_in_its_metrics(split, tmp_path):
    model = make_model()
    monitor = SpectralDensityMonitor(model, schedule=None)
    summary = train_and_record(
        model,
        (split.x_train, split.y_train),
        (split.x_test, split.y_test),
        tmp_path,
        batch_size=64,
        max_steps=8,
        schedule="geometric:2",
        monitors=(monitor,),
        verbose=False,
    )
    rows = RunFolder(tmp_path).read_metrics()
    assert [r["step"] for r in rows] == [r["step"] for r in monitor.records]
    for path in MATRICES:
        assert math.isfinite(rows[-1][f"esd_alpha/{path}"])
        assert rows[-1][f"stable_rank/{path}"] >= 1.0
    assert summary["final_esd_alpha"] == pytest.approx(rows[-1]["esd_alpha"])
    assert (tmp_path / "figure.png").stat().st_size > 0
