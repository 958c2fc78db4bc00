"""Data loaders refuse sizes and flags they cannot honour, by name."""

import numpy as np
import pytest

from keras_grok.data import load_images
from keras_grok.data.modular import canonical_operation
from keras_grok.data.text import load_text

pytest.importorskip("sklearn")


def test_a_stratified_subset_smaller_than_the_classes_is_refused():
    with pytest.raises(ValueError, match="train_size must be >= 10.*train_size=5"):
        load_images("digits", 5, stratified=True)


def test_a_test_size_above_the_test_images_is_refused_naming_the_count():
    with pytest.raises(ValueError, match="digits has 497 test images.*test_size="):
        load_images("digits", 20, test_size=10**6)
    assert len(load_images("digits", 20, test_size=497).y_test) == 497


def test_normalize_false_gives_pixels_in_zero_one_as_documented():
    raw = load_images("digits", 20, normalize=False)
    assert raw.x_train.min() >= 0.0 and raw.x_train.max() <= 1.0
    normalized = load_images("digits", 20)
    assert normalized.x_train.min() < 0.0
    np.testing.assert_allclose(
        normalized.x_train, (raw.x_train - 0.3053) / 0.3760, rtol=1e-5, atol=1e-5
    )


def test_a_flag_that_is_not_a_bool_is_refused():
    with pytest.raises(TypeError, match="Received: stratified='yes'"):
        load_images("digits", 20, stratified="yes")
    with pytest.raises(TypeError, match="Received: normalize='no'"):
        load_images("digits", 20, normalize="no")


def test_a_text_loader_refuses_bad_sizes_before_reading():
    with pytest.raises(ValueError, match="train_size must be >= 1.*train_size=2.5"):
        load_text("trec", 2.5)
    with pytest.raises(ValueError, match="train_size must be >= 6.*train_size=3"):
        load_text("trec", 3, stratified=True)
    with pytest.raises(ValueError, match="Received: max_tokens=0"):
        load_text("trec", 10, max_tokens=0)


def test_an_operation_that_is_not_a_string_is_refused_as_unknown():
    with pytest.raises(ValueError, match="Unknown operation.*Received: op=\\['a'\\]"):
        canonical_operation(["a"])
