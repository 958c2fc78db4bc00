"""Small reusable Keras layers, registered for saving under the package "keras_grok"."""

from keras_grok.layers.position_embedding import PositionEmbedding

__all__ = ["PositionEmbedding"]
