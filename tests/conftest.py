"""Shared pytest set-up: backend-aware imports and markers.

Every test runs on the backend named by ``KERAS_BACKEND`` (tox runs the suite once
per backend). Markers: ``slow`` (trains to full grokking; deselect with
``-m "not slow"``) and ``gpu`` (skipped without a GPU).
"""

import os

if os.environ.get("KERAS_BACKEND") == "torch":
    # Import torch before TensorFlow can be loaded, as Keras' own conftest does:
    # the other order can crash when both live in one process.
    import torch  # noqa: F401

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a GPU; skipped without one")


def _has_gpu() -> bool:
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def pytest_collection_modifyitems(config, items):
    if not any("gpu" in item.keywords for item in items) or _has_gpu():
        return
    skip = pytest.mark.skip(reason="needs a GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
