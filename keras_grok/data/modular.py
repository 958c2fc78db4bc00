"""Modular arithmetic data: every pair (a, b) in [0, p)^2 labelled c = a op b mod p.

The task of Power et al. (2022) and paper B (DeMoss et al., *The Complexity Dynamics
of Grokking*, arXiv 2412.09810): a random fraction of all pairs is the training set,
the rest the test set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from keras_grok.utils.argument_validation import validate_choice_arg, validate_int_arg

Operation = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def _divide(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    # b^(p-2) is the inverse of b modulo a prime p (Fermat's little theorem).
    inverse = np.array([pow(int(v), p - 2, p) for v in range(p)], dtype=np.int64)
    return a * inverse[b] % p


OPERATIONS: dict[str, Operation] = {
    "a+b": lambda a, b, p: (a + b) % p,
    "a-b": lambda a, b, p: (a - b) % p,
    "a*b": lambda a, b, p: a * b % p,
    "a/b": _divide,
    "a^2+b^2": lambda a, b, p: (a * a + b * b) % p,
    "a^2+ab+b^2": lambda a, b, p: (a * a + a * b + b * b) % p,
}
"""The six operations of paper B, by name."""

_ALIASES = {"+": "a+b", "-": "a-b", "*": "a*b", "/": "a/b"}
LAYOUTS = ("pairs", "tokens")


@dataclass(frozen=True)
class ModularSplit:
    """A train/test split of a modular arithmetic task.

    ``x_*`` are int32 arrays: ``(n, 2)`` rows ``[a, b]`` in the ``"pairs"`` layout,
    ``(n, 4)`` rows ``[a, op, b, =]`` (``op`` = p, ``=`` = p + 1) in the ``"tokens"``
    layout. ``y_*`` are int32 labels in ``[0, p)``. ``vocab_size`` is the number of
    distinct input tokens (p for pairs, p + 2 for tokens); ``num_classes`` is p.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    vocab_size: int
    num_classes: int

    def __post_init__(self):
        validate_int_arg(self.num_classes, "num_classes")
        validate_int_arg(self.vocab_size, "vocab_size", minimum=self.num_classes)


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def canonical_operation(op: str) -> str:
    """Returns the canonical name of ``op`` (``"+"`` -> ``"a+b"``), or raises.

    Raises:
        ValueError: ``op`` is not one of ``OPERATIONS`` or their aliases.
    """
    name = _ALIASES.get(op, op) if isinstance(op, str) else None
    if name not in OPERATIONS:
        allowed = ", ".join(list(OPERATIONS) + list(_ALIASES))
        raise ValueError(
            f"Unknown operation op={op!r}. Allowed: {allowed}. Received: op={op!r}"
        )
    return name


def modular_dataset(
    p: int = 97,
    op: str = "a+b",
    train_fraction: float = 0.4,
    seed: int = 0,
    layout: str = "pairs",
) -> ModularSplit:
    """Builds the train/test split of ``a op b mod p`` over all pairs.

    Args:
        p: the modulus, an integer >= 2 (prime for ``"a/b"``). Defaults to `97`.
        op: one of ``OPERATIONS`` (or ``+ - * /``). ``"a/b"`` leaves out b = 0.
            Defaults to `"a+b"`.
        train_fraction: fraction of all pairs in the training set, in (0, 1);
            the count is rounded and both sets keep at least one pair.
            Defaults to `0.4`.
        seed: seed of the random permutation that picks the training pairs.
            Defaults to `0`.
        layout: ``"pairs"`` (``[a, b]``, for the MLP) or ``"tokens"``
            (``[a, op, b, =]``, for the transformer). Defaults to `"pairs"`.

    Returns:
        A ``ModularSplit``; train and test are disjoint and together hold every pair.

    Example:
    ```python
    split = modular_dataset(p=97, op="a+b", train_fraction=0.4)
    split.x_train.shape  # (3764, 2)
    ```
    """
    name = canonical_operation(op)
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 2:
        raise ValueError(f"p must be an integer >= 2. Received: p={p!r}")
    p = int(p)
    if name == "a/b" and not _is_prime(p):
        raise ValueError(f"op='a/b' needs a prime modulus p. Received: p={p}")
    seed = validate_int_arg(seed, "seed", minimum=0)
    if not isinstance(train_fraction, (float, int)) or not 0 < train_fraction < 1:
        raise ValueError(
            "train_fraction must be in (0, 1). "
            f"Received: train_fraction={train_fraction!r}"
        )
    validate_choice_arg(layout, "layout", LAYOUTS)

    a, b = (v.ravel() for v in np.meshgrid(np.arange(p), np.arange(p), indexing="ij"))
    if name == "a/b":
        a, b = a[b != 0], b[b != 0]
    labels = OPERATIONS[name](a.astype(np.int64), b.astype(np.int64), p)

    if layout == "pairs":
        x = np.stack([a, b], axis=1)
        vocab_size = p
    else:
        column = np.full_like(a, p)
        x = np.stack([a, column, b, column + 1], axis=1)
        vocab_size = p + 2

    n = len(a)
    n_train = min(max(round(train_fraction * n), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    train, test = order[:n_train], order[n_train:]
    x, y = x.astype(np.int32), labels.astype(np.int32)
    return ModularSplit(x[train], y[train], x[test], y[test], vocab_size, p)
