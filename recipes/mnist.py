"""Grokking on images (paper A's figure): test accuracy rises as RNC1 falls.

Sakamoto & Sato (arXiv 2509.20829), following Omnigrok (Liu et al., 2023): an MLP
784-200-200-10 whose initial parameters are scaled by alpha = 8, trained with the
squared error against one-hot targets summed over the batch (``SumSquaredError``)
and AdamW on the first 1,000 MNIST training images. It fits them early; test
accuracy rises much later, as weight decay shrinks the weights and the features
collapse (RNC1 falls, NC2 moves toward 1). The figure plots train and test accuracy,
RNC1 and NC2 against the step (log axis).

    keras-grok run recipes/mnist.py --set weight_decay=0.01
    keras-grok run recipes/mnist.py --set dataset=digits max_steps=30000 \\
        weight_decay=0.3

MNIST, Fashion-MNIST (``dataset=fashion_mnist``) and CIFAR-10 (``dataset=cifar10``)
must be prepared with tensorflow-datasets beforehand (``data_dir=DIR`` or
``$TFDS_DATA_DIR``; nothing is downloaded). ``dataset=digits`` (scikit-learn's 8x8
digits, 300 training images, needs ``pip install scikit-learn``) runs offline.
``model=cnn`` is the toy CNN (only its dense layers scaled), ``model=transformer``
the 1-layer patch transformer and ``model=resnet18`` the CIFAR-style ResNet-18 (only
their read-out scaled).

``memorized_at`` is the first measured step with train accuracy >= ``threshold``;
``generalized_at`` the first with test accuracy >= ``test_threshold``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras

from keras_grok.callbacks import CollapseMonitor, InformationPlaneMonitor
from keras_grok.callbacks.results import read_metrics, write_json_atomic
from keras_grok.data.images import IMAGE_DATASETS, load_images
from keras_grok.data.tfds_source import ensure_prepared
from keras_grok.experiment import train_and_record
from keras_grok.losses import SumSquaredError
from keras_grok.models import (
    FEATURES_LAYER,
    patch_transformer,
    resnet18,
    toy_cnn,
    toy_mlp,
)
from keras_grok.plots import ACCURACY, Panel
from keras_grok.run_folder import RunFolder
from keras_grok.sweep import first_step_at

CONFIG = {
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
    "schedule": "omnigrok",  # measurement steps: omnigrok or geometric[:RATIO]
    "threshold": 0.99,  # train accuracy that counts as memorized
    "test_threshold": 0.85,  # test accuracy that counts as generalized
    "collapse": True,  # measure RNC1 and NC2 (CollapseMonitor), train and test
    "information": "",  # information plane: any of nhsic,compression,kde; "": off
    "information_size": 2000,  # test images the information plane is measured on
    "information_schedule": "geometric:2",  # sparse: the estimators are costly
    "checkpoint_seconds": 10.0,
    "seed": 0,
}

MODELS = {
    "mlp": toy_mlp,
    "cnn": toy_cnn,
    "transformer": patch_transformer,
    "resnet18": resnet18,
}
LOSSES = ("mse_sum", "cross_entropy")
OPTIMIZERS = ("adamw", "sgd")
ESTIMATORS = ("nhsic", "compression", "kde")


def estimators(config: dict) -> tuple[str, ...]:
    """The information-plane estimators the config asks for (maybe none)."""
    return tuple(e.strip() for e in config["information"].split(",") if e.strip())


def validate(config: dict) -> None:
    """Raises ValueError for a config this recipe cannot run (data checked at once)."""
    for key, allowed in (
        ("dataset", tuple(IMAGE_DATASETS)),
        ("model", tuple(MODELS)),
        ("loss", LOSSES),
        ("optimizer", OPTIMIZERS),
        ("init", ("torch", "keras")),
    ):
        if config[key] not in allowed:
            raise ValueError(
                f"{key} must be one of {', '.join(allowed)}. Received: {config[key]!r}"
            )
    for key in ("batch_size", "max_steps", "hidden"):
        if config[key] < 1:
            raise ValueError(f"{key} must be >= 1. Received: {config[key]}")
    for key in ("train_size", "test_size"):
        if config[key] < 0:
            raise ValueError(f"{key} must be >= 0. Received: {config[key]}")
    unknown = set(estimators(config)) - set(ESTIMATORS)
    if unknown:
        raise ValueError(
            f"information must list estimators among {', '.join(ESTIMATORS)}. "
            f"Received: {config['information']!r}"
        )
    if not config["init_scale"] > 0:
        raise ValueError(f"init_scale must be > 0. Received: {config['init_scale']}")
    check_data(config)


def check_data(config: dict) -> None:
    """Raises ValueError at once if the config's data set cannot be loaded here."""
    source = IMAGE_DATASETS[config["dataset"]]
    if source.tfds_name is None:
        if importlib.util.find_spec("sklearn") is None:
            raise ValueError(
                "dataset=digits needs scikit-learn: pip install 'keras-grok[digits]'"
            )
        return
    try:
        ensure_prepared(source.tfds_name, config["data_dir"])
    except ValueError as error:
        raise ValueError(
            f"{error}; or run offline on scikit-learn's digits with "
            "--set dataset=digits"
        ) from None


