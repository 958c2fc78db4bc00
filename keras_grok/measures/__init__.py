"""Pure measures on arrays: collapse, information plane, spectra and complexity.

The science without a training loop: every function takes features, labels or
statistics and returns numbers. Import a module: ``from keras_grok.measures import
collapse``. Paper B's complexity is split by concept: ``coarse_graining`` (SVD
truncation and quantization), ``weight_codec`` (serialization, codecs, sizes),
``complexity_search`` (the searches), ``complexity`` (``estimate_complexity``) and
``description_length``.
"""

from keras_grok.measures import (
    coarse_graining,
    collapse,
    complexity,
    complexity_search,
    description_length,
    fourier,
    fourier_losses,
    information,
    lossy_compression,
    spectral,
    spectral_density,
    weight_codec,
)

__all__ = [
    "coarse_graining",
    "collapse",
    "complexity",
    "complexity_search",
    "description_length",
    "fourier",
    "fourier_losses",
    "information",
    "lossy_compression",
    "spectral",
    "spectral_density",
    "weight_codec",
]
