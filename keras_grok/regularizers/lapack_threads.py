"""One OpenBLAS thread for the spectral-entropy step on JAX's CPU backend.

On a CPU, JAX runs ``eigh`` and ``svd`` through the LAPACK of SciPy's bundled
OpenBLAS, whose threads contend with XLA's own pool: on a 2-core CPU the modadd
MLP's regularized step cost 10.0x a plain one with the default pools against 4.6x
with ``OPENBLAS_NUM_THREADS=1`` (``benchmarks/bench_spectral_entropy_threads.py``
measures both side by side). ``keras-grok run`` sets that variable before NumPy
loads; a library user's process has loaded OpenBLAS long before. So
``SpectralEntropy`` calls ``limit_lapack_threads`` when it is first applied on
JAX's CPU backend, which caps every loaded OpenBLAS pool at one thread at run
time (``threadpoolctl``), as the variable would have.

Nothing is changed when ``OPENBLAS_NUM_THREADS`` is set (the user chose), on
other backends or devices, or without ``threadpoolctl`` installed.
``restore_lapack_threads()`` puts the pools back and keeps them so for the rest
of the process.
"""

from __future__ import annotations

import os

_state = {"limiter": None, "automatic": True}


def limit_lapack_threads() -> bool:
    """Caps the loaded OpenBLAS pools at one thread, on JAX's CPU backend only.

    Returns:
        Whether the pools are limited by keras-grok now (False off JAX's CPU
        backend or without ``threadpoolctl``).
    """
    if _state["limiter"] is not None:
        return True
    import keras

    if keras.backend.backend() != "jax":
        return False
    import jax

    if jax.default_backend() != "cpu":
        return False
    try:
        import threadpoolctl
    except ImportError:
        return False
    import scipy.linalg  # noqa: F401  loads the OpenBLAS behind JAX's CPU LAPACK

    _state["limiter"] = threadpoolctl.threadpool_limits(limits=1, user_api="blas")
    return True


def restore_lapack_threads() -> None:
    """Gives the OpenBLAS pools back their sizes; no automatic limit afterwards."""
    limiter = _state["limiter"]
    if limiter is not None:
        limiter.restore_original_limits()
    _state["limiter"] = None
    _state["automatic"] = False


def limit_on_first_use() -> None:
    """``limit_lapack_threads`` once per process, unless the user chose otherwise.

    Skipped when ``OPENBLAS_NUM_THREADS`` is set or after
    ``restore_lapack_threads``.
    """
    if not _state["automatic"]:
        return
    _state["automatic"] = False
    if "OPENBLAS_NUM_THREADS" not in os.environ:
        limit_lapack_threads()
