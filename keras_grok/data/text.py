"""Text classification sets for grokking: SST-2, TREC and AG News (tensorflow-datasets).

Paper A (Sakamoto & Sato, arXiv 2509.20829) also shows grokking and collapse on text
classification. Each set is read from prepared TFDS data (keras-grok never
downloads; see ``DatasetNotPreparedError``), a training subset is taken (the first
N, or stratified), and both splits are turned into integer token sequences by a
``keras.layers.TextVectorization`` fitted on the training subset only (lower case,
punctuation stripped, padded or cut to ``max_length`` = 128 tokens; 0 pads, 1 is the
out-of-vocabulary token).

- ``"sst2"``: ``glue/sst2``, 2 classes; its test labels are hidden, so the
  validation split (872 sentences) is the test set.
- ``"trec"``: TREC question classification, the 6 coarse classes (``label-coarse``).
- ``"ag_news"``: ``ag_news_subset``, 4 classes; title and description joined.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from keras_grok.data.images import (
    check_stratified_size,
    check_test_size,
    training_subset,
)
from keras_grok.data.tfds_source import read_split
from keras_grok.utils.argument_validation import validate_int_arg, validate_string_arg


@dataclass(frozen=True)
class TextSource:
    """A TFDS text set: its name, text and label keys, classes and test split."""

    tfds_name: str
    text_keys: tuple[str, ...]
    label_key: str
    num_classes: int
    test_split: str


TEXT_DATASETS: dict[str, TextSource] = {
    "sst2": TextSource("glue/sst2", ("sentence",), "label", 2, "validation"),
    "trec": TextSource("trec", ("text",), "label-coarse", 6, "test"),
    "ag_news": TextSource(
        "ag_news_subset", ("title", "description"), "label", 4, "test"
    ),
}
"""The text sets by name."""


@dataclass(frozen=True)
class TextSplit:
    """A training subset and a test set of a text classification task.

    ``x_*`` are int32 token ids ``(n, max_length)``; ``y_*`` int32 labels in
    ``[0, num_classes)``; ``vocabulary`` lists the tokens by id (``""`` is padding,
    ``"[UNK]"`` out of vocabulary).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    vocabulary: tuple[str, ...]

    def __post_init__(self):
        validate_string_arg(self.name, "name")
        validate_int_arg(self.num_classes, "num_classes")

    @property
    def vocab_size(self) -> int:
        """Number of token ids, padding and out-of-vocabulary included."""
        return len(self.vocabulary)


def load_text(
    name: str,
    train_size: int = 1000,
    *,
    test_size: int | None = None,
    stratified: bool = False,
    max_length: int = 128,
    max_tokens: int | None = 20000,
    data_dir: str | None = None,
) -> TextSplit:
    """Loads a tokenized training subset and test set of text set ``name``.

    Args:
        name: ``"sst2"``, ``"trec"`` or ``"ag_news"``.
        train_size: number of training texts (the first ones, or the first
            ``train_size // K`` of each class if ``stratified``). Defaults to `1000`.
        test_size: number of test texts (the first ones), at most the test
            split's; None means all.
            Defaults to `None`.
        stratified: draw the training subset class by class. Defaults to `False`.
        max_length: tokens per text, padded or cut. Defaults to `128`.
        max_tokens: vocabulary size limit (the most frequent tokens of the
            training subset), or None for no limit. Defaults to `20000`.
        data_dir: where prepared TFDS data lives; None means ``$TFDS_DATA_DIR``,
            else ``~/tensorflow_datasets``. Defaults to `None`.

    Returns:
        A ``TextSplit``.

    Raises:
        DatasetNotPreparedError: the TFDS data set is not prepared in ``data_dir``.
        ValueError: an unknown name, or sizes the set cannot supply.

    Example:
    ```python
    split = load_text("trec", train_size=1000, data_dir="/data/tfds")
    split.x_train.shape  # (1000, 128)
    ```
    """
    if not isinstance(name, str) or name not in TEXT_DATASETS:
        raise ValueError(
            f"Unknown text data set {name!r}. Allowed: {', '.join(TEXT_DATASETS)}. "
            f"Received: name={name!r}"
        )
    source = TEXT_DATASETS[name]
    for key, value in (("train_size", train_size), ("max_length", max_length)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or value < 1
        ):
            raise ValueError(
                f"{key} must be >= 1, an integer. Received: {key}={value!r}"
            )
    train_size, max_length = int(train_size), int(max_length)
    if test_size is not None:
        test_size = validate_int_arg(test_size, "test_size")
    if max_tokens is not None:
        validate_int_arg(max_tokens, "max_tokens")
    check_stratified_size(stratified, train_size, source.num_classes)
    keys = (*source.text_keys, source.label_key)
    train = "train" if stratified else f"train[:{train_size}]"
    test = source.test_split
    if test_size is not None:
        test = f"{test}[:{test_size}]"
    *train_texts, y_pool = read_split(source.tfds_name, train, keys, data_dir)
    *test_texts, y_test = read_split(source.tfds_name, test, keys, data_dir)
    if test_size is not None:
        check_test_size(test_size, len(y_test), f"{name} has {len(y_test)} test texts")
    description = f"{name} has {len(y_pool)} training texts"
    index = training_subset(
        y_pool, train_size, source.num_classes, stratified, description
    )
    texts = _join(train_texts)[index]
    test_texts = _join(test_texts)[: test_size or None]

    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens,
        output_mode="int",
        output_sequence_length=int(max_length),
    )
    vectorizer.adapt(texts)
    return TextSplit(
        name=name,
        x_train=_tokens(vectorizer, texts),
        y_train=y_pool[index].astype(np.int32),
        x_test=_tokens(vectorizer, test_texts),
        y_test=y_test[: test_size or None].astype(np.int32),
        num_classes=source.num_classes,
        vocabulary=tuple(str(token) for token in vectorizer.get_vocabulary()),
    )


def _join(parts: list[np.ndarray]) -> np.ndarray:
    """Texts as str, the parts of each example joined by a space."""
    decoded = [
        [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in part]
        for part in parts
    ]
    return np.asarray([" ".join(words) for words in zip(*decoded)], dtype=object)


def _tokens(vectorizer: keras.layers.TextVectorization, texts: np.ndarray):
    return np.asarray(keras.ops.convert_to_numpy(vectorizer(texts)), dtype=np.int32)
