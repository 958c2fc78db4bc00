"""Overhead of watching: the default modadd recipe vs. a plain ``model.fit``.

Both sides train the same model on the same data for the same number of steps, in
one process, alternating, each on a freshly built model. "Ours" is the recipe's
``run`` with its defaults (GrokkingMonitor and CollapseMonitor on train and test,
sharing one pass per measured step at the recipe's schedule; metrics.csv,
checkpoints, figure and summary), trained the full length (``patience=-1``);
"plain" is ``model.fit(..., verbose=0)`` with no callbacks. Prints the median
time of each and their ratio (target <= 1.10).

    KERAS_BACKEND=jax python benchmarks/bench_modadd_overhead.py --steps 4500
    KERAS_BACKEND=jax python benchmarks/bench_modadd_overhead.py --set collapse=false

The cheap-watching default of the atlas (accuracy in line, checkpoint history,
no refinement), its training alone against the plain fit's:

    KERAS_BACKEND=jax python benchmarks/bench_modadd_overhead.py \
        --set collapse=false refine=false --training-only

``--set KEY=VALUE`` overrides the recipe's config (e.g. ``schedule=geometric:1.1``).
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
from keras_grok.experiments.recipe import apply_overrides, load_recipe
from keras_grok.models.modular import build_modular_model

RECIPE = Path(__file__).parents[1] / "recipes" / "modadd.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", dest="sets", nargs="+", action="extend", default=[])
    parser.add_argument(
        "--training-only",
        action="store_true",
        help="time ours by its training (summary wall_time_s), not the whole run",
    )
    args = parser.parse_args()

    recipe = load_recipe(RECIPE)
    config = apply_overrides(recipe.defaults, args.sets)
    config.update(max_steps=args.steps, patience=-1)
    split = modular_dataset(config["p"], config["op"], config["train_fraction"])
    batch_size = config["batch_size"]
    steps_per_epoch = math.ceil(len(split.x_train) / batch_size)
    epochs = math.ceil(args.steps / steps_per_epoch)

    def plain() -> float | None:
        keras.utils.set_random_seed(config["seed"])
        model = build_modular_model(config, split.vocab_size, split.num_classes)
        start = time.perf_counter()
        model.fit(
            split.x_train,
            split.y_train,
            batch_size=batch_size,
            epochs=epochs,
            shuffle=True,
            verbose=0,
        )
        return time.perf_counter() - start if args.training_only else None

    measurements = []

    def ours() -> float | None:
        with tempfile.TemporaryDirectory() as out:
            summary = recipe.run(config, Path(out), verbose=False)
        measurements.append(summary["measurements"])
        return summary["wall_time_s"] if args.training_only else None

    plain()  # warm-up: first-use costs of the backend
    times: dict[str, list[float]] = {"plain": [], "ours": []}
    for _ in range(args.repeats):
        for name, fn in (("plain", plain), ("ours", ours)):
            start = time.perf_counter()
            training = fn()
            times[name].append(training or time.perf_counter() - start)

    print(
        f"backend={keras.backend.backend()} steps={epochs * steps_per_epoch} "
        f"repeats={args.repeats} schedule={config['schedule']} "
        f"collapse={config['collapse']} measurements={measurements}"
    )
    for name, label in (("plain", "plain model.fit"), ("ours", "recipe run")):
        runs = [round(t, 2) for t in times[name]]
        print(f"{label:16s} median {statistics.median(times[name]):.2f}s  all {runs}")
    ratio = statistics.median(times["ours"]) / statistics.median(times["plain"])
    print(f"overhead ratio ours/plain = {ratio:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
