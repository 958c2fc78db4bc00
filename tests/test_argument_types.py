"""A string, NaN, bool or None where a number, flag or name belongs is refused by name.

Each public callable below is called with valid arguments except one, which gets
a value of the wrong kind: a string spelling a number ("3" is not 3), NaN, a bool
(True is not 1), None, or an int where a name belongs. Each must raise
``ValueError`` naming that argument, before anything is measured, built or
written, as Keras' own validators do ("... Received: name=value").
"""

import math

import keras
import numpy as np
import pytest

from keras_grok.analysis import events
from keras_grok.callbacks import (
    AdaptiveSchedule,
    CollapseMonitor,
    CollapseStatisticsOf,
    FeaturesOf,
    FourierMonitor,
    MetricsRecorder,
    TrainingCheckpoint,
)
from keras_grok.data import ImageSplit, ModularSplit, TextSplit, modular_dataset
from keras_grok.losses import SumSquaredError
from keras_grok.measures import (
    collapse,
    collapse_statistics,
    complexity,
    description_length,
    information,
    lossy_compression,
    spectral,
)
from keras_grok.models import modular_transformer
from keras_grok.runs.after_the_fact import measure_now
from keras_grok.utils.argument_validation import (
    Range,
    validate_bool_arg,
    validate_string_arg,
)

X = np.random.default_rng(0).normal(size=(24, 6)).astype("float32")
Y = np.arange(24) % 3
ROWS = [{"step": s, "train_accuracy": min(1.0, s / 50)} for s in range(1, 120, 3)]
MOD = modular_dataset(7)
STATS = collapse_statistics.collapse_statistics([(X, Y)], 3)


def _model():
    inputs = keras.Input((6,))
    features = keras.layers.Dense(8, name="features")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(features))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


NOT_A_NUMBER = ["3", math.nan, True, None]
NOT_A_FLAG = ["false", 2, None]
NOT_A_NAME = [3, None, ""]

# (label, callable, valid keyword arguments, the argument under test, bad values)
CASES = [
    (
        "first_step_at",
        events.first_step_at,
        {"rows": ROWS, "threshold": 0.5},
        "key",
        NOT_A_NAME,
    ),
    ("peak_step", events.peak_step, {"rows": ROWS}, "key", NOT_A_NAME),
    ("value_at", events.value_at, {"rows": ROWS, "step": 3}, "key", NOT_A_NAME),
    (
        "CollapseMonitor layer",
        CollapseMonitor,
        {"train_data": (X, Y)},
        "layer",
        NOT_A_NAME,
    ),
    (
        "CollapseMonitor classifier",
        CollapseMonitor,
        {"train_data": (X, Y)},
        "classifier",
        [3, ""],
    ),
    (
        "CollapseStatisticsOf layer",
        CollapseStatisticsOf,
        {"num_classes": 3},
        "layer",
        NOT_A_NAME,
    ),
    (
        "CollapseStatisticsOf norm",
        CollapseStatisticsOf,
        {"layer": "features", "num_classes": 3},
        "norm",
        [3, None, "median"],
    ),
    ("FeaturesOf", FeaturesOf, {}, "layer", NOT_A_NAME),
    *[
        (
            f"AdaptiveSchedule {name}",
            AdaptiveSchedule,
            {"total_steps": 100},
            name,
            NOT_A_NUMBER + [math.inf],
        )
        for name in ("tolerance", "near", "min_ratio", "max_ratio", "start_ratio")
    ],
    (
        "ModularSplit vocab_size",
        ModularSplit,
        {"x_train": X, "y_train": Y, "x_test": X, "y_test": Y, "num_classes": 3},
        "vocab_size",
        NOT_A_NUMBER + [2.5, 2],
    ),
    (
        "ModularSplit num_classes",
        ModularSplit,
        {"x_train": X, "y_train": Y, "x_test": X, "y_test": Y, "vocab_size": 3},
        "num_classes",
        NOT_A_NUMBER + [0],
    ),
    (
        "ImageSplit name",
        ImageSplit,
        {"x_train": X, "y_train": Y, "x_test": X, "y_test": Y, "num_classes": 3},
        "name",
        NOT_A_NAME,
    ),
    (
        "TextSplit num_classes",
        TextSplit,
        {
            "name": "t",
            "x_train": X,
            "y_train": Y,
            "x_test": X,
            "y_test": Y,
            "vocabulary": ("", "[UNK]"),
        },
        "num_classes",
        NOT_A_NUMBER,
    ),
    ("SumSquaredError", SumSquaredError, {}, "sparse", NOT_A_FLAG),
    (
        "batch_collapse_statistics num_classes",
        collapse_statistics.batch_collapse_statistics,
        {"features": X, "labels": Y},
        "num_classes",
        NOT_A_NUMBER + [0],
    ),
    (
        "batch_collapse_statistics covariance",
        collapse_statistics.batch_collapse_statistics,
        {"features": X, "labels": Y, "num_classes": 3},
        "covariance",
        NOT_A_FLAG,
    ),
    (
        "empty_collapse_statistics dim",
        collapse_statistics.empty_collapse_statistics,
        {"num_classes": 3},
        "dim",
        NOT_A_NUMBER + [2.5],
    ),
    (
        "collapse_figures",
        collapse.collapse_figures,
        {"stats": STATS},
        "include_nc2",
        NOT_A_FLAG,
    ),
    (
        "data_bits",
        description_length.data_bits,
        {"model": _model, "data": (X, Y)},
        "from_logits",
        NOT_A_FLAG,
    ),
    (
        "estimate_complexity epsilon",
        complexity.estimate_complexity,
        {"model": _model, "data": (X, Y)},
        "epsilon",
        NOT_A_NUMBER,
    ),
    (
        "estimate_complexity resolution",
        complexity.estimate_complexity,
        {"model": _model, "data": (X, Y), "epsilon": 0.1},
        "resolution",
        NOT_A_NUMBER + [math.inf],
    ),
    (
        "normalized_hsic seed",
        information.normalized_hsic,
        {"z": X, "other": X},
        "seed",
        ["3", 2.5, math.nan, True, -1],
    ),
    ("knn_entropy k", lossy_compression.knn_entropy, {"samples": X}, "k", NOT_A_NUMBER),
    (
        "knn_entropy weighted",
        lossy_compression.knn_entropy,
        {"samples": X},
        "weighted",
        NOT_A_FLAG,
    ),
    (
        "fit_input_encoder learning_rate",
        lossy_compression.fit_input_encoder,
        {"x": X},
        "learning_rate",
        NOT_A_NUMBER + [math.inf, 0.0],
    ),
    (
        "fit_input_encoder noise",
        lossy_compression.fit_input_encoder,
        {"x": X},
        "noise",
        NOT_A_NUMBER + [-1.0],
    ),
    (
        "fit_input_encoder seed",
        lossy_compression.fit_input_encoder,
        {"x": X},
        "seed",
        NOT_A_NUMBER + [-1],
    ),
    (
        "fit_input_encoder cache_dir",
        lossy_compression.fit_input_encoder,
        {"x": X},
        "cache_dir",
        [3],
    ),
    (
        "spectral_entropy split",
        spectral.spectral_entropy,
        {"w": X},
        "split",
        ["1", True, 1.5],
    ),
    *[
        (
            f"modular_transformer {name}",
            modular_transformer,
            {
                "num_classes": 7,
                "vocab_size": 9,
                "d_model": 8,
                "num_heads": 2,
                "d_mlp": 8,
            },
            name,
            NOT_A_FLAG,
        )
        for name in ("layer_norm", "causal", "vocabulary_logits")
    ],
    (
        "modular_transformer activation",
        modular_transformer,
        {"num_classes": 7, "vocab_size": 9, "d_model": 8, "num_heads": 2, "d_mlp": 8},
        "activation",
        [None, 3],
    ),
    (
        "FourierMonitor num_key_frequencies",
        FourierMonitor,
        {"train_data": (MOD.x_train, MOD.y_train), "p": 7},
        "num_key_frequencies",
        ["3", 2.5, math.nan, True, None],
    ),
    (
        "FourierMonitor embedding",
        FourierMonitor,
        {"train_data": (MOD.x_train, MOD.y_train), "p": 7},
        "embedding",
        [3, ""],
    ),
    (
        "measure_now",
        measure_now,
        {"model": _model, "monitors": []},
        "step",
        ["3", 2.5, math.nan, True, None, -1],
    ),
]


