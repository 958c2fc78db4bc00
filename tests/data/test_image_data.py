"""Image loaders: TFDS sets through mock data, digits, and the not-prepared error."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from click.testing import CliRunner

from keras_grok import cli
from keras_grok.data import DatasetNotPreparedError, load_images
from keras_grok.data.images import IMAGE_DATASETS, stratified_indices

ROOT = Path(__file__).parents[2]
TFDS_SETS = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
needs_sklearn = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None,
    reason="digits needs scikit-learn (the 'digits' extra)",
)


@pytest.mark.parametrize("name", sorted(TFDS_SETS))
def test_tfds_sets_give_the_first_images_with_shapes_dtypes_and_sizes(name, tmp_path):
    with tfds.testing.mock_data(num_examples=40):
        split = load_images(
            name, 25, test_size=30, data_dir=str(tmp_path), data_format="channels_last"
        )
    assert split.x_train.shape == (25, *TFDS_SETS[name])
    assert split.x_test.shape == (30, *TFDS_SETS[name])
    assert split.input_shape == TFDS_SETS[name]
    assert split.x_train.dtype == np.float32 and split.x_test.dtype == np.float32
    assert split.y_train.dtype == np.int32 and split.y_train.shape == (25,)
    assert split.num_classes == 10
    assert split.y_train.min() >= 0 and split.y_train.max() < 10


@pytest.mark.parametrize("name", sorted(TFDS_SETS))
def test_normalization_is_the_sets_per_channel_mean_and_std(name, tmp_path):
    with tfds.testing.mock_data(num_examples=12):
        raw = load_images(name, 12, normalize=False, data_format="channels_last")
        normed = load_images(name, 12, data_format="channels_last")
    pixels = raw.x_train.astype(np.float64)
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0 and pixels.max() > 0.5
    source = IMAGE_DATASETS[name]
    expected = (pixels - np.asarray(source.mean)) / np.asarray(source.std)
    np.testing.assert_allclose(normed.x_train, expected, rtol=1e-5, atol=1e-5)


def test_mnist_uses_the_papers_constants():
    assert IMAGE_DATASETS["mnist"].mean == (0.1307,)
    assert IMAGE_DATASETS["mnist"].std == (0.3081,)


def test_stratified_subset_takes_the_first_images_of_each_class():
    labels = np.array([0, 0, 1, 2, 0, 1, 2, 2, 1, 0, 2])
    index = stratified_indices(labels, 7, 3)
    np.testing.assert_array_equal(index, [0, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(np.bincount(labels[index]), [3, 2, 2])
    with pytest.raises(ValueError, match="class 1 has 3 examples"):
        stratified_indices(labels, 12, 3)


def test_stratified_tfds_subset_is_balanced():
    with tfds.testing.mock_data(num_examples=200):
        split = load_images("mnist", 20, stratified=True)
    np.testing.assert_array_equal(np.bincount(split.y_train, minlength=10), [2] * 10)


def test_channels_first_moves_the_channel_axis():
    with tfds.testing.mock_data(num_examples=8):
        last = load_images("cifar10", 8, data_format="channels_last")
        first = load_images("cifar10", 8, data_format="channels_first")
    assert first.input_shape == (3, 32, 32)
    np.testing.assert_array_equal(first.x_train, last.x_train.transpose(0, 3, 1, 2))
    with tfds.testing.mock_data(num_examples=8):
        default = load_images("mnist", 8)
    channels_first = keras.config.image_data_format() == "channels_first"
    assert default.input_shape == ((1, 28, 28) if channels_first else (28, 28, 1))


def test_an_unprepared_set_fails_at_once_saying_how_to_prepare_it(tmp_path):
    started = time.perf_counter()
    with pytest.raises(DatasetNotPreparedError) as error:
        load_images("mnist", data_dir=str(tmp_path))
    assert time.perf_counter() - started < 10
    message = str(error.value)
    assert "download_and_prepare" in message and str(tmp_path) in message
    assert "data_dir" in message and "TFDS_DATA_DIR" in message


def test_the_tfds_environment_variable_selects_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(DatasetNotPreparedError, match="elsewhere"):
        load_images("fashion_mnist")


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="Unknown image data set 'svhn'"):
        load_images("svhn")
    with pytest.raises(ValueError, match="train_size must be an integer >= 1"):
        load_images("mnist", 0)
    with pytest.raises(ValueError, match="data_format"):
        load_images("mnist", 10, data_format="nhwc")
    with tfds.testing.mock_data(num_examples=5), pytest.raises(ValueError, match="5 "):
        load_images("mnist", 6)


def test_the_mnist_recipe_without_prepared_mnist_says_so_and_suggests_digits(tmp_path):
    started = time.perf_counter()
    result = CliRunner().invoke(
        cli.main,
        [
            "run",
            str(ROOT / "recipes" / "mnist.py"),
            "--backend",
            keras.backend.backend(),
            "--out",
            str(tmp_path / "run"),
            "--set",
            f"data_dir={tmp_path / 'tfds'}",
        ],
    )
    assert time.perf_counter() - started < 20
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1
    assert "not prepared" in result.stderr and "--set dataset=digits" in result.stderr
    assert not (tmp_path / "run" / "config.json").exists()


@needs_sklearn
def test_digits_is_a_fixed_offline_split_with_standardized_pixels():
    split = load_images("digits", data_format="channels_last")
    assert split.x_train.shape == (300, 8, 8, 1) and split.x_test.shape == (
        497,
        8,
        8,
        1,
    )
    assert split.y_train.dtype == np.int32 and split.num_classes == 10
    assert set(np.unique(split.y_train)) == set(range(10))
    everything = load_images("digits", 1300, data_format="channels_last")
    pixels = np.concatenate([everything.x_train, everything.x_test]).astype(np.float64)
    assert abs(pixels.mean()) < 1e-3 and abs(pixels.std() - 1) < 1e-3
    np.testing.assert_array_equal(everything.x_train[:300], split.x_train)
    raw = load_images("digits", 5, normalize=False, data_format="channels_last")
    assert raw.x_train.min() >= 0 and raw.x_train.max() <= 1
    with pytest.raises(ValueError, match="1300 training images"):
        load_images("digits", 1301)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"test_size": 2.5}, "Received: test_size=2.5"),
        ({"test_size": "3"}, "Received: test_size='3'"),
        ({"test_size": 0}, "Received: test_size=0"),
        ({"train_size": True}, "Received: train_size=True"),
        ({"train_size": -4}, "Received: train_size=-4"),
    ],
)
def test_image_sizes_must_be_whole_numbers_of_at_least_one(kwargs, fragment):
    kwargs = {"train_size": 10, **kwargs}
    with pytest.raises(ValueError, match=fragment):
        load_images("digits", **kwargs)


def test_an_image_set_name_that_is_not_a_string_is_refused_by_name():
    with pytest.raises(ValueError, match=r"Received: name=\['digits'\]"):
        load_images(["digits"])


def test_stratified_indices_refuse_a_negative_size():
    with pytest.raises(ValueError, match="Received: size=-3"):
        stratified_indices(np.arange(10) % 2, -3, 2)
