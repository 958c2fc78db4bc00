"""Training-step time with SpectralEntropy on every kernel vs. without.

The modadd MLP (embedding 97x128, Dense 256, Dense 97) trained by ``fit`` for the
same number of steps, alternating the two models in one process, each freshly
built; "regularized" has ``add_spectral_entropy(model, 0.1)`` (one SVD per weight
matrix per step). Prints the median time per step of each and their ratio.

    KERAS_BACKEND=jax python benchmarks/bench_spectral_entropy_step.py --steps 200
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import keras

from keras_grok.data.modular import modular_dataset
from keras_grok.recipe import load_recipe
from keras_grok.regularizers import add_spectral_entropy

RECIPE = Path(__file__).parents[1] / "recipes" / "modadd.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    recipe = load_recipe(RECIPE)
    config = dict(recipe.defaults)
    split = modular_dataset(config["p"], config["op"], config["train_fraction"])
    batch_size = config["batch_size"]
    epochs = math.ceil(args.steps / math.ceil(len(split.x_train) / batch_size))
    steps = epochs * math.ceil(len(split.x_train) / batch_size)

    def per_step(regularized: bool) -> float:
        keras.utils.set_random_seed(0)
        model = recipe.module.build_model(config, split.vocab_size, split.num_classes)
        if regularized:
            add_spectral_entropy(model, 0.1)
        model.fit(*(split.x_train, split.y_train), batch_size=batch_size, verbose=0)
        start = time.perf_counter()
        model.fit(
            split.x_train,
            split.y_train,
            batch_size=batch_size,
            epochs=epochs,
            verbose=0,
        )
        return (time.perf_counter() - start) / steps

    times = {True: [], False: []}
    for _ in range(args.repeats):
        for regularized in (False, True):
            times[regularized].append(per_step(regularized))
    plain, regularized = (statistics.median(times[k]) for k in (False, True))
    print(
        f"backend {keras.backend.backend()}, {steps} steps of batch {batch_size}: "
        f"plain {plain * 1e3:.2f} ms/step, with SpectralEntropy "
        f"{regularized * 1e3:.2f} ms/step, ratio {regularized / plain:.2f}x"
    )


if __name__ == "__main__":
    main()
