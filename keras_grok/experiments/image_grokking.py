"""Paper A's image grokking experiment: config, checks and one recorded run.

Sakamoto & Sato (arXiv 2509.20829), following Omnigrok (Liu et al., 2023), train
an MLP whose initial parameters are scaled by alpha = 8 with the summed squared
error on a small training subset; it fits early and generalizes much later, as
weight decay shrinks the weights and the features collapse. ``recipes/mnist.py``
runs this; ``recipes/weight_decay_sweep.py`` sweeps its weight decay.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from keras_grok.callbacks import CollapseMonitor, InformationPlaneMonitor
from keras_grok.callbacks.information_plane_monitor import (
    ESTIMATOR_METRICS,
    min_samples,
)
from keras_grok.data.images import IMAGE_DATASETS, load_images
from keras_grok.data.tfds_source import ensure_prepared
from keras_grok.experiments.config_checks import (
    MAX_WIDTH,
    check_at_most,
    check_choice,
    check_every_class,
    check_floats,
    check_image_subset,
    check_ints,
    check_training,
    check_unused_keys,
)
from keras_grok.experiments.cost_checks import check_image_model, check_schedules
from keras_grok.models import FEATURES_LAYER
from keras_grok.models.image import (
    IMAGE_LOSSES,
    IMAGE_MODELS,
    OPTIMIZERS,
    build_image_model,
)
from keras_grok.runs.train_and_record import run_settings, train_and_record
from keras_grok.utils.random_seed import set_random_seed

SPLIT_SIZES = (
    {"mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000, "digits": 1300},
    {"mnist": 10000, "fashion_mnist": 10000, "cifar10": 10000, "digits": 497},
)
"""Images in each set's training pool and test set (digits: see ``load_images``)."""

IMAGE_CONFIG = {
    "dataset": "mnist",  # mnist, fashion_mnist, cifar10 (prepared TFDS) or digits
    "data_dir": None,  # where prepared TFDS data lives; None: $TFDS_DATA_DIR
    "train_size": 0,  # training images (the first N); 0: 1000 (digits: 300)
    "stratified": False,  # take the first N/K images of each class instead
    "test_size": 0,  # test images (the first N); 0: the whole test split
    "model": "mlp",  # mlp (784-200-200-K), cnn, transformer or resnet18
    "hidden": 200,  # MLP width
    "init_scale": 8.0,  # alpha: initial parameters multiplied by it
    "init": "torch",  # torch (the papers' PyTorch default) or keras (Glorot)
    "loss": "mse_sum",  # mse_sum (paper A, Omnigrok) or cross_entropy
    "optimizer": "adamw",  # adamw or sgd
    "learning_rate": 1e-3,
    "weight_decay": 0.01,  # lambda: decoupled weight decay
    "batch_size": 100,
    "max_steps": 100000,
    "schedule": "adaptive",  # adaptive, omnigrok (paper A), geometric[:RATIO], every:N
    "threshold": 0.99,  # train accuracy that counts as memorized
    "test_threshold": 0.85,  # test accuracy that counts as generalized
    "collapse": True,  # measure RNC1 and NC2 (CollapseMonitor), train and test
    "information": "",  # information plane: any of nhsic,compression,kde; "": off
    "information_size": 2000,  # test images the plane reads (at most all)
    "information_schedule": "geometric:2",  # sparse: the estimators are costly
    "checkpoint_seconds": 10.0,
    "seed": 0,
}

IMAGE_RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "mnist.py"
"""The recipe file that runs this experiment, in the source checkout that holds
this package (``pip install -e .``). A sweep's runs execute it in their own
processes (``recipes/weight_decay_sweep.py``), so no recipe has to name another."""


def estimators(config: dict) -> tuple[str, ...]:
    """The information-plane estimators the config asks for (maybe none)."""
    return tuple(e.strip() for e in config["information"].split(",") if e.strip())


