"""Checks of recipe configs: every value refused up front, in the user's words.

Each check raises ``ValueError`` naming the key and the value
("learning_rate must be a finite number > 0. Received: learning_rate=-1.0"), so
the command line can refuse a config before it touches the run folder. Besides
each value's range, the checks refuse keys the chosen task would not read
(``check_unused_keys``) and, through ``keras_grok.experiments.cost_checks``, a
config that would cost more memory or time than a run may take.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from keras_grok.data.modular import modular_dataset
from keras_grok.experiments.cost_checks import check_modular_cost, check_schedules
from keras_grok.models.modular import MODULAR_MODELS
from keras_grok.utils.argument_validation import (
    ACCURACY_LEVEL,
    PROBABILITY,
    Range,
    validate_choice_arg,
    validate_float_arg,
    validate_int_arg,
)

MAX_MODULUS = 1000
"""Largest modulus ``p``: the task holds ``p**2`` pairs (a million at 1,000), all
read by every measurement pass; the pass's cost bounds ``p`` further
(``MAX_PASS_MACS``). At p=3000 (9 million pairs) even 8-wide layers wrote no
metrics row within 250 s and held 2.3 GB (JAX, a 2-core CPU shared with other
jobs)."""

MAX_WIDTH = 65536
"""Largest layer width; the memory estimate (``check_memory``) bounds it further."""

MAX_DEPTH = 64
"""Largest number of hidden layers or transformer blocks."""

MAX_SEED = 2**32 - 1
"""Largest seed: NumPy's global seed (``keras.utils.set_random_seed``) is 32-bit."""


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


def validate_seed(seed, name: str) -> int:
    """Returns ``seed`` if it is an integer in ``[0, MAX_SEED]``."""
    value = validate_int_arg(seed, name, minimum=0)
    if value > MAX_SEED:
        raise ValueError(
            f"{name} must be an integer <= {MAX_SEED}. Received: {name}={seed!r}"
        )
    return value


def check_choice(config: dict, key: str, allowed: Iterable[str]) -> None:
    """``config[key]`` is one of ``allowed``."""
    validate_choice_arg(config[key], key, allowed)


def check_image_subset(config: dict, num_classes: int) -> None:
    """Collapse and the information plane need every class in the measured sets.

    A training subset (``train_size``) or test set (``test_size``) of fewer
    images than classes, stratified or not, cannot hold every class.
    """
    if not (config.get("collapse") or config.get("information")):
        return
    for key in ("train_size", "test_size"):
        if 0 < config[key] < num_classes:
            raise ValueError(
                f"{key} must be 0 (the default size) or >= the {num_classes} "
                "classes: collapse and the information plane need every class "
                f"among the measured images (or set collapse=false, information=''). "
                f"Received: {key}={config[key]}"
            )


def check_every_class(labels: Mapping[str, np.ndarray], num_classes: int) -> None:
    """Each named label set holds every one of ``num_classes`` classes.

    For a loaded subset (e.g. the first ``train_size`` images), before training.
    """
    for key, values in labels.items():
        missing = num_classes - len(np.unique(values))
        if missing:
            raise ValueError(
                f"the {len(values)} images of {key} hold {num_classes - missing} of "
                f"the {num_classes} classes; collapse and the information plane "
                f"need every class: raise {key}, set stratified=true, or set "
                f"collapse=false. Received: {key}={len(values)}"
            )


def check_device_count(devices) -> None:
    """A ``devices`` setting parses and a count (``devices=N``) is at most the
    devices here.

    Accepts what ``keras_grok.runs.distribution.parse_devices`` does: ``""``
    (one device), ``"all"``, or a number of devices >= 1 (an int or its string).

    Raises:
        ValueError: any other value, or more devices than there are here.
    """
    from keras_grok.runs.distribution import parse_devices  # imports Keras

    count = parse_devices(devices)
    if not isinstance(count, int):
        return
    import keras  # the backend is chosen by now

    if keras.backend.backend() != "jax":  # check_devices refuses a count there
        return

    available = keras.distribution.list_devices()
    if count > len(available):
        raise ValueError(
            f"only {len(available)} device(s) here ({', '.join(available)}). "
            f"Received: devices={devices!r}"
        )


def check_unused_keys(
    config: dict, defaults: Mapping, unused: Iterable[str], reason: str
) -> None:
    """Refuses a key set away from its default that the run would not read.

    Args:
        config: the config.
        defaults: the recipe's defaults.
        unused: the keys the chosen variant does not read.
        reason: why, for the message (e.g. ``"task=digits trains paper A's
            MLP"``).
    """
    changed = [k for k in unused if k in config and config[k] != defaults[k]]
    if changed:
        values = ", ".join(f"{k}={config[k]!r}" for k in changed)
        raise ValueError(
            f"{reason}, which does not read {', '.join(changed)}; leave "
            f"{'it' if len(changed) == 1 else 'them'} at the default. "
            f"Received: {values}"
        )


