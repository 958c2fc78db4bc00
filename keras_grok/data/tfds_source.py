"""Reading prepared tensorflow-datasets data without ever downloading.

keras-grok never calls ``download_and_prepare``: a data set must already be prepared
under ``data_dir`` (or ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``). When it
is not, loading fails at once with ``DatasetNotPreparedError``, whose message says
how to prepare it and where to point ``data_dir``.
"""

from __future__ import annotations

import os

import numpy as np


class DatasetNotPreparedError(ValueError):
    """A tensorflow-datasets data set is not prepared where keras-grok looks for it.

    A ``ValueError``, so a recipe's ``validate`` turns it into the command line's
    one-line error.
    """


def prepare_hint(name: str, data_dir: str | None) -> str:
    """The message of a ``DatasetNotPreparedError`` for TFDS data set ``name``."""
    where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return (
        f"the tensorflow-datasets data set {name!r} is not prepared in {where} "
        "(keras-grok never downloads). On a machine with internet, run: "
        f"python -c \"import tensorflow_datasets as tfds; tfds.builder('{name}', "
        f"data_dir='DIR').download_and_prepare()\", copy DIR to this machine and "
        "point data_dir at it (recipes: --set data_dir=DIR; or set TFDS_DATA_DIR=DIR)"
    )


def read_split(
    name: str, split: str, keys: tuple[str, ...], data_dir: str | None = None
) -> tuple[np.ndarray, ...]:
    """Reads ``split`` of the prepared TFDS data set ``name`` into NumPy arrays.

    Args:
        name: the TFDS name, e.g. ``"mnist"`` or ``"glue/sst2"``.
        split: a TFDS split string, e.g. ``"train[:1000]"``.
        keys: the feature keys to return, one array each, in this order.
        data_dir: where prepared data lives; None means ``$TFDS_DATA_DIR``, else
            ``~/tensorflow_datasets``. Defaults to `None`.

    Raises:
        DatasetNotPreparedError: the data set is not prepared there (found out before
            anything is read; this never downloads).
        ValueError: tensorflow-datasets knows no data set ``name``.
    """
    import tensorflow_datasets as tfds

    batches = list(tfds.as_numpy(_dataset(name, split, data_dir).batch(4096)))
    if not batches:
        raise ValueError(f"split {split!r} of {name!r} holds no examples")
    return tuple(np.concatenate([batch[key] for batch in batches]) for key in keys)


def ensure_prepared(name: str, data_dir: str | None = None) -> None:
    """Raises ``DatasetNotPreparedError`` at once unless ``name`` is prepared.

    Reads nothing: it only opens the prepared files' index, so a recipe can check
    its data before training starts.
    """
    _dataset(name, "train", data_dir)


def _dataset(name: str, split: str, data_dir: str | None):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # unknown name or config: say which, in one line
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise ValueError(
            f"tensorflow-datasets has no data set {name!r}: "
            f"{type(error).__name__}: {first_line}"
        ) from None
    try:
        # `as_dataset` never downloads; it fails when the prepared files are absent.
        # (Under `tfds.testing.mock_data` it returns mock examples instead.)
        return builder.as_dataset(split=split)
    except AssertionError:
        raise DatasetNotPreparedError(prepare_hint(name, data_dir)) from None
