"""Small reusable Keras layers, registered for saving under the package "keras_grok"."""

from keras_grok.layers.feature_tap import FeatureTap
from keras_grok.layers.position_embedding import PositionEmbedding

__all__ = ["FeatureTap", "PositionEmbedding"]
