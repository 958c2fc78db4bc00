"""Complexity dynamics: rises while memorizing, falls at grokking when regularized.

Paper B (DeMoss et al., *The Complexity Dynamics of Grokking*, arXiv 2412.09810):
the compressed size of the coarse-grained weights (``ComplexityMonitor``) rises while
a network memorizes and, with regularization, falls when it generalizes; without
regularization it stays high. This recipe trains the modadd model twice from the
same initialization and data:

- regularized (paper B's "ours"): AdamW weight decay 1.0, spectral entropy 0.1 on
  the mean over weight matrices, Gaussian weight noise 1e-2;
- unregularized: AdamW weight decay 0, no spectral entropy, no noise.

It writes the two runs' folders, ``runs/regularized/`` and ``runs/unregularized/``
(nested run folders: ``--overwrite`` clears them with the rest), one
``figure.png`` with both complexity curves above both accuracy curves (log step
axis), and ``summary.json`` with each run's peak and final complexity. A rerun
after an interruption reuses a finished run and resumes the other.

    keras-grok run recipes/complexity.py --backend jax
    keras-grok run recipes/complexity.py --set model=transformer p=113 \\
        train_fraction=0.3 learning_rate=1e-3 max_steps=6000

The second line is paper B's transformer setting (on a 2-core CPU, 8-11 minutes
per run with its refinement: ``docs/complexity.md``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras

from keras_grok.callbacks import ComplexityMonitor
from keras_grok.callbacks.complexity_monitor import COMPLEXITY
from keras_grok.callbacks.grokking_monitor import ACCURACY
from keras_grok.data.modular import modular_dataset
from keras_grok.experiments.config_checks import (
    check_at_most,
    check_choice,
    check_distinct,
    check_floats,
    check_ints,
    check_list,
    check_model_keys,
    check_modular,
    modular_sizes,
)
from keras_grok.experiments.cost_checks import check_schedules
from keras_grok.measures import complexity
from keras_grok.models.modular import build_modular_model
from keras_grok.regularizers import apply_paper_b_regularization
from keras_grok.runs.figures import Panel, plot_metrics
from keras_grok.runs.run_folder import RunFolder
from keras_grok.runs.train_and_record import run_settings, train_and_record
from keras_grok.utils.argument_validation import validate_float_arg
from keras_grok.utils.random_seed import set_random_seed

CONFIG = {
    "p": 97,  # modulus
    "op": "a+b",  # a+b, a-b, a*b, a/b, a^2+b^2 or a^2+ab+b^2
    "train_fraction": 0.4,  # fraction of all pairs used for training
    "model": "mlp",  # "mlp" or "transformer"
    "embed_dim": 128,  # MLP embedding width (transformer: d_model)
    "hidden": 256,  # MLP hidden width
    "transformer_layers": 1,
    "causal": False,  # transformer: causal attention mask (paper B: none)
    "learning_rate": 2e-3,  # paper B: 1e-3; the MLP groks in half the steps at 2e-3
    "beta_2": 0.98,
    "batch_size": 512,
    "weight_decay": 1.0,  # regularized run's AdamW weight decay
    "spectral_entropy": 0.1,  # regularized run's strength on the mean entropy
    "weight_noise": 0.01,  # regularized run's weight-noise std
    "unregularized_weight_decay": 0.0,
    "max_steps": 5000,  # both runs train this long
    "schedule": "geometric:1.1",  # accuracy measurements
    "complexity_schedule": "geometric:1.5",  # complexity measurements
    "epsilons": [0.1],  # admitted loss increases (nats); the first is plotted
    "complexity_examples": 1024,  # training examples bounding the loss (at most all)
    "complexity_mode": "global",  # global (paper B) or per_matrix (tighter, ours)
    "threshold": 0.99,  # accuracy that counts as memorized / generalized
    "checkpoint_seconds": 10.0,
    "seed": 0,
}

RUNS = ("regularized", "unregularized")


def validate(config: dict) -> None:
    """Raises ValueError for a config this recipe cannot run."""
    check_modular(config)
    check_model_keys(config, CONFIG)
    check_floats(
        config, ("spectral_entropy", "weight_noise", "unregularized_weight_decay")
    )
    check_list(config, "epsilons", validate_float_arg)
    check_distinct(config, "epsilons")
    check_ints(config, ("complexity_examples",))
    train, _ = modular_sizes(config)
    check_at_most(config, CONFIG, "complexity_examples", train, "training pairs")
    check_schedules(config, ("complexity_schedule",))
    check_choice(config, "complexity_mode", complexity.MODES)


def build(config: dict, regularized: bool, vocab_size: int, num_classes: int):
    """The compiled model of one run: plain, or with spectral entropy and noise."""
    decay = config["weight_decay" if regularized else "unregularized_weight_decay"]
    model = build_modular_model(
        {**config, "weight_decay": decay}, vocab_size, num_classes
    )
    if not regularized:
        return model
    return apply_paper_b_regularization(
        model, config["spectral_entropy"], config["weight_noise"], config["seed"]
    )


def run(config: dict, out_dir: Path, verbose: bool = True) -> dict:
    """Trains the regularized and the unregularized run and compares them."""
    out_dir = Path(out_dir)
    layout = "pairs" if config["model"] == "mlp" else "tokens"
    split = modular_dataset(
        config["p"], config["op"], config["train_fraction"], config["seed"], layout
    )
    n = config["complexity_examples"]
    bound_data = (split.x_train[:n], split.y_train[:n])
    folders = {name: RunFolder(out_dir).child(name) for name in RUNS}
    parent = RunFolder(out_dir).saved_config() or {}
    records = {name: run_record(config, name, parent.get("recipe")) for name in RUNS}
    for name in RUNS:  # both refused before either trains
        folders[name].check_matches(records[name])
    summaries = {}
    for name in RUNS:
        folder = folders[name]
        if folder.is_finished():
            summaries[name] = {
                **folder.read_summary(),
                **complexity_summary(folder.path),
            }
            continue
        set_random_seed(config["seed"])
        model = build(
            config, name == "regularized", split.vocab_size, split.num_classes
        )
        monitor = ComplexityMonitor(
            bound_data,
            config["epsilons"],
            config["complexity_schedule"],
            mode=config["complexity_mode"],
        )
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.write_config(records[name])
        if verbose:
            print(f"{name} run -> {folder.path}")
        summary = train_and_record(
            model,
            (split.x_train, split.y_train),
            (split.x_test, split.y_test),
            folder.path,
            monitors=(monitor,),
            verbose=verbose,
            title=f"{name}: {config['op']} mod {config['p']}",
            **run_settings(config),
        )
        summaries[name] = {**summary, **complexity_summary(folder.path)}
    records = merged_records(out_dir)
    plot_metrics(
        records,
        RunFolder(out_dir).figure,
        (_both(COMPLEXITY), _both(ACCURACY)),
        title=f"{config['op']} mod {config['p']}, {config['model']}: "
        "regularized vs unregularized",
    )
    summary = {
        **{f"{name}_{k}": v for name, s in summaries.items() for k, v in s.items()},
        "wall_time_s": sum(s["wall_time_s"] for s in summaries.values()),
        "final_test_accuracy": summaries["regularized"]["final_test_accuracy"],
        "memorized_at": summaries["regularized"]["memorized_at"],
        "generalized_at": summaries["regularized"]["generalized_at"],
    }
    RunFolder(out_dir).write_summary(summary)
    if verbose:
        print(closing_note(summaries))
    return summary


def run_record(config: dict, name: str, recipe: str | None) -> dict:
    """What the ``config.json`` of run ``name`` records: the recipe file (as the
    parent folder's ``config.json`` names it), the backend, the seed and the
    config with the run's name."""
    return {
        "recipe": recipe,
        "backend": keras.backend.backend(),
        "seed": config["seed"],
        "config": json.loads(json.dumps({**config, "run": name})),
    }


def _both(panel: Panel) -> Panel:
    keys = tuple(f"{run}_{key}" for run in RUNS for key in panel.keys)
    return Panel(panel.label, keys, panel.log_y, panel.limits)


def complexity_summary(folder: Path) -> dict:
    """Peak and final complexity of one run, from its metrics.csv."""
    rows = [
        r
        for r in RunFolder(folder).read_metrics()
        if math.isfinite(r.get("complexity_bits", math.nan))
    ]
    if not rows:
        return {}
    peak = max(rows, key=lambda r: r["complexity_bits"])
    final = rows[-1]
    return {
        "peak_complexity_bits": peak["complexity_bits"],
        "peak_complexity_step": peak["step"],
        "final_complexity_bits": final["complexity_bits"],
        "peak_over_final": peak["complexity_bits"] / final["complexity_bits"],
        "final_naive_bits": final["naive_bits"],
        "final_compression_ratio": final["compression_ratio"],
    }


def merged_records(out_dir: Path) -> list[dict]:
    """Both runs' metrics by step, keys prefixed with the run's name."""
    merged: dict[int, dict] = {}
    for name in RUNS:
        for row in RunFolder(out_dir).child(name).read_metrics():
            entry = merged.setdefault(row["step"], {"step": row["step"]})
            entry.update({f"{name}_{k}": v for k, v in row.items() if k != "step"})
    return [merged[s] for s in sorted(merged)]


def closing_note(summaries: dict) -> str:
    lines = []
    for name, s in summaries.items():
        lines.append(
            f"{name}: complexity peak {s.get('peak_complexity_bits', math.nan):.0f} "
            f"bits at step {s.get('peak_complexity_step')}, final "
            f"{s.get('final_complexity_bits', math.nan):.0f} bits "
            f"(peak/final {s.get('peak_over_final', math.nan):.2f}); "
            f"generalized_at={s['generalized_at']}, "
            f"test accuracy {s['final_test_accuracy']:.3f}"
        )
    return "\n".join(lines)
