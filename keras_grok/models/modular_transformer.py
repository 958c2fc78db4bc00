"""The modular-arithmetic transformer of paper B (DeMoss et al., arXiv 2412.09810)."""

from __future__ import annotations

import keras

from keras_grok.layers import PositionEmbedding


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
    causal: bool = True,
) -> keras.Model:
    """Builds the decoder-style transformer for ``[a, op, b, =]`` token sequences.

    Learned token and position embeddings; ``num_layers`` blocks of self-attention
    (``num_heads`` heads of ``d_model // num_heads``) and an MLP of width ``d_mlp``,
    each added to the residual stream and followed by a LayerNorm (post-LN, as paper
    B's code; ``layer_norm=False`` with ``activation="relu"`` gives Nanda et al.'s
    variant). The residual stream at the last position is the ``"features"`` layer,
    read out linearly by ``"logits"``.

    Paper B's code uses no causal mask; the read-out at the last position sees every
    token either way. ``causal=True`` (the default) masks attention to earlier
    positions, as a decoder does.

    Args:
        num_classes: number of output classes (the modulus p).
        vocab_size: number of input tokens (p + 2 for ``[a, op, b, =]``).
        sequence_length: tokens per example. Defaults to `4`.
        d_model: width of the residual stream. Defaults to `128`.
        num_heads: attention heads. Defaults to `4`.
        d_mlp: hidden width of the MLP. Defaults to `512`.
        num_layers: transformer blocks (paper B: 1, or 2 for a-b and a/b).
            Defaults to `1`.
        activation: MLP activation. Defaults to `"gelu"`.
        layer_norm: post-LayerNorm after each residual add. Defaults to `True`.
        causal: causal attention mask. Defaults to `True`.

    Returns:
        An uncompiled functional ``keras.Model`` mapping int32
        ``(batch, sequence_length)`` tokens to ``(batch, num_classes)`` logits.

    Example:
    ```python
    model = modular_transformer(num_classes=113, vocab_size=115)
    ```
    """
    if d_model % num_heads:
        raise ValueError(
            f"d_model must be divisible by num_heads. Received: d_model={d_model}, "
            f"num_heads={num_heads}"
        )
    tokens = keras.Input((sequence_length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, d_model, name="token_embedding")(tokens)
    x = PositionEmbedding(sequence_length, name="position_embedding")(x)
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
    outputs = keras.layers.Dense(num_classes, name="logits")(features)
    return keras.Model(tokens, outputs, name="modular_transformer")
