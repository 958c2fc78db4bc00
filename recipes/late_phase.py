"""The late-phase atlas: every lens of grokking on one time axis of one run.

Trains the modadd MLP once (an embedding MLP with two ReLU layers on a+b mod 97,
40% of pairs for training, AdamW with weight decay 1.0) and watches it through
every lens keras-grok has. Watching costs training almost nothing: the run
measures in line only the accuracy (it steers the adaptive schedule and the
stop) and keeps a checkpoint history (every x``history_ratio`` in steps); every
other lens is measured after training at those checkpoints, restored exactly,
and each event is then located to 1% of its step by exact replay
(``keras_grok.runs.replay``, ``keras_grok.analysis.refine``). The lenses:

- accuracy and loss on the train and test pairs (``GrokkingMonitor``);
- neural collapse of the ``"features"`` layer, RNC1 and NC2 on train and test
  (paper A, Sakamoto & Sato, arXiv 2509.20829);
- the information plane, nHSIC of the features with the input and with the
  label on (a subset of) the test set, and its trajectory (paper A);
- complexity, the compressed size of the coarse-grained weights (paper B,
  DeMoss et al., arXiv 2412.09810);
- the power-law exponent alpha of each weight matrix's spectral density, as
  WeightWatcher fits it (Martin & Mahoney, JMLR 2021);
- Fourier progress measures: the embedding's spectrum (sparsity, Gini), the
  restricted and excluded losses and the squared weight norm (Nanda et al.,
  arXiv 2301.05217).

``figure.png`` stacks every lens's panels on one log-step axis, with the
information-plane trajectory (coloured by step) below; ``summary.json`` gets an
``events`` table read off ``metrics.csv``
(``keras_grok.analysis.events.late_phase_events`` gives the definitions) and
``event_order``, the events that happened, by step.

    keras-grok run recipes/late_phase.py --backend jax
    keras-grok run recipes/late_phase.py --set op=a-b train_fraction=0.5
    keras-grok run recipes/late_phase.py --set regularization=ours
    keras-grok run recipes/late_phase.py --set task=digits

``regularization=ours`` adds paper B's spectral entropy (0.1) and weight noise
(1e-2) to the weight decay. ``task=digits`` is the image counterpart (paper A's
alpha-scaled MLP on scikit-learn's 8x8 digits, offline, weight decay 0.3): the
same lenses but the Fourier ones, which exist for modular addition only.
``model=transformer`` (tokens ``[a, op, b, =]``) works too; the atlas then reads
the transformer's token embedding.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import keras

from keras_grok.analysis.events import event_order, late_phase_events
from keras_grok.callbacks import (
    CollapseMonitor,
    ComplexityMonitor,
    FourierMonitor,
    InformationPlaneMonitor,
    Schedule,
    SpectralDensityMonitor,
    resolve_schedule,
)
from keras_grok.callbacks.information_plane_monitor import min_samples
from keras_grok.data.images import load_images
from keras_grok.data.modular import canonical_operation, modular_dataset
from keras_grok.experiments.config_checks import (
    check_at_most,
    check_choice,
    check_floats,
    check_ints,
    check_model_keys,
    check_modular,
    check_unused_keys,
    modular_sizes,
)
from keras_grok.experiments.cost_checks import check_schedules
from keras_grok.experiments.image_grokking import IMAGE_CONFIG
from keras_grok.models import FEATURES_LAYER
from keras_grok.models.image import build_image_model
from keras_grok.models.modular import build_modular_model
from keras_grok.regularizers import apply_paper_b_regularization
from keras_grok.runs.train_and_record import train_and_record
from keras_grok.utils.random_seed import set_random_seed

CONFIG = {
    "task": "modular",  # "modular" (a op b mod p) or "digits" (paper A's images)
    "p": 97,  # modulus
    "op": "a+b",  # a+b or a-b for the Fourier lens (others: NaN, one warning)
    "train_fraction": 0.4,  # fraction of all pairs used for training
    "model": "mlp",  # "mlp" or "transformer"
    "embed_dim": 128,  # MLP embedding width (transformer: d_model)
    "hidden": 256,  # MLP hidden width
    "depth": 2,  # MLP hidden layers (the last is "features")
    "transformer_layers": 1,
    "causal": False,  # transformer: causal attention mask (paper B: none)
    "learning_rate": 1e-3,
    "weight_decay": 1.0,  # AdamW's decoupled weight decay
    "beta_2": 0.98,
    "batch_size": 512,
    "regularization": "weight_decay",  # or "ours": + spectral entropy and noise
    "spectral_entropy": 0.1,  # "ours": strength on the mean spectral entropy
    "weight_noise": 0.01,  # "ours": weight-noise std
    "max_steps": 12000,  # training steps (rounded up to whole epochs)
    "patience": 3000,  # stop this many steps after generalizing; < 0 trains on
    "schedule": "adaptive",  # accuracy, collapse and Fourier measurements
    "information_schedule": "geometric:2",  # nHSIC: sparse (at history steps)
    "lens_start": 100,  # information and complexity: no measurement before
    "information_size": 500,  # test examples read by nHSIC (at most all)
    "complexity_schedule": "geometric:2",  # complexity: sparse
    "complexity_examples": 512,  # training examples bounding the loss (at most all)
    "complexity_thresholds": [1.0, 0.9, 0.7, 0.5],  # a coarse search
    "epsilon": 0.1,  # complexity: admitted loss increase (nats)
    "key_frequencies": 5,  # Fourier: how many key frequencies
    "threshold": 0.99,  # accuracy that counts as memorized / generalized
    "image_weight_decay": 0.3,  # task=digits: lambda
    "image_max_steps": 20000,  # task=digits: training steps
    "image_test_threshold": 0.85,  # task=digits: test accuracy that generalizes
    "checkpoint_seconds": 10.0,
    "history_ratio": 1.25,  # step growth between kept checkpoints (the lenses')
    "refine": True,  # locate every event to 1% of its step by exact replay
    "seed": 0,
}

TASKS = ("modular", "digits")
REGULARIZATIONS = ("weight_decay", "ours")


def validate(config: dict) -> None:
    """Raises ValueError for a config this recipe cannot run."""
    if not 1.01 <= config["history_ratio"] <= 16:
        raise ValueError(
            "history_ratio must be in [1.01, 16]. "
            f"Received: history_ratio={config['history_ratio']}"
        )
    check_choice(config, "task", TASKS)
    check_choice(config, "regularization", REGULARIZATIONS)
    check_modular(config)
    check_floats(
        config,
        ("spectral_entropy", "weight_noise", "epsilon", "image_weight_decay"),
    )
    check_floats(config, ("image_test_threshold",), allow_minimum=False, maximum=1.0)
    check_ints(
        config,
        (
            "information_size",
            "complexity_examples",
            "key_frequencies",
            "image_max_steps",
            "lens_start",
        ),
    )
    check_ints(config, ("image_max_steps",), maximum=10**9)
    check_ints(config, ("information_size",), minimum=min_samples("nhsic"))
    steps = "max_steps" if config["task"] == "modular" else "image_max_steps"
    check_schedules(
        config, ("schedule", "information_schedule", "complexity_schedule"), steps
    )
    if config["regularization"] == "weight_decay":
        check_unused_keys(
            config,
            CONFIG,
            ("spectral_entropy", "weight_noise"),
            "regularization='weight_decay' adds no spectral entropy or weight noise "
            "(regularization='ours' does)",
        )
    if config["lens_start"] != CONFIG["lens_start"] and (
        config["lens_start"] > config[steps]
    ):
        raise ValueError(
            f"lens_start must be at most {steps}={config[steps]}: the information "
            "and complexity lenses measure from lens_start on. "
            f"Received: lens_start={config['lens_start']}"
        )
    thresholds = config["complexity_thresholds"]
    if (
        not thresholds
        or not all(0 <= t <= 1 for t in thresholds)
        or len(set(thresholds)) < len(thresholds)
    ):
        raise ValueError(
            "complexity_thresholds must list different numbers in [0, 1]. "
            f"Received: complexity_thresholds={thresholds}"
        )
    # A key the task does not read is refused, never silently dropped.
    modular_only = (
        *("p", "op", "train_fraction", "model", "embed_dim", "hidden", "depth"),
        *("transformer_layers", "weight_decay", "beta_2", "batch_size"),
        *("max_steps", "key_frequencies"),
    )
    if config["task"] == "digits":
        check_unused_keys(
            config,
            CONFIG,
            modular_only,
            "task=digits trains paper A's MLP on the digits with the image_* keys",
        )
        split = load_images("digits")
        _check_sizes(config, len(split.y_train), len(split.y_test), "images")
        return
    digits_only = ("image_weight_decay", "image_max_steps", "image_test_threshold")
    check_unused_keys(
        config, CONFIG, digits_only, "task=modular trains on a op b mod p"
    )
    check_model_keys(config, CONFIG)
    canonical_operation(config["op"])
    _check_sizes(config, *modular_sizes(config), "pairs")
    if config["key_frequencies"] > (config["p"] - 1) // 2:
        raise ValueError(
            f"key_frequencies must be <= (p - 1) / 2 = {(config['p'] - 1) // 2}. "
            f"Received: key_frequencies={config['key_frequencies']}"
        )


def _check_sizes(config: dict, train: int, test: int, what: str) -> None:
    """The lenses' example counts fit in the task's sets."""
    check_at_most(config, CONFIG, "information_size", test, f"test {what}")
    check_at_most(config, CONFIG, "complexity_examples", train, f"training {what}")


def _sparse(spec: str, config: dict, settings: dict):
    """A costly lens's schedule: ``spec``'s steps from ``lens_start`` on."""
    schedule = resolve_schedule(spec, settings["max_steps"])
    if not isinstance(schedule, Schedule):
        return spec
    return Schedule(tuple(s for s in schedule.steps if s >= config["lens_start"]))


def _regularized(model: keras.Model, config: dict) -> keras.Model:
    if config["regularization"] != "ours":
        return model
    return apply_paper_b_regularization(
        model, config["spectral_entropy"], config["weight_noise"], config["seed"]
    )


class Task(NamedTuple):
    """What a task of the atlas is built into."""

    model: keras.Model
    train: tuple
    test: tuple
    num_classes: int
    lenses: tuple  # the task's own lenses (the Fourier lens of modular tasks)
    title: str
    settings: dict  # train_and_record's batch size, steps and thresholds


def _modular(config: dict) -> Task:
    layout = "pairs" if config["model"] == "mlp" else "tokens"
    split = modular_dataset(
        config["p"], config["op"], config["train_fraction"], config["seed"], layout
    )
    model = build_modular_model(config, split.vocab_size, split.num_classes)
    train, test = (split.x_train, split.y_train), (split.x_test, split.y_test)
    fourier = FourierMonitor(
        train,
        test,
        p=config["p"],
        op=config["op"],
        num_key_frequencies=config["key_frequencies"],
        schedule=None,  # the run's: reads the outputs of the accuracy's pass
    )
    title = (
        f"{config['op']} mod {config['p']}, {config['model']}, "
        f"{config['train_fraction']:.0%} train, wd {config['weight_decay']:g}"
    )
    settings = dict(
        batch_size=config["batch_size"],
        max_steps=config["max_steps"],
        threshold=config["threshold"],
        test_threshold=config["threshold"],
    )
    return Task(model, train, test, split.num_classes, (fourier,), title, settings)


def _digits(config: dict) -> Task:
    image_config = {
        **IMAGE_CONFIG,
        "dataset": "digits",
        "weight_decay": config["image_weight_decay"],
        "learning_rate": config["learning_rate"],
        "seed": config["seed"],
    }
    split = load_images("digits")
    model = build_image_model(image_config, split.input_shape, split.num_classes)
    train, test = (split.x_train, split.y_train), (split.x_test, split.y_test)
    title = (
        f"digits, mlp (alpha {image_config['init_scale']:g}), "
        f"{len(split.x_train)} train, wd {config['image_weight_decay']:g}"
    )
    settings = dict(
        batch_size=image_config["batch_size"],
        max_steps=config["image_max_steps"],
        threshold=config["threshold"],
        test_threshold=config["image_test_threshold"],
    )
    return Task(model, train, test, split.num_classes, (), title, settings)


def run(config: dict, out_dir: Path, verbose: bool = True) -> dict:
    """Trains the config's model with every lens on and records the run."""
    set_random_seed(config["seed"])
    build = _modular if config["task"] == "modular" else _digits
    task = build(config)
    model = _regularized(task.model, config)
    train, test, classes, settings = (
        task.train,
        task.test,
        task.num_classes,
        task.settings,
    )
    title = task.title
    n, m = config["information_size"], config["complexity_examples"]
    monitors = (
        CollapseMonitor(
            train, test, FEATURES_LAYER, schedule=None, num_classes=classes
        ),
        InformationPlaneMonitor(
            test_data=(test[0][:n], test[1][:n]),
            layer=FEATURES_LAYER,
            estimators="nhsic",
            schedule=_sparse(config["information_schedule"], config, settings),
            num_classes=classes,
            seed=config["seed"],
        ),
        ComplexityMonitor(
            (train[0][:m], train[1][:m]),
            epsilons=(config["epsilon"],),
            schedule=_sparse(config["complexity_schedule"], config, settings),
            thresholds=config["complexity_thresholds"],
        ),
        SpectralDensityMonitor(model, schedule=None),  # cheap: the run's schedule
        *task.lenses,
    )  # measured after the fact, at the checkpoint history: training watches
    # accuracy only (it steers the adaptive schedule and the stop)
    if config["regularization"] == "ours":
        title += ", + spectral entropy, noise"

    def events(rows: list[dict]) -> dict:
        # ``rows``: in-line and replayed rows; ``events`` (each event's step and
        # resolution) comes from train_and_record's refinement.
        found = late_phase_events(
            rows, settings["threshold"], settings["test_threshold"]
        )
        return {"event_order": event_order(found)}

    return train_and_record(
        model,
        train,
        test,
        out_dir,
        schedule=config["schedule"],
        patience=config["patience"] if config["patience"] >= 0 else None,
        checkpoint_seconds=config["checkpoint_seconds"],
        after_the_fact=monitors,
        history_ratio=config["history_ratio"],
        refine=config["refine"],
        verbose=verbose,
        title=title,
        summarize=events,
        **settings,
    )
