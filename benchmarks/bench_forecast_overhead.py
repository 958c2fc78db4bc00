"""Cost of ForecastMonitor: the modadd recipe with and without ``forecast=true``.

Three arms alternate in one process, each on a freshly built model, the same
steps: a plain ``model.fit`` (no callbacks), the recipe's training with its
default monitors, and the same with ``forecast=true``. Prints the median training
time of each (the summary's ``wall_time_s``), the difference forecast - default
as a share of the plain fit, and the time spent inside ``ForecastMonitor.measure``
(timed around every call) as a share of the plain fit (target <= 2%).

    KERAS_BACKEND=jax python benchmarks/bench_forecast_overhead.py --steps 4500
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import keras

from keras_grok.callbacks import ForecastMonitor
from keras_grok.data.modular import modular_dataset
from keras_grok.experiments.recipe import apply_overrides, load_recipe
from keras_grok.models.modular import build_modular_model

RECIPE = Path(__file__).parents[1] / "recipes" / "modadd.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", dest="sets", nargs="+", action="extend", default=[])
    args = parser.parse_args()

    recipe = load_recipe(RECIPE)
    config = apply_overrides(recipe.defaults, args.sets)
    config.update(max_steps=args.steps, patience=-1, refine=False)
    split = modular_dataset(config["p"], config["op"], config["train_fraction"])
    steps_per_epoch = math.ceil(len(split.x_train) / config["batch_size"])
    epochs = math.ceil(args.steps / steps_per_epoch)

    inside = {"seconds": 0.0, "calls": 0}
    measure = ForecastMonitor.measure

    def timed(self, step, results):
        start = time.perf_counter()
        try:
            return measure(self, step, results)
        finally:
            inside["seconds"] += time.perf_counter() - start
            inside["calls"] += 1

    ForecastMonitor.measure = timed

    def plain() -> float:
        keras.utils.set_random_seed(config["seed"])
        model = build_modular_model(config, split.vocab_size, split.num_classes)
        start = time.perf_counter()
        model.fit(
            split.x_train,
            split.y_train,
            batch_size=config["batch_size"],
            epochs=epochs,
            verbose=0,
        )
        return time.perf_counter() - start

    def run(forecast: bool):
        def train() -> float:
            with tempfile.TemporaryDirectory() as out:
                summary = recipe.run({**config, "forecast": forecast}, Path(out), False)
            return summary["wall_time_s"]

        return train

    arms = {"plain": plain, "default": run(False), "forecast": run(True)}
    plain()  # warm-up: first-use costs of the backend
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(args.repeats):
        for name, arm in arms.items():
            times[name].append(arm())
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"backend={keras.backend.backend()} steps={epochs * steps_per_epoch} "
        f"repeats={args.repeats}"
    )
    for name, values in times.items():
        runs = [round(t, 2) for t in values]
        print(f"{name:9s} median {medians[name]:.2f}s  all {runs}")
    extra = (medians["forecast"] - medians["default"]) / medians["plain"]
    print(f"(forecast - default) / plain = {extra:+.2%}")
    per_run = inside["seconds"] / args.repeats
    print(
        f"inside ForecastMonitor.measure: {per_run * 1e3:.1f} ms per run "
        f"({inside['calls'] // args.repeats} calls) = "
        f"{per_run / medians['plain']:.2%} of the plain fit (target <= 2%)"
    )


if __name__ == "__main__":
    main()
