"""JAX ``fit`` with ``add_spectral_entropy``: default OpenBLAS pool vs. one thread.

The library path (no ``OPENBLAS_NUM_THREADS``, as a user's own script) against what
``SpectralEntropy`` now does by itself on JAX's CPU backend (one OpenBLAS thread,
``keras_grok.regularizers.lapack_threads``), side by side in one process: the
modadd MLP of ``recipes/modadd.py`` (embedding 97x128, Dense 256x256 twice, Dense
256x97; batch 512), each variant freshly built and trained by ``fit`` for the same
steps, the variants alternated ``--repeats`` times:

- ``plain``: no regularizer, OpenBLAS as the process loaded it;
- ``default pool``: ``add_spectral_entropy(model, 0.1)`` after
  ``restore_lapack_threads()`` (the pool as loaded, the old behaviour);
- ``one thread``: the same after ``limit_lapack_threads()`` (the new default).

Prints the median time per step of each and the ratios to plain. Run it with
nothing else busy, first as a library user would (``OPENBLAS_NUM_THREADS`` unset),
then as ``keras-grok run`` does (``OPENBLAS_NUM_THREADS=1``, where "default pool"
is the command line's one thread), and compare the "one thread" ratio of the first
with the "default pool" ratio of the second:

    KERAS_BACKEND=jax python benchmarks/bench_spectral_entropy_threads.py
    OPENBLAS_NUM_THREADS=1 KERAS_BACKEND=jax \
        python benchmarks/bench_spectral_entropy_threads.py
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

RECIPE = Path(__file__).parents[1] / "recipes" / "modadd.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import keras
    import threadpoolctl

    from keras_grok.data.modular import modular_dataset
    from keras_grok.experiments.recipe import load_recipe
    from keras_grok.models.modular import build_modular_model
    from keras_grok.regularizers import add_spectral_entropy
    from keras_grok.regularizers.lapack_threads import (
        limit_lapack_threads,
        restore_lapack_threads,
    )
    from keras_grok.utils.random_seed import set_random_seed

    if keras.backend.backend() != "jax":
        raise SystemExit("Run with KERAS_BACKEND=jax: the limit applies to JAX only.")
    config = dict(load_recipe(RECIPE).defaults)
    split = modular_dataset(config["p"], config["op"], config["train_fraction"])
    batch_size = config["batch_size"]
    per_epoch = math.ceil(len(split.x_train) / batch_size)
    epochs = math.ceil(args.steps / per_epoch)
    steps = epochs * per_epoch

    def per_step(regularized: bool) -> float:
        set_random_seed(0)
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

    def pools() -> str:
        return ", ".join(
            f"{Path(info['filepath']).name}: {info['num_threads']}"
            for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas"
        )

    variants = {
        "plain": (False, restore_lapack_threads),
        "default pool": (True, restore_lapack_threads),
        "one thread": (True, limit_lapack_threads),
    }
    times = {name: [] for name in variants}
    seen = {}
    for _ in range(args.repeats):
        for name, (regularized, setting) in variants.items():
            setting()
            seen[name] = pools()
            times[name].append(per_step(regularized))
    restore_lapack_threads()
    plain = statistics.median(times["plain"])
    variable = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    print(
        f"JAX, {os.cpu_count()} CPUs, OPENBLAS_NUM_THREADS {variable}, {steps} steps "
        f"of batch {batch_size}, median of {args.repeats}: plain "
        f"{plain * 1e3:.2f} ms/step"
    )
    for name in list(variants)[1:]:
        seconds = statistics.median(times[name])
        print(
            f"  SpectralEntropy, {name} ({seen[name]}): {seconds * 1e3:.2f} ms/step, "
            f"ratio {seconds / plain:.2f}x"
        )


if __name__ == "__main__":
    main()
