"""The modular-arithmetic MLP: embeddings of a and b, concatenated, then a ReLU MLP."""

from __future__ import annotations

import keras

from keras_grok.utils.argument_validation import validate_int_arg


def modular_mlp(
    num_classes: int,
    vocab_size: int | None = None,
    embed_dim: int = 128,
    hidden: int = 256,
    depth: int = 1,
) -> keras.Model:
    """Builds the MLP used for fast grokking on modular arithmetic.

    One embedding table (``vocab_size`` x ``embed_dim``) embeds both a and b; the two
    vectors are concatenated and pass through ``depth`` ReLU layers of width ``hidden``
    (the last one is named ``"features"``) and a linear read-out ``"logits"``.

    Args:
        num_classes: number of output classes (the modulus p).
        vocab_size: number of input tokens. Defaults to `num_classes`.
        embed_dim: embedding width. Defaults to `128`.
        hidden: width of each hidden layer. Defaults to `256`.
        depth: number of hidden layers. Defaults to `1`.

    Returns:
        An uncompiled functional ``keras.Model`` mapping int32 ``(batch, 2)`` pairs to
        ``(batch, num_classes)`` logits.

    Raises:
        ValueError: a size not an integer >= 1 (the message names it).

    Example:
    ```python
    model = modular_mlp(97)
    model.get_layer("features").output.shape  # (None, 256)
    ```
    """
    for name, value in (
        ("num_classes", num_classes),
        ("embed_dim", embed_dim),
        ("hidden", hidden),
        ("depth", depth),
    ):
        validate_int_arg(value, name)
    if vocab_size is not None:
        validate_int_arg(vocab_size, "vocab_size")
    inputs = keras.Input((2,), dtype="int32", name="pairs")
    x = keras.layers.Embedding(vocab_size or num_classes, embed_dim, name="embedding")(
        inputs
    )
    x = keras.layers.Reshape((2 * embed_dim,), name="concatenate")(x)
    for i in range(depth):
        name = "features" if i == depth - 1 else f"hidden_{i}"
        x = keras.layers.Dense(hidden, activation="relu", name=name)(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="modular_mlp")
