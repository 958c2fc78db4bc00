"""Training-step time with SpectralEntropy on every weight matrix vs. without.

The modadd MLP (embedding 97x128, Dense 256x256 twice, Dense 256x97; batch 512)
trained by ``fit`` for the same number of steps, alternating the two models in one
process, each freshly built; "regularized" has ``add_spectral_entropy(model, 0.1)``
(one float32 SVD per weight matrix per step, paper B: DeMoss et al., arXiv
2412.09810). Prints the median time per step of each and their ratio, and with
``--decompositions`` the time of one eager pass of each candidate decomposition
over the model's matrices (three backend ops each, so eager dispatch costs little):
the float32 SVD the regularizer uses, and the Gram-matrix route
(``eigh(W^T W)`` in float64, ``dH/dW = W V diag(g / s) V^T``) that squares the
condition number and so needs float64 to stay exact.

Thread settings matter more than the algorithm on a small shared CPU: with the
other process busy, multi-threaded BLAS/LAPACK spins and an SVD can take 50x
longer. ``--threads N`` (default 1) sets ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, XLA's CPU flags
(``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=N``),
TensorFlow's intra- and inter-op pools and ``torch.set_num_threads`` before the
backend loads; ``--threads 0`` keeps each library's default. The output names the
setting; compare settings by running it twice. Measured on a 2-core CPU shared with
another busy process (Keras 3.15.1, JAX 0.10.2, TensorFlow 2.21.0, torch 2.13.0):
one thread gave about the same regularized step as the defaults on JAX and
TensorFlow (the defaults make JAX's plain step faster, so its ratio looks worse),
and torch with its default two threads did not finish in 7.5 minutes what one
thread did in under 2; hence the default ``--threads 1``.

    KERAS_BACKEND=jax python benchmarks/bench_spectral_entropy_step.py --threads 1
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

RECIPE = Path(__file__).parents[1] / "recipes" / "modadd.py"


def limit_threads(threads: int) -> None:
    """Caps every thread pool of the three backends at ``threads`` (0: defaults).

    Must run before NumPy, JAX, TensorFlow or torch is imported.
    """
    if threads <= 0:
        return
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(threads)
    multi = "true" if threads > 1 else "false"
    os.environ["XLA_FLAGS"] = (
        f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen={multi} "
        f"intra_op_parallelism_threads={threads}"
    ).strip()


def decomposition_times(model, repeats: int) -> dict[str, float]:
    """Seconds for one pass over the model's matrices, per decomposition."""
    import keras
    from keras import ops

    from keras_grok.measures.float64 import float64_scope
    from keras_grok.measures.spectral import weight_matrices

    matrices = [ops.convert_to_tensor(v) for v in weight_matrices(model)]

    def svd_float32(w):
        u, s, vt = ops.svd(w, full_matrices=False)
        return ops.convert_to_numpy(ops.matmul(u * s[None, :], vt))

    def gram_float64(w):
        with float64_scope():
            x = ops.cast(w, "float64")
            if x.shape[0] < x.shape[1]:
                x = ops.transpose(x)
            _, v = ops.eigh(ops.einsum("ki,kj->ij", x, x))
            return ops.convert_to_numpy(ops.einsum("ik,kj->ij", x, v))

    candidates = {
        "float32 SVD, U S V^T (used)": svd_float32,
        "float64 Gram, eigh, W V (a lower bound)": gram_float64,
    }
    times = {}
    for name, fn in candidates.items():
        for w in matrices:
            fn(w)
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            for w in matrices:
                fn(w)
            runs.append(time.perf_counter() - start)
        times[name] = min(runs)
    keras.backend.clear_session()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--decompositions", action="store_true")
    args = parser.parse_args()
    limit_threads(args.threads)

    import keras

    from keras_grok.data.modular import modular_dataset
    from keras_grok.models.modular import build_modular_model
    from keras_grok.recipe import load_recipe
    from keras_grok.regularizers import add_spectral_entropy

    if keras.backend.backend() == "torch" and args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)

    config = dict(load_recipe(RECIPE).defaults)
    split = modular_dataset(config["p"], config["op"], config["train_fraction"])
    batch_size = config["batch_size"]
    epochs = math.ceil(args.steps / math.ceil(len(split.x_train) / batch_size))
    steps = epochs * math.ceil(len(split.x_train) / batch_size)

    def per_step(regularized: bool) -> float:
        keras.utils.set_random_seed(0)
        model = build_modular_model(config, split.vocab_size, split.num_classes)
        if regularized:
            add_spectral_entropy(model, 0.1)
        model.fit(split.x_train, split.y_train, batch_size=batch_size, verbose=0)
        start = time.perf_counter()
        model.fit(
            split.x_train,
            split.y_train,
            batch_size=batch_size,
            epochs=epochs,
            verbose=0,
        )
        return (time.perf_counter() - start) / steps

    threads = f"threads={args.threads}" if args.threads > 0 else "default threads"
    if args.decompositions:
        model = build_modular_model(config, split.vocab_size, split.num_classes)
        for name, seconds in decomposition_times(model, 10).items():
            print(f"{name}: {seconds * 1e3:.1f} ms for all matrices ({threads})")
    if args.repeats < 1:
        return
    times = {True: [], False: []}
    for _ in range(args.repeats):
        for regularized in (False, True):
            times[regularized].append(per_step(regularized))
    plain, regularized = (statistics.median(times[k]) for k in (False, True))
    print(
        f"backend {keras.backend.backend()}, {threads}, {steps} steps of batch "
        f"{batch_size}: plain {plain * 1e3:.2f} ms/step, with SpectralEntropy "
        f"{regularized * 1e3:.2f} ms/step, ratio {regularized / plain:.2f}x"
    )


if __name__ == "__main__":
    main()
