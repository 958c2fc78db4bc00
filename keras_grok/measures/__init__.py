"""Pure measures on arrays: neural collapse and the information plane.

The science without a training loop: every function takes features, labels or
statistics and returns numbers. Import a module: ``from keras_grok.measures import
collapse``.
"""

from keras_grok.measures import collapse, complexity, information

__all__ = ["collapse", "complexity", "information"]
