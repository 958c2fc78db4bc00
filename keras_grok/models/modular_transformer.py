"""The modular-arithmetic transformer of paper B (DeMoss et al., arXiv 2412.09810)."""

from __future__ import annotations

import keras

from keras_grok.layers.position_embedding import PositionEmbedding
from keras_grok.utils.argument_validation import (
    validate_bool_arg,
    validate_int_arg,
    validate_string_arg,
)


def modular_transformer(
    num_classes: int,
    vocab_size: int,
    sequence_length: int = 4,
    d_model: int = 128,
    num_heads: int = 4,
    d_mlp: int = 512,
    num_layers: int = 1,
    activation: str = "gelu",
    layer_norm: bool = True,
    causal: bool = False,
    position_rows: int | None = None,
    vocabulary_logits: bool = True,
) -> keras.Model:
    """Builds the decoder-style transformer for ``[a, op, b, =]`` token sequences.

    Learned token and position embeddings; ``num_layers`` blocks of self-attention
    (``num_heads`` heads of ``d_model // num_heads``) and an MLP of width ``d_mlp``,
    each added to the residual stream and followed by a LayerNorm (post-LN, as paper
    B's code; ``layer_norm=False`` with ``activation="relu"`` gives Nanda et al.'s
    variant). The residual stream at the last position is the ``"features"`` layer,
    read out linearly by ``"logits"``.

    The defaults are paper B's model (DeMoss et al., arXiv 2412.09810; their
    ``TransformerDecoder``), 242,547 parameters for p = 113:

    - no causal mask (``causal=False``); the read-out at the last position sees
      every token either way, and ``causal=True`` masks attention to earlier
      positions, as a language-model decoder does;
    - a position table of ``vocab_size`` rows (``position_rows=None``), of which
      only the first ``sequence_length`` are used (the others get weight decay and
      count as parameters: 111 x 128 of the difference to a 4-row table);
    - logits over the whole vocabulary (``vocabulary_logits=True``), so the
      softmax also covers the op and "=" tokens, which no label takes (2 x 128 + 2
      parameters). ``False`` gives ``num_classes`` logits.

    Args:
        num_classes: number of classes the labels take (the modulus p); the
            number of logits when ``vocabulary_logits=False``.
        vocab_size: number of input tokens (p + 2 for ``[a, op, b, =]``).
        sequence_length: tokens per example. Defaults to `4`.
        d_model: width of the residual stream. Defaults to `128`.
        num_heads: attention heads. Defaults to `4`.
        d_mlp: hidden width of the MLP. Defaults to `512`.
        num_layers: transformer blocks (paper B: 1, or 2 for a-b and a/b).
            Defaults to `1`.
        activation: MLP activation. Defaults to `"gelu"`.
        layer_norm: post-LayerNorm after each residual add. Defaults to `True`.
        causal: causal attention mask. Defaults to `False`.
        position_rows: rows of the position table, >= ``sequence_length``;
            None takes ``vocab_size``, as paper B's code. Defaults to `None`.
        vocabulary_logits: logits over all ``vocab_size`` tokens, as paper B's
            code; False: over the ``num_classes`` classes. Defaults to `True`.

    Returns:
        An uncompiled functional ``keras.Model`` mapping int32
        ``(batch, sequence_length)`` tokens to ``(batch, vocab_size)`` logits
        (``(batch, num_classes)`` with ``vocabulary_logits=False``).

    Raises:
        ValueError: a size not an integer >= 1 (``num_layers``: >= 0),
            ``vocab_size`` below ``num_classes``, ``position_rows`` below
            ``sequence_length``, or ``d_model`` not divisible by ``num_heads``
            (each message names the argument).

    Example:
    ```python
    model = modular_transformer(num_classes=113, vocab_size=115)
    model.count_params()  # 242547, as paper B's model
    ```
    """
    for name, value in (
        ("num_classes", num_classes),
        ("sequence_length", sequence_length),
        ("d_model", d_model),
        ("num_heads", num_heads),
        ("d_mlp", d_mlp),
    ):
        validate_int_arg(value, name)
    validate_int_arg(num_layers, "num_layers", minimum=0)
    for name, value in (
        ("layer_norm", layer_norm),
        ("causal", causal),
        ("vocabulary_logits", vocabulary_logits),
    ):
        validate_bool_arg(value, name)
    validate_string_arg(activation, "activation")
    if d_model % num_heads:
        raise ValueError(
            f"d_model must be divisible by num_heads. Received: d_model={d_model}, "
            f"num_heads={num_heads}"
        )
    validate_int_arg(vocab_size, "vocab_size", minimum=num_classes)
    rows = vocab_size if position_rows is None else position_rows
    validate_int_arg(rows, "position_rows", minimum=sequence_length)
    tokens = keras.Input((sequence_length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, d_model, name="token_embedding")(tokens)
    x = PositionEmbedding(rows, name="position_embedding")(x)
    for i in range(num_layers):
        attention = keras.layers.MultiHeadAttention(
            num_heads, d_model // num_heads, name=f"attention_{i}"
        )(x, x, use_causal_mask=causal)
        x = keras.layers.Add(name=f"attention_residual_{i}")([x, attention])
        if layer_norm:
            x = keras.layers.LayerNormalization(name=f"attention_norm_{i}")(x)
        hidden = keras.layers.Dense(d_mlp, activation=activation, name=f"mlp_in_{i}")(x)
        hidden = keras.layers.Dense(d_model, name=f"mlp_out_{i}")(hidden)
        x = keras.layers.Add(name=f"mlp_residual_{i}")([x, hidden])
        if layer_norm:
            x = keras.layers.LayerNormalization(name=f"mlp_norm_{i}")(x)
    x = keras.layers.Cropping1D((sequence_length - 1, 0), name="last_position")(x)
    features = keras.layers.Reshape((d_model,), name="features")(x)
    logits = vocab_size if vocabulary_logits else num_classes
    outputs = keras.layers.Dense(logits, name="logits")(features)
    return keras.Model(tokens, outputs, name="modular_transformer")
