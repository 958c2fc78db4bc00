"""Regularizers of paper B (DeMoss et al., arXiv 2412.09810), registered for saving."""

from keras_grok.regularizers.paper_b_setting import apply_paper_b_regularization
from keras_grok.regularizers.spectral_entropy import (
    SpectralEntropy,
    add_spectral_entropy,
)

__all__ = ["apply_paper_b_regularization", "SpectralEntropy", "add_spectral_entropy"]
