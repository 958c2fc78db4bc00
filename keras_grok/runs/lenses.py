"""The lenses a run can be measured with after the fact, and their default monitors.

``keras-grok measure --lens NAME`` and the events' refinement name lenses; a lens
is a monitor class. A replay reuses the recipe's own monitor of that class when it
has one (its settings, so replayed values equal the in-line ones bit for bit),
else builds the lens's default monitor from the run's data here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from keras_grok.callbacks import (
    CollapseMonitor,
    ComplexityMonitor,
    FourierMonitor,
    InformationPlaneMonitor,
)
from keras_grok.utils.argument_validation import validate_choice_arg

LENSES = ("accuracy", "collapse", "fourier", "information", "complexity")
"""The lenses ``measure_run`` knows; ``accuracy`` is always measured."""

PER_STEP, RECORDED = "per_step", "recorded"
"""Fourier key frequencies other than fixed ones: re-picked at each step, or as
the run's own Fourier monitor has them (fixed or not)."""


@dataclass
class LensContext:
    """What a lens's default monitor is built from in a replay."""

    train: tuple
    test: tuple
    monitors: Sequence  # the recipe's own monitors (reused for their settings)
    num_classes: int
    seed: int


def lens_monitor(lens: str, context: LensContext, fourier_keys=RECORDED):
    """The monitor of ``lens`` in a replay: the recipe's own, else a default.

    ``fourier_keys``: the Fourier lens's key frequencies (see ``fourier_monitor``).
    """

    kinds = {
        "collapse": CollapseMonitor,
        "fourier": FourierMonitor,
        "information": InformationPlaneMonitor,
        "complexity": ComplexityMonitor,
    }
    validate_choice_arg(lens, "lens", tuple(kinds))
    own = next((m for m in context.monitors if type(m) is kinds[lens]), None)
    if lens == "fourier":
        return fourier_monitor(own, context, fourier_keys)
    if own is not None:  # the recipe's settings: the in-line values, bit for bit
        return own
    train, test, k = context.train, context.test, context.num_classes
    if lens == "collapse":
        return CollapseMonitor(train, test, "features", num_classes=k)
    if lens == "information":
        return InformationPlaneMonitor(
            test_data=(test[0][:500], test[1][:500]),
            layer="features",
            estimators="nhsic",
            num_classes=k,
            seed=context.seed,
        )
    return ComplexityMonitor(
        (train[0][:512], train[1][:512]),
        epsilons=(0.1,),
        thresholds=(1.0, 0.9, 0.7, 0.5),
    )


def fourier_monitor(own, context: LensContext, keys):
    """A Fourier lens with ``own``'s settings (if any) and the keys asked.

    ``keys``: fixed key frequencies (a sequence), ``PER_STEP`` (re-picked at each
    step) or ``RECORDED`` (``own`` as it is). ``own`` itself is returned when it
    measures as asked, so its values match the recorded ones bit for bit.
    """
    unfixed = own is not None and own.fixed_frequencies is None
    if own is not None and (keys == RECORDED or (keys == PER_STEP and unfixed)):
        return own
    if own is None and keys == RECORDED:
        raise ValueError(
            "key_frequencies='recorded' reads the run's own Fourier monitor, and "
            "this run had none: use 'final' (the final model's key frequencies) "
            "or 'per_step'. Received: key_frequencies='recorded'"
        )
    p = context.num_classes
    settings = {"p": p, "op": "a+b", "num_key_frequencies": min(5, (p - 1) // 2)}
    x = np.asarray(context.train[0])
    if own is None and not np.issubdtype(x.dtype, np.integer):
        raise ValueError(
            "the fourier lens measures runs on a op b mod p (inputs of integer "
            "pairs or tokens); this run trains on inputs of shape "
            f"{x.shape[1:]} and dtype {x.dtype}. Received: --lens fourier"
        )
    if own is not None:
        settings = {
            "p": own.p,
            "op": own.op,
            "num_key_frequencies": own.num_key_frequencies,
            "embedding": own.embedding,
            "directions": own.directions,
            "positions": own.positions,
        }
    fixed = None if keys in (PER_STEP, RECORDED) else keys
    return FourierMonitor(
        context.train, context.test, key_frequencies=fixed, **settings
    )