def check_at_most(
    config: dict, defaults: Mapping, key: str, available: int, what: str
) -> None:
    """Refuses a size set above the examples there are.

    The default is a cap (``x[:n]`` of a smaller set takes it whole); a value
    the user set is one they mean, so a larger one than ``available`` is
    refused rather than silently cut.

    Args:
        config: the config.
        defaults: the recipe's defaults.
        key: the size's key (e.g. ``"information_size"``).
        available: the examples there are.
        what: what they are, for the message (e.g. ``"test pairs"``).
    """
    if key in config and config[key] != defaults[key] and config[key] > available:
        raise ValueError(
            f"{key} must be at most the {available:,} {what}. "
            f"Received: {key}={config[key]}"
        )


def check_distinct(config: dict, key: str) -> None:
    """Refuses a list that names a value twice (one measurement twice over)."""
    items = list(config[key])
    if len(set(items)) != len(items):
        raise ValueError(f"{key} must list distinct values. Received: {key}={items!r}")


def modular_sizes(config: dict) -> tuple[int, int]:
    """The training and test pairs of a modular config (builds its split: ms)."""
    split = modular_dataset(
        config["p"], config["op"], config["train_fraction"], config["seed"]
    )
    return len(split.y_train), len(split.y_test)


MODEL_ONLY_KEYS = {
    "mlp": ("hidden", "depth"),
    "transformer": ("transformer_layers", "causal"),
}
"""The keys of a modular config that only one model reads."""


def check_model_keys(config: dict, defaults: Mapping) -> None:
    """Refuses a key set for the modular model the config does not build.

    E.g. ``hidden`` with ``model=transformer``, whose width is ``embed_dim``.
    """
    model = config["model"]
    unused = [
        k for other, keys in MODEL_ONLY_KEYS.items() if other != model for k in keys
    ]
    check_unused_keys(config, defaults, unused, f"model={model!r} builds the {model}")


def check_ranges(config: dict, ranges: Mapping[str, Range]) -> None:
    """Each key of ``ranges`` that ``config`` has lies in its range."""
    for key, allowed in ranges.items():
        if key in config:
            allowed.validate(config[key], key)


TRAINING_RANGES = {
    "learning_rate": Range(float, open_minimum=True),
    "weight_decay": Range(float),
    "beta_2": Range(float, maximum=1.0, open_maximum=True),
    "checkpoint_seconds": Range(float),
    "threshold": ACCURACY_LEVEL,  # GrokkingMonitor checks its own with the same
    "test_threshold": ACCURACY_LEVEL,
    "batch_size": Range(int, 1),
    "max_steps": Range(int, 1, 10**9),
    "seed": Range(int, 0, MAX_SEED),
    "patience": Range(int, -1),
    "forecast_stop": PROBABILITY,  # ForecastMonitor checks its own with the same
}
"""The ranges of the keys every training recipe shares."""

MODULAR_RANGES = {
    **TRAINING_RANGES,
    "p": Range(int, 2, MAX_MODULUS),
    "embed_dim": Range(int, 1, MAX_WIDTH),
    "hidden": Range(int, 1, MAX_WIDTH),
    "depth": Range(int, 1, MAX_DEPTH),
    "transformer_layers": Range(int, 1, MAX_DEPTH),
}
"""The ranges of a modular-arithmetic config's keys."""


def check_training(config: dict) -> None:
    """The keys every training recipe shares: optimizer, length, measuring."""
    check_ranges(config, TRAINING_RANGES)
    check_schedules(config, ("schedule",))


def check_modular(config: dict) -> None:
    """A modular-arithmetic config: task, model and training keys.

    The task (``p``, ``op``, ``train_fraction``) is checked by building its data
    set, which takes milliseconds.
    """
    check_ranges(config, MODULAR_RANGES)
    check_schedules(config, ("schedule",))
    check_choice(config, "model", MODULAR_MODELS)
    if config["model"] == "transformer" and config["embed_dim"] % 4:
        raise ValueError(
            "embed_dim (the transformer's d_model) must be a multiple of its 4 "
            f"heads. Received: embed_dim={config['embed_dim']}"
        )
    check_modular_cost(config)
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


def check_executor(config: dict, defaults: Mapping) -> None:
    """A sweep recipe's executor keys: the executor builds, and the Ray keys are
    left at their defaults when the runs are local processes."""
    from keras_grok.sweeps.executors import executor_from_config

    executor_from_config(config)
    if config["executor"] == "process":
        check_unused_keys(
            config,
            defaults,
            ("ray_address", "cpus_per_run", "gpus_per_run"),
            "executor='process' runs local processes (the other keys are Ray's)",
        )
