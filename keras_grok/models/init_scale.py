"""Initialization for the Omnigrok setting: PyTorch-style defaults and a scale alpha.

Omnigrok (Liu et al., 2023) makes grokking appear on MNIST by multiplying every
parameter by an init scale alpha (8 in paper A, Sakamoto & Sato, arXiv 2509.20829)
after the default initialization; weight decay then shrinks the weights back toward
the "Goldilocks" norm, and test accuracy rises only as it does. Both papers' code is
PyTorch, whose default initialization of a dense or convolution layer draws kernel
and bias from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``; Keras' default (Glorot uniform
kernel, zero bias) is about twice as wide for a 784-200 layer, so the same alpha means
a different starting norm. ``init="torch"`` reproduces the papers, ``init="keras"``
keeps Keras' defaults.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import keras
from keras import ops

from keras_grok.utils.argument_validation import validate_choice_arg, validate_float_arg

INITS = ("torch", "keras")


def initializers(
    init: str, fan_in: int, seed: int | None
) -> dict[str, keras.initializers.Initializer | str]:
    """Kernel and bias initializers of one dense or convolution layer.

    Args:
        init: ``"torch"`` (kernel and bias from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``;
            for the kernel that is ``VarianceScaling(1/3, "fan_in", "uniform")``)
            or ``"keras"`` (Glorot uniform kernel, zero bias).
        fan_in: the layer's fan-in (inputs times kernel area).
        seed: the kernel's seed (the bias uses ``seed + 1``), or None.

    Returns:
        ``{"kernel_initializer": ..., "bias_initializer": ...}`` for the layer.
    """
    validate_choice_arg(init, "init", INITS)
    bias_seed = None if seed is None else seed + 1
    if init == "torch":
        limit = 1.0 / math.sqrt(fan_in)
        return {
            "kernel_initializer": keras.initializers.VarianceScaling(
                1.0 / 3.0, "fan_in", "uniform", seed=seed
            ),
            "bias_initializer": keras.initializers.RandomUniform(
                -limit, limit, seed=bias_seed
            ),
        }
    return {
        "kernel_initializer": keras.initializers.GlorotUniform(seed=seed),
        "bias_initializer": "zeros",
    }


def scale_weights(layers: Iterable[keras.layers.Layer], alpha: float) -> None:
    """Multiplies every trainable weight of ``layers`` by ``alpha``, in place.

    The init scale of Omnigrok and paper A: ``theta <- alpha * theta_0`` after the
    default initialization. Non-trainable state (batch-norm statistics) is left
    alone.

    Args:
        layers: built layers.
        alpha: the init scale, finite and > 0.
    """
    alpha = validate_float_arg(alpha, "init_scale", allow_minimum=False)
    if alpha == 1.0:
        return
    for layer in layers:
        for weight in layer.trainable_weights:
            weight.assign(ops.multiply(weight.value, ops.cast(alpha, weight.dtype)))
