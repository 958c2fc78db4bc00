"""The modular arithmetic data: labels, splits and input layouts."""

import numpy as np
import pytest

from keras_grok.data.modular import OPERATIONS, modular_dataset


def reference_label(a: int, b: int, op: str, p: int) -> int:
    if op == "a+b":
        return (a + b) % p
    if op == "a-b":
        return (a - b) % p
    if op == "a*b":
        return (a * b) % p
    if op == "a/b":
        return next(c for c in range(p) if (c * b) % p == a % p)
    if op == "a^2+b^2":
        return (a**2 + b**2) % p
    return (a**2 + a * b + b**2) % p


def all_rows(split):
    return np.concatenate([split.x_train, split.x_test]), np.concatenate(
        [split.y_train, split.y_test]
    )


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_labels_equal_a_op_b_mod_p_for_every_pair(op):
    p = 11
    x, y = all_rows(modular_dataset(p, op, 0.3, seed=1))
    for (a, b), c in zip(x, y):
        assert c == reference_label(int(a), int(b), op, p)


@pytest.mark.parametrize("op", ["a+b", "a/b"])
def test_train_and_test_are_disjoint_and_cover_all_pairs(op):
    p = 13
    split = modular_dataset(p, op, 0.37, seed=3)
    train = {tuple(r) for r in split.x_train}
    test = {tuple(r) for r in split.x_test}
    expected = {(a, b) for a in range(p) for b in range(p) if op != "a/b" or b}
    assert not train & test
    assert train | test == expected
    assert len(split.x_train) == round(0.37 * len(expected))


def test_division_leaves_out_b_zero():
    split = modular_dataset(7, "/", 0.5)
    x, _ = all_rows(split)
    assert (x[:, 1] != 0).all() and len(x) == 7 * 6


def test_token_layout_is_a_op_b_equals():
    p = 23
    split = modular_dataset(p, "a*b", 0.4, layout="tokens")
    assert split.x_train.shape[1] == 4 and split.vocab_size == p + 2
    np.testing.assert_array_equal(split.x_train[:, 1], p)
    np.testing.assert_array_equal(split.x_train[:, 3], p + 1)
    pairs = modular_dataset(p, "a*b", 0.4, layout="pairs")
    np.testing.assert_array_equal(split.x_train[:, [0, 2]], pairs.x_train)
    np.testing.assert_array_equal(split.y_train, pairs.y_train)


def test_the_seed_picks_the_split():
    first, again = modular_dataset(17, seed=5), modular_dataset(17, seed=5)
    other = modular_dataset(17, seed=6)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert not np.array_equal(first.x_train, other.x_train)
    assert first.x_train.dtype == np.int32 and first.y_train.dtype == np.int32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"p": 1}, "p must be an integer >= 2"),
        ({"p": 9.5}, "p must be an integer >= 2"),
        ({"p": 12, "op": "a/b"}, "needs a prime modulus"),
        ({"train_fraction": 1.0}, r"train_fraction must be in \(0, 1\)"),
        ({"train_fraction": 0}, r"train_fraction must be in \(0, 1\)"),
        ({"op": "a%b"}, "Allowed: a\\+b, a-b"),
        ({"layout": "grid"}, "layout must be one of"),
    ],
)
def test_bad_arguments_say_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        modular_dataset(**kwargs)
