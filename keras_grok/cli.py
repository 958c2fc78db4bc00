"""The ``keras-grok`` command: run a recipe on a chosen Keras backend.

``KERAS_BACKEND`` must be set before Keras is first imported, so this module imports
nothing that imports Keras until the backend is chosen and checked.
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from pathlib import Path

import click

from keras_grok.experiments.recipe import (
    RecipeError,
    RecipeFault,
    apply_overrides,
    load_recipe,
)
from keras_grok.process_setup import (
    check_devices_start,
    choose_backend,
    limit_threads,
    package_versions,
)
from keras_grok.stop_signals import STOP_SIGNALS, Terminated, raise_on_stop_signals
from keras_grok.utils.standard_output import guard_standard_output

MAX_SEED = 2**32 - 1  # NumPy's global seed (keras.utils.set_random_seed) is 32-bit


class _Verbs(click.Group):
    """The verbs; a recipe file given without one is pointed to ``run``."""

    def resolve_command(self, ctx, args):
        if args and args[0].endswith(".py") and args[0] not in self.commands:
            raise click.UsageError(
                f"{args[0]!r} is not a command; to run a recipe: keras-grok run "
                f"{args[0]} [KEY=VALUE]...",
                ctx,
            )
        return super().resolve_command(ctx, args)


@click.group(cls=_Verbs, invoke_without_command=True)
@click.version_option(package_name="keras-grok")
@click.pass_context
def main(ctx: click.Context) -> None:
    """keras-grok: watch grokking, neural collapse and complexity dynamics."""
    guard_standard_output()  # a closed or full stdout must not stop a run
    if ctx.invoked_subcommand is None:  # no verb: the help, as --help gives it
        click.echo(ctx.get_help())


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
    Exit codes: 2 for a refused command (nothing trained), 1 for a fault while
    running (a full disk, say: rerun to resume), 128 + the signal when stopped
    (143 for SIGTERM, 130 for Ctrl-C, 129 for SIGHUP).
    """
    from keras_grok.runs.run_folder import RunFolderError  # imports no Keras

    limit_threads(threads)
    try:
        with raise_on_stop_signals():
            _run(recipe, [*sets, *overrides], backend, out, seed, overwrite)
    except (RecipeError, RunFolderError) as error:
        _fail(f"Error: {error}", 2)
    except RecipeFault as error:
        _fail(f"Error: {error}", 1)
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        _fail(
            f"Error: {error.strerror or error}{where}; free space or fix the file, "
            "then rerun the same command to resume from the last checkpoint",
            1,
        )
    except Terminated as stop:
        _fail(
            f"Error: {STOP_SIGNALS[stop.signum]}: the run stopped (a sweep ends its "
            "runs first); rerun the same command to resume from the last checkpoint",
            128 + stop.signum,
        )


def _os_error(error: OSError) -> str:
    where = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror or error}{where}"


def _fail(line: str, code: int) -> None:
    click.echo(line, err=True)
    sys.exit(code)


def _run(recipe_path, overrides, backend, out, seed, overwrite) -> None:
    backend = choose_backend(backend)
    recipe = load_recipe(recipe_path)

    config = apply_overrides(recipe.defaults, overrides)
    if seed is not None and "seed" not in recipe.defaults:
        raise RecipeError(
            f"--seed: {recipe.name} has no seed of its own (its runs fix theirs); "
            f"leave --seed out. Received: --seed {seed}"
        )
    if seed is not None:
        try:
            config["seed"] = int(seed)
        except ValueError:
            raise RecipeError(f"--seed {seed}: expected an integer") from None
        if not 0 <= config["seed"] <= MAX_SEED:
            raise RecipeError(
                f"--seed must be an integer in [0, {MAX_SEED}]. Received: --seed {seed}"
            )
    if out is not None and not out.strip():
        raise RecipeError(f"--out must name a folder. Received: --out {out!r}")
    # Every value is checked before the run folder is created or touched.
    recipe.check(config)
    check_devices_start(backend)

    from keras_grok.runs.run_folder import RunFolder, RunFolderError

    path = Path(out) if out else Path("runs") / f"{recipe.name}-{backend}"
    if ".." in path.parts:  # after a symlink, ".." is its target's parent: the
        path = path.resolve()  # kernel's reading, used for every file alike
    folder = RunFolder(path)
    try:
        created = not folder.path.exists()
    except OSError as error:  # a name too long, say
        raise RecipeError(
            f"--out cannot be a folder here: {error.strerror or error}. "
            f"Received: --out {str(folder.path)[:80]!r}"
        ) from None
    _check_writable(folder.path)
    record = {
        "recipe": str(recipe.path.resolve()),
        "backend": backend,
        "seed": config.get("seed"),
        "config": json.loads(json.dumps(config)),
    }
    try:
        with folder.lock():
            if overwrite:
                folder.clear()
            else:
                folder.check_resumable(record)
            record["versions"] = package_versions()
            folder.write_config(record)
            click.echo(f"{recipe.name} on {backend} -> {folder.path}")
            try:
                summary = recipe.run(config, folder.path)
            except (RecipeError, ValueError, TypeError) as error:
                # Refused before training wrote anything: leave no trace, so
                # the corrected command is not refused as "another config".
                folder.discard_if_untrained()
                if isinstance(error, (RecipeError, RunFolderError)):
                    raise
                raise RecipeError(
                    f"{recipe.name}: {error} ({type(error).__name__} at "
                    f"{_origin(error)})"
                ) from error
            except (OSError, RecipeFault):
                raise  # a full disk, say: one line, resumable (see ``run``)
            except Exception as error:
                # A fault of the recipe's own code: its traceback, then one line.
                traceback.print_exc()
                raise RecipeFault(
                    f"{recipe.name}'s run() raised {type(error).__name__} at "
                    f"{_origin(error)} (traceback above): {error}; rerun the same "
                    "command to resume from the last checkpoint"
                ) from error
    finally:
        if created:
            _remove_if_empty(folder.path)
    if not isinstance(summary, dict):
        raise RecipeError(
            f"{recipe.path} is not a recipe: its run() must return the summary "
            f"dict. Received: {type(summary).__name__}"
        )
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


