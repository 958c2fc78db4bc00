"""Small reusable Keras layers, registered for saving under the package "keras_grok".

Each layer lives in a module of its own; import them from here:
``from keras_grok.layers import FeatureTap``.
"""

from keras_grok.layers.class_token import ClassToken
from keras_grok.layers.feature_tap import FeatureTap
from keras_grok.layers.position_embedding import PositionEmbedding
from keras_grok.layers.relative_gaussian_noise import RelativeGaussianNoise

__all__ = ["ClassToken", "FeatureTap", "PositionEmbedding", "RelativeGaussianNoise"]