def validate_image_config(config: dict) -> None:
    """Raises ValueError for a config this recipe cannot run.

    Every key of ``IMAGE_CONFIG`` is required (a recipe's config holds them
    all); a missing one is refused by name.

    Raises:
        TypeError: ``config`` is not a dict.
        ValueError: a missing key or a value this recipe cannot run (the
            message names the key).
    """
    if not isinstance(config, dict):
        raise TypeError(
            f"config must be a dict. Received: config of type {type(config).__name__}"
        )
    missing = [key for key in IMAGE_CONFIG if key not in config]
    if missing:
        raise ValueError(
            f"config lacks the key(s) {', '.join(map(repr, missing))} of "
            f"IMAGE_CONFIG. Received: config keys {sorted(map(str, config))}"
        )
    check_training(config)
    check_choice(config, "dataset", IMAGE_DATASETS)
    check_choice(config, "model", IMAGE_MODELS)
    check_choice(config, "loss", IMAGE_LOSSES)
    check_choice(config, "optimizer", OPTIMIZERS)
    check_choice(config, "init", ("torch", "keras"))
    check_ints(config, ("hidden",), maximum=MAX_WIDTH)
    check_ints(config, ("information_size",))
    check_ints(config, ("train_size", "test_size"), minimum=0)
    for key, sizes in (("train_size", SPLIT_SIZES[0]), ("test_size", SPLIT_SIZES[1])):
        available = sizes[config["dataset"]]
        if config[key] > available:
            raise ValueError(
                f"{config['dataset']} has {available} images for {key}. "
                f"Received: {key}={config[key]}"
            )
    check_floats(config, ("init_scale",), allow_minimum=False)
    check_schedules(config, ("information_schedule",))
    check_image_model(config, IMAGE_DATASETS[config["dataset"]].num_classes)
    check_image_subset(config, IMAGE_DATASETS[config["dataset"]].num_classes)
    unknown = set(estimators(config)) - set(ESTIMATOR_METRICS)
    if unknown or len(set(estimators(config))) != len(estimators(config)):
        raise ValueError(
            "information must list distinct estimators among "
            f"{', '.join(ESTIMATOR_METRICS)}. "
            f"Received: information={config['information']!r}"
        )
    check_image_unused_keys(config)
    if estimators(config):
        check_ints(
            config, ("information_size",), minimum=min_samples(estimators(config))
        )
        test_images = config["test_size"] or SPLIT_SIZES[1][config["dataset"]]
        check_at_most(
            config, IMAGE_CONFIG, "information_size", test_images, "test images"
        )


def check_image_unused_keys(config: dict) -> None:
    """Refuses keys set for a model, data set or lens the config does not use."""
    if config["model"] != "mlp":
        check_unused_keys(
            config,
            IMAGE_CONFIG,
            ("hidden",),
            f"model={config['model']!r} has a fixed width (hidden is the MLP's)",
        )
    if IMAGE_DATASETS[config["dataset"]].tfds_name is None:
        check_unused_keys(
            config,
            IMAGE_CONFIG,
            ("data_dir",),
            f"dataset={config['dataset']!r} is loaded offline, not from TFDS",
        )
    if not estimators(config):
        check_unused_keys(
            config,
            IMAGE_CONFIG,
            ("information_size", "information_schedule"),
            "information='' measures no information plane",
        )


def prepare_image_data(config: dict) -> None:
    """Raises ValueError at once if the config's data set cannot be loaded here."""
    source = IMAGE_DATASETS[config["dataset"]]
    if source.tfds_name is None:
        if importlib.util.find_spec("sklearn") is None:
            raise ValueError(
                "dataset=digits needs scikit-learn: pip install 'keras-grok[digits]'"
            )
        # Offline and fast: load it, so that sizes the set cannot supply
        # (e.g. a stratified subset with too few images of a class) fail now.
        split = load_images(
            "digits",
            config["train_size"] or None,
            test_size=config["test_size"] or None,
            stratified=config["stratified"],
        )
        if config["collapse"] or estimators(config):
            labels = {"train_size": split.y_train, "test_size": split.y_test}
            check_every_class(labels, split.num_classes)
        return
    try:
        ensure_prepared(source.tfds_name, config["data_dir"])
    except ValueError as error:
        raise ValueError(
            f"{error}; or run offline on scikit-learn's digits with "
            "--set dataset=digits"
        ) from None


def run_image_experiment(config: dict, out_dir: Path, verbose: bool = True) -> dict:
    """Trains the config's model on its image set and records the run in ``out_dir``."""
    prepare_image_data(config)
    set_random_seed(config["seed"])
    split = load_images(
        config["dataset"],
        config["train_size"] or None,
        test_size=config["test_size"] or None,
        stratified=config["stratified"],
        data_dir=config["data_dir"],
    )
    model = build_image_model(config, split.input_shape, split.num_classes)
    train, test = (split.x_train, split.y_train), (split.x_test, split.y_test)
    monitors = ()
    if config["collapse"]:
        monitors += (
            CollapseMonitor(
                train,
                test,
                layer=FEATURES_LAYER,
                schedule=None,  # the run's: the same pass as the accuracy
                classifier="logits",
            ),
        )
    if estimators(config):
        size = config["information_size"]
        monitors += (
            InformationPlaneMonitor(
                test_data=(test[0][:size], test[1][:size]),
                layer=FEATURES_LAYER,
                estimators=estimators(config),
                schedule=config["information_schedule"],
                encoder_data=split.x_train,
                seed=config["seed"],
            ),
        )
    return train_and_record(
        model,
        train,
        test,
        out_dir,
        monitors=monitors,
        verbose=verbose,
        title=f"{split.name}, {config['model']} (alpha {config['init_scale']:g}), "
        f"{len(split.x_train)} train, {config['loss']}, wd {config['weight_decay']:g}",
        **run_settings(config),
    )
