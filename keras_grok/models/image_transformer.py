"""Paper A's patch transformer: a one-block ViT-style encoder over image patches.

Sakamoto & Sato (arXiv 2509.20829) train it on images with the initial read-out
scaled by alpha (Omnigrok, Liu et al., 2023; see ``keras_grok.models.init_scale``).
Images follow ``keras.config.image_data_format()``, as
``keras_grok.data.load_images`` returns them.
"""

from __future__ import annotations

import keras

from keras_grok.layers.class_token import ClassToken
from keras_grok.layers.position_embedding import PositionEmbedding
from keras_grok.models.init_scale import initializers, scale_weights
from keras_grok.models.model_utils import (
    check_input_shape,
    image_channels,
    image_sides,
    layer_seed,
)
from keras_grok.utils.argument_validation import validate_int_arg, validate_seed


def patch_transformer(
    input_shape: tuple[int, ...],
    num_classes: int,
    patch_size: int = 4,
    d_model: int = 128,
    num_heads: int = 4,
    ffn: int = 256,
    init_scale: float = 1.0,
    init: str = "torch",
    seed: int | None = None,
) -> keras.Model:
    """Paper A's 1-layer transformer encoder over image patches with a CLS token.

    Non-overlapping ``patch_size`` x ``patch_size`` patches are linearly embedded
    (``d_model``), a learned class token and learned position embeddings are added,
    and one post-LayerNorm encoder block (``num_heads`` heads, ReLU FFN of width
    ``ffn``; PyTorch's ``nn.TransformerEncoderLayer`` defaults, without dropout)
    follows. The class token's output is ``"features"``. Paper A does not say which
    parameters its alpha scales here; this builder scales the read-out only (as for
    ResNet-18), since scaling attention by 8 saturates its softmax.

    Args:
        input_shape: shape of one image, sides divisible by ``patch_size``.
        num_classes: number of classes K.
        patch_size: side of a square patch. Defaults to `4`.
        d_model: embedding width. Defaults to `128`.
        num_heads: attention heads (``d_model`` divisible by it). Defaults to `4`.
        ffn: feed-forward width. Defaults to `256`.
        init_scale: alpha, multiplying the read-out's parameters. Defaults to `1.0`.
        init: ``"torch"`` or ``"keras"``, for the embedding, FFN and read-out
            (attention is Glorot uniform, as PyTorch's). Defaults to `"torch"`.
        seed: seed of the initializers but attention's, which draws from Keras'
            global seed (``keras.utils.set_random_seed``; a seeded initializer
            would give its query, key and value the same start). Defaults to `None`.

    Raises:
        ValueError: ``input_shape`` not 3 integers >= 1, an image side not
            divisible by ``patch_size``, ``d_model`` not divisible by
            ``num_heads``, or a size not an integer >= 1 (each message names
            the argument).

    Example:
    ```python
    model = patch_transformer((28, 28, 1), 10)  # 49 patches + CLS
    ```
    """
    input_shape = check_input_shape(input_shape)
    for name, value in (
        ("num_classes", num_classes),
        ("patch_size", patch_size),
        ("d_model", d_model),
        ("num_heads", num_heads),
        ("ffn", ffn),
    ):
        validate_int_arg(value, name)
    validate_seed(seed)
    channels_first = keras.config.image_data_format() == "channels_first"
    sides = image_sides(input_shape)
    if any(side % patch_size for side in sides) or d_model % num_heads:
        raise ValueError(
            f"image sides {tuple(sides)} must be divisible by patch_size="
            f"{patch_size} and d_model={d_model} by num_heads={num_heads}. "
            f"Received: input_shape={input_shape!r}, patch_size={patch_size!r}, "
            f"d_model={d_model!r}, num_heads={num_heads!r}"
        )
    num_patches = (sides[0] // patch_size) * (sides[1] // patch_size)
    inputs = keras.Input(tuple(input_shape), name="images")
    x = keras.layers.Conv2D(
        d_model,
        patch_size,
        strides=patch_size,
        name="patch_embedding",
        **initializers(
            init, image_channels(input_shape) * patch_size**2, layer_seed(seed, 0)
        ),
    )(inputs)
    if channels_first:
        x = keras.layers.Permute((2, 3, 1), name="channels_last")(x)
    x = keras.layers.Reshape((num_patches, d_model), name="patches")(x)
    x = ClassToken(
        keras.initializers.RandomNormal(stddev=0.02, seed=layer_seed(seed, 3)),
        name="class_token",
    )(x)
    x = PositionEmbedding(
        num_patches + 1,
        keras.initializers.RandomNormal(stddev=0.02, seed=layer_seed(seed, 1)),
        name="position_embedding",
    )(x)
    attention = keras.layers.MultiHeadAttention(
        num_heads, d_model // num_heads, name="attention"
    )(x, x)
    x = keras.layers.LayerNormalization(name="norm_1")(
        keras.layers.Add(name="residual_1")([x, attention])
    )
    hidden = keras.layers.Dense(
        ffn,
        activation="relu",
        name="ffn_1",
        **initializers(init, d_model, layer_seed(seed, 4)),
    )(x)
    hidden = keras.layers.Dense(
        d_model, name="ffn_2", **initializers(init, ffn, layer_seed(seed, 5))
    )(hidden)
    x = keras.layers.LayerNormalization(name="norm_2")(
        keras.layers.Add(name="residual_2")([x, hidden])
    )
    x = keras.layers.Cropping1D((0, num_patches), name="class_output")(x)
    x = keras.layers.Flatten(name="features")(x)
    logits = keras.layers.Dense(
        num_classes, name="logits", **initializers(init, d_model, layer_seed(seed, 2))
    )
    model = keras.Model(inputs, logits(x), name="patch_transformer")
    scale_weights([logits], init_scale)
    return model
