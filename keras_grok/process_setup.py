"""The process a command runs in: its Keras backend, thread pools and devices.

``KERAS_BACKEND`` and the BLAS thread variables take effect only before Keras and
NumPy load, so the command line settles them here first, and checks what would
otherwise fail later, after a run folder exists: an uninstalled backend, an
unknown ``MPLBACKEND``, a JAX platform that cannot start.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import sys

from keras_grok.experiments.recipe import RecipeError

BACKENDS = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}
INSTALL_HINTS = {
    "jax": "pip install jax",
    "tensorflow": "pip install tensorflow-cpu",
    "torch": "pip install torch --index-url https://download.pytorch.org/whl/cpu "
    "(the CPU build; a GPU machine: pip install 'keras-grok[torch]')",
}
VERSIONED_PACKAGES = ("keras", "numpy", "jax", "tensorflow-cpu", "tensorflow", "torch")
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads(threads: int | None) -> None:
    """Sizes the BLAS/LAPACK and OpenMP pools before NumPy or a backend loads.

    ``threads`` sets every variable of ``THREAD_VARIABLES``. None leaves them as
    the environment sets them, except an unset ``OPENBLAS_NUM_THREADS``, which
    becomes 1: on a 2-core CPU, OpenBLAS's threads (behind NumPy and JAX's CPU
    linear algebra) contended with XLA's, and the complexity recipe's
    regularized step (float64 eigendecompositions) took 33-39 ms with the
    default pool against 20-25 ms with one thread; paper B's transformer step
    132.8 against 60.7 ms. torch and TensorFlow do their linear algebra in MKL
    and Eigen, whose pools this leaves alone (torch's step was 2.5x faster with
    its two default threads than with one, on a quiet machine). Without effect
    once NumPy is loaded in this process.
    """
    if threads is None:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        return
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)


def choose_backend(backend: str | None) -> str:
    """The Keras backend to use, set as ``KERAS_BACKEND`` before Keras loads.

    ``backend`` (from ``--backend``), else ``$KERAS_BACKEND``, else ``"jax"``.

    Raises:
        RecipeError: an unknown or uninstalled backend, another backend than the
            Keras already loaded in this process, or an unknown ``MPLBACKEND``.
    """
    source = "--backend"
    if backend is None:
        source = "$KERAS_BACKEND" if os.environ.get("KERAS_BACKEND") else "default"
        backend = os.environ.get("KERAS_BACKEND") or "jax"
    if backend not in BACKENDS:
        raise RecipeError(
            f"unknown backend {backend!r} (from {source}); choose one of "
            f"{', '.join(BACKENDS)}"
        )
    if importlib.util.find_spec(BACKENDS[backend]) is None:
        raise RecipeError(
            f"backend {backend!r} is not installed; install it with: "
            f"{INSTALL_HINTS[backend]}"
        )
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != backend:
        raise RecipeError(
            f"Keras is already imported with backend {keras.backend.backend()!r} in "
            f"this process; run keras-grok in a new process to use {backend!r}"
        )
    os.environ["KERAS_BACKEND"] = backend
    check_matplotlib_backend()
    return backend


def check_matplotlib_backend() -> None:
    """Refuses an unknown ``MPLBACKEND`` by name.

    Keras imports matplotlib, which refuses an unknown backend on import: the
    error would otherwise blame the recipe that imports Keras.
    """
    name = os.environ.get("MPLBACKEND")
    if not name or "matplotlib" in sys.modules:
        return
    try:
        import matplotlib  # noqa: F401
    except ValueError as error:
        raise RecipeError(
            f"MPLBACKEND={name!r} is not a matplotlib backend ({error}); unset it: "
            "keras-grok saves its figures with the Agg backend"
        ) from None


def check_devices_start(backend: str) -> None:
    """Starts JAX's devices now, before anything is written.

    JAX starts its platforms on first use; one it cannot start (``JAX_PLATFORMS=
    cuda`` on a machine without CUDA) would fail deep inside the first
    computation, after the run folder exists.

    Raises:
        RecipeError: naming ``JAX_PLATFORMS`` where it is set.
    """
    if backend != "jax":
        return
    import jax

    try:
        jax.devices()
    except Exception as error:
        platforms = os.environ.get("JAX_PLATFORMS")
        hint = (
            f"JAX_PLATFORMS={platforms!r} asks for a platform this machine cannot "
            "start; unset it, or set JAX_PLATFORMS=cpu"
            if platforms
            else "check the JAX install (pip install -e . installs the CPU build)"
        )
        raise RecipeError(
            f"JAX could not start its devices ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no message'}); {hint}"
        ) from None


def package_versions() -> dict[str, str]:
    """The versions of Python, keras-grok, Keras, NumPy and the installed backends."""
    versions = {"python": platform.python_version()}
    for name in ("keras-grok", *VERSIONED_PACKAGES):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
