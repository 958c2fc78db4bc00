"""Data sets: synthetic modular arithmetic (always offline)."""

from keras_grok.data.modular import OPERATIONS, ModularSplit, modular_dataset

__all__ = ["OPERATIONS", "ModularSplit", "modular_dataset"]
