"""What a user of ``model.fit`` trips on: each pitfall fixed or refused loudly."""

import csv
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_grok.callbacks import GrokkingMonitor
from keras_grok.callbacks.step_progress import StepProgress
from keras_grok.losses import SumSquaredError
from keras_grok.measures import information
from keras_grok.measures.information import kde_mutual_information
from keras_grok.models import build_modular_model, modular_mlp
from keras_grok.regularizers import add_spectral_entropy, apply_paper_b_regularization
from keras_grok.utils.random_seed import set_random_seed
from keras_grok.utils.registration import REGISTERING_MODULES
from tests.test_public_api import REGISTERED_IN_SOURCE
from tests.testing import assert_allclose, backend, to_numpy

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter from the repository root."""
    environment = {**os.environ, **env}
    for name, value in env.items():
        if value is None:
            environment.pop(name)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _data(n: int = 64, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), np.arange(n) % classes


def _classifier(classes: int = 3) -> keras.Model:
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(classes, name="logits")(hidden))
    model.compile(
        keras.optimizers.AdamW(1e-2, weight_decay=1.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


# --------------------------------------------------------------------------------------
# Loading a saved model after a plain `import keras_grok`
# --------------------------------------------------------------------------------------


def test_every_registering_module_is_imported_when_keras_loads():
    assert set(REGISTERED_IN_SOURCE.values()) == set(REGISTERING_MODULES)


def test_a_model_with_spectral_entropy_loads_after_a_plain_import_keras_grok(
    tmp_path,
):
    set_random_seed(0)
    model = modular_mlp(7, embed_dim=8, hidden=16)
    add_spectral_entropy(model, 0.1)
    model.compile("adam", SumSquaredError())
    pairs = np.array([[1, 2], [3, 4], [5, 6]], dtype="int32")
    model.fit(pairs, np.array([3, 0, 4]), verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "expected.npy", to_numpy(model(pairs)))
    result = run_python(
        "import sys, numpy as np, keras_grok\n"
        "assert 'keras' not in sys.modules\n"
        "import keras\n"
        f"model = keras.saving.load_model({str(path)!r})\n"
        "names = {type(l.kernel_regularizer).__name__\n"
        "         for l in model.layers if hasattr(l, 'kernel_regularizer')}\n"
        "assert names == {'SpectralEntropy'}, names\n"
        "assert type(model.loss).__name__ == 'SumSquaredError'\n"
        "pairs = np.array([[1, 2], [3, 4], [5, 6]], dtype='int32')\n"
        f"expected = np.load({str(tmp_path / 'expected.npy')!r})\n"
        "got = keras.ops.convert_to_numpy(model(pairs))\n"
        "assert np.allclose(got, expected, rtol=1e-5, atol=1e-6)\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]


# --------------------------------------------------------------------------------------
# CSVLogger before a monitor
# --------------------------------------------------------------------------------------


def test_a_csv_logger_before_a_monitor_is_refused_with_the_order_to_use(tmp_path):
    x, y = _data()
    monitor = GrokkingMonitor((x, y), (x, y), schedule=[1, 2])
    logger = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    with pytest.raises(ValueError, match="Put the monitors before CSVLogger"):
        _classifier().fit(x, y, epochs=1, verbose=0, callbacks=[logger, monitor])


def test_a_csv_logger_after_the_monitors_writes_their_columns(tmp_path):
    x, y = _data()
    monitor = GrokkingMonitor((x, y), (x, y), schedule=[1, 2])
    path = tmp_path / "log.csv"
    logger = keras.callbacks.CSVLogger(str(path))
    _classifier().fit(
        x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor, logger]
    )
    with path.open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2
    assert {"train_accuracy", "test_accuracy", "train_loss"} <= set(rows[0])
    assert float(rows[-1]["test_accuracy"]) >= 0


# --------------------------------------------------------------------------------------
# apply_paper_b_regularization: metrics and the saved optimizer state
# --------------------------------------------------------------------------------------


def test_paper_b_regularization_keeps_the_compiled_metrics():
    x, y = _data()
    trained = apply_paper_b_regularization(_classifier(), 0.1, 0.01, seed=0)
    history = trained.fit(x, y, epochs=1, verbose=0)
    assert "accuracy" in history.history


def test_a_saved_paper_b_model_keeps_its_optimizer_state(tmp_path):
    set_random_seed(0)
    x, y = _data()
    trained = apply_paper_b_regularization(_classifier(), 0.1, 0.01, seed=0)
    trained.fit(x, y, epochs=2, batch_size=16, verbose=0)
    path = tmp_path / "noisy.keras"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trained.save(path)
        loaded = keras.saving.load_model(path)
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
    assert int(to_numpy(loaded.optimizer.iterations)) == 8
    assert len(loaded.optimizer.variables) == len(trained.optimizer.variables)
    for saved, restored in zip(trained.optimizer.variables, loaded.optimizer.variables):
        assert_allclose(restored, saved)
    assert "accuracy" in loaded.fit(x, y, epochs=1, verbose=0).history


def test_paper_b_regularization_refuses_an_uncompiled_model():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs), name="bare")
    with pytest.raises(ValueError, match="needs a compiled model.*model='bare'"):
        apply_paper_b_regularization(model, 0.1, 0.01)


# --------------------------------------------------------------------------------------
# Patience without test data; the KDE estimator's assumptions
# --------------------------------------------------------------------------------------


def test_patience_without_test_data_is_refused_at_construction():
    x, y = _data()
    with pytest.raises(ValueError, match="needs test_data.*Received: patience=10"):
        GrokkingMonitor((x, y), patience=10)
    assert GrokkingMonitor((x, y), (x, y), patience=10).patience == 10


def test_kde_estimates_outside_their_bounds_warn_with_a_std_to_use(monkeypatch):
    monkeypatch.setattr(information, "_WARNED", set())  # warned once per std
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 1500)
    features = 3.0 * rng.normal(size=(10, 64))[labels] + rng.normal(size=(1500, 64))
    with pytest.warns(UserWarning, match="does not cover these features.*std of"):
        wide = kde_mutual_information(features, labels)
    assert wide["zx"] > np.log(400)  # the bound the mixture model allows
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        kde_mutual_information(features, labels)  # said once is enough
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fitting = kde_mutual_information(features, labels, std=10.0)
    assert 0 <= fitting["zx"] <= np.log(400)
    assert fitting["zy"] > 0


# --------------------------------------------------------------------------------------
# The progress bar's total
# --------------------------------------------------------------------------------------


def _fit_with_progress(monitor, x, y, epochs=4):
    progress = StepProgress([monitor])
    targets = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            targets.append(progress._bar.target)

    _classifier().fit(
        x,
        y,
        epochs=epochs,
        batch_size=16,
        verbose=0,
        callbacks=[monitor, progress, Spy()],
    )
    return targets


def test_the_progress_bar_total_is_the_last_step_without_patience():
    x, y = _data()
    targets = _fit_with_progress(
        GrokkingMonitor((x, y), (x, y), schedule="every:2"), x, y
    )
    assert targets == [16] * 4


def test_the_progress_bar_shows_the_patience_stop_as_its_end():
    x, y = _data()
    never = GrokkingMonitor(
        (x, y), (x, y), schedule="every:2", test_threshold=1.0, patience=4
    )
    y_random = np.random.default_rng(1).permutation(y)
    assert _fit_with_progress(never, x, y_random, epochs=2) == [None, None]
    soon = GrokkingMonitor(
        (x, y), (x, y), schedule="every:2", test_threshold=0.01, patience=4
    )
    targets = _fit_with_progress(soon, x, y)
    assert soon.generalized_at == 1
    assert targets[0] == 1 + 4  # before the stop: the expected end
    assert targets[-1] == soon.latest["step"] < 16  # after it: where it stopped


# --------------------------------------------------------------------------------------
# JAX: one OpenBLAS thread for the regularized step
# --------------------------------------------------------------------------------------


def test_spectral_entropy_on_jax_limits_openblas_and_restores_it():
    pytest.importorskip("threadpoolctl")
    result = run_python(
        "import json, threadpoolctl, numpy as np, keras\n"
        "from keras_grok.regularizers import SpectralEntropy\n"
        "from keras_grok.regularizers.lapack_threads import restore_lapack_threads\n"
        "def pools():\n"
        "    return [i['num_threads'] for i in threadpoolctl.threadpool_info()\n"
        "            if i['user_api'] == 'blas']\n"
        "import scipy.linalg\n"
        "before = pools()\n"
        "SpectralEntropy(0.1)(np.eye(3, dtype='float32'))\n"
        "during = pools()\n"
        "restore_lapack_threads()\n"
        "print(json.dumps([before, during, pools()]))\n",
        KERAS_BACKEND="jax",
        OPENBLAS_NUM_THREADS=None,
        JAX_PLATFORMS="cpu",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    before, during, after = json.loads(result.stdout.strip().splitlines()[-1])
    assert during == [1] * len(before)
    assert after == before


def test_a_set_openblas_variable_is_left_alone():
    result = run_python(
        "import numpy as np\n"
        "from keras_grok.regularizers import SpectralEntropy\n"
        "from keras_grok.regularizers import lapack_threads\n"
        "SpectralEntropy(0.1)(np.eye(3, dtype='float32'))\n"
        "assert lapack_threads._state['limiter'] is None\n",
        KERAS_BACKEND="jax",
        OPENBLAS_NUM_THREADS="2",
    )
    assert result.returncode == 0, result.stderr[-3000:]


# --------------------------------------------------------------------------------------
# Seeding without TensorFlow
# --------------------------------------------------------------------------------------


def _draws():
    import random

    return (
        random.random(),
        float(np.random.rand()),
        float(to_numpy(keras.random.normal((1,)))[0]),
        to_numpy(keras.layers.Dense(3).add_weight(shape=(2, 3))).tolist(),
    )


def test_set_random_seed_repeats_every_draw_as_keras_own_does():
    set_random_seed(7)
    ours = _draws()
    keras.utils.set_random_seed(7)
    assert _draws() == ours
    set_random_seed(8)
    assert _draws() != ours
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        set_random_seed(-1)


def test_set_random_seed_seeds_the_backend():
    set_random_seed(3)
    if backend() == "torch":
        import torch

        first = torch.rand(1).item()
        set_random_seed(3)
        assert torch.rand(1).item() == first
    if backend() == "tensorflow":
        import tensorflow as tf

        first = float(tf.random.uniform(()))
        set_random_seed(3)
        assert float(tf.random.uniform(())) == first


@pytest.mark.skipif(backend() == "tensorflow", reason="TensorFlow is the backend")
def test_a_modadd_recipe_run_imports_no_tensorflow(tmp_path):
    result = run_python(
        "import sys\n"
        "from pathlib import Path\n"
        "import keras_grok.data.modular\n"
        "assert not [m for m in sys.modules if m.startswith('tensorflow')]\n"
        "from keras_grok.experiments.recipe import load_recipe\n"
        "recipe = load_recipe('recipes/modadd.py')\n"
        "config = {**recipe.defaults, 'p': 11, 'train_fraction': 0.5,\n"
        "          'batch_size': 32, 'max_steps': 8, 'patience': -1}\n"
        "recipe.check(config)\n"
        f"recipe.run(config, Path({str(tmp_path)!r}), verbose=False)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "             ('tensorflow', 'tensorflow_datasets')))\n",
        KERAS_BACKEND=backend(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "metrics.csv").is_file()


# --------------------------------------------------------------------------------------
# Paper B's transformer through the recipes' config
# --------------------------------------------------------------------------------------

MODULAR = {
    "model": "transformer",
    "embed_dim": 128,
    "hidden": 256,
    "transformer_layers": 1,
    "learning_rate": 1e-3,
    "weight_decay": 1.0,
    "beta_2": 0.98,
}


def test_the_recipes_transformer_is_paper_b_model_unless_causal_is_set():
    model = build_modular_model(MODULAR, vocab_size=115, num_classes=113)
    assert model.count_params() == 242_547
    tokens = np.array([[1, 113, 2, 114]], dtype="int32")
    changed = np.array([[1, 113, 2, 3]], dtype="int32")
    first = keras.Model(model.input, model.get_layer("attention_norm_0").output)
    assert not np.allclose(
        to_numpy(first(tokens))[:, 0], to_numpy(first(changed))[:, 0]
    )
    causal = build_modular_model({**MODULAR, "causal": True}, 115, 113)
    first = keras.Model(causal.input, causal.get_layer("attention_norm_0").output)
    assert_allclose(first(tokens)[:, 0], first(changed)[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("wrap", [lambda loss: {"logits": loss}, lambda loss: [loss]])
def test_a_one_output_model_compiled_with_its_loss_in_a_structure_logs_that_loss(wrap):
    x, y = _data()
    model = _classifier()
    model.compile("adam", wrap(keras.losses.SparseCategoricalCrossentropy(True)))
    monitor = GrokkingMonitor((x, y), schedule=[2])
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
    expected = model.evaluate(x, y, verbose=0)
    expected = expected[0] if isinstance(expected, list) else expected
    assert np.isclose(monitor.latest["train_loss"], expected, rtol=1e-4)


def test_the_progress_bar_by_default_shows_what_a_train_only_monitor_logs():
    x, y = _data()
    monitor = GrokkingMonitor((x, y), schedule=[1, 2])
    progress = StepProgress([monitor])
    assert progress.keys == ["train_accuracy"]
    _classifier().fit(
        x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor, progress]
    )
    assert monitor.latest["step"] == 2


def test_a_compiled_metric_of_a_monitors_name_is_replaced_with_a_warning():
    x, y = _data()
    model = _classifier()
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="train_accuracy")],
    )
    monitor = GrokkingMonitor((x[:15], y[:15]), schedule="every:1")
    with pytest.warns(UserWarning, match=r"logs \['train_accuracy'\], which logs"):
        history = model.fit(
            x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor]
        )
    assert history.history["train_accuracy"][-1] == monitor.latest["train_accuracy"]


def test_a_monitor_measures_the_loss_of_the_latest_compile_and_says_what_it_drops():
    # A second compile (here with label smoothing) kept being measured with the
    # first loss, and the first fit's records were dropped without a word.
    x, y = _data()
    one_hot = np.eye(3, dtype="float32")[y]
    model = _classifier()
    model.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True))
    monitor = GrokkingMonitor((x, one_hot), schedule="every:1")
    model.fit(x, one_hot, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
    smoothed = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=0.2
    )
    model.compile("adam", smoothed)
    with pytest.warns(UserWarning, match=r"2 record\(s\) after step 0 are dropped"):
        model.fit(x, one_hot, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
    logits = np.asarray(to_numpy(model(x)), "float64")
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    target = one_hot * 0.8 + 0.2 / 3
    expected = float(np.mean(-(target * log_p).sum(axis=1)))
    assert monitor.latest["step"] == 2
    assert np.isclose(monitor.latest["train_loss"], expected, rtol=1e-4)


def test_a_loss_with_ignore_class_is_logged_as_nan_with_a_warning():
    x, y = _data()
    model = _classifier()
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    monitor = GrokkingMonitor((x, y), schedule=[2])
    with pytest.warns(UserWarning, match="ignore_class"):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
    assert np.isnan(monitor.latest["train_loss"])
    assert 0.0 <= monitor.latest["train_accuracy"] <= 1.0


def test_a_one_unit_binary_classifier_is_refused_with_what_to_build():
    x, y = _data(classes=2)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    model.compile("adam", "binary_crossentropy")
    monitor = GrokkingMonitor((x, y.astype("float32")), schedule=[2])
    with pytest.raises(ValueError, match="end it with Dense\\(2\\)"):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])


def test_a_features_layer_with_several_outputs_is_refused_by_name():
    from keras_grok.callbacks import CollapseMonitor

    inputs = keras.Input((5, 2))
    _, state, _ = keras.layers.LSTM(4, return_state=True, name="features")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(state))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(30, 5, 2)).astype("float32")
    y = np.arange(30) % 3
    monitor = CollapseMonitor((x, y), schedule=[3])
    with pytest.raises(ValueError, match="Layer 'features' of model .* has 3 outputs"):
        model.fit(x, y, epochs=1, batch_size=10, verbose=0, callbacks=[monitor])


def test_a_callback_watching_a_monitors_metric_must_come_after_it(tmp_path):
    # A ModelCheckpoint(monitor="train_loss") listed first never saw the value
    # and never saved, with only Keras' per-epoch warning.
    x, y = _data()
    model = _classifier()
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "best.keras"),
        monitor="train_loss",
        mode="min",
        save_best_only=True,
    )
    monitor = GrokkingMonitor((x, y), schedule="every:1")
    with pytest.raises(ValueError, match="ModelCheckpoint watches 'train_loss'"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[checkpoint, monitor])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor, checkpoint])
    assert (tmp_path / "best.keras").exists()


def test_swap_ema_weights_before_a_monitor_is_refused():
    # The monitor would measure EMA weights at epoch ends and trained ones
    # between; on JAX the model's buffers were lost after fit.
    x, y = _data()
    model = _classifier()
    model.compile(
        keras.optimizers.Adam(1e-2, use_ema=True),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    monitor = GrokkingMonitor((x, y), schedule="every:1")
    with pytest.raises(ValueError, match="SwapEMAWeights.*comes before"):
        model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[swap, monitor])
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor, swap])
    assert model.predict(x, verbose=0).shape == (64, 3)
    assert monitor.latest["step"] == 4


def test_a_model_compiled_without_a_loss_says_why_its_loss_is_nan():
    x, y = _data()
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    model.compile("adam", loss=None)  # as for a model that trains by add_loss
    monitor = GrokkingMonitor((x, y), schedule=[1])
    with pytest.warns(UserWarning, match="compiled with loss=None"):
        monitor.set_model(model)
        monitor.set_params({"epochs": 1, "steps": 2})
        monitor.on_train_begin()
    assert not monitor._loss_known


def test_a_loss_function_that_reduces_the_batch_is_logged_as_nan_with_a_warning():
    # A scalar-returning loss raised IndexError inside the measurement pass; its
    # chunk mean would mix the data sets a chunk holds, so it cannot be split.
    def batch_mean_loss(y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, 3)
        return keras.ops.mean(keras.ops.sum(keras.ops.square(y_pred - one_hot), -1))

    x, y = _data()
    model = _classifier()
    model.compile("adam", batch_mean_loss)
    monitor = GrokkingMonitor((x, y), (x[:20], y[:20]), schedule="every:1")
    with pytest.warns(UserWarning, match="returns one value per batch"):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
    assert np.isnan(monitor.latest["train_loss"])
    assert 0.0 <= monitor.latest["test_accuracy"] <= 1.0


def test_features_too_large_for_float32_squares_are_named_in_a_warning():
    from keras_grok.callbacks import CollapseMonitor

    x, y = _data()
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    features = keras.layers.Rescaling(1e20, name="features")(hidden)
    logits = keras.layers.Dense(3)(keras.layers.Rescaling(1e-20)(features))
    model = keras.Model(inputs, logits)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = CollapseMonitor((x, y), schedule="every:1", num_classes=3)
    with pytest.warns(UserWarning, match="too large for float32"):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])


def test_features_too_small_for_float32_squares_are_logged_as_nan_with_a_warning():
    # nc1 and rnc1 refuse features below about 1e-15 (NC1 was 2.6% off at 1e-18
    # where subnormal squares are flushed); the monitor logs NaN and says why.
    from keras_grok.callbacks import CollapseMonitor

    x, y = _data()
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8)(inputs)
    features = keras.layers.Rescaling(1e-18, name="features")(hidden)
    logits = keras.layers.Dense(3)(keras.layers.Rescaling(1e18)(features))
    model = keras.Model(inputs, logits)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = CollapseMonitor((x, y), schedule="every:1", num_classes=3)
    with pytest.warns(UserWarning, match="train_nc1 and train_rnc1 as NaN.*1e-15"):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
    assert np.isnan(monitor.latest["train_nc1"]) and np.isnan(
        monitor.latest["train_rnc1"]
    )
    assert monitor.latest["train_mean_feature_norm"] > 0.0


def test_monitor_data_may_be_a_bfloat16_tensor():
    # On torch, NumPy cannot read a bfloat16 tensor: validate_labelled_pair raised
    # torch's "Got unsupported ScalarType BFloat16". Its values are read as float32.
    x, y = _data()
    as_bf16 = keras.ops.convert_to_tensor(x, "bfloat16")
    rounded = to_numpy(keras.ops.cast(as_bf16, "float32"))
    model = _classifier()
    given, reference = GrokkingMonitor((as_bf16, y)), GrokkingMonitor((rounded, y))
    model.fit(x, y, epochs=1, verbose=0, callbacks=[given, reference])
    assert given.latest["train_loss"] == pytest.approx(
        reference.latest["train_loss"], rel=1e-6
    )
