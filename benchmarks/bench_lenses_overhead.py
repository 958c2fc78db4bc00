"""Cost of every lens: the late-phase atlas vs. the same run with GrokkingMonitor only.

Both sides train the same model on the same data for the same number of steps, in
one process, alternating, each on a freshly built model and run folder. "Atlas" is
``recipes/late_phase.py``'s ``run`` with its defaults (collapse, information plane,
complexity and Fourier lenses, the events table, the figure with every panel),
trained the full length (``patience=-1``); "grokking only" is
``keras_grok.runs.train_and_record.train_and_record`` with no further monitor (its
GrokkingMonitor, metrics.csv, checkpoints, figure and summary), at the same
schedule. Prints the median time of each, their ratio (target <= 1.5) and the
seconds each lens spent measuring in the atlas runs.

    KERAS_BACKEND=jax python benchmarks/bench_lenses_overhead.py --steps 6000
    KERAS_BACKEND=jax python benchmarks/bench_lenses_overhead.py --set op=a-b

``--set KEY=VALUE`` overrides the recipe's config.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import tempfile
import time
from pathlib import Path

import keras

from keras_grok.callbacks import ScheduledMonitor
from keras_grok.data.modular import modular_dataset
from keras_grok.experiments.recipe import apply_overrides, load_recipe
from keras_grok.models.modular import build_modular_model
from keras_grok.runs.train_and_record import run_settings, train_and_record

RECIPE = Path(__file__).parents[1] / "recipes" / "late_phase.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    args = parser.parse_args()

    recipe = load_recipe(RECIPE)
    config = apply_overrides(recipe.defaults, args.sets)
    config.update(max_steps=args.steps, patience=-1)
    recipe.validate(config)
    layout = "pairs" if config["model"] == "mlp" else "tokens"
    split = modular_dataset(
        config["p"], config["op"], config["train_fraction"], config["seed"], layout
    )

    def grokking_only() -> None:
        keras.utils.set_random_seed(config["seed"])
        model = build_modular_model(config, split.vocab_size, split.num_classes)
        with tempfile.TemporaryDirectory() as out:
            train_and_record(
                model,
                (split.x_train, split.y_train),
                (split.x_test, split.y_test),
                out,
                verbose=False,
                **run_settings(config),
            )

    lens_seconds: dict[str, float] = collections.defaultdict(float)
    lens_counts: collections.Counter = collections.Counter()
    record = ScheduledMonitor.record

    def timed_record(monitor, step, results):
        start = time.perf_counter()
        record(monitor, step, results)
        name = type(monitor).__name__
        lens_seconds[name] += time.perf_counter() - start
        lens_counts[name] += 1

    def atlas() -> None:
        ScheduledMonitor.record = timed_record
        try:
            with tempfile.TemporaryDirectory() as out:
                recipe.run(config, Path(out), verbose=False)
        finally:
            ScheduledMonitor.record = record

    grokking_only()  # warm-up: first-use costs of the backend
    times: dict[str, list[float]] = {"grokking": [], "atlas": []}
    for _ in range(args.repeats):
        for name, fn in (("grokking", grokking_only), ("atlas", atlas)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)

    print(
        f"backend={keras.backend.backend()} steps={config['max_steps']} "
        f"repeats={args.repeats} op={config['op']} "
        f"regularization={config['regularization']}"
    )
    for name, label in (("grokking", "grokking only"), ("atlas", "every lens")):
        runs = [round(t, 1) for t in times[name]]
        print(f"{label:14s} median {statistics.median(times[name]):.1f}s  all {runs}")
    for name in sorted(lens_seconds):
        print(
            f"  {name:28s} {lens_seconds[name] / args.repeats:6.1f}s per run, "
            f"{lens_counts[name] // args.repeats} measurements"
        )
    ratio = statistics.median(times["atlas"]) / statistics.median(times["grokking"])
    print(f"overhead ratio atlas/grokking-only = {ratio:.3f} (target <= 1.5)")


if __name__ == "__main__":
    main()
