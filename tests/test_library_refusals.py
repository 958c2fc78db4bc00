"""The library refuses what it cannot measure, naming the argument as Keras does."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from keras_grok.callbacks import (
    CollapseMonitor,
    ComplexityMonitor,
    FourierMonitor,
    GrokkingMonitor,
    InformationPlaneMonitor,
)
from keras_grok.callbacks.schedule import Schedule, every_schedule, geometric_schedule
from keras_grok.callbacks.scheduled_monitor import ScheduledMonitor
from keras_grok.data import modular_dataset
from keras_grok.layers import ClassToken, PositionEmbedding
from keras_grok.losses import SumSquaredError, squared_error_one_hot
from keras_grok.measures import (
    coarse_graining,
    collapse,
    complexity,
    description_length,
    fourier,
    fourier_losses,
    information,
    lossy_compression,
    spectral,
)
from keras_grok.models import modular_mlp
from keras_grok.regularizers import SpectralEntropy, add_spectral_entropy
from keras_grok.utils.argument_validation import (
    validate_float_dtype,
    validate_int_arg,
    validate_nonnegative_values,
)
from keras_grok.utils.labelled_data import validate_class_labels, validate_labelled_pair
from tests.testing import to_numpy

SETTINGS = settings(max_examples=60, deadline=None)


# --------------------------------------------------------------------------------------
# The validators, property by property
# --------------------------------------------------------------------------------------


@SETTINGS
@given(st.integers(min_value=1, max_value=2**40))
def test_a_whole_number_at_or_above_the_minimum_is_accepted_as_int(value):
    assert validate_int_arg(value, "n") == value
    assert validate_int_arg(float(value), "n") == value


@SETTINGS
@given(
    st.one_of(
        st.integers(max_value=0),
        st.floats().filter(lambda v: not (v.is_integer() and v >= 1)),
        st.booleans(),
        st.text(max_size=3),
        st.none(),
    )
)
def test_anything_but_a_whole_number_at_least_one_is_refused_by_name(value):
    with pytest.raises(ValueError, match=r"n must be an integer >= 1\. Received: n="):
        validate_int_arg(value, "n")


@SETTINGS
@given(hnp.arrays(np.int64, st.integers(1, 20), elements=st.integers(0, 9)))
def test_class_labels_in_range_come_back_unchanged(labels):
    np.testing.assert_array_equal(validate_class_labels(labels, "y", 10), labels)
    np.testing.assert_array_equal(
        validate_class_labels(labels.astype("float32"), "y", 10), labels
    )


@SETTINGS
@given(
    hnp.arrays(np.int64, st.integers(1, 20), elements=st.integers(0, 9)),
    st.sampled_from([-1, 10, 1000]),
    st.data(),
)
def test_a_negative_or_too_large_label_is_refused_with_the_range(labels, bad, data):
    labels = labels.copy()
    labels[data.draw(st.integers(0, len(labels) - 1))] = bad
    with pytest.raises(ValueError, match=r"y must lie in \[0, 10\)\. Received: labels"):
        validate_class_labels(labels, "y", 10)


@SETTINGS
@given(st.floats().filter(lambda v: not np.isfinite(v) or not v.is_integer()))
def test_a_fractional_or_non_finite_label_is_refused(bad):
    with pytest.raises(ValueError, match="y must be integer class indices"):
        validate_class_labels(np.array([0.0, bad]), "y", 10)


@SETTINGS
@given(
    hnp.arrays(
        np.float64, st.integers(1, 30), elements=st.floats(0, 1e6, allow_nan=False)
    )
)
def test_non_negative_finite_values_are_accepted(values):
    np.testing.assert_array_equal(validate_nonnegative_values(values, "v"), values)


@SETTINGS
@given(
    hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(0, 1e6)),
    st.sampled_from([-1e-9, -5.0, np.nan, np.inf]),
    st.data(),
)
def test_a_negative_or_non_finite_value_is_refused(values, bad, data):
    values = values.copy()
    values[data.draw(st.integers(0, len(values) - 1))] = bad
    with pytest.raises(ValueError, match="v must hold finite numbers >= 0"):
        validate_nonnegative_values(values, "v")


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "bool"])
def test_integer_dtypes_are_refused_where_a_float_is_needed(dtype):
    with pytest.raises(
        ValueError, match=f"w must have a floating-point dtype.*{dtype}"
    ):
        validate_float_dtype(np.ones((3, 3), dtype), "w")


# --------------------------------------------------------------------------------------
# Integer weights
# --------------------------------------------------------------------------------------


def test_spectral_entropy_of_an_int32_matrix_is_refused_not_zero():
    # An int32 identity would come out as entropy 0.0 (a rank-1 matrix's).
    with pytest.raises(ValueError, match="floating-point dtype.*int32"):
        spectral.spectral_entropy(np.eye(4, dtype="int32"))
    with pytest.raises(ValueError, match="floating-point dtype.*int32"):
        spectral.spectral_entropies([np.eye(4, dtype="int32")])
    with pytest.raises(ValueError, match="floating-point dtype.*int32"):
        SpectralEntropy(0.1)(np.eye(4, dtype="int32"))


def test_squared_weight_norm_of_int8_weights_is_refused_not_overflowed():
    weights = [np.full((16, 16), 100, "int8")]  # 100^2 does not fit in int8
    with pytest.raises(ValueError, match="weights must have a floating-point.*int8"):
        fourier.squared_weight_norm(weights)
    assert float(to_numpy(fourier.squared_weight_norm([np.ones((2, 2))]))) == 4.0


# --------------------------------------------------------------------------------------
# Gini, kernel widths, bin sizes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, match",
    [
        ([], "values must hold at least one value"),
        ([1.0, -0.5, 2.0], "values must hold finite numbers >= 0"),
        ([1.0, np.nan], "values must hold finite numbers >= 0"),
    ],
)
def test_gini_refuses_empty_or_negative_values(values, match):
    with pytest.raises(ValueError, match=match):
        fourier.gini_coefficient(np.array(values, "float32"))


@SETTINGS
@given(hnp.arrays(np.float32, st.integers(2, 40), elements=st.floats(0, 100, width=32)))
def test_gini_of_non_negative_values_lies_in_zero_to_one(values):
    gini = float(to_numpy(fourier.gini_coefficient(values)))
    assert values.sum() == 0 or 0.0 <= gini <= 1.0 - 1.0 / len(values) + 1e-5


@pytest.mark.parametrize(
    "values, expected",
    [
        ([1e-45, 1e-45], 0.0),  # subnormal float32: a device may flush their sum to 0
        ([0.0, 0.0, 1e-45], 2.0 / 3.0),
        ([3.0, 1e-45, 0.0, 0.0], 0.75),
    ],
)
def test_gini_of_subnormal_values_is_a_number(values, expected):
    gini = float(to_numpy(fourier.gini_coefficient(np.array(values, "float32"))))
    assert np.isclose(gini, expected, atol=1e-6)


@pytest.mark.parametrize("width", [0.0, -1.0, float("nan"), float("inf")])
def test_non_positive_or_non_finite_kernel_widths_are_refused(width):
    z = np.random.default_rng(0).normal(size=(50, 3))
    labels = np.arange(50) % 2
    with pytest.raises(ValueError, match=f"std must be a finite number > 0.*{width}"):
        information.kde_mutual_information(z, labels, num_references=10, std=width)
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        information.gaussian_gram(z, sigma=width)


@pytest.mark.parametrize("bin_size", [0.0, -0.01, float("nan")])
def test_non_positive_bin_sizes_are_refused(bin_size):
    with pytest.raises(ValueError, match="bin_size must be a finite number > 0"):
        coarse_graining.quantize(np.ones(3), bin_size)
    with pytest.raises(ValueError, match="bin_size must be a finite number > 0"):
        coarse_graining.coarse_grain([np.eye(3, dtype="float32")], 1.0, bin_size)


# --------------------------------------------------------------------------------------
# Labels: the MSE-sum loss, the complexity estimate, the data bits
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels, match",
    [
        ([0, 1, 4], r"y_true must lie in \[0, 4\)\. Received: labels in \[0, 4\]"),
        ([0, -1, 2], r"y_true must lie in \[0, 4\)"),
        ([0.0, 1.5, 2.0], "y_true must be integer class indices"),
    ],
)
def test_the_sum_squared_error_refuses_labels_that_are_not_class_indices(labels, match):
    outputs = np.zeros((3, 4), "float32")
    with pytest.raises(ValueError, match=match):
        squared_error_one_hot(np.array(labels), outputs)
    with pytest.raises(ValueError, match=match):
        SumSquaredError()(np.array(labels), outputs)


def test_the_sum_squared_error_inside_a_traced_step_turns_bad_labels_into_nan():
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    model.compile("sgd", SumSquaredError())
    good = np.array([0, 1, 2, 1, 0, 1, 2, 0])
    assert np.isfinite(model.evaluate(x, good, verbose=0))
    bad = np.array([0, 1, 2, 5, 0, 1, 2, 0])
    try:
        loss = model.evaluate(x, bad, verbose=0)
    except ValueError as error:  # torch runs eagerly: refused by name
        assert "y_true must lie in [0, 3)" in str(error)
    else:
        assert np.isnan(loss)


def _classifier(num_classes: int = 3) -> keras.Model:
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(num_classes)(inputs))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.mark.parametrize(
    "labels, match",
    [
        ([0, 1, 3, 2], r"data labels must lie in \[0, 3\)"),
        ([0, -1, 1, 2], r"data labels must lie in \[0, 3\)"),
        ([0, 0.5, 1, 2], "data labels must be integer class indices"),
    ],
)
def test_the_complexity_estimate_refuses_labels_outside_the_outputs(labels, match):
    x = np.random.default_rng(0).normal(size=(4, 4)).astype("float32")
    with pytest.raises(ValueError, match=match):
        complexity.estimate_complexity(_classifier(), (x, np.array(labels)), 0.1)


def test_data_bits_refuse_out_of_range_labels_and_a_zero_batch():
    x = np.zeros((4, 4), "float32")
    with pytest.raises(ValueError, match=r"data labels must lie in \[0, 3\)"):
        description_length.data_bits(_classifier(), (x, np.array([0, 1, 2, 3])))
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        description_length.data_bits(_classifier(), (x, np.zeros(4)), batch_size=0)


# --------------------------------------------------------------------------------------
# Schedules, batch sizes, monitors
# --------------------------------------------------------------------------------------


@SETTINGS
@given(st.lists(st.integers(1, 10**6), min_size=1, max_size=20))
def test_a_schedule_keeps_whole_steps_sorted_and_unique(steps):
    assert Schedule(tuple(steps)).steps == tuple(sorted(set(steps)))


@SETTINGS
@given(
    st.lists(st.integers(1, 1000), max_size=5),
    st.floats(1, 1000).filter(lambda v: not v.is_integer()),
)
def test_a_fractional_step_is_refused_not_truncated(steps, fractional):
    with pytest.raises(ValueError, match="Scheduled steps must be whole numbers >= 1"):
        Schedule((*steps, fractional))


def test_geomspace_steps_are_refused_with_a_hint_to_round():
    with pytest.raises(ValueError, match=r"np\.round"):
        Schedule(tuple(np.geomspace(1, 1000, 10)))


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_schedule_builders_refuse_bad_totals_and_strides(bad):
    with pytest.raises(ValueError, match="total_steps must be an integer >= 1"):
        geometric_schedule(bad)
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        every_schedule(10, bad)


@pytest.mark.parametrize("batch_size", [0, -1, 0.5, 2.5])
def test_a_monitor_refuses_a_batch_size_below_one(batch_size):
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        ScheduledMonitor(batch_size=batch_size)


def _data(n: int = 32, classes: int = 3):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype("float32"), np.arange(n) % classes


def test_an_uncompiled_model_is_refused_by_a_monitor_before_the_first_step():
    x, y = _data()
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs), name="uncompiled")
    monitor = GrokkingMonitor((x, y), (x, y), schedule=[1])
    callbacks = keras.callbacks.CallbackList([monitor], model=model, epochs=1, steps=2)
    with pytest.raises(ValueError, match="call model.compile.*model='uncompiled'"):
        callbacks.on_train_begin()


def test_one_hot_targets_with_a_sparse_loss_are_refused_with_both_fixes():
    x, y = _data()
    one_hot = np.eye(3, dtype="float32")[y]
    model = _classifier()
    monitor = GrokkingMonitor((x, one_hot), (x, y), schedule=[1])
    with pytest.raises(
        ValueError,
        match=r"train_data holds one-hot rows.*argmax.*CategoricalCrossentropy"
        r".*Received: train_data targets of shape \(32, 3\)",
    ):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])


def test_one_hot_targets_with_a_one_hot_loss_are_measured():
    x, y = _data()
    one_hot = np.eye(3, dtype="float32")[y]
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    model.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True))
    monitor = GrokkingMonitor((x, one_hot), (x, one_hot), schedule=[1])
    model.fit(x, one_hot, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    assert np.isfinite(monitor.latest["train_loss"])


# --------------------------------------------------------------------------------------
# A fresh fuzz (issue 18): tracebacks, unclear messages and numbers for bad inputs
# --------------------------------------------------------------------------------------


def _monitor_fit(monitor, model=None, x=None):
    x = (
        np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
        if x is None
        else x
    )
    model = model or _classifier()
    model.fit(
        x, np.arange(30) % 3, epochs=1, batch_size=10, verbose=0, callbacks=[monitor]
    )


def _with_features() -> keras.Model:
    inputs = keras.Input((4,))
    features = keras.layers.Dense(8, activation="relu", name="features")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(features))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _two_outputs() -> keras.Model:
    inputs = keras.Input((4,))
    outputs = [keras.layers.Dense(3)(inputs), keras.layers.Dense(3)(inputs)]
    model = keras.Model(inputs, outputs)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("adam", [loss, loss])
    return model


X30, Y30 = _data(30)
REFUSED = {
    # collapse statistics
    "empty features": (
        lambda: collapse.collapse_statistics((np.zeros((0, 4)), np.zeros(0, int)), 3),
        "at least one sample",
    ),
    "num_classes as text": (
        lambda: collapse.collapse_statistics((X30, Y30), "3"),
        "num_classes must be an integer >= 1. Received: num_classes='3'",
    ),
    "text labels": (
        lambda: collapse.collapse_statistics((X30, np.array(["a", "b", "c"] * 10)), 3),
        "labels must be integer class indices. Received: <U1",
    ),
    "features and labels as two arguments": (
        lambda: collapse.collapse_statistics(X30, Y30),
        r"num_classes must be an integer >= 1. Received: num_classes=array",
    ),
    "a batch that is not a pair": (
        lambda: collapse.collapse_statistics([X30, X30, Y30], 3),
        r"batches must be \(features, labels\) pairs.*batches\[0\] of type "
        r"ndarray and shape \(30, 4\)",
    ),
    "figures with an unknown norm": (
        lambda: collapse.collapse_figures(
            collapse.collapse_statistics((X30, Y30), 3), "l2"
        ),
        "norm must be",
    ),
    "means that are not a matrix": (
        lambda: collapse.nc2_of_means(np.ones(4)),
        "means must be a",
    ),
    # information plane
    "a Gram matrix of no samples": (
        lambda: information.gaussian_gram(np.zeros((0, 3), "float32")),
        "a must hold at least one sample",
    ),
    "a negative resolvent epsilon": (
        lambda: information.normalized_hsic(X30, X30, epsilon=-1.0),
        "epsilon must be a finite number > 0",
    ),
    "a Gram matrix that is not square": (
        lambda: information.kernel_resolvent(np.ones((3, 4), "float32")),
        r"gram must be an \(n, n\) matrix",
    ),
    "no KDE evaluation samples": (
        lambda: information.kde_mutual_information(
            X30, Y30, num_references=10, num_evaluations=0
        ),
        "num_evaluations must be an integer >= 1",
    ),
    "a whitening ridge below zero": (
        lambda: lossy_compression.whiten(X30, ridge=-1.0),
        "ridge must be a finite number >= 0",
    ),
    "a projection to zero dimensions": (
        lambda: lossy_compression.pca_project(X30, dim=0),
        "dim must be an integer >= 1",
    ),
    # Fourier
    "Gini of a matrix": (
        lambda: fourier.gini_coefficient(np.arange(9.0).reshape(3, 3)),
        "values must be a 1-D tensor",
    ),
    "pair labels outside the logits": (
        lambda: fourier_losses.cross_entropy_of_pairs(
            np.zeros((4, 5)), np.array([0, 1, 7, 2])
        ),
        r"labels must lie in \[0, 5\)",
    ),
    "pairs beyond the rows": (
        lambda: fourier_losses.cross_entropy_of_pairs(
            np.zeros((4, 5)), np.array([0, 1, 2, 3]), np.array([1, 25])
        ),
        r"pairs must be row indices in \[0, 4\) of the 4 rows",
    ),
    "a mask of another length": (
        lambda: fourier_losses.cross_entropy_of_pairs(
            np.zeros((4, 5)), np.array([0, 1, 2, 3]), np.array([True, False])
        ),
        r"one entry per row of logits \(4\)",
    ),
    "fractional pairs": (
        lambda: fourier_losses.cross_entropy_of_pairs(
            np.zeros((4, 5)), np.array([0, 1, 2, 3]), np.array([0.5])
        ),
        "pairs must hold integer row indices or booleans",
    ),
    "fewer pair labels than logits": (
        lambda: fourier_losses.cross_entropy_of_pairs(
            np.zeros((4, 5)), np.array([0, 1, 2])
        ),
        "labels must hold one label per row of logits",
    ),
    # spectra
    "a split beyond the axes": (
        lambda: spectral.spectral_entropy(np.ones((3, 3), "float32"), split=5),
        "split must leave axes on both sides.*Received: split=5",
    ),
    "an empty matrix": (
        lambda: spectral.spectral_entropy(np.zeros((0, 5), "float32")),
        "must not be empty. Received: shape=",
    ),
    "weight matrices of a string": (
        lambda: spectral.weight_matrices("model"),
        "model must be a keras.Model",
    ),
    "a regularizer split of 0": (
        lambda: SpectralEntropy(0.1, split=0),
        "split must leave axes on both sides",
    ),
    "spectral entropy on a string": (
        lambda: add_spectral_entropy("model", 0.1),
        "model must be a keras.Model",
    ),
    # complexity
    "complexity data of two lengths": (
        lambda: complexity.estimate_complexity(_classifier(), (X30[:4], Y30[:3]), 0.1),
        "data must hold as many targets as inputs",
    ),
    "a monitor's threshold above 1": (
        lambda: ComplexityMonitor((X30, Y30), thresholds=[2.0]),
        r"thresholds must lie in \[0, 1\]",
    ),
    "a monitor's bin range reversed": (
        lambda: ComplexityMonitor((X30, Y30), bin_range=(1.0, 1e-3)),
        "bin_range must satisfy",
    ),
    "an infinite weight on the grid": (
        lambda: coarse_graining.quantize(np.array([np.inf]), 0.1),
        "x must hold finite values",
    ),
    "negative model bits": (
        lambda: description_length.description_length(-5.0, 3.0),
        "complexity_bits must be a finite number >= 0",
    ),
    "data bits of no data": (
        lambda: description_length.data_bits(
            _classifier(), (np.zeros((0, 4), "float32"), np.zeros(0, int))
        ),
        "data must hold as many labels as inputs, at least one",
    ),
    # monitors
    "an empty list of steps": (
        lambda: _monitor_fit(GrokkingMonitor((X30, Y30), schedule=[])),
        "must hold at least one step",
    ),
    "num_classes below the labels": (
        lambda: CollapseMonitor((X30, Y30), num_classes=2),
        "num_classes=2: pass num_classes >= 3",
    ),
    "num_classes of 0": (
        lambda: InformationPlaneMonitor((X30, Y30), num_classes=0),
        "num_classes must be an integer >= 1",
    ),
    "a classifier layer that does not exist": (
        lambda: _monitor_fit(
            CollapseMonitor((X30, Y30), classifier="nope", schedule=[1]),
            _with_features(),
        ),
        "has no layer named 'nope'.*classifier names the read-out",
    ),
    "no encoder epochs": (
        lambda: InformationPlaneMonitor((X30, Y30), encoder_epochs=0),
        "encoder_epochs must be an integer >= 1",
    ),
    "too few examples for the estimator": (
        lambda: InformationPlaneMonitor((X30[:3], Y30[:3]), estimators="compression"),
        "train_data must hold at least 6 examples",
    ),
    "the same column for a and b": (
        lambda: FourierMonitor((X30, Y30), p=23, positions=(0, 0)),
        "positions must name two distinct columns",
    ),
    "inputs of another width than the model's": (
        lambda: _monitor_fit(
            GrokkingMonitor((np.ones((30, 7), "float32"), Y30), schedule=[1])
        ),
        r"train_data inputs must match the model's input shape \(None, 4\)",
    ),
    "a model of two outputs": (
        lambda: _two_outputs().fit(
            X30,
            (Y30, Y30),
            epochs=1,
            verbose=0,
            callbacks=[GrokkingMonitor((X30, Y30), schedule=[1])],
        ),
        "one input and one output",
    ),
    # layers, losses, data, models
    "positions beyond the table": (
        lambda: PositionEmbedding(2)(np.zeros((1, 5, 4), "float32")),
        r"PositionEmbedding\(max_length=2\)",
    ),
    "a class token for unsequenced inputs": (
        lambda: ClassToken()(np.zeros((2, 4), "float32")),
        r"\(batch, length, dim\) sequences",
    ),
    "outputs of one axis": (
        lambda: SumSquaredError()(np.array([0, 1]), np.zeros(2, "float32")),
        r"y_pred must be \(batch, K\) outputs",
    ),
    "labels for another batch": (
        lambda: squared_error_one_hot(np.array([0, 1, 2]), np.zeros((4, 5), "float32")),
        "y_true must hold one label per row of y_pred",
    ),
    "dense targets of another width": (
        lambda: squared_error_one_hot(
            np.zeros((4, 3), "float32"), np.zeros((4, 5), "float32"), sparse=False
        ),
        "y_true must have the shape of y_pred",
    ),
    "a negative data seed": (
        lambda: modular_dataset(7, seed=-1),
        "seed must be an integer >= 0",
    ),
    "a model of zero classes": (
        lambda: modular_mlp(0),
        "num_classes must be an integer >= 1",
    ),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_a_bad_input_is_refused_by_name_with_what_was_received(case):
    call, match = REFUSED[case]
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_nc2_of_fewer_than_two_means_is_nan_not_one():
    assert np.isnan(collapse.nc2_of_means(np.ones((1, 4))))
    assert np.isnan(collapse.nc2_of_means(np.zeros((0, 4))))


def test_knn_entropy_of_repeated_points_warns_that_it_is_not_meaningful():
    with pytest.warns(UserWarning, match="repeated points"):
        lossy_compression.knn_entropy(np.ones((30, 2)))


@pytest.mark.parametrize(
    "first", ["from keras_grok import losses", "from keras_grok import layers"]
)
def test_objects_register_whichever_keras_grok_module_is_imported_first(first):
    import subprocess
    import sys

    code = (
        f"{first}\nimport keras\n"
        "assert keras.saving.get_registered_object('keras_grok>SpectralEntropy')\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_finite_tf_data_set_of_pairs_is_read_into_the_same_arrays():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)).astype("float32")
    y = rng.integers(0, 4, 50)
    pairs = tf.data.Dataset.from_tensor_slices((x, y))
    for data in (pairs, pairs.batch(16)):  # examples, or batches with a remainder
        read = validate_labelled_pair(data, "train_data")
        np.testing.assert_array_equal(read.x, x)
        np.testing.assert_array_equal(read.labels, y)


@pytest.mark.parametrize(
    "kind, match",
    [
        ("infinite", "finite data set.*Received: an infinite"),
        ("inputs only", "must yield \\(x, y\\) pairs"),
        ("empty", "at least one example"),
    ],
)
def test_a_tf_data_set_that_cannot_be_read_whole_is_refused(kind, match):
    tf = pytest.importorskip("tensorflow")
    x, y = np.zeros((4, 3), "float32"), np.zeros(4, "int32")
    data = {
        "infinite": tf.data.Dataset.from_tensor_slices((x, y)).repeat(),
        "inputs only": tf.data.Dataset.from_tensor_slices(x),
        "empty": tf.data.Dataset.from_tensor_slices((x, y)).take(0),
    }[kind]
    with pytest.raises(ValueError, match=match):
        validate_labelled_pair(data, "train_data")


@pytest.mark.parametrize("inputs", ["dict", "list"])
def test_multi_input_data_is_refused_by_name_not_miscounted(inputs):
    x, y = np.zeros((4, 3), "float32"), np.zeros(4, "int32")
    x = {"a": x} if inputs == "dict" else [x, x]
    with pytest.raises(ValueError, match="train_data's x must be one array"):
        validate_labelled_pair((x, y), "train_data")


def test_data_bits_read_one_hot_rows_as_their_class_indices():
    from keras_grok.measures.description_length import data_bits

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3)).astype("float32")
    y = rng.integers(0, 4, 30)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(4)(inputs))
    logits = np.asarray(model.predict_on_batch(x), np.float64)
    log_p = logits - logits.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    expected = -log_p[np.arange(30), y].sum() / np.log(2)
    for labels in (y, np.eye(4)[y]):
        assert data_bits(model, (x, labels)) == pytest.approx(expected, rel=1e-5)


# A third fuzz (issue 18): library inputs that were accepted or raised raw errors.


def _classifier(inputs=4, classes=3):
    x = keras.Input((inputs,))
    h = keras.layers.Dense(8, activation="relu", name="features")(x)
    model = keras.Model(x, keras.layers.Dense(classes)(h))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: SpectralEntropy("0.1"), "strength='0.1'"),
        (lambda: GrokkingMonitor((np.zeros((3, 2)), np.arange(3)), threshold="0.9"),
         "threshold='0.9'"),
        (lambda: information.gaussian_gram(np.ones((3, 2), "float32"), sigma="5"),
         "sigma='5'"),
    ],
    ids=["strength", "threshold", "sigma"],
)  # fmt: skip
def test_a_number_spelled_as_a_string_is_refused_not_parsed(make, name):
    with pytest.raises(ValueError, match=f"Received: {name}"):
        make()


def test_a_strength_that_float32_turns_into_inf_is_refused():
    with pytest.raises(ValueError, match="strength=1e\\+39"):
        SpectralEntropy(1e39)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0"])
def test_a_noise_seed_outside_32_bits_is_refused_by_name(seed):
    from keras_grok.regularizers import apply_paper_b_regularization

    with pytest.raises(ValueError, match="seed must be None or an integer"):
        apply_paper_b_regularization(_classifier(), 0.1, 0.01, seed=seed)


def test_a_loss_fn_that_is_not_callable_is_refused_by_name():
    data = (np.zeros((3, 4), "float32"), np.arange(3))
    with pytest.raises(ValueError, match="loss_fn must be a callable"):
        ComplexityMonitor(data, loss_fn="mse")


def test_the_spectral_density_monitor_asks_for_a_built_model():
    from keras_grok.callbacks import SpectralDensityMonitor

    model = keras.Sequential([keras.layers.Dense(8), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="build it first"):
        SpectralDensityMonitor(model)


def test_a_cache_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    data = (np.zeros((30, 4), "float32"), np.arange(30) % 3)
    with pytest.raises(ValueError, match="cache_dir must be a folder"):
        InformationPlaneMonitor(data, estimators="compression", cache_dir=path)


def test_a_checkpoint_in_a_missing_folder_makes_the_folder(tmp_path):
    from keras_grok.callbacks import TrainingCheckpoint

    path = tmp_path / "new" / "folder" / "c.npz"
    model = _classifier()
    x, y = np.zeros((6, 4), "float32"), np.arange(6) % 3
    model.fit(x, y, epochs=1, verbose=0, callbacks=[TrainingCheckpoint(path, 0.0)])
    assert path.exists()


def test_a_features_layer_called_twice_is_refused_as_ambiguous():
    x = keras.Input((4,))
    shared = keras.layers.Dense(4, activation="relu", name="features")
    model = keras.Model(x, keras.layers.Dense(3)(shared(shared(x))))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = (np.zeros((6, 4), "float32"), np.arange(6) % 3)
    monitor = CollapseMonitor(data, schedule=[1])
    with pytest.raises(ValueError, match="'features' is called 2 times"):
        model.fit(*data, epochs=1, verbose=0, callbacks=[monitor])


def test_complexity_of_a_model_without_weights_is_refused():
    x = keras.Input((3,))
    model = keras.Model(x, keras.layers.Activation("linear")(x))
    model.compile("adam", "mse")
    data = (np.zeros((4, 3), "float32"), np.zeros((4, 3), "float32"))
    with pytest.raises(ValueError, match="has none"):
        complexity.estimate_complexity(model, data, 0.1)


def test_spectral_entropy_of_bfloat16_weights_matches_float32_to_their_precision():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    w = np.random.default_rng(0).normal(size=(5, 4))
    low = SpectralEntropy(0.1)(w.astype(ml_dtypes.bfloat16))
    high = SpectralEntropy(0.1)(w.astype("float32"))
    low = float(to_numpy(keras.ops.cast(low, "float32")))
    assert low == pytest.approx(float(to_numpy(high)), rel=1e-2)


# A fourth fuzz (issue 18): arguments of monitors and measures.


def test_a_classifier_whose_kernel_is_not_the_read_out_is_refused():
    model = _classifier()
    data = (np.zeros((6, 4), "float32"), np.arange(6) % 3)
    monitor = CollapseMonitor(data, schedule=[1], classifier="features")
    with pytest.raises(ValueError, match="classifier must name the read-out"):
        model.fit(*data, epochs=1, verbose=0, callbacks=[monitor])


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: InformationPlaneMonitor(d, estimators="nhsic", seed=-1), "seed"),
        (lambda d: ComplexityMonitor(d, thresholds=[]), "thresholds must list"),
        (lambda d: __import__("keras_grok").callbacks.TrainingCheckpoint(
            "c.npz", every_seconds=-1), "every_seconds"),
        (lambda d: __import__("keras_grok").callbacks.MeasurementCoordinator("m"),
         "measures a keras.Model"),
        (lambda d: __import__(
            "keras_grok.callbacks.measurement_requests", fromlist=["x"]
        ).CollapseStatisticsOf("features", 0), "num_classes"),
        (lambda d: __import__("keras_grok").callbacks.StepProgress(
            [GrokkingMonitor(d)], keys=["no_such_key"]), "keys must name metrics"),
    ],
    ids=["seed", "thresholds", "every_seconds", "coordinator", "num_classes", "keys"],
)  # fmt: skip
def test_a_monitor_argument_out_of_range_is_refused_by_name(make, words):
    data = (np.zeros((30, 4), "float32"), np.arange(30) % 3)
    with pytest.raises(ValueError, match=words):
        make(data)


def test_a_checkpoint_path_that_is_a_folder_is_refused(tmp_path):
    from keras_grok.callbacks import TrainingCheckpoint

    with pytest.raises(ValueError, match="not a folder"):
        TrainingCheckpoint(tmp_path)


def test_a_metrics_file_in_a_missing_folder_makes_the_folder(tmp_path):
    from keras_grok.callbacks import MetricsRecorder

    data = (np.zeros((6, 4), "float32"), np.arange(6) % 3)
    monitor = GrokkingMonitor(data, schedule=[1])
    path = tmp_path / "new" / "metrics.csv"
    recorder = MetricsRecorder(path, [monitor])
    _classifier().fit(*data, epochs=1, verbose=0, callbacks=[monitor, recorder])
    assert path.read_text().startswith("step,")


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: information.kernel_resolvent(np.eye(3, dtype="float32"), 0.0),
         "epsilon"),
        (lambda: information.hsic_batches(-5), "num_samples"),
        (lambda: information.kde_mutual_information(
            np.ones((30, 2), "float32"), np.r_[-1, np.zeros(29, int)]), "labels"),
        (lambda: lossy_compression.berrett_weights(0, 2), "k must be"),
        (lambda: __import__("keras_grok.measures.spectral_density", fromlist=["x"])
         .esd_power_law(None, zero_threshold=-1), "zero_threshold"),
        (lambda: fourier_losses.excluded_loss(
            np.zeros((2, 7), "float32"), np.zeros(2, int), 7, "a+b", [1],
            directions="bogus"), "directions"),
        (lambda: __import__("keras_grok.analysis.refine", fromlist=["x"])
         .tolerance(100, 0.01, 0), "steps_per_epoch"),
        (lambda: __import__("keras_grok.analysis.refine", fromlist=["x"])
         .tolerance(100, -0.1, 1), "relative"),
    ],
    ids=["resolvent", "hsic_batches", "kde labels", "berrett", "esd", "directions",
         "tolerance epoch", "tolerance relative"],
)  # fmt: skip
def test_a_measure_argument_out_of_range_is_refused_by_name(call, words):
    with pytest.raises(ValueError, match=words):
        call()


def test_an_encoder_cache_that_cannot_be_made_is_refused_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="cache_dir must be a folder"):
        lossy_compression.fit_input_encoder(
            np.zeros((8, 4), "float32"), epochs=1, cache_dir=blocker / "sub"
        )


def test_a_damaged_lock_pid_counts_as_no_owner():
    from keras_grok.runs.folder_lock import is_alive

    for pid in (-1, 0, 2**30, 2**70):
        assert is_alive(pid) is False, pid


@pytest.mark.skipif(
    keras.backend.backend() == "torch", reason="torch runs one step per call"
)
def test_a_model_running_several_steps_per_call_is_warned_about():
    model = _classifier()
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=3,
    )
    data = (np.zeros((12, 4), "float32"), np.arange(12) % 3)
    with pytest.warns(UserWarning, match="steps_per_execution=3"):
        model.fit(
            *data, batch_size=2, epochs=1, verbose=0,
            callbacks=[GrokkingMonitor(data, schedule="every:1")],
        )  # fmt: skip


def test_an_adaptive_level_outside_accuracy_is_refused():
    from keras_grok.callbacks.schedule import AdaptiveSchedule

    with pytest.raises(ValueError, match=r"levels\['test_accuracy'\]"):
        AdaptiveSchedule(100, levels={"test_accuracy": 2.0})


def test_a_recorder_of_a_monitor_left_out_of_the_fit_says_so(tmp_path):
    from keras_grok.callbacks import MetricsRecorder

    data = (np.zeros((6, 4), "float32"), np.arange(6) % 3)
    monitor = GrokkingMonitor(data, schedule=[1])
    recorder = MetricsRecorder(tmp_path / "m.csv", [monitor])
    with pytest.raises(ValueError, match="GrokkingMonitor is not among"):
        _classifier().fit(*data, epochs=1, verbose=0, callbacks=[recorder])


def test_an_unknown_lens_and_mismatched_statistics_are_refused_by_name():
    from keras_grok.measures.collapse_statistics import merge_collapse_statistics
    from keras_grok.runs.lenses import lens_monitor

    with pytest.raises(ValueError, match="lens must be one of"):
        lens_monitor("bogus", None)
    with pytest.raises(ValueError, match=r"r_a and r_b must be square"):
        information.hsic_trace(np.eye(3), np.eye(4))
    rng = np.random.default_rng(0)
    a = collapse.collapse_statistics((rng.normal(size=(9, 2)), np.arange(9) % 3), 3)
    b = collapse.collapse_statistics((rng.normal(size=(8, 2)), np.arange(8) % 2), 2)
    with pytest.raises(ValueError, match="same classes and feature dimension"):
        merge_collapse_statistics(a, b)


def test_variable_values_are_read_without_numpy_2_warnings():
    import warnings

    from keras_grok.utils.variable_values import variable_numpy

    variable = keras.Variable(np.arange(3.0, dtype="float32"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(variable_numpy(variable), [0.0, 1.0, 2.0])


def test_a_fourier_basis_of_an_integer_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype"):
        fourier.fourier_basis(7, dtype="int32")
    assert to_numpy(fourier.fourier_basis(7, dtype="float16")).dtype == np.float16


def test_key_frequencies_of_non_finite_norms_are_refused_and_ranked_last_inside():
    norms = np.array([1.0, np.nan, 0.5], "float32")
    with pytest.raises(ValueError, match="norms"):
        fourier.key_frequencies(norms, k=1)
    # What monitors use: NaN ranks last on every backend.
    assert to_numpy(fourier.ranked_frequencies(norms, k=2)).tolist() == [1, 3]


@pytest.mark.parametrize("label", [2**40, 2.0**40, -(2**40)])
def test_a_label_beyond_int32_is_refused_not_wrapped(label):
    y = np.arange(30, dtype=np.float64 if isinstance(label, float) else np.int64) % 3
    y[0] = label
    with pytest.raises(ValueError, match="labels"):
        validate_class_labels(y, "labels")
    x = np.ones((30, 4), "float32")
    with pytest.raises(ValueError, match="labels"):
        collapse.batch_collapse_statistics(x, y, 3)
    with pytest.raises(ValueError, match="train_data"):
        CollapseMonitor((x, y))


def test_batch_statistics_of_no_samples_are_refused_by_name():
    with pytest.raises(ValueError, match="features must hold at least one sample"):
        collapse.batch_collapse_statistics(
            np.zeros((0, 4), "float32"), np.zeros((0,), "int32"), 3
        )


def test_half_precision_inputs_are_measured_in_float32():
    big = np.full((2, 2), 300.0, "float16")  # its squares pass float16's 65504
    assert np.isclose(float(fourier.squared_weight_norm([big])), 360000.0)
    values = np.array([30000, 30000, 1000, 5000], "float16")
    expected = np.abs(values[:, None] - values[None, :].astype(np.float64)).sum() / (
        2 * 4**2 * values.astype(np.float64).mean()
    )
    assert np.isclose(float(fourier.gini_coefficient(values)), expected, rtol=1e-5)
    matrix = np.random.default_rng(0).normal(size=(6, 4)) * 300
    s = np.linalg.svd(matrix.astype(np.float16).astype(np.float64), compute_uv=False)
    assert np.isclose(
        float(spectral.stable_rank(matrix.astype("float16"))),
        (s**2).sum() / s[0] ** 2,
        rtol=1e-4,
    )
    p = s / s.sum()
    assert np.isclose(
        float(spectral.spectral_entropy(matrix.astype("float16"))),
        -(p * np.log(p)).sum(),
        rtol=1e-4,
    )


def test_relative_noise_refuses_integer_inputs():
    from keras_grok.layers import RelativeGaussianNoise

    with pytest.raises(ValueError, match="inputs must have a floating-point dtype"):
        RelativeGaussianNoise(0.1, seed=1)(
            np.arange(10, dtype="int32").reshape(2, 5), training=True
        )


def _tiny_classifier(output_structure=None):
    inputs = keras.Input((4,))
    features = keras.layers.Dense(8, activation="relu", name="features")(inputs)
    logits = keras.layers.Dense(3, name="logits")(features)
    outputs = output_structure(logits) if output_structure else logits
    model = keras.Model(inputs, outputs)
    model.compile(
        "adam", {"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}
    )
    return model


def test_unsigned_labels_are_measured_on_every_backend():
    x = np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
    y = np.arange(30) % 3
    signed = CollapseMonitor((x, y), schedule=[3])
    unsigned = CollapseMonitor((x, y.astype("uint64")), schedule=[3])
    _tiny_classifier().fit(
        x, y, epochs=1, batch_size=10, verbose=0, callbacks=[signed, unsigned]
    )
    assert unsigned.latest["train_rnc1"] == signed.latest["train_rnc1"]


def test_a_model_whose_output_is_a_dict_is_refused_by_name():
    x = np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
    y = np.arange(30) % 3
    model = _tiny_classifier(lambda logits: {"logits": logits})
    with pytest.raises(ValueError, match="output in a dict with keys \\['logits'\\]"):
        model.fit(
            x,
            {"logits": y},
            epochs=1,
            batch_size=10,
            verbose=0,
            callbacks=[GrokkingMonitor((x, y), schedule=[3])],
        )


def test_batch_statistics_refuse_one_hot_labels_by_name():
    features = np.random.default_rng(0).normal(size=(10, 3)).astype("float32")
    with pytest.raises(ValueError, match="labels must be \\(n,\\) integer class"):
        collapse.batch_collapse_statistics(features, np.eye(2)[np.arange(10) % 2], 2)


@pytest.mark.parametrize("make", ["recorder", "progress"])
@pytest.mark.parametrize("monitors", [10, "m", [keras.callbacks.EarlyStopping()]])
def test_recorders_refuse_what_is_not_a_list_of_monitors(make, monitors, tmp_path):
    from keras_grok.callbacks import MetricsRecorder, StepProgress

    with pytest.raises(ValueError, match="monitors"):
        if make == "recorder":
            MetricsRecorder(tmp_path / "m.csv", monitors)
        else:
            StepProgress(monitors)


def test_a_spectral_density_monitor_refuses_to_watch_another_model():
    from keras_grok.callbacks import SpectralDensityMonitor

    def model():
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(8)(inputs)
        made = keras.Model(inputs, keras.layers.Dense(3)(hidden))
        made.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
        return made

    watched, trained = model(), model()
    monitor = SpectralDensityMonitor(watched, schedule=[1], min_dimension=2)
    x = np.ones((8, 4), "float32")
    with pytest.raises(ValueError, match="another model is training"):
        trained.fit(x, np.zeros(8), epochs=1, verbose=0, callbacks=[monitor])


def test_cross_entropy_of_no_pairs_is_refused():
    with pytest.raises(ValueError, match="pairs must be a 1-D list of one or more"):
        fourier_losses.cross_entropy_of_pairs(
            np.zeros((4, 3), "float32"), np.array([0, 1, 2, 0]), pairs=np.array([], int)
        )


def test_sparse_sum_squared_error_names_one_hot_targets():
    with pytest.raises(ValueError, match="SumSquaredError\\(sparse=False\\)"):
        SumSquaredError()(
            np.eye(3, dtype="float32")[[0, 2]], np.zeros((2, 3), "float32")
        )


def test_pairs_as_a_boolean_mask_select_its_true_rows():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(20, 5)).astype("float32")
    labels = rng.integers(0, 5, 20)
    mask = np.zeros(20, bool)
    mask[[1, 4, 7]] = True
    chosen = logits[[1, 4, 7]].astype("float64")
    expected = np.mean(
        np.log(np.exp(chosen).sum(axis=1)) - chosen[np.arange(3), labels[[1, 4, 7]]]
    )
    by_mask = fourier_losses.cross_entropy_of_pairs(logits, labels, mask)
    by_index = fourier_losses.cross_entropy_of_pairs(logits, labels, [1, 4, 7])
    assert np.isclose(float(to_numpy(by_mask)), expected, rtol=1e-5)
    assert np.isclose(float(to_numpy(by_index)), expected, rtol=1e-5)


def test_gini_takes_a_plain_list():
    assert np.isclose(float(to_numpy(fourier.gini_coefficient([0, 0, 0, 4]))), 0.75)


def _clustered(n: int = 30):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 3
    features = rng.normal(size=(3, 4))[labels] * 3 + rng.normal(size=(n, 4))
    return features.astype("float32"), labels


def test_bfloat16_host_features_are_measured_in_float32_on_every_backend():
    # torch's cast of a NumPy bfloat16 array to float32 kept bfloat16: RNC1 was
    # 0.8% off there.
    ml_dtypes = pytest.importorskip("ml_dtypes")
    features, labels = _clustered()
    low = features.astype(ml_dtypes.bfloat16)
    expected = collapse.rnc1(
        collapse.batch_collapse_statistics(low.astype("float32"), labels, 3)
    )
    measured = collapse.rnc1(collapse.batch_collapse_statistics(low, labels, 3))
    assert np.isclose(measured, expected, rtol=1e-5)


def test_collapse_statistics_refuse_more_labels_than_feature_rows():
    features, labels = _clustered()
    with pytest.raises(ValueError, match="Received: 31 labels and 30 feature rows"):
        collapse.batch_collapse_statistics(features, np.append(labels, 0), 3)


def test_entropy_of_a_spectrum_refuses_negative_host_values():
    with pytest.raises(ValueError, match=r"s must hold finite numbers >= 0"):
        spectral.entropy_of_spectrum([1.0, -0.5])
    assert np.isclose(
        float(to_numpy(spectral.entropy_of_spectrum([1.0, 1.0]))), np.log(2)
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_monitor_refuses_inputs_that_are_not_finite(bad):
    # A NaN in the monitor's own train_data was read as a diverged model, and
    # training stopped without a word about the data.
    features, labels = _clustered()
    features[4, 0] = bad
    with pytest.raises(ValueError, match=r"train_data's x must hold finite .* row 4"):
        GrokkingMonitor((features, labels), schedule="every:1")


def test_streamed_collapse_statistics_name_one_hot_labels():
    # The one-hot rows were flattened to 3n labels, and the features were blamed.
    features, labels = _clustered()
    with pytest.raises(ValueError, match="take the argmax of one-hot rows"):
        collapse.collapse_statistics([(features, np.eye(3)[labels])], 3)


@pytest.mark.parametrize("threshold", [1.5, 0.0, 99])
def test_generalized_step_refuses_a_threshold_outside_zero_to_one(threshold):
    from keras_grok import forecast

    rows = [{"step": s, "train_accuracy": 1.0, "test_accuracy": 1.0} for s in (1, 2)]
    with pytest.raises(ValueError, match="test_threshold"):
        forecast.generalized_step(rows, threshold)
    assert forecast.generalized_step(rows, 0.99) == 1


def test_kde_mutual_information_names_one_hot_labels():
    z = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    labels = np.arange(40) % 2
    with pytest.raises(ValueError, match="take the argmax of one-hot rows"):
        information.kde_mutual_information(z, np.eye(2)[labels], num_references=20)


def test_stable_rank_of_a_matrix_whose_squares_overflow_float32():
    w = np.random.default_rng(0).normal(size=(9, 4))
    s = np.linalg.svd(w, compute_uv=False)
    expected = np.sum(s**2) / s[0] ** 2
    large = spectral.stable_rank((w * 1e20).astype("float32"))  # NaN before
    assert np.isclose(float(to_numpy(large)), expected, rtol=1e-5)


def test_json_files_take_numpy_scalars_and_arrays(tmp_path):
    import json

    from keras_grok.runs.file_io import write_json_atomic

    path = tmp_path / "j.json"
    write_json_atomic(path, {"a": np.int64(3), "b": np.float32(0.5), "c": np.ones(2)})
    assert json.loads(path.read_text()) == {"a": 3, "b": 0.5, "c": [1.0, 1.0]}


def test_per_token_labels_are_not_taken_for_one_hot_rows():
    features, _ = _clustered(6)
    tokens = np.array([[0, 3, 2]] * 6)  # a sequence model's labels per token
    with pytest.raises(ValueError, match=r"neither \(N,\) class indices nor"):
        GrokkingMonitor((features, tokens))
    GrokkingMonitor((features, np.full((6, 3), 1 / 3, "float16")))  # soft rows


@pytest.mark.parametrize("scale", [1e20, 1e-25])
def test_scale_free_spectral_measures_survive_float32_squares(scale):
    rng = np.random.default_rng(0)
    table = rng.normal(size=(13, 8))
    norms = to_numpy(fourier.embedding_spectrum(table.astype("float32"), 13))
    scaled = to_numpy(fourier.embedding_spectrum((table * scale).astype("float32"), 13))
    np.testing.assert_allclose(np.asarray(scaled, "float64") / scale, norms, rtol=1e-4)
    assert np.isclose(
        float(to_numpy(fourier.fourier_sparsity(scaled, 2))),
        float(to_numpy(fourier.fourier_sparsity(norms, 2))),
        rtol=1e-5,
    )
    w = rng.normal(size=(9, 4))
    s = np.linalg.svd(w, compute_uv=False)
    rank = float(to_numpy(spectral.stable_rank((w * scale).astype("float32"))))
    assert np.isclose(rank, np.sum(s**2) / s[0] ** 2, rtol=1e-4)


def test_nc4_does_not_change_with_the_features_scale():
    features, labels = _clustered()
    for scale in (1.0, 1e20):
        scaled = features * np.float32(scale)
        stats = collapse.batch_collapse_statistics(scaled, labels, 3)
        assert collapse.nc4([(scaled, labels)], stats) == 1.0  # 0.333 at 1e20 before


def test_measures_take_other_byte_orders_and_nested_lists():
    # JAX refuses big-endian arrays ('>f8', as read from FITS or HDF5 files).
    rng = np.random.default_rng(1)
    a = rng.normal(size=(12, 7))
    swapped = a.astype(">f8")
    assert np.isclose(
        float(to_numpy(spectral.stable_rank(swapped))),
        float(to_numpy(spectral.stable_rank(a))),
        rtol=1e-5,
    )
    assert np.isclose(
        float(to_numpy(fourier.gini_coefficient(np.abs(swapped[0])))),
        float(to_numpy(fourier.gini_coefficient(np.abs(a[0])))),
        rtol=1e-5,
    )
    norm = float(to_numpy(fourier.squared_weight_norm([a.tolist()])))
    assert np.isclose(norm, np.sum(a**2), rtol=1e-5)
    z, labels = rng.normal(size=(40, 5)), np.arange(40) % 4
    one_hot = np.eye(4)[labels]
    by_array = information.normalized_hsic(z, one_hot, "linear", batch_size=20)
    by_list = information.normalized_hsic(z.tolist(), one_hot, "linear", batch_size=20)
    assert np.isclose(by_list, by_array, rtol=1e-5)


def test_a_pipe_in_the_swept_value_name_keeps_the_markdown_table_whole():
    from keras_grok.sweeps.sweep_results import summarize, table_markdown

    rows = [{"step": 1, "train_accuracy": 1.0, "test_accuracy": 1.0}]
    lines = table_markdown(summarize({0.1: [rows]}), value_name="a|b").splitlines()
    assert lines[0].replace("\\|", "").count("|") == lines[1].count("|") == 6


def test_the_shipped_forecaster_cannot_be_changed_by_one_user_of_it():
    # Zeroing the shared default's weights changed every later forecast in the
    # process (1426.6 -> 7270.5 steps for the same rows).
    from keras_grok import forecast

    shipped = forecast.default_forecaster()
    with pytest.raises(ValueError, match="read-only"):
        shipped.weights[...] = 0
    assert np.any(forecast.default_forecaster().weights != 0)


def test_compression_information_and_pair_losses_take_lists_and_other_byte_orders():
    rng = np.random.default_rng(1)
    z, code, labels = (
        rng.normal(size=(60, 4)),
        rng.normal(size=(60, 4)),
        np.arange(60) % 2,
    )
    from keras_grok.measures import lossy_compression as lossy

    by_array = lossy.compression_mutual_information(z, code, labels)
    by_list = lossy.compression_mutual_information(
        z.tolist(), code.astype(">f8"), labels
    )
    assert np.allclose(list(by_list.values()), list(by_array.values()), rtol=1e-5)
    logits = rng.normal(size=(6, 3))
    pairs = np.arange(6) % 3
    native = float(to_numpy(fourier_losses.cross_entropy_of_pairs(logits, pairs)))
    swapped = fourier_losses.cross_entropy_of_pairs(logits.astype(">f8"), pairs)
    assert np.isclose(float(to_numpy(swapped)), native, rtol=1e-5)


def test_the_complexity_estimate_and_the_one_hot_loss_take_lists_and_byte_orders():
    from keras_grok.losses import squared_error_one_hot

    rng = np.random.default_rng(0)
    predictions = rng.normal(size=(5, 3))
    labels = np.arange(5) % 3
    native = to_numpy(squared_error_one_hot(labels, predictions.astype("float32")))
    swapped = to_numpy(squared_error_one_hot(labels, predictions.astype(">f4")))
    np.testing.assert_allclose(swapped, native, rtol=1e-6)
    x, y = rng.normal(size=(30, 4)).astype("float32"), np.arange(30) % 3
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    by_array = complexity.estimate_complexity(model, (x, y), 0.1, thresholds=(1.0,))
    by_list = complexity.estimate_complexity(
        model, (x.tolist(), y.tolist()), 0.1, thresholds=(1.0,)
    )
    assert by_list.size_bytes == by_array.size_bytes


def test_collapse_statistics_takes_one_pair_as_a_list_or_a_tuple():
    as_tuple = collapse.collapse_statistics((X30, Y30), 3)
    as_list = collapse.collapse_statistics([X30, Y30], 3)
    assert collapse.nc1(as_list) == pytest.approx(collapse.nc1(as_tuple), rel=1e-6)
