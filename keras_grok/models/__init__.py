"""Builders for the papers' models. Each names its penultimate layer ``"features"``."""

from keras_grok.models.modular_mlp import modular_mlp
from keras_grok.models.modular_transformer import modular_transformer
from keras_grok.models.paper_a import (
    ClassToken,
    patch_transformer,
    resnet18,
    toy_cnn,
    toy_mlp,
)

FEATURES_LAYER = "features"

__all__ = [
    "ClassToken",
    "FEATURES_LAYER",
    "modular_mlp",
    "modular_transformer",
    "patch_transformer",
    "resnet18",
    "toy_cnn",
    "toy_mlp",
]
