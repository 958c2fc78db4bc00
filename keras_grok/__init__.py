"""keras-grok: watch grokking, neural collapse and complexity dynamics in Keras 3.

Importing this package does not import Keras, so the command line can choose the
backend first. Its public subpackages (``__all__``) are attributes of the package,
imported (with Keras) on first use:

```python
import keras_grok

keras_grok.layers.FeatureTap  # imports keras_grok.layers, and Keras, now
```

``from keras_grok import callbacks`` works as well. What lives where:

- ``measures``: pure measures on arrays (collapse, information, spectra, complexity,
  Fourier);
- ``callbacks``: monitors that measure while training, and the run's recorders;
- ``regularizers``, ``layers``, ``models``, ``data``, ``losses``: building blocks;
- ``runs``: one recorded run and its folder; ``sweeps``: many runs; ``analysis``:
  what is read off finished runs; ``forecast``: will a run grok, and when;
  ``experiments``: the recipe contract and the papers' experiments built from a
  config.
"""

import importlib as _importlib
from types import ModuleType as _ModuleType

from keras_grok.utils import registration as _registration

__version__ = "0.1.0"

__all__ = [
    "analysis",
    "callbacks",
    "data",
    "experiments",
    "forecast",
    "layers",
    "losses",
    "measures",
    "models",
    "regularizers",
    "runs",
    "sweeps",
]


def __getattr__(name: str) -> _ModuleType:
    # PEP 562: called only for names the package does not hold yet.
    if name in __all__:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(
        f"module {__name__!r} has no attribute {name!r}. Its public subpackages "
        f"are: {', '.join(__all__)}"
    )


def __dir__() -> list[str]:
    return sorted({"__version__", *__all__})


# Saved models that use keras-grok objects load after a plain `import keras_grok`
# (keras_grok.utils.registration; imports no Keras now).
_registration.register_when_keras_loads()
