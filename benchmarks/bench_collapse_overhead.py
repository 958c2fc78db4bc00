"""Overhead of CollapseMonitor in the modadd recipe: recipe run with vs. without it.

Both sides run the recipe's ``run`` with its default config (CollapseMonitor on
train and test at the recipe's schedule) for the same number of steps, in one
process, alternating, each on a fresh model and run folder; "without" sets
``collapse=False``. Training runs the full length (``patience=-1``). Prints the
median time of each and their ratio (target <= 1.10).

    KERAS_BACKEND=jax python benchmarks/bench_collapse_overhead.py --steps 4000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import keras

from keras_grok.recipe import load_recipe

RECIPE = Path(__file__).parents[1] / "recipes" / "modadd.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    recipe = load_recipe(RECIPE)
    base = {**recipe.defaults, "max_steps": args.steps, "patience": -1}

    def run(collapse: bool) -> float:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            recipe.module.run({**base, "collapse": collapse}, Path(out), verbose=False)
            return time.perf_counter() - start

    run(True)  # warm-up: first-use and compilation costs of the backend
    times: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(args.repeats):
        for name in ("without", "with"):
            times[name].append(run(name == "with"))

    print(
        f"backend={keras.backend.backend()} steps={args.steps} repeats={args.repeats}"
    )
    for name in ("without", "with"):
        runs = [round(t, 2) for t in times[name]]
        print(
            f"{name:8s} CollapseMonitor median {statistics.median(times[name]):.2f}s"
            f"  all {runs}"
        )
    ratio = statistics.median(times["with"]) / statistics.median(times["without"])
    print(f"overhead ratio with/without = {ratio:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
