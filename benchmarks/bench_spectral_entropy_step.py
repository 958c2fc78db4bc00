"""Training-step time with SpectralEntropy on every weight matrix vs. without.

The modadd MLP (embedding 97x128, Dense 256x256 twice, Dense 256x97; batch 512)
trained by ``fit`` for the same number of steps, alternating the models in one
process, each freshly built: "plain", and ``add_spectral_entropy(model, 0.1)``
with each decomposition (paper B: DeMoss et al., arXiv 2412.09810): ``svd``, one
float32 SVD per matrix per step, and ``gram``, one float64 eigendecomposition of
the smaller Gram matrix (``keras_grok.measures.spectral.DECOMPOSITIONS``). Prints
the median time per step of each, their ratios to plain, and which one ``"auto"``
picks on this backend (``AUTO_DECOMPOSITION``, set from this benchmark).

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
thread did in under 2; hence the default ``--threads 1``. On a quiet machine the
opposite held for torch: ``--threads 2`` made its plain step 2.5x faster (7.6 vs.
19.2 ms) and its regularized step 1.8x faster, at a higher ratio (3.80x).

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    limit_threads(args.threads)

    import keras

    from keras_grok.data.modular import modular_dataset
    from keras_grok.experiments.recipe import load_recipe
    from keras_grok.measures.spectral import AUTO_DECOMPOSITION
    from keras_grok.models.modular import build_modular_model
    from keras_grok.regularizers import add_spectral_entropy

    if keras.backend.backend() == "torch" and args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)

    config = dict(load_recipe(RECIPE).defaults)
    split = modular_dataset(config["p"], config["op"], config["train_fraction"])
    batch_size = config["batch_size"]
    epochs = math.ceil(args.steps / math.ceil(len(split.x_train) / batch_size))
    steps = epochs * math.ceil(len(split.x_train) / batch_size)

    def per_step(decomposition: str | None) -> float:
        keras.utils.set_random_seed(0)
        model = build_modular_model(config, split.vocab_size, split.num_classes)
        if decomposition is not None:
            add_spectral_entropy(model, 0.1, decomposition)
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
    variants = (None, "svd", "gram")
    times = {v: [] for v in variants}
    for _ in range(args.repeats):
        for variant in variants:
            times[variant].append(per_step(variant))
    plain = statistics.median(times[None])
    print(
        f"backend {keras.backend.backend()}, {threads}, {steps} steps of batch "
        f"{batch_size}, median of {args.repeats}: plain {plain * 1e3:.2f} ms/step"
    )
    auto = AUTO_DECOMPOSITION.get(keras.backend.backend(), "svd")
    for variant in variants[1:]:
        seconds = statistics.median(times[variant])
        print(
            f"  SpectralEntropy, {variant}: {seconds * 1e3:.2f} ms/step, ratio "
            f"{seconds / plain:.2f}x" + ("  (auto)" if variant == auto else "")
        )


if __name__ == "__main__":
    main()
