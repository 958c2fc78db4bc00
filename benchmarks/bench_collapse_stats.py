"""Throughput of the collapse statistics: keras-grok vs. a plain float64 NumPy pass.

60,000 x 200 float32 features in 10 classes (the size of MNIST's training set and
paper A's MLP features), streamed in batches of 10,000. keras-grok: one jit-able
``batch_collapse_statistics`` per batch (compiled with the backend's own compiler
where there is one), merged with ``merge_collapse_statistics``, then NC1, RNC1 and
NC2. NumPy: the same figures from per-class sums and sums of squared norms in
float64. Prints the median time of each and the throughput ratio (> 1 means
keras-grok is faster).

    KERAS_BACKEND=jax python benchmarks/bench_collapse_stats.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras
import numpy as np

from keras_grok.measures import collapse

N, D, K, BATCH = 60_000, 200, 10, 10_000


def compiled(fn):
    """``fn`` compiled by the backend (``jax.jit`` / ``tf.function``), else as is."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    return fn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, K, N).astype("int32")
    features = (rng.normal(size=(K, D)) * 3)[labels] + rng.normal(size=(N, D))
    features = features.astype("float32")
    batches = [
        (
            keras.ops.convert_to_tensor(features[i : i + BATCH]),
            keras.ops.convert_to_tensor(labels[i : i + BATCH]),
        )
        for i in range(0, N, BATCH)
    ]

    def batch_stats(h, y):
        s = collapse.batch_collapse_statistics(h, y, K)
        return s.counts, s.means, s.deviations, s.norm_sums, s.max_norms

    step = compiled(batch_stats)

    def ours() -> tuple[float, float, float]:
        stats = None
        for h, y in batches:
            batch = collapse.CollapseStatistics(*step(h, y))
            stats = (
                batch
                if stats is None
                else collapse.merge_collapse_statistics(stats, batch)
            )
        return collapse.nc1(stats), collapse.rnc1(stats), collapse.nc2(stats)

    def numpy_pass() -> tuple[float, float, float]:
        counts = np.zeros(K)
        sums = np.zeros((K, D))
        squares = np.zeros(K)
        norm_sum = 0.0
        for i in range(0, N, BATCH):
            h = features[i : i + BATCH].astype(np.float64)
            y = labels[i : i + BATCH]
            counts += np.bincount(y, minlength=K)
            np.add.at(sums, y, h)
            squared = (h**2).sum(axis=1)
            squares += np.bincount(y, weights=squared, minlength=K)
            norm_sum += np.sqrt(squared).sum()
        means = sums / counts[:, None]
        within = (squares - counts * (means**2).sum(axis=1)).sum() / N
        global_mean = sums.sum(axis=0) / N
        between = (counts / N * ((means - global_mean) ** 2).sum(axis=1)).sum()
        singular = np.linalg.svd(means, compute_uv=False)
        return (
            within / between,
            within / (norm_sum / N) ** 2,
            singular[0] / singular[-1],
        )

    ours_values, numpy_values = ours(), numpy_pass()  # warm-up and compilation
    np.testing.assert_allclose(ours_values, numpy_values, rtol=1e-4)
    times: dict[str, list[float]] = {"numpy": [], "ours": []}
    for _ in range(args.repeats):
        for name, fn in (("numpy", numpy_pass), ("ours", ours)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    numpy_s, ours_s = (statistics.median(times[n]) for n in ("numpy", "ours"))
    print(f"backend={keras.backend.backend()} N={N} d={D} K={K} batch={BATCH}")
    print(f"numpy float64  median {numpy_s * 1e3:.1f} ms")
    print(f"keras-grok     median {ours_s * 1e3:.1f} ms")
    print(f"throughput ratio keras-grok/numpy = {numpy_s / ours_s:.2f}")


if __name__ == "__main__":
    main()