def _origin(error: BaseException) -> str:
    # Where an exception was raised: the file and line of its last frame.
    frames = traceback.extract_tb(error.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"


def _remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):  # it holds the run: keep it
        path.rmdir()


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


@main.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dir")
@click.option(
    "--lens",
    "lenses",
    default="collapse",
    show_default=True,
    help="Comma-separated lenses: accuracy, collapse, fourier, information, "
    "complexity (accuracy is always measured).",
)
@click.option(
    "--steps",
    required=True,
    help="START:STOP:STRIDE (STOP included), a list A,B,C, or one step N.",
)
@click.option(
    "--key-frequencies",
    type=click.Choice(["final", "per_step", "recorded"]),
    default="final",
    show_default=True,
    help="Fourier lens: the final model's key frequencies at every step (Nanda "
    "et al.'s protocol), re-picked at each step, or as the run's own Fourier "
    "monitor measured them.",
)
@click.option(
    "--name",
    default=None,
    help="The replay file's name (RUN_DIR/replays/NAME.csv). Default: the lenses. "
    "Named replays of one run can run side by side.",
)
def measure(run_dir, lenses, steps, key_frequencies, name) -> None:
    """Measures lenses of the run in RUN_DIR after the fact, by exact replay.

    Restores the run's checkpoint at or before each step, retrains on the run's
    own batches and measures there; results go to RUN_DIR/replays/LENSES.csv.
    Rerunning after a crash measures only the missing steps.
    """
    from keras_grok.runs.run_folder import RunFolder, RunFolderError

    limit_threads(None)
    try:
        folder = RunFolder(Path(run_dir))
        record = folder.saved_config()
        if record is None:
            raise RecipeError(f"{folder.path} has no config.json: not a run folder")
        check_devices_start(choose_backend(record.get("backend")))
        from keras_grok.runs.replay import measure_run
        from keras_grok.runs.step_spec import parse_steps

        names = [name.strip() for name in lenses.split(",") if name.strip()]
        rows = measure_run(
            folder.path,
            names,
            parse_steps(steps),
            key_frequencies,
            verbose=True,
            name=name,
        )
    except (RecipeError, RunFolderError, ValueError) as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    except OSError as error:
        _fail(f"Error: {_os_error(error)}", 1)
    click.echo(f"{len(rows)} steps measured in {folder.path}")


@main.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dir")
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Replay jobs at once (local processes).",
)
@click.option(
    "--ray-address",
    default=None,
    help="Run the replay jobs on Ray instead: '' starts a local instance, 'auto' "
    "or host:port joins a cluster (every node must see RUN_DIR).",
)
def refine(run_dir, parallel, ray_address) -> None:
    """Locates every event of the finished run in RUN_DIR to 1% of its step.

    The replays run as jobs side by side (one per lens a round); prints the
    events table as JSON (each event's step, resolution, in-line step and lens).
    """
    from keras_grok.runs.run_folder import RunFolder, RunFolderError

    limit_threads(None)
    try:
        record = RunFolder(Path(run_dir)).saved_config()
        if record is None:
            raise RecipeError(f"{run_dir} has no config.json: not a run folder")
        choose_backend(record.get("backend"))
        from keras_grok.sweeps.executors import ProcessExecutor, RayExecutor
        from keras_grok.sweeps.fan_out import refine_run

        executor = (
            ProcessExecutor(parallel)
            if ray_address is None
            else RayExecutor(address=ray_address)
        )
        table = refine_run(run_dir, executor, log=lambda line: click.echo(line))
    except (RecipeError, RunFolderError, ValueError) as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    except OSError as error:
        _fail(f"Error: {_os_error(error)}", 1)
    click.echo(json.dumps(table, indent=2, sort_keys=True))


@main.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dir")
@click.option(
    "--step",
    type=click.IntRange(min=1),
    default=None,
    help="Forecast as of this step (default: the run's last measured step).",
)
@click.option(
    "--budget",
    type=click.IntRange(min=1),
    default=None,
    help="Step budget of the probability (default: the run's max_steps).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the forecast as JSON.")
def forecast(run_dir, step, budget, as_json) -> None:
    """Forecasts when the run in RUN_DIR (finished or not) generalizes.

    Prints the median step, the 80% interval and the probability of generalizing
    within the budget, from the rows measured so far (keras_grok.forecast).
    """
    from keras_grok.forecast import forecast_run
    from keras_grok.runs.run_folder import RunFolderError

    try:
        result = forecast_run(run_dir, step=step, budget=budget)
    except (RunFolderError, ValueError, TypeError) as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    except OSError as error:
        _fail(f"Error: {_os_error(error)}", 1)
    if as_json:
        click.echo(json.dumps(result.__dict__, indent=2, sort_keys=True))
        return
    if result.low == result.high == result.generalized_at:
        click.echo(
            f"step {result.step}: generalized at step {result.generalized_at:.0f} "
            "(measured)"
        )
        return
    line = (
        f"step {result.step}: generalized_at forecast {result.generalized_at:,.0f} "
        f"(80% interval {result.low:,.0f} - {result.high:,.0f})"
    )
    if result.probability is not None:
        line += f"; P(generalized by step {result.budget:,}) = {result.probability:.2f}"
    click.echo(line)


if __name__ == "__main__":
    main()
