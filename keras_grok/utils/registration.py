"""Registers keras-grok's saveable objects as soon as Keras is imported.

``keras.saving.load_model`` finds a custom object by the ``registered_name`` in the
saved config (``"keras_grok>SpectralEntropy"``) among the objects registered so far,
and imports the ``module`` named there only for Keras' own packages. keras-grok
registers its objects with ``keras.saving.register_keras_serializable`` when their
modules are imported, but ``import keras_grok`` imports no Keras (the command line
must choose the backend first). So ``import keras_grok`` calls
``register_when_keras_loads``: if Keras is imported already, the registering
modules are imported now; otherwise a one-shot import hook imports them right
after Keras finishes loading. Either way, a model saved with keras-grok objects
loads after a plain ``import keras_grok``.

The hook runs inside the first ``import keras``, which may be a keras-grok
module's own (``from keras_grok import losses`` imports Keras at its top): that
module is then only partly initialized, so keras-grok modules import each other as
modules (``from keras_grok import losses as grok_losses``) or from the module that
defines a name (``keras_grok.layers.position_embedding``), never a name from a
package or module that may be mid-import.

This module imports nothing from Keras, NumPy or keras-grok at import time.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

REGISTERING_MODULES = (
    "keras_grok.layers.class_token",
    "keras_grok.layers.feature_tap",
    "keras_grok.layers.position_embedding",
    "keras_grok.layers.relative_gaussian_noise",
    "keras_grok.losses",
    "keras_grok.regularizers.spectral_entropy",
    "keras_grok.regularizers.weight_noise",
)
"""Every module that registers an object for saving (a test keeps it complete)."""


def register_saveable_objects() -> None:
    """Imports every module of ``REGISTERING_MODULES`` (imports Keras)."""
    for name in REGISTERING_MODULES:
        importlib.import_module(name)


class _AfterKerasLoads(importlib.abc.MetaPathFinder):
    """Finds nothing itself; makes the import of ``keras`` register afterwards."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # one shot; the finders below find Keras
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            try:
                register_saveable_objects()
            except Exception as error:  # never break `import keras` itself
                warnings.warn(
                    "keras-grok could not register its objects for "
                    f"keras.saving.load_model: {error!r}",
                    stacklevel=2,
                )

        spec.loader.exec_module = exec_module
        return spec


def register_when_keras_loads() -> None:
    """Registers keras-grok's objects now if Keras is loaded, else once it is."""
    keras = sys.modules.get("keras")
    if keras is not None:
        if getattr(keras, "saving", None) is not None:  # not mid-import
            register_saveable_objects()
        return
    if not any(isinstance(f, _AfterKerasLoads) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasLoads())
