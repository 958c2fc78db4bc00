"""Overhead of recording a run: the modadd recipe's training vs. a plain ``model.fit``.

Both sides train the same model on the same data for the same number of steps, in
one process, alternating, each on a freshly built model. "Ours" is the recipe's
``train_and_record`` (GrokkingMonitor on train and test at the recipe's schedule,
metrics.csv, checkpoints, summary and figure); "plain" is ``model.fit(..., verbose=0)``
with no callbacks. Prints the median time of each and their ratio (target <= 1.10).

    KERAS_BACKEND=jax python benchmarks/bench_modadd_overhead.py --steps 4000
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import keras

from keras_grok.data.modular import modular_dataset
from keras_grok.experiment import train_and_record
from keras_grok.recipe import load_recipe

RECIPE = Path(__file__).parents[1] / "recipes" / "modadd.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--schedule", default=None, help="measurement schedule (the recipe's if unset)"
    )
    args = parser.parse_args()

    recipe = load_recipe(RECIPE)
    config = dict(recipe.defaults)
    if args.schedule:
        config["schedule"] = args.schedule
    split = modular_dataset(config["p"], config["op"], config["train_fraction"])
    train, test = (split.x_train, split.y_train), (split.x_test, split.y_test)
    batch_size = config["batch_size"]
    epochs = math.ceil(args.steps / math.ceil(len(split.x_train) / batch_size))

    def fresh_model():
        keras.utils.set_random_seed(0)
        return recipe.module.build_model(config, split.vocab_size, split.num_classes)

    def plain() -> None:
        fresh_model().fit(*train, batch_size=batch_size, epochs=epochs, verbose=0)

    def ours() -> None:
        with tempfile.TemporaryDirectory() as out:
            train_and_record(
                fresh_model(),
                train,
                test,
                out,
                batch_size=batch_size,
                max_steps=args.steps,
                schedule=config["schedule"],
                checkpoint_seconds=config["checkpoint_seconds"],
                verbose=False,
            )

    plain()  # warm-up: first-use costs of the backend
    times: dict[str, list[float]] = {"plain": [], "ours": []}
    for _ in range(args.repeats):
        for name, fn in (("plain", plain), ("ours", ours)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)

    plain_s, ours_s = (
        statistics.median(times["plain"]),
        statistics.median(times["ours"]),
    )
    steps = epochs * math.ceil(len(split.x_train) / batch_size)
    print(
        f"backend={keras.backend.backend()} steps={steps} repeats={args.repeats} "
        f"schedule={config['schedule']}"
    )
    for name, label in (("plain", "plain model.fit"), ("ours", "recipe recording")):
        runs = [round(t, 2) for t in times[name]]
        print(f"{label:17s} median {statistics.median(times[name]):.2f}s  all {runs}")
    print(f"overhead ratio ours/plain = {ours_s / plain_s:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
