"""The ``keras-grok`` command: run a recipe on a chosen Keras backend.

``KERAS_BACKEND`` must be set before Keras is first imported, so this module imports
nothing that imports Keras until the backend is chosen and checked.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from pathlib import Path

import click

from keras_grok.experiments.recipe import RecipeError, apply_overrides, load_recipe

BACKENDS = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}
INSTALL_HINTS = {
    "jax": "pip install jax",
    "tensorflow": "pip install tensorflow-cpu",
    "torch": "pip install 'keras-grok[torch]' (on a CPU-only machine: torch==2.13.0)",
}
VERSIONED_PACKAGES = ("keras", "numpy", "jax", "tensorflow-cpu", "tensorflow", "torch")
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@click.group()
@click.version_option(package_name="keras-grok")
def main() -> None:
    """keras-grok: watch grokking, neural collapse and complexity dynamics."""


@main.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("recipe")
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option(
    "--backend",
    default=None,
    help="jax, tensorflow or torch. Defaults to $KERAS_BACKEND, else jax.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value (repeatable; further KEY=VALUE words also count).",
)
@click.option(
    "--out", default=None, help="Run folder. Defaults to runs/RECIPE-BACKEND."
)
@click.option("--seed", default=None, help="Random seed (overrides the config's seed).")
@click.option("--overwrite", is_flag=True, help="Replace a finished run in --out.")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Threads of the BLAS/LAPACK and OpenMP pools (OPENBLAS_NUM_THREADS, "
    "OMP_NUM_THREADS, MKL_NUM_THREADS). Default: those variables as set, and "
    "one OpenBLAS thread where OPENBLAS_NUM_THREADS is unset.",
)
def run(recipe, overrides, backend, sets, out, seed, overwrite, threads) -> None:
    """Runs RECIPE (a recipe file such as recipes/modadd.py) and records it in --out.

    Rerunning the same command after a crash resumes from the last checkpoint.
    """
    from keras_grok.runs.run_folder import RunFolderError  # imports no Keras

    limit_threads(threads)
    try:
        _run(recipe, [*sets, *overrides], backend, out, seed, overwrite)
    except (RecipeError, RunFolderError) as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)


def _run(recipe_path, overrides, backend, out, seed, overwrite) -> None:
    backend = _choose_backend(backend)
    recipe = load_recipe(recipe_path)

    config = apply_overrides(recipe.defaults, overrides)
    if seed is not None:
        try:
            config["seed"] = int(seed)
        except ValueError:
            raise RecipeError(f"--seed {seed}: expected an integer") from None
        if config["seed"] < 0:
            raise RecipeError(
                f"--seed must be an integer >= 0. Received: --seed {seed}"
            )
    # Every value is checked before the run folder is created or touched.
    recipe.check(config)

    from keras_grok.runs.run_folder import RunFolder

    folder = RunFolder(Path(out) if out else Path("runs") / f"{recipe.name}-{backend}")
    _check_writable(folder.path)
    record = {
        "recipe": str(recipe.path),
        "backend": backend,
        "seed": config.get("seed"),
        "config": json.loads(json.dumps(config)),
    }
    with folder.lock():
        _admit(folder, record, overwrite)
        record["versions"] = _versions()
        folder.write_config(record)
        click.echo(f"{recipe.name} on {backend} -> {folder.path}")
        summary = recipe.run(config, folder.path)
    click.echo(
        f"memorized_at={summary.get('memorized_at')} "
        f"generalized_at={summary.get('generalized_at')} "
        f"test_accuracy={summary.get('final_test_accuracy')} "
        f"wall_time={summary.get('wall_time_s', float('nan')):.1f}s"
    )
    if summary.get("diverged_at") is not None:
        click.echo(
            f"Warning: the loss became non-finite at step {summary['diverged_at']}; "
            "training stopped there (try a smaller learning rate)",
            err=True,
        )


def limit_threads(threads: int | None) -> None:
    """Sizes the BLAS/LAPACK and OpenMP pools before NumPy or a backend loads.

    ``threads`` sets every variable of ``THREAD_VARIABLES``. None leaves them as
    the environment sets them, except an unset ``OPENBLAS_NUM_THREADS``, which
    becomes 1: on a 2-core CPU, OpenBLAS's threads (behind NumPy and JAX's CPU
    linear algebra) contended with XLA's, and the complexity recipe's
    regularized step (float64 eigendecompositions) took 33-39 ms with the
    default pool against 20-25 ms with one thread; paper B's transformer step
    132.8 against 60.7 ms. torch and TensorFlow do their linear algebra in MKL
    and Eigen, whose pools this leaves alone (torch's step was 2.5x faster with
    its two default threads than with one, on a quiet machine). Without effect
    once NumPy is loaded in this process.
    """
    if threads is None:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        return
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)


def _choose_backend(backend: str | None) -> str:
    if backend is None:
        backend = os.environ.get("KERAS_BACKEND") or "jax"
    if backend not in BACKENDS:
        raise RecipeError(
            f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}"
        )
    if importlib.util.find_spec(BACKENDS[backend]) is None:
        raise RecipeError(
            f"backend {backend!r} is not installed; install it with: "
            f"{INSTALL_HINTS[backend]}"
        )
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != backend:
        raise RecipeError(
            f"Keras is already imported with backend {keras.backend.backend()!r} in "
            f"this process; run keras-grok in a new process to use {backend!r}"
        )
    os.environ["KERAS_BACKEND"] = backend
    return backend


def _check_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".keras-grok-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise RecipeError(
            f"cannot write to --out {path}: {error.strerror or error}"
        ) from None


def _admit(folder, record: dict, overwrite: bool) -> None:
    if overwrite:
        folder.clear()
        return
    if folder.is_finished():
        raise RecipeError(
            f"{folder.path} already holds a finished run; pass --overwrite to "
            "replace it or choose another --out"
        )
    saved = folder.saved_config()
    if saved is not None:
        changed = [k for k in record if saved.get(k) != record[k]]
        if changed:
            raise RecipeError(
                f"{folder.path} holds an unfinished run with another "
                f"{', '.join(changed)}; rerun with the same settings to resume, "
                "pass --overwrite to start over, or choose another --out"
            )


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("keras-grok", *VERSIONED_PACKAGES):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


if __name__ == "__main__":
    main()
