"""Image classification sets for grokking: MNIST, Fashion-MNIST, CIFAR-10 and digits.

Paper A (Sakamoto & Sato, arXiv 2509.20829), following Omnigrok (Liu et al., 2023),
trains on a small subset of the training split (the first 1,000 images) and tests on
the whole test split, with inputs normalized per channel:
``x = (pixel / 255 - mean_c) / std_c``.

MNIST, Fashion-MNIST and CIFAR-10 come from tensorflow-datasets and must be prepared
beforehand (keras-grok never downloads; see ``DatasetNotPreparedError``).
``"digits"`` is scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), which
needs no download: install the ``digits`` extra (``pip install keras-grok[digits]``).
All loaders return NumPy arrays, which every Keras backend consumes.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from keras_grok.data.tfds_source import read_split
from keras_grok.utils.argument_validation import validate_int_arg, validate_string_arg


@dataclass(frozen=True)
class ImageSource:
    """Where an image set comes from and how it is normalized.

    ``mean`` and ``std`` are per channel, on pixels scaled to [0, 1].
    """

    tfds_name: str | None
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    default_train_size: int = 1000


IMAGE_DATASETS: dict[str, ImageSource] = {
    # The usual constants of each set's training split.
    "mnist": ImageSource("mnist", 10, (0.1307,), (0.3081,)),
    "fashion_mnist": ImageSource("fashion_mnist", 10, (0.2860,), (0.3530,)),
    "cifar10": ImageSource(
        "cifar10", 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    ),
    # Measured on all 1,797 images of scikit-learn's digits (pixels / 16).
    "digits": ImageSource(None, 10, (0.3053,), (0.3760,), default_train_size=300),
}
"""The image sets by name, with their normalization constants."""

DIGITS_TEST_SIZE = 497
"""Digits has no official split: a fixed shuffle (seed 0) puts 1,300 images in the
training pool and the last 497 in the test set."""


@dataclass(frozen=True)
class ImageSplit:
    """A training subset and a test set of an image classification task.

    ``x_*`` are float32 images ``(n, height, width, channels)`` (channels first when
    the split was loaded with ``data_format="channels_first"``); ``y_*`` are int32
    labels in ``[0, num_classes)``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    def __post_init__(self):
        validate_string_arg(self.name, "name")
        validate_int_arg(self.num_classes, "num_classes")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one image, as models expect it."""
        return tuple(self.x_train.shape[1:])


def load_images(
    name: str,
    train_size: int | None = None,
    *,
    test_size: int | None = None,
    stratified: bool = False,
    normalize: bool = True,
    data_format: str | None = None,
    data_dir: str | None = None,
) -> ImageSplit:
    """Loads a training subset and the test set of image set ``name``.

    The training subset is the first ``train_size`` images of the training split,
    as in paper A and Omnigrok, or with ``stratified=True`` the first
    ``train_size // K`` images of each of the K classes (the remainder going to the
    lowest classes), in the split's order.

    Args:
        name: ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"`` or ``"digits"``.
        train_size: number of training images; None means the set's default
            (1,000; 300 for digits). Defaults to `None`.
        test_size: number of test images (the first ones), at most the test
            split's; None means all. Defaults to `None`.
        stratified: draw the training subset class by class (``train_size``
            must then be at least the number of classes). Defaults to `False`.
        normalize: standardize each channel, ``(x - mean_c) / std_c`` with the
            set's constants, on pixels scaled to [0, 1]; False: the pixels
            scaled to [0, 1] only (divided by 255; by 16 for digits), not
            standardized. Defaults to `True`.
        data_format: ``"channels_last"`` or ``"channels_first"``; None means
            ``keras.config.image_data_format()``. Defaults to `None`.
        data_dir: where prepared TFDS data lives; None means ``$TFDS_DATA_DIR``,
            else ``~/tensorflow_datasets``. Ignored for digits. Defaults to `None`.

    Returns:
        An ``ImageSplit``.

    Raises:
        DatasetNotPreparedError: the TFDS data set is not prepared in ``data_dir``.
        ValueError: an unknown name or format, or sizes the set cannot supply.
        ImportError: digits without scikit-learn installed.

    Example:
    ```python
    split = load_images("digits", train_size=300)
    split.x_train.shape  # (300, 8, 8, 1)
    ```
    """
    source = _source(name)
    data_format = _data_format(data_format)
    train_size = (
        source.default_train_size
        if train_size is None
        else validate_int_arg(train_size, "train_size", minimum=1)
    )
    if test_size is not None:
        test_size = validate_int_arg(test_size, "test_size", minimum=1)
    check_stratified_size(stratified, train_size, source.num_classes)
    _check_flag(normalize, "normalize")

    if source.tfds_name is None:
        x_pool, y_pool, x_test, y_test = _digits()
    else:
        # Without stratification only the first `train_size` images are read.
        train = "train" if stratified else f"train[:{train_size}]"
        test = "test" if test_size is None else f"test[:{test_size}]"
        keys = ("image", "label")
        x_pool, y_pool = read_split(source.tfds_name, train, keys, data_dir)
        x_test, y_test = read_split(source.tfds_name, test, keys, data_dir)
    description = f"{name} has {len(y_pool)} training images"
    index = training_subset(
        y_pool, train_size, source.num_classes, stratified, description
    )
    if test_size is not None:
        check_test_size(test_size, len(y_test), f"{name} has {len(y_test)} test images")
        x_test, y_test = x_test[:test_size], y_test[:test_size]

    def prepare(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32) / (16.0 if source.tfds_name is None else 255.0)
        if normalize:
            mean = np.asarray(source.mean, np.float32)
            std = np.asarray(source.std, np.float32)
            x = (x - mean) / std
        if data_format == "channels_first":
            x = np.transpose(x, (0, 3, 1, 2))
        return np.ascontiguousarray(x, dtype=np.float32)

    return ImageSplit(
        name=name,
        x_train=prepare(x_pool[index]),
        y_train=y_pool[index].astype(np.int32),
        x_test=prepare(x_test),
        y_test=y_test.astype(np.int32),
        num_classes=source.num_classes,
    )


def check_stratified_size(stratified, train_size: int, num_classes: int) -> None:
    """Refuses a stratified subset smaller than the number of classes.

    Raises:
        TypeError: ``stratified`` is not a bool.
        ValueError: ``stratified`` and ``train_size < num_classes`` (some class
            would get no example).
    """
    _check_flag(stratified, "stratified")
    if stratified and train_size < num_classes:
        raise ValueError(
            f"a stratified subset takes at least one example of each of the "
            f"{num_classes} classes: train_size must be >= {num_classes}. "
            f"Received: train_size={train_size}"
        )


def check_test_size(test_size: int, available: int, description: str) -> None:
    """Refuses a ``test_size`` above the ``available`` test examples.

    Raises:
        ValueError: naming ``description`` (e.g. "digits has 497 test images").
    """
    if test_size > available:
        raise ValueError(
            f"{description}; test_size must be at most {available}. "
            f"Received: test_size={test_size}"
        )


def training_subset(
    labels: np.ndarray,
    size: int,
    num_classes: int,
    stratified: bool,
    description: str,
) -> np.ndarray:
    """Indices of the training subset: the first ``size`` examples, or stratified.

    Raises:
        ValueError: too few examples; ``description`` names them in the message
            (e.g. "mnist has 500 training images").
    """
    size = validate_int_arg(size, "train_size", minimum=1)
    if stratified:
        return stratified_indices(labels, size, num_classes)
    if len(labels) < size:
        raise ValueError(f"{description}; cannot take train_size={size}")
    return np.arange(size)


def stratified_indices(labels: np.ndarray, size: int, num_classes: int) -> np.ndarray:
    """Indices of the first ``size // K`` examples of each class (remainder to the
    lowest classes), sorted, so the subset keeps the split's order.

    Raises:
        ValueError: a class has too few examples.
    """
    labels = np.asarray(labels).reshape(-1)
    size = validate_int_arg(size, "size", minimum=1)
    num_classes = validate_int_arg(num_classes, "num_classes", minimum=1)
    per_class = np.full(num_classes, size // num_classes)
    per_class[: size % num_classes] += 1
    chosen = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class[c]:
            raise ValueError(
                f"class {c} has {len(members)} examples; a stratified subset of "
                f"{size} needs {per_class[c]}"
            )
        chosen.append(members[: per_class[c]])
    return np.sort(np.concatenate(chosen))


def _check_flag(value, name: str) -> None:
    if not (isinstance(value, (bool, np.bool_)) or value in (0, 1)):
        raise TypeError(f"{name} must be True or False. Received: {name}={value!r}")


def _source(name: str) -> ImageSource:
    if not isinstance(name, str) or name not in IMAGE_DATASETS:
        raise ValueError(
            f"Unknown image data set {name!r}. Allowed: {', '.join(IMAGE_DATASETS)}. "
            f"Received: name={name!r}"
        )
    return IMAGE_DATASETS[name]


def _data_format(data_format: str | None) -> str:
    data_format = data_format or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "data_format must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    return data_format


def _digits() -> tuple[np.ndarray, ...]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "the digits data set needs scikit-learn: pip install 'keras-grok[digits]' "
            "(or pip install scikit-learn)"
        ) from None
    bunch = load_digits()
    images = bunch.images.reshape(-1, 8, 8, 1)
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], bunch.target[order]
    cut = len(images) - DIGITS_TEST_SIZE
    return images[:cut], labels[:cut], images[cut:], labels[cut:]
