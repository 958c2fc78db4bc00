"""keras-grok: watch grokking, neural collapse and complexity dynamics in Keras 3.

Importing this package does not import Keras, so the command line can choose the
backend first. Every public module is an attribute of the package, imported (with
Keras) on first use:

```python
import keras_grok

keras_grok.layers.FeatureTap  # imports keras_grok.layers, and Keras, now
```

``from keras_grok import callbacks`` works as well. Public modules are those whose
names do not start with an underscore.
"""

import importlib as _importlib
import pkgutil as _pkgutil
from types import ModuleType as _ModuleType

__version__ = "0.1.0"


def _public_modules() -> tuple[str, ...]:
    # Read from the package's folder, so a new module is reachable with no list
    # to update; listing a folder imports nothing.
    return tuple(
        sorted(
            info.name
            for info in _pkgutil.iter_modules(__path__)
            if not info.name.startswith("_")
        )
    )


def __getattr__(name: str) -> _ModuleType:
    # PEP 562: called only for names the package does not hold yet.
    if name in _public_modules():
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(
        f"module {__name__!r} has no attribute {name!r}. Its public modules are: "
        f"{', '.join(_public_modules())}"
    )


def __dir__() -> list[str]:
    return sorted({"__version__", *_public_modules()})