def _params():
    for label, fn, kwargs, name, bad in CASES:
        for value in bad:
            yield pytest.param(fn, kwargs, name, value, id=f"{label}={value!r}")


@pytest.mark.parametrize("fn, kwargs, name, value", list(_params()))
def test_a_value_of_the_wrong_kind_is_refused_by_name(
    fn, kwargs, name, value, tmp_path
):
    kwargs = {k: v() if v is _model else v for k, v in kwargs.items()}
    if fn is lossy_compression.fit_input_encoder and name != "cache_dir":
        kwargs["cache_dir"] = str(tmp_path)
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        fn(**kwargs, **{name: value})
    assert not any(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.parametrize("cls", [MetricsRecorder, TrainingCheckpoint])
@pytest.mark.parametrize("value", ["3", math.nan, math.inf, True, None, -1.0])
def test_a_recorder_refuses_an_elapsed_offset_that_is_not_a_time(cls, value, tmp_path):
    with pytest.raises(ValueError, match="elapsed_offset"):
        extra = {"monitors": []} if cls is MetricsRecorder else {}
        cls(tmp_path / "file", elapsed_offset=value, **extra)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"history_ratio": math.inf},
        {"history_budget_mb": "9"},
        {"history_budget_mb": True},
        {"history_ratio": None},
    ],
)
def test_a_checkpoint_refuses_history_settings_that_are_not_numbers(kwargs, tmp_path):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        TrainingCheckpoint(tmp_path / "c.npz", **kwargs)


@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_a_flag_comes_back_as_a_python_bool(value):
    assert validate_bool_arg(value, "flag") is bool(value)


@pytest.mark.parametrize("value", ["features", "a b"])
def test_a_name_comes_back_unchanged(value):
    assert validate_string_arg(value, "layer") == value


def test_a_range_names_an_open_bound_as_open_in_one_message():
    # beta_2=1.0 and beta_2=1.5 were refused with different bounds ("< 1", "<= 1").
    unit = Range(float, maximum=1.0, open_maximum=True)
    for bad in (1.0, 1.5):
        with pytest.raises(ValueError, match=r"x must be a finite number >= 0 and < 1"):
            unit.validate(bad, "x")
    assert unit.validate(0.999, "x") == 0.999
    below_ten = Range(int, 0, 10, open_maximum=True)
    with pytest.raises(ValueError, match=r"n must be an integer <= 9\. Received: n=10"):
        below_ten.validate(10, "n")
    assert below_ten.validate(9, "n") == 9
    with pytest.raises(ValueError, match=r"m must be an integer >= 1\. Received: m=0"):
        Range(int, 0, open_minimum=True).validate(0, "m")
