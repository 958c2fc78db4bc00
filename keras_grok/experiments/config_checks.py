"""Checks of recipe configs: every value refused up front, in the user's words.

Each check raises ``ValueError`` naming the key and the value
("learning_rate must be a finite number > 0. Received: learning_rate=-1.0"), so
the command line can refuse a config before it touches the run folder.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from keras_grok.callbacks.schedule import resolve_schedule
from keras_grok.data.modular import modular_dataset
from keras_grok.models.modular import MODULAR_MODELS
from keras_grok.utils.argument_validation import (
    validate_choice_arg,
    validate_float_arg,
    validate_int_arg,
)

MAX_MODULUS = 3000
"""Largest modulus ``p``: the task holds ``p**2`` pairs (9 million at 3,000)."""

MAX_WIDTH = 65536
"""Largest layer width: wider layers would not fit in memory at any depth."""

MAX_DEPTH = 64
"""Largest number of hidden layers or transformer blocks."""


def check_ints(
    config: dict,
    keys: Iterable[str],
    minimum: int = 1,
    maximum: int | None = None,
) -> None:
    """Each of ``keys`` (those present) is an integer in ``[minimum, maximum]``."""
    for key in keys:
        if key in config:
            value = validate_int_arg(config[key], key, minimum=minimum)
            if maximum is not None and value > maximum:
                raise ValueError(
                    f"{key} must be an integer <= {maximum}. "
                    f"Received: {key}={config[key]!r}"
                )


def check_floats(
    config: dict,
    keys: Iterable[str],
    *,
    minimum: float = 0.0,
    allow_minimum: bool = True,
    maximum: float | None = None,
) -> None:
    """Each of ``keys`` (those present) is a finite number in range."""
    for key in keys:
        if key in config:
            validate_float_arg(
                config[key],
                key,
                minimum=minimum,
                allow_minimum=allow_minimum,
                maximum=maximum,
            )


def check_list(config: dict, key: str, check) -> None:
    """``config[key]`` is a non-empty list whose every item passes ``check``.

    ``check(item, name)`` raises ``ValueError`` (e.g. ``validate_float_arg``); the
    message names the key and the whole list.
    """
    items = config[key]
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError(
            f"{key} must list one or more values. Received: {key}={items!r}"
        )
    for item in items:
        try:
            check(item, key)
        except ValueError as error:
            raise ValueError(f"{error} (in {key}={list(items)!r})") from None


def check_choice(config: dict, key: str, allowed: Iterable[str]) -> None:
    """``config[key]`` is one of ``allowed``."""
    validate_choice_arg(config[key], key, allowed)


def check_schedules(config: dict, keys: Iterable[str]) -> None:
    """Each of ``keys`` (those present) is a schedule spec (see resolve_schedule)."""
    for key in keys:
        if key in config:
            try:
                resolve_schedule(config[key], max(int(config.get("max_steps", 1)), 1))
            except ValueError as error:
                raise ValueError(f"{key}={config[key]!r}: {error}") from None


def check_training(config: dict) -> None:
    """The keys every training recipe shares: optimizer, length, measuring."""
    check_floats(config, ("learning_rate",), allow_minimum=False)
    check_floats(config, ("weight_decay", "checkpoint_seconds"))
    check_floats(config, ("beta_2",), maximum=1.0, allow_minimum=True)
    if "beta_2" in config and config["beta_2"] >= 1:
        raise ValueError(f"beta_2 must be < 1. Received: beta_2={config['beta_2']}")
    check_floats(
        config, ("threshold", "test_threshold"), allow_minimum=False, maximum=1.0
    )
    check_ints(config, ("batch_size", "max_steps"))
    check_ints(config, ("max_steps",), maximum=10**9)
    check_ints(config, ("seed",), minimum=0)
    check_ints(config, ("patience",), minimum=-1)
    check_schedules(config, ("schedule",))


def check_modular(config: dict) -> None:
    """A modular-arithmetic config: task, model and training keys.

    The task (``p``, ``op``, ``train_fraction``) is checked by building its data
    set, which takes milliseconds.
    """
    check_training(config)
    check_choice(config, "model", MODULAR_MODELS)
    check_ints(config, ("p",), minimum=2, maximum=MAX_MODULUS)
    check_ints(config, ("embed_dim", "hidden"), maximum=MAX_WIDTH)
    check_ints(config, ("depth", "transformer_layers"), maximum=MAX_DEPTH)
    split = modular_dataset(
        config["p"], config["op"], config["train_fraction"], config["seed"]
    )
    if config.get("collapse"):
        # Neural collapse needs every class among the measured examples.
        sets = {"train": split.y_train}
        if config.get("collapse_test", True):
            sets["test"] = split.y_test
        for name, labels in sets.items():
            missing = split.num_classes - len(np.unique(labels))
            if missing:
                raise ValueError(
                    f"collapse needs every class in the {name} set, and {missing} of "
                    f"{split.num_classes} classes have no {name} pair; raise p or "
                    "train_fraction, or set collapse=false. Received: "
                    f"p={config['p']}, train_fraction={config['train_fraction']}"
                )
