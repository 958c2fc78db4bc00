"""Pure measures on arrays: collapse, information plane, spectra and complexity.

The science without a training loop: every function takes features, labels or
statistics and returns numbers. Import a module: ``from keras_grok.measures import
collapse``.
"""

from keras_grok.measures import (
    collapse,
    complexity,
    information,
    lossy_compression,
    spectral,
)

__all__ = ["collapse", "complexity", "information", "lossy_compression", "spectral"]
