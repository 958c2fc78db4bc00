"""Builders for the papers' models. Each names its penultimate layer ``"features"``."""

from keras_grok.models.modular_mlp import modular_mlp
from keras_grok.models.modular_transformer import modular_transformer

FEATURES_LAYER = "features"

__all__ = ["FEATURES_LAYER", "modular_mlp", "modular_transformer"]
