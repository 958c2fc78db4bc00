"""What a user waits for: ``keras-grok run recipes/modadd.py`` vs. a plain script.

Runs, as whole processes, alternating: the recipe with its defaults for a fixed
number of steps (``--set patience=-1 max_steps=N``) and ``plain_modadd.py`` (the
same model and data, ``model.fit`` only) for the same steps. Process start,
imports, compilation, measuring, figure and summary all count. Prints the median
of each and their ratio (target <= 1.15).

    python benchmarks/bench_modadd_process.py --backend jax --steps 4500
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--steps", type=int, default=4500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "KERAS_BACKEND": args.backend}

    def timed(command: list[str]) -> float:
        start = time.perf_counter()
        subprocess.run(command, check=True, env=env, capture_output=True)
        return time.perf_counter() - start

    def ours() -> float:
        with tempfile.TemporaryDirectory() as out:
            return timed(
                [
                    sys.executable,
                    "-m",
                    "keras_grok.cli",
                    "run",
                    str(ROOT / "recipes" / "modadd.py"),
                    "--backend",
                    args.backend,
                    "--out",
                    out,
                    "--set",
                    "patience=-1",
                    "--set",
                    f"max_steps={args.steps}",
                ]
            )

    def plain() -> float:
        script = ROOT / "benchmarks" / "plain_modadd.py"
        return timed([sys.executable, str(script), "--steps", str(args.steps)])

    times: dict[str, list[float]] = {"plain": [], "ours": []}
    for _ in range(args.repeats):
        times["plain"].append(plain())
        times["ours"].append(ours())
    print(f"backend={args.backend} steps={args.steps} repeats={args.repeats}")
    for name in ("plain", "ours"):
        runs = [round(t, 1) for t in times[name]]
        print(f"{name:6s} median {statistics.median(times[name]):.1f}s  all {runs}")
    ratio = statistics.median(times["ours"]) / statistics.median(times["plain"])
    print(f"process ratio ours/plain = {ratio:.3f} (target <= 1.15)")


if __name__ == "__main__":
    main()
