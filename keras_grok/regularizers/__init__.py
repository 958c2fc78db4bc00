"""Regularizers of paper B (DeMoss et al., arXiv 2412.09810), registered for saving."""

from keras_grok.regularizers.spectral_entropy import (
    SpectralEntropy,
    add_spectral_entropy,
)

__all__ = ["SpectralEntropy", "add_spectral_entropy"]
