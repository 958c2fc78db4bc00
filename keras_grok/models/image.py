"""The compiled image model a config names, with its optimizer and loss.

Paper A (Sakamoto & Sato, arXiv 2509.20829), following Omnigrok (Liu et al.,
2023), trains image classifiers whose initial parameters are scaled by alpha with
the squared error against one-hot targets summed over the batch
(``keras_grok.losses.SumSquaredError``) and AdamW; cross-entropy and SGD are the
usual alternatives.
"""

from __future__ import annotations

import keras

from keras_grok import losses as grok_losses  # a module: see utils/registration
from keras_grok.models.image_cnn import toy_cnn
from keras_grok.models.image_mlp import toy_mlp
from keras_grok.models.image_transformer import patch_transformer
from keras_grok.models.model_utils import check_config_keys
from keras_grok.models.resnet import resnet18
from keras_grok.utils.argument_validation import validate_choice_arg

IMAGE_MODELS = {
    "mlp": toy_mlp,
    "cnn": toy_cnn,
    "transformer": patch_transformer,
    "resnet18": resnet18,
}
IMAGE_LOSSES = ("mse_sum", "cross_entropy")
OPTIMIZERS = ("adamw", "sgd")
_KEYS = ("model", "init_scale", "init", "seed", "optimizer", "learning_rate",
    "weight_decay", "loss")  # fmt: skip


def build_image_model(
    config: dict, input_shape: tuple[int, ...], num_classes: int
) -> keras.Model:
    """Builds and compiles the image classifier that ``config`` names.

    ``config["model"]`` picks a builder of ``IMAGE_MODELS`` (``toy_mlp``,
    ``toy_cnn``, ``patch_transformer``, ``resnet18``), called with the config's
    ``init_scale`` (alpha), ``init`` and ``seed`` (and ``hidden`` for the MLP).
    ``config["optimizer"]`` is ``"adamw"`` (decoupled ``weight_decay``) or
    ``"sgd"`` (``weight_decay`` 0 means none); ``config["loss"]`` is
    ``"mse_sum"`` (``SumSquaredError``, the papers' loss) or ``"cross_entropy"``
    (sparse categorical cross-entropy on the logits).

    Args:
        config: a dict with the keys ``model`` (one of ``IMAGE_MODELS``),
            ``hidden`` (MLP width; read for ``model="mlp"`` only),
            ``init_scale``, ``init`` (``"torch"`` or ``"keras"``), ``seed``,
            ``optimizer`` (one of ``OPTIMIZERS``), ``learning_rate``,
            ``weight_decay`` and ``loss`` (one of ``IMAGE_LOSSES``). Other keys
            are ignored. Every key is required (``hidden`` for the MLP only);
            no defaults are filled in.
        input_shape: shape of one image, in Keras' image data format.
        num_classes: number of classes K.

    Returns:
        A compiled functional ``keras.Model`` with a ``"features"`` layer.

    Raises:
        ValueError: if ``model``, ``optimizer`` or ``loss`` is not one of the
            allowed values, or a key is missing (the message names it).
        TypeError: ``config`` is not a dict.

    Example:
    ```python
    config = {"model": "mlp", "hidden": 200, "init_scale": 8.0, "init": "torch",
              "seed": 0, "optimizer": "adamw", "learning_rate": 1e-3,
              "weight_decay": 0.01, "loss": "mse_sum"}
    model = build_image_model(config, (28, 28, 1), 10)
    ```
    """
    check_config_keys(config, _KEYS, "build_image_model")
    if config["model"] == "mlp":
        check_config_keys(config, ("hidden",), "model='mlp'")
    for key, allowed in (
        ("model", tuple(IMAGE_MODELS)),
        ("optimizer", OPTIMIZERS),
        ("loss", IMAGE_LOSSES),
    ):
        validate_choice_arg(config[key], key, allowed)
    model = IMAGE_MODELS[config["model"]](
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
        loss = grok_losses.SumSquaredError()
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss)
    return model
