"""Grokking on modular arithmetic: fit the training pairs, generalize much later.

The default config (an embedding MLP with two ReLU layers on a+b mod 97, 40% of
pairs for training, AdamW with weight decay 1.0) memorizes in about 1,400 steps and
generalizes about 2,500 steps later, in well under a minute on a laptop CPU.

    keras-grok run recipes/modadd.py --backend jax
    keras-grok run recipes/modadd.py --set model=transformer p=113 train_fraction=0.3

By default the run also tracks neural collapse of the ``"features"`` layer on the
train and test sets (``train_rnc1``, ``test_rnc1``, ``train_nc2``, ... in
metrics.csv; paper A, Sakamoto & Sato, arXiv 2509.20829), from the same forward
pass as the accuracy: RNC1 and NC2 panels sit under the accuracy and loss panels.
``--set collapse=false`` (or ``collapse_test=false``) turns it off. The features
are the second ReLU layer's: they collapse as the test accuracy rises. With
``depth=1`` the single ReLU layer's test RNC1 does not collapse.

``forecast=true`` adds a forecast of ``generalized_at`` (its median and 80%
interval, ``forecast_*`` in metrics.csv, a panel in the figure; see
docs/forecast.md); ``forecast_stop=0.05`` also stops the run once the
probability of generalizing within ``max_steps`` falls below 5%.

Measurements follow an adaptive schedule (dense while train or test accuracy
moves, sparse while they are flat); ``schedule=geometric:1.1`` gives fixed x1.1
steps and ``schedule=every:10`` a dense reference.

The second line is paper B's setting (DeMoss et al., arXiv 2412.09810): a one-layer
transformer on [a, op, b, =] tokens; ``op=`` picks any of the six operations
(a+b, a-b, a*b, a/b, a^2+b^2, a^2+ab+b^2).
"""

from __future__ import annotations

from pathlib import Path

from keras_grok.callbacks import CollapseMonitor, ForecastMonitor
from keras_grok.data.modular import modular_dataset
from keras_grok.experiments.config_checks import (
    check_device_count,
    check_model_keys,
    check_modular,
)
from keras_grok.experiments.recipe import RecipeError
from keras_grok.models.modular import build_modular_model
from keras_grok.runs.distribution import check_devices, set_data_parallel
from keras_grok.runs.train_and_record import run_settings, train_and_record
from keras_grok.utils.random_seed import set_random_seed

CONFIG = {
    "p": 97,  # modulus
    "op": "a+b",  # a+b, a-b, a*b, a/b, a^2+b^2 or a^2+ab+b^2
    "train_fraction": 0.4,  # fraction of all pairs used for training
    "model": "mlp",  # "mlp" or "transformer"
    "embed_dim": 128,  # MLP embedding width (transformer: d_model)
    "hidden": 256,  # MLP hidden width
    "depth": 2,  # MLP hidden layers (the last is "features")
    "transformer_layers": 1,  # transformer blocks (paper B: 2 for a-b and a/b)
    "causal": False,  # transformer: causal attention mask (paper B: none)
    "learning_rate": 1e-3,
    "weight_decay": 1.0,  # AdamW's decoupled weight decay
    "beta_2": 0.98,
    "batch_size": 512,
    "max_steps": 30000,  # training steps (rounded up to whole epochs)
    "schedule": "adaptive",  # adaptive, geometric[:RATIO], every:N or omnigrok
    "threshold": 0.99,  # accuracy that counts as memorized / generalized
    "patience": 500,  # stop this many steps after generalizing; < 0 trains on
    "checkpoint_seconds": 10.0,  # least time between checkpoints
    "refine": True,  # locate memorized/generalized/collapse to 1% by replay
    "collapse": True,  # track neural collapse (RNC1, NC2, ...) of the features
    "collapse_test": True,  # ... on the test set too (test_rnc1, test_nc2, ...)
    "forecast": False,  # log a forecast of generalized_at (ForecastMonitor)
    "forecast_stop": 0.0,  # ... and stop once P(generalized by max_steps) < this
    "devices": "",  # "all" or a count: data-parallel over local devices (JAX)
    "seed": 0,
}


def validate(config: dict) -> None:
    """Raises ValueError for a config this recipe cannot run."""
    check_modular(config)
    check_model_keys(config, CONFIG)
    check_devices(config["devices"])
    check_device_count(config["devices"])
    if (config["forecast"] or config["forecast_stop"]) and not (
        config["weight_decay"] > 0
    ):
        raise ValueError(
            "forecast reads the time scale 1 / (learning_rate * weight_decay), so it "
            f"needs weight_decay > 0. Received: weight_decay={config['weight_decay']}"
        )


def run(config: dict, out_dir: Path, verbose: bool = True) -> dict:
    """Trains the model of ``config`` and records the run in ``out_dir``."""
    set_random_seed(config["seed"])
    layout = "pairs" if config["model"] == "mlp" else "tokens"
    split = modular_dataset(
        config["p"], config["op"], config["train_fraction"], config["seed"], layout
    )
    try:  # before the model is built: its variables go on every device
        set_data_parallel(config["devices"], config["batch_size"], len(split.x_train))
    except ValueError as error:
        raise RecipeError(f"invalid config: {error}") from None
    model = build_modular_model(config, split.vocab_size, split.num_classes)
    train, test = (split.x_train, split.y_train), (split.x_test, split.y_test)
    monitors = ()
    if config["collapse"]:
        monitors = (
            CollapseMonitor(
                train,
                test if config["collapse_test"] else None,
                layer="features",
                schedule=None,  # the run's: the same pass as the accuracy
                num_classes=split.num_classes,
            ),
        )
    if config["forecast"] or config["forecast_stop"]:
        monitors += (
            ForecastMonitor(
                config["learning_rate"],
                config["weight_decay"],
                budget=config["max_steps"],
                threshold=config["threshold"],
                stop_below=config["forecast_stop"] or None,
            ),
        )
    return train_and_record(
        model,
        train,
        test,
        out_dir,
        verbose=verbose,
        monitors=monitors,
        title=f"{config['op']} mod {config['p']}, {config['model']}, "
        f"{config['train_fraction']:.0%} train, wd {config['weight_decay']}",
        **run_settings(config),
    )
