"""The compiled modular-arithmetic model a config names: MLP or transformer.

Grokking on modular arithmetic (Power et al., 2022) with the embedding MLP of
Omnigrok (Liu et al., 2023) or the one-layer transformer of paper B (DeMoss et al.,
arXiv 2412.09810), trained with AdamW's decoupled weight decay. The features that
neural collapse is measured on (paper A, Sakamoto & Sato, arXiv 2509.20829) are the
model's ``"features"`` layer.
"""

from __future__ import annotations

import keras

from keras_grok.models.model_utils import check_config_keys
from keras_grok.models.modular_mlp import modular_mlp
from keras_grok.models.modular_transformer import modular_transformer
from keras_grok.utils.argument_validation import validate_choice_arg

MODULAR_MODELS = ("mlp", "transformer")
_MODEL_KEYS = {"mlp": ("embed_dim", "hidden"), "transformer": ("embed_dim",
    "transformer_layers")}  # fmt: skip


def build_modular_model(config: dict, vocab_size: int, num_classes: int) -> keras.Model:
    """Builds and compiles the modular-arithmetic model that ``config`` names.

    ``config["model"]`` picks ``modular_mlp`` (integer ``(batch, 2)`` pairs) or
    ``modular_transformer`` (``(batch, 4)`` tokens ``[a, op, b, =]``). Both are
    compiled with AdamW (``learning_rate``, decoupled ``weight_decay``, ``beta_2``)
    and sparse categorical cross-entropy on the logits.

    Args:
        config: a dict with the keys ``model`` (``"mlp"`` or ``"transformer"``),
            ``embed_dim`` (MLP embedding width; transformer ``d_model``),
            ``hidden`` (MLP hidden width), ``depth`` (MLP hidden layers, optional,
            defaults to `1`), ``transformer_layers`` (transformer blocks),
            ``causal`` (transformer attention mask, optional, defaults to
            `False`: paper B's model), ``learning_rate``, ``weight_decay`` and
            ``beta_2``. Other keys are ignored. Every key but the optional
            ``depth`` and ``causal`` is required (``hidden`` for the MLP only,
            ``transformer_layers`` for the transformer only); no defaults are
            filled in.
        vocab_size: number of input tokens (p for pairs, p + 2 for tokens).
        num_classes: number of output classes (the modulus p).

    Returns:
        A compiled functional ``keras.Model`` with a ``"features"`` layer. The
        transformer's logits cover all ``vocab_size`` tokens, as paper B's (see
        ``modular_transformer``); the MLP's the ``num_classes`` classes.

    Raises:
        ValueError: if ``config["model"]`` is neither ``"mlp"`` nor
            ``"transformer"``, or a key the model needs is missing (the message
            names it), or a value is out of range.
        TypeError: ``config`` is not a dict.

    Example:
    ```python
    config = {"model": "mlp", "embed_dim": 128, "hidden": 256, "depth": 2,
              "transformer_layers": 1, "learning_rate": 1e-3,
              "weight_decay": 1.0, "beta_2": 0.98}
    model = build_modular_model(config, vocab_size=97, num_classes=97)
    ```
    """
    check_config_keys(config, ("model",), "build_modular_model")
    validate_choice_arg(config["model"], "model", MODULAR_MODELS)
    check_config_keys(
        config,
        (*_MODEL_KEYS[config["model"]], "learning_rate", "weight_decay", "beta_2"),
        f"model={config['model']!r}",
    )
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
            causal=bool(config.get("causal", False)),
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
