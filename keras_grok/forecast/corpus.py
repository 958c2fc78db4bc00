"""The forecast's corpus: runs of known outcome that the forecaster is fitted on.

One definition, in the repository, so that anyone regenerates the same corpus
(``keras-grok run recipes/forecast_corpus.py``): modular arithmetic with the
embedding MLP of ``recipes/modadd.py`` (a+b, a-b and a*b mod 97; several train
fractions, weight decays and learning rates, three seeds; the weakest weight decay
does not generalize within the step budget) and scikit-learn's 8x8 digits with
``recipes/mnist.py`` (paper A's MLP, four weight decays, three seeds; the weakest
does not generalize within the budget). Every run is a ``keras-grok run`` process
with its own run folder, through the sweep executors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from keras_grok.data.modular import canonical_operation
from keras_grok.experiments.image_grokking import IMAGE_CONFIG, IMAGE_RECIPE
from keras_grok.experiments.recipe import load_recipe
from keras_grok.forecast.evaluation import RunRecord
from keras_grok.runs.run_folder import RunFolder
from keras_grok.sweeps.sweep import SweepRun, cli_command
from keras_grok.utils.argument_validation import validate_choice_arg, validate_seed

MODULAR_RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "modadd.py"
"""The recipe of the corpus's modular runs, in the source checkout of this package."""

MODULAR_OPS = ("a+b", "a-b", "a*b")
MODULAR_SETTINGS = (  # (train_fraction, weight_decay, learning_rate)
    (0.4, 1.0, 1e-3),  # modadd's default
    (0.3, 1.0, 1e-3),
    (0.5, 1.0, 1e-3),
    (0.4, 0.5, 1e-3),
    (0.4, 1.0, 2e-3),
    (0.4, 0.2, 1e-3),  # lr x wd five times smaller: not within the budget
)
MODULAR_FIXED = {"max_steps": 12000, "patience": 200, "refine": False}
DIGITS_WEIGHT_DECAYS = (1.0, 0.3, 0.1, 0.03)  # 0.03 does not generalize by 20k
DIGITS_FIXED = {"dataset": "digits", "max_steps": 20000}
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class CorpusRun:
    """One run of the corpus: its family, task, settings and seed."""

    family: str  # "modular" or "digits"
    task: str  # the operation ("a+b", ...) or the data set ("digits")
    settings: dict  # the recipe keys it sets (seed aside)
    seed: int

    @property
    def name(self) -> str:
        keys = {"train_fraction": "tf", "weight_decay": "wd", "learning_rate": "lr"}
        parts = [
            f"{short}{self.settings[key]:g}"
            for key, short in keys.items()
            if key in self.settings
        ]
        task = self.task.replace("*", "x").replace("+", "p").replace("-", "m")
        return "-".join([self.family, task, *parts, f"s{self.seed}"])

    @property
    def recipe(self) -> Path:
        return MODULAR_RECIPE if self.family == "modular" else IMAGE_RECIPE

    @property
    def budget(self) -> int:
        return int(self.settings["max_steps"])

    @property
    def learning_rate(self) -> float:
        return float(self.settings.get("learning_rate", IMAGE_CONFIG["learning_rate"]))

    @property
    def weight_decay(self) -> float:
        return float(self.settings["weight_decay"])