def build_model(config: dict, input_shape: tuple, num_classes: int) -> keras.Model:
    """The compiled model the config names."""
    model = MODELS[config["model"]](
        input_shape,
        num_classes,
        init_scale=config["init_scale"],
        init=config["init"],
        seed=config["seed"],
        **({"hidden": config["hidden"]} if config["model"] == "mlp" else {}),
    )
    if config["optimizer"] == "adamw":
        optimizer = keras.optimizers.AdamW(
            learning_rate=config["learning_rate"],
            weight_decay=config["weight_decay"],
        )
    else:
        optimizer = keras.optimizers.SGD(
            learning_rate=config["learning_rate"],
            weight_decay=config["weight_decay"] or None,
        )
    if config["loss"] == "mse_sum":
        loss = SumSquaredError()
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss)
    return model


def run(config: dict, out_dir: Path, verbose: bool = True) -> dict:
    """Trains the config's model on its image set and records the run in ``out_dir``."""
    check_data(config)
    keras.utils.set_random_seed(config["seed"])
    split = load_images(
        config["dataset"],
        config["train_size"] or None,
        test_size=config["test_size"] or None,
        stratified=config["stratified"],
        data_dir=config["data_dir"],
    )
    model = build_model(config, split.input_shape, split.num_classes)
    train, test = (split.x_train, split.y_train), (split.x_test, split.y_test)
    monitors, panels = (), (ACCURACY,)
    if config["collapse"]:
        monitors += (
            CollapseMonitor(
                train,
                layer=FEATURES_LAYER,
                val_data=test,
                schedule=config["schedule"],
                classifier="logits",
            ),
        )
        panels += (
            Panel("RNC1", ("rnc1", "val_rnc1"), log_y=True),
            Panel("NC2", ("nc2", "val_nc2"), log_y=True),
        )
    if estimators(config):
        information = InformationPlaneMonitor(
            (
                test[0][: config["information_size"]],
                test[1][: config["information_size"]],
            ),
            layer=FEATURES_LAYER,
            estimators=estimators(config),
            schedule=config["information_schedule"],
            encoder_data=split.x_train,
            seed=config["seed"],
        )
        monitors += (information,)
        panels += (Panel("information", information.metric_names),)
    summary = train_and_record(
        model,
        train,
        test,
        out_dir,
        batch_size=config["batch_size"],
        max_steps=config["max_steps"],
        schedule=config["schedule"],
        threshold=config["threshold"],
        checkpoint_seconds=config["checkpoint_seconds"],
        monitors=monitors,
        verbose=verbose,
        panels=panels,
        title=f"{split.name}, {config['model']} (alpha {config['init_scale']:g}), "
        f"{len(split.x_train)} train, {config['loss']}, wd {config['weight_decay']:g}",
    )
    # The monitor's one threshold suits train accuracy; test accuracy on these sets
    # saturates lower (MNIST: ~0.89), so generalization has its own threshold.
    folder = RunFolder(out_dir)
    rows = read_metrics(folder.metrics)
    tests = [(r["test_accuracy"], r["step"]) for r in rows if "test_accuracy" in r]
    best, best_step = max(tests, default=(None, None))
    summary.update(
        generalized_at=first_step_at(rows, "test_accuracy", config["test_threshold"]),
        test_threshold=config["test_threshold"],
        best_test_accuracy=best,
        best_test_step=best_step,
    )
    write_json_atomic(folder.summary, summary)
    return summary
