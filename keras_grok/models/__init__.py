"""Builders for the papers' models. Each names its penultimate layer ``"features"``.

One family per module: ``modular_mlp`` and ``modular_transformer`` (modular
arithmetic), ``image_mlp`` (``toy_mlp``), ``image_cnn`` (``toy_cnn``),
``image_transformer`` (``patch_transformer``) and ``resnet`` (``resnet18``);
``modular`` and ``image`` build and compile the model a recipe's config names.
Their layers live in ``keras_grok.layers``.
"""

from keras_grok.models.image import (
    IMAGE_LOSSES,
    IMAGE_MODELS,
    OPTIMIZERS,
    build_image_model,
)
from keras_grok.models.image_cnn import toy_cnn
from keras_grok.models.image_mlp import toy_mlp
from keras_grok.models.image_transformer import patch_transformer
from keras_grok.models.modular import MODULAR_MODELS, build_modular_model
from keras_grok.models.modular_mlp import modular_mlp
from keras_grok.models.modular_transformer import modular_transformer
from keras_grok.models.resnet import resnet18

FEATURES_LAYER = "features"

__all__ = [
    "FEATURES_LAYER",
    "IMAGE_LOSSES",
    "IMAGE_MODELS",
    "MODULAR_MODELS",
    "OPTIMIZERS",
    "build_image_model",
    "build_modular_model",
    "modular_mlp",
    "modular_transformer",
    "patch_transformer",
    "resnet18",
    "toy_cnn",
    "toy_mlp",
]