def corpus_runs(
    ops: Sequence[str] = MODULAR_OPS, seeds: Sequence[int] = SEEDS
) -> list[CorpusRun]:
    """Every run of the corpus: modular ``ops`` x settings x seeds, then digits.

    Args:
        ops: distinct operations of ``keras_grok.data.modular.OPERATIONS`` (or
            their aliases); may be empty (digits runs only).
            Defaults to `MODULAR_OPS`.
        seeds: one or more distinct seeds, integers in ``[0, 2**32 - 1]``.
            Defaults to `SEEDS`.

    Raises:
        TypeError: ``ops`` or ``seeds`` not a sequence (a string is not one).
        ValueError: an unknown operation, a bad seed, no seed, or a value
            listed twice (its runs would share a folder).
    """
    for name, values in (("ops", ops), ("seeds", seeds)):
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(f"{name} must be a list. Received: {name}={values!r}")
    for op in ops:
        canonical_operation(op)
    if not seeds:
        raise ValueError(
            f"seeds must list one or more seeds. Received: seeds={seeds!r}"
        )
    for seed in seeds:
        if validate_seed(seed, "seeds") is None:
            raise ValueError(f"seeds must hold integers. Received: seeds={seeds!r}")
    canonical = [canonical_operation(op) for op in ops]
    for name, values in (("ops", canonical), ("seeds", [int(s) for s in seeds])):
        if len(set(values)) != len(values):
            raise ValueError(
                f"{name} must list distinct values. Received: "
                f"{name}={ops if name == 'ops' else seeds!r}"
            )
    runs = []
    for op in ops:
        for train_fraction, weight_decay, learning_rate in MODULAR_SETTINGS:
            for seed in seeds:
                settings = {
                    "op": op,
                    "train_fraction": train_fraction,
                    "weight_decay": weight_decay,
                    "learning_rate": learning_rate,
                    **MODULAR_FIXED,
                }
                runs.append(CorpusRun("modular", op, settings, seed))
    for weight_decay in DIGITS_WEIGHT_DECAYS:
        for seed in seeds:
            settings = {"weight_decay": weight_decay, **DIGITS_FIXED}
            runs.append(CorpusRun("digits", "digits", settings, seed))
    return runs


def recipe_defaults() -> dict:
    """Each family's recipe ``CONFIG`` (the modular recipe's read from its file)."""
    return {
        "modular": load_recipe(MODULAR_RECIPE).defaults,
        "digits": dict(IMAGE_CONFIG),
    }


def sweep_runs(
    runs: Sequence[CorpusRun],
    out_dir: Path,
    backend: str,
    defaults: dict | None = None,
) -> list[SweepRun]:
    """The ``keras-grok run`` processes of ``runs``, in ``out_dir/runs/NAME``.

    ``defaults`` maps each family to its recipe's ``CONFIG`` (None:
    ``recipe_defaults()``): a folder is reused only if it holds a run of exactly
    that config with the run's settings.
    """
    validate_choice_arg(backend, "backend", ("jax", "tensorflow", "torch"))
    defaults = recipe_defaults() if defaults is None else defaults
    planned = []
    for run in runs:
        folder = RunFolder(out_dir).child(run.name).path
        command = cli_command(run.recipe, folder, backend, run.seed, run.settings)
        expected = {**defaults[run.family], **run.settings, "seed": run.seed}
        planned.append(SweepRun(run.seed, run.seed, folder, command, backend, expected))
    return planned


def outcome(run: CorpusRun, folder: Path) -> dict:
    """A finished run's row of the corpus table: settings and known outcome.

    ``generalized_at`` is None for a run that did not generalize within its
    budget (``max_steps``); ``memorized_at`` likewise.
    """
    summary = RunFolder(Path(folder)).read_summary() or {}
    return {
        "name": run.name,
        "family": run.family,
        "task": run.task,
        "seed": run.seed,
        "train_fraction": run.settings.get("train_fraction"),
        "weight_decay": run.weight_decay,
        "learning_rate": run.learning_rate,
        "budget": run.budget,
        "memorized_at": summary.get("memorized_at"),
        "generalized_at": summary.get("generalized_at"),
    }


def finished_records(runs: Sequence[CorpusRun], out_dir: Path) -> list[RunRecord]:
    """The finished runs of ``runs`` in ``out_dir``, rows and outcome read back."""
    records = []
    for run in runs:
        folder = RunFolder(out_dir).child(run.name)
        if not folder.is_finished():
            continue
        summary = folder.read_summary() or {}
        records.append(
            RunRecord(
                name=run.name,
                family=run.family,
                task=run.task,
                seed=run.seed,
                learning_rate=run.learning_rate,
                weight_decay=run.weight_decay,
                budget=run.budget,
                generalized_at=summary.get("generalized_at"),
                rows=folder.read_metrics(),
                threshold=float(summary.get("threshold", 0.99)),
                test_threshold=float(summary.get("test_threshold", 0.99)),
            )
        )
    return records
