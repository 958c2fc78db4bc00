"""Text loaders through mock TFDS data: shapes, labels, and a tokenizer fit on train."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_grok.data import DatasetNotPreparedError
from keras_grok.data.text import TEXT_DATASETS, load_text


@pytest.mark.parametrize("name", sorted(TEXT_DATASETS))
def test_each_set_gives_int_token_rows_of_max_length(name):
    with tfds.testing.mock_data(num_examples=30):
        split = load_text(name, 20, test_size=10)
    assert split.x_train.shape == (20, 128) and split.x_test.shape == (10, 128)
    assert split.x_train.dtype == np.int32 and split.y_train.dtype == np.int32
    assert split.y_train.shape == (20,) and split.y_test.shape == (10,)
    assert split.num_classes == {"sst2": 2, "trec": 6, "ag_news": 4}[name]
    assert split.y_train.min() >= 0 and split.y_train.max() < split.num_classes
    assert split.vocabulary[:2] == ("", "[UNK]")
    assert split.x_train.max() < split.vocab_size


def fake_trec(self, split, **kwargs):
    """Known TREC examples: train "A b, b!" / "b c", test "a D" / "c c c"."""
    train = str(split).startswith("train")
    texts = [b"A b, b!", b"b c"] if train else [b"a D", b"c c c"]
    labels = tf.constant([0, 5] if train else [3, 1], tf.int64)
    return tf.data.Dataset.from_tensor_slices(
        {"text": texts, "label-coarse": labels, "label-fine": labels}
    )


def test_the_vocabulary_is_fit_on_the_training_subset_only():
    with tfds.testing.mock_data(as_dataset_fn=fake_trec):
        split = load_text("trec", 2, max_length=4)
    # Lower case, punctuation stripped, ids by frequency in the training texts.
    assert split.vocabulary == ("", "[UNK]", "b", "c", "a")
    np.testing.assert_array_equal(split.x_train, [[4, 2, 2, 0], [2, 3, 0, 0]])
    # "d" appears only in the test set: out of vocabulary.
    np.testing.assert_array_equal(split.x_test, [[4, 1, 0, 0], [3, 3, 3, 0]])
    np.testing.assert_array_equal(split.y_train, [0, 5])
    np.testing.assert_array_equal(split.y_test, [3, 1])


def test_ag_news_joins_title_and_description():
    def fake(self, split, **kwargs):
        return tf.data.Dataset.from_tensor_slices(
            {
                "title": [b"stocks"],
                "description": [b"rise"],
                "label": tf.constant([2], tf.int64),
            }
        )

    with tfds.testing.mock_data(as_dataset_fn=fake):
        split = load_text("ag_news", 1, max_length=3)
    assert set(split.vocabulary[2:]) == {"stocks", "rise"}
    ids = {token: i for i, token in enumerate(split.vocabulary)}
    np.testing.assert_array_equal(split.x_train, [[ids["stocks"], ids["rise"], 0]])


def test_a_stratified_subset_is_balanced_and_lengths_are_cut():
    with tfds.testing.mock_data(num_examples=120):
        split = load_text("trec", 12, stratified=True, max_length=5)
    np.testing.assert_array_equal(np.bincount(split.y_train, minlength=6), [2] * 6)
    assert split.x_train.shape == (12, 5)


def test_unprepared_and_unknown_sets_fail_clearly(tmp_path):
    with pytest.raises(DatasetNotPreparedError, match="glue/sst2"):
        load_text("sst2", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="Unknown text data set 'imdb'"):
        load_text("imdb")
    with pytest.raises(ValueError, match="max_length must be >= 1"):
        load_text("trec", max_length=0)
