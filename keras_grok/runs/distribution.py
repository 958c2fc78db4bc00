"""Data-parallel training of one run over several devices, with keras.distribution.

``set_data_parallel(devices)`` sets Keras' global distribution to
``keras.distribution.DataParallel`` over the local devices (all of them, or the
first ``devices``): every model built afterwards has its variables replicated on
each device, and ``model.fit`` splits each training batch along its first axis
over the devices and averages the gradients. Keras supports this on the JAX
backend only; on the others it is a ``ValueError`` that says so.

The monitors need no change: the shared measurement pass
(``keras_grok.callbacks.measurement_pass``) is one jitted call whose reductions
(per-set loss and accuracy sums, per-class collapse statistics) are written over
the whole chunk of rows, so JAX computes the global sums whatever the placement.
Its chunks are not split over the devices (Keras' ``predict_on_batch`` does not
distribute its input); they run replicated.

Several hosts: start the same command on every host with Keras' environment
variables set (``KERAS_DISTRIBUTION_JOB_ADDRESSES``: the coordinator's
``host:port``; ``KERAS_DISTRIBUTION_NUM_PROCESSES``; ``KERAS_DISTRIBUTION_PROCESS_ID``),
and ``set_data_parallel`` calls ``keras.distribution.initialize()`` first. Each
host then feeds its own batches; as keras-grok's feeder gives every host the
same batch, the gradient is that of one host's batch (untested here, one machine).
"""

from __future__ import annotations

import os

import keras

MULTI_HOST_VARIABLES = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)


def parse_devices(devices: str | int) -> int | str | None:
    """The meaning of a ``devices`` setting: None (off), ``"all"`` or a count.

    Args:
        devices: ``""`` (off), ``"all"``, or a number of devices >= 1 (an int or
            its string).

    Raises:
        ValueError: any other value.
    """
    if isinstance(devices, str):
        text = devices.strip().lower()
        if text in ("", "none", "off"):
            return None
        if text == "all":
            return "all"
        if text.isdigit():
            devices = int(text)
    if isinstance(devices, int) and not isinstance(devices, bool) and devices >= 1:
        return devices
    raise ValueError(
        'devices must be "" (one device), "all" or a number of devices >= 1. '
        f"Received: devices={devices!r}"
    )


def check_devices(devices: str | int) -> int | str | None:
    """Checks a ``devices`` setting against the backend, without setting anything.

    For a recipe's ``validate``: the value must parse (``parse_devices``) and,
    unless it is off, the backend must be JAX.

    Returns:
        What ``parse_devices`` returns.

    Raises:
        ValueError: an invalid value, or data parallel asked for on a backend
            other than JAX.
    """
    wanted = parse_devices(devices)
    backend = keras.backend.backend()
    if wanted is not None and backend != "jax":
        raise ValueError(
            f"devices={devices!r}: data-parallel training uses keras.distribution, "
            f"which Keras supports on the JAX backend only (this run uses "
            f"{backend}); run with --backend jax, or leave devices unset"
        )
    return wanted


def set_data_parallel(
    devices: str | int,
    batch_size: int | None = None,
    num_examples: int | None = None,
) -> keras.distribution.DataParallel | None:
    """Trains every model built after this call data-parallel over local devices.

    Sets ``keras.distribution.set_distribution(DataParallel(devices=...))``.
    Call it before the model is built. Each training batch is split evenly over
    the devices, so every batch size of an epoch must be a multiple of their
    number; given ``batch_size`` and ``num_examples`` this is checked here, with
    a message that says what to change. If Keras' multi-host variables are set
    (``KERAS_DISTRIBUTION_JOB_ADDRESSES``, ...), ``keras.distribution.initialize``
    is called first, ``devices="all"`` spans every host's devices and each host
    feeds its own batches (``auto_shard_dataset=False``).

    Args:
        devices: ``"all"`` (every device), a number of devices (the first ones
            of ``keras.distribution.list_devices()``), or ``""`` to leave the
            distribution alone (one device).
        batch_size: the training batch size, to check; None skips the check.
            Defaults to `None`.
        num_examples: the number of training examples, to check the last batch
            of an epoch; None skips the check. Defaults to `None`.

    Returns:
        The distribution that was set, or None for ``devices=""``.

    Raises:
        ValueError: the backend is not JAX, ``devices`` is not a valid setting,
            more devices are asked for than there are, or a batch would not
            split evenly over them.

    Example:
    ```python
    set_data_parallel("all")
    model = build_model()  # replicated on every device
    model.fit(x, y, batch_size=512)  # each batch split over the devices
    ```
    """
    wanted = check_devices(devices)
    if wanted is None:
        return None
    multi_host = any(os.environ.get(name) for name in MULTI_HOST_VARIABLES)
    if multi_host:
        keras.distribution.initialize()
    available = keras.distribution.list_devices()
    if wanted == "all":
        chosen = available
    elif wanted > len(available):
        raise ValueError(
            f"devices={devices!r}: only {len(available)} device(s) here "
            f"({', '.join(available)})"
        )
    else:
        chosen = available[:wanted]
    if batch_size is not None and num_examples is not None:
        try:
            check_even_batches(len(chosen), batch_size, num_examples)
        except ValueError as error:
            raise ValueError(f"devices={devices!r}: {error}") from None
    distribution = keras.distribution.DataParallel(
        devices=chosen, auto_shard_dataset=not multi_host
    )
    keras.distribution.set_distribution(distribution)
    return distribution


def check_even_batches(count: int, batch_size: int, num_examples: int) -> None:
    """Raises ValueError if an epoch's batches do not split evenly over devices.

    JAX shards a batch over ``count`` devices only if ``count`` divides its
    size; this says so before the first step fails with an ``IndivisibleError``.

    Args:
        count: the number of devices.
        batch_size: the training batch size.
        num_examples: the number of training examples (the last batch of an
            epoch holds the remainder).
    """
    sizes = {min(batch_size, num_examples)}
    if batch_size < num_examples and num_examples % batch_size:
        sizes.add(num_examples % batch_size)
    if any(size % count for size in sizes):
        if num_examples % count:  # every epoch ends in a batch of the remainder
            advice = (
                f"no batch_size can do that, since {count} does not divide the "
                f"{num_examples} training examples: change the training set's size "
                f"(train_fraction, train_size) to a multiple of {count}, or the "
                "number of devices"
            )
        else:
            advice = (
                f"choose a batch_size that is a multiple of {count} and divides "
                f"{num_examples} (or is >= it)"
            )
        raise ValueError(
            f"each training batch is split evenly over the {count} devices, but "
            f"batch_size={batch_size} on {num_examples} training examples gives "
            f"batches of {sorted(sizes, reverse=True)} examples; {advice}"
        )
