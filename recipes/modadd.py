"""Grokking on modular arithmetic: fit the training pairs, generalize much later.

The default config (an embedding MLP with two ReLU layers on a+b mod 97, 40% of
pairs for training, AdamW with weight decay 1.0) memorizes in about 1,400 steps and
generalizes about 2,500 steps later, in well under a minute on a laptop CPU.

    keras-grok run recipes/modadd.py --backend jax
    keras-grok run recipes/modadd.py --set model=transformer p=113 train_fraction=0.3

By default the run also tracks neural collapse of the ``"features"`` layer on the
train and test sets (``rnc1``, ``val_rnc1``, ``nc2``, ``val_nc2``, ... in
metrics.csv; paper A, Sakamoto & Sato, arXiv 2509.20829): RNC1 and NC2 panels sit
under the accuracy panel, measured at ``collapse_schedule`` (x1.3 steps: each
measurement is a forward pass over all pairs). ``--set collapse=false`` (or
``collapse_test=false``) turns it off. The features are the second ReLU layer's:
they collapse as the test accuracy rises (val_rnc1 ~0.3 while memorizing, <0.01
once generalized). With ``depth=1`` the single ReLU layer's val_rnc1 does not
collapse (measured: 0.52 after memorizing, ~0.59 once generalized).

The second line is paper B's setting (DeMoss et al., arXiv 2412.09810): a one-layer
transformer on [a, op, b, =] tokens; ``op=`` picks any of the six operations
(a+b, a-b, a*b, a/b, a^2+b^2, a^2+ab+b^2).
"""

from __future__ import annotations

from pathlib import Path

import keras

from keras_grok.callbacks import CollapseMonitor, resolve_schedule
from keras_grok.data.modular import modular_dataset
from keras_grok.experiment import train_and_record
from keras_grok.models import modular_mlp, modular_transformer
from keras_grok.plots import ACCURACY, Panel

CONFIG = {
    "p": 97,  # modulus
    "op": "a+b",  # a+b, a-b, a*b, a/b, a^2+b^2 or a^2+ab+b^2
    "train_fraction": 0.4,  # fraction of all pairs used for training
    "model": "mlp",  # "mlp" or "transformer"
    "embed_dim": 128,  # MLP embedding width (transformer: d_model)
    "hidden": 256,  # MLP hidden width
    "depth": 2,  # MLP hidden layers (the last is "features")
    "transformer_layers": 1,  # transformer blocks (paper B: 2 for a-b and a/b)
    "learning_rate": 1e-3,
    "weight_decay": 1.0,  # AdamW's decoupled weight decay
    "beta_2": 0.98,
    "batch_size": 512,
    "max_steps": 30000,  # upper bound on training steps
    "schedule": "geometric:1.1",  # measurement steps: geometric[:RATIO] or omnigrok
    "threshold": 0.99,  # accuracy that counts as memorized / generalized
    "patience": 500,  # stop this many steps after generalizing; < 0 trains on
    "checkpoint_seconds": 10.0,  # least time between checkpoints
    "collapse": True,  # track neural collapse (RNC1, NC2, ...) of the features
    "collapse_test": True,  # ... on the test set too (val_rnc1, val_nc2, ...)
    "collapse_schedule": "geometric:1.3",  # sparser: each costs a forward pass
    "seed": 0,
}


def validate(config: dict) -> None:
    """Raises ValueError for a config this recipe cannot run."""
    modular_dataset(config["p"], config["op"], config["train_fraction"], config["seed"])
    if config["model"] not in ("mlp", "transformer"):
        raise ValueError(
            f"model must be 'mlp' or 'transformer'. Received: {config['model']!r}"
        )
    # Other recipes reuse these checks on configs without some of these keys.
    sizes = ("batch_size", "max_steps", "embed_dim", "hidden", "depth")
    for key in (*sizes, "transformer_layers"):
        if key in config and config[key] < 1:
            raise ValueError(f"{key} must be >= 1. Received: {config[key]}")
    for key in ("schedule", "collapse_schedule"):
        if key in config:
            resolve_schedule(config[key], config["max_steps"])


def build_model(config: dict, vocab_size: int, num_classes: int) -> keras.Model:
    """The compiled model the config names."""
    if config["model"] == "mlp":
        model = modular_mlp(
            num_classes,
            vocab_size,
            config["embed_dim"],
            config["hidden"],
            config.get("depth", 1),
        )
    else:
        model = modular_transformer(
            num_classes,
            vocab_size,
            d_model=config["embed_dim"],
            num_layers=config["transformer_layers"],
        )
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=config["learning_rate"],
            weight_decay=config["weight_decay"],
            beta_2=config["beta_2"],
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def run(config: dict, out_dir: Path, verbose: bool = True) -> dict:
    """Trains the model of ``config`` and records the run in ``out_dir``."""
    keras.utils.set_random_seed(config["seed"])
    layout = "pairs" if config["model"] == "mlp" else "tokens"
    split = modular_dataset(
        config["p"], config["op"], config["train_fraction"], config["seed"], layout
    )
    model = build_model(config, split.vocab_size, split.num_classes)
    monitors, panels = (), (ACCURACY,)
    if config["collapse"]:
        test = (split.x_test, split.y_test) if config["collapse_test"] else None
        monitors = (
            CollapseMonitor(
                (split.x_train, split.y_train),
                layer="features",
                val_data=test,
                schedule=config["collapse_schedule"],
                num_classes=split.num_classes,
            ),
        )
        panels += (
            Panel("RNC1", ("rnc1", "val_rnc1"), log_y=True),
            Panel("NC2", ("nc2", "val_nc2"), log_y=True),
        )
    return train_and_record(
        model,
        (split.x_train, split.y_train),
        (split.x_test, split.y_test),
        out_dir,
        batch_size=config["batch_size"],
        max_steps=config["max_steps"],
        schedule=config["schedule"],
        threshold=config["threshold"],
        patience=config["patience"] if config["patience"] >= 0 else None,
        checkpoint_seconds=config["checkpoint_seconds"],
        verbose=verbose,
        monitors=monitors,
        panels=(*panels, Panel("loss", ("train_loss", "test_loss"), log_y=True)),
        title=f"{config['op']} mod {config['p']}, {config['model']}, "
        f"{config['train_fraction']:.0%} train, wd {config['weight_decay']}",
    )
