"""Paper A's image models: toy MLP, toy CNN, patch transformer and CIFAR ResNet-18.

Sakamoto & Sato (arXiv 2509.20829), following Omnigrok (Liu et al., 2023), induce
grokking on image sets by scaling the initial parameters by alpha (see
``keras_grok.init_scale``). Each builder returns an uncompiled functional model whose
penultimate representation is the layer ``"features"`` (what the collapse and
information monitors read) and whose outputs are the ``"logits"`` layer's.

Images follow ``keras.config.image_data_format()`` (channels last unless set
otherwise), as ``keras_grok.data.load_images`` returns them.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_grok.init_scale import initializers, scale_weights
from keras_grok.layers import PositionEmbedding


def _seed(seed: int | None, index: int) -> int | None:
    # Two seeds per layer (kernel, bias), distinct across layers.
    return None if seed is None else seed + 2 * index


def _channels(input_shape: tuple[int, ...]) -> int:
    channels_first = keras.config.image_data_format() == "channels_first"
    return int(input_shape[0] if channels_first else input_shape[-1])


def toy_mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    hidden: int = 200,
    depth: int = 2,
    init_scale: float = 1.0,
    init: str = "torch",
    seed: int | None = None,
) -> keras.Model:
    """The MLP of Omnigrok and paper A: flatten, ``depth`` ReLU layers, linear read-out.

    MNIST: 784-200-200-10. The last hidden layer (post-ReLU) is ``"features"``. Every
    parameter is multiplied by ``init_scale`` after initialization (alpha = 8 in the
    papers).

    Args:
        input_shape: shape of one input, e.g. ``(28, 28, 1)``.
        num_classes: number of classes K.
        hidden: width of each hidden layer. Defaults to `200`.
        depth: number of hidden layers. Defaults to `2`.
        init_scale: alpha, multiplying every parameter. Defaults to `1.0`.
        init: ``"torch"`` (the papers' PyTorch default) or ``"keras"`` (see
            ``keras_grok.init_scale``). Defaults to `"torch"`.
        seed: seed of the initializers, or None for Keras' global seed.
            Defaults to `None`.

    Example:
    ```python
    model = toy_mlp((28, 28, 1), 10, init_scale=8.0, seed=0)
    model.get_layer("features").output.shape  # (None, 200)
    ```
    """
    if depth < 1 or hidden < 1:
        raise ValueError(
            f"depth and hidden must be >= 1. Received: depth={depth}, hidden={hidden}"
        )
    inputs = keras.Input(tuple(input_shape), name="images")
    x = keras.layers.Flatten(name="flatten")(inputs)
    fan_in = math.prod(input_shape)
    layers = []
    for i in range(depth):
        name = "features" if i == depth - 1 else f"hidden_{i}"
        layers.append(
            keras.layers.Dense(
                hidden,
                activation="relu",
                name=name,
                **initializers(init, fan_in, _seed(seed, i)),
            )
        )
        x = layers[-1](x)
        fan_in = hidden
    layers.append(
        keras.layers.Dense(
            num_classes, name="logits", **initializers(init, hidden, _seed(seed, depth))
        )
    )
    model = keras.Model(inputs, layers[-1](x), name="toy_mlp")
    scale_weights(layers, init_scale)
    return model


def toy_cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    filters: tuple[int, int] = (16, 32),
    dense: int = 128,
    init_scale: float = 1.0,
    init: str = "torch",
    seed: int | None = None,
) -> keras.Model:
    """Paper A's CNN: conv 16, conv 32 (3x3, ReLU), 2x2 max-pool, dense 128, dense K.

    The dense 128 layer (post-ReLU) is ``"features"``. Only the two dense layers are
    multiplied by ``init_scale``; the convolutions keep their initialization.

    Args:
        input_shape: shape of one image, in Keras' image data format.
        num_classes: number of classes K.
        filters: channels of the two convolutions. Defaults to `(16, 32)`.
        dense: width of the feature layer. Defaults to `128`.
        init_scale: alpha, multiplying the dense layers' parameters.
            Defaults to `1.0`.
        init: ``"torch"`` or ``"keras"`` (see ``keras_grok.init_scale``).
            Defaults to `"torch"`.
        seed: seed of the initializers, or None. Defaults to `None`.

    Example:
    ```python
    model = toy_cnn((28, 28, 1), 10, init_scale=8.0)
    ```
    """
    inputs = keras.Input(tuple(input_shape), name="images")
    x = inputs
    channels = _channels(input_shape)
    for i, width in enumerate(filters):
        x = keras.layers.Conv2D(
            width,
            3,
            activation="relu",
            name=f"conv_{i}",
            **initializers(init, channels * 9, _seed(seed, i)),
        )(x)
        channels = width
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    features = keras.layers.Dense(
        dense,
        activation="relu",
        name="features",
        **initializers(init, x.shape[-1], _seed(seed, len(filters))),
    )
    logits = keras.layers.Dense(
        num_classes,
        name="logits",
        **initializers(init, dense, _seed(seed, len(filters) + 1)),
    )
    model = keras.Model(inputs, logits(features(x)), name="toy_cnn")
    scale_weights([features, logits], init_scale)
    return model


@keras.saving.register_keras_serializable(package="keras_grok")
class ClassToken(keras.layers.Layer):
    """Prepends a learned class token to a ``(batch, length, dim)`` sequence.

    The ``[CLS]`` token of ViT (Dosovitskiy et al., 2021): after the encoder, its
    output summarizes the whole image.

    Args:
        initializer: initializer of the ``(dim,)`` token.
            Defaults to `RandomNormal(stddev=0.02)`.

    Example:
    ```python
    patches = keras.Input((49, 128))
    x = ClassToken()(patches)  # (None, 50, 128)
    ```
    """

    def __init__(self, initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(
            initializer or keras.initializers.RandomNormal(stddev=0.02)
        )

    def build(self, input_shape):
        self.token = self.add_weight(
            shape=(input_shape[-1],), initializer=self.initializer, name="token"
        )

    def call(self, inputs):
        batch, dim = ops.shape(inputs)[0], ops.shape(inputs)[-1]
        token = ops.broadcast_to(ops.cast(self.token, inputs.dtype), (batch, 1, dim))
        return ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[2])

    def get_config(self):
        return {
            **super().get_config(),
            "initializer": keras.initializers.serialize(self.initializer),
        }


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

    Example:
    ```python
    model = patch_transformer((28, 28, 1), 10)  # 49 patches + CLS
    ```
    """
    channels_first = keras.config.image_data_format() == "channels_first"
    sides = input_shape[1:] if channels_first else input_shape[:2]
    if any(side % patch_size for side in sides) or d_model % num_heads:
        raise ValueError(
            f"image sides {tuple(sides)} must be divisible by patch_size={patch_size}"
            f" and d_model={d_model} by num_heads={num_heads}"
        )
    num_patches = (sides[0] // patch_size) * (sides[1] // patch_size)
    inputs = keras.Input(tuple(input_shape), name="images")
    x = keras.layers.Conv2D(
        d_model,
        patch_size,
        strides=patch_size,
        name="patch_embedding",
        **initializers(init, _channels(input_shape) * patch_size**2, _seed(seed, 0)),
    )(inputs)
    if channels_first:
        x = keras.layers.Permute((2, 3, 1), name="channels_last")(x)
    x = keras.layers.Reshape((num_patches, d_model), name="patches")(x)
    x = ClassToken(
        keras.initializers.RandomNormal(stddev=0.02, seed=_seed(seed, 3)),
        name="class_token",
    )(x)
    x = PositionEmbedding(
        num_patches + 1,
        keras.initializers.RandomNormal(stddev=0.02, seed=_seed(seed, 1)),
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
        **initializers(init, d_model, _seed(seed, 4)),
    )(x)
    hidden = keras.layers.Dense(
        d_model, name="ffn_2", **initializers(init, ffn, _seed(seed, 5))
    )(hidden)
    x = keras.layers.LayerNormalization(name="norm_2")(
        keras.layers.Add(name="residual_2")([x, hidden])
    )
    x = keras.layers.Cropping1D((0, num_patches), name="class_output")(x)
    x = keras.layers.Flatten(name="features")(x)
    logits = keras.layers.Dense(
        num_classes, name="logits", **initializers(init, d_model, _seed(seed, 2))
    )
    model = keras.Model(inputs, logits(x), name="patch_transformer")
    scale_weights([logits], init_scale)
    return model


def resnet18(
    input_shape: tuple[int, ...],
    num_classes: int,
    width: int = 64,
    init_scale: float = 1.0,
    init: str = "torch",
    seed: int | None = None,
) -> keras.Model:
    """ResNet-18 (He et al., 2016) in the CIFAR style, as used by paper A.

    A 3x3 stem convolution (stride 1, no max-pool), four stages of two basic
    blocks (``width`` x 1, 2, 4, 8 channels; strides 1, 2, 2, 2; batch norm; 1x1
    projection shortcuts where the shape changes), global average pooling
    (``"features"``, ``8 * width`` wide) and a dense read-out, the only layer whose
    parameters alpha scales. With ``width=64`` on 32x32x3 images and 10 classes it
    has 11,173,962 trainable parameters.

    Args:
        input_shape: shape of one image, in Keras' image data format.
        num_classes: number of classes K.
        width: channels of the first stage. Defaults to `64`.
        init_scale: alpha, multiplying the read-out's parameters. Defaults to `1.0`.
        init: ``"torch"`` or ``"keras"``. Defaults to `"torch"`.
        seed: seed of the initializers, or None. Defaults to `None`.

    Example:
    ```python
    model = resnet18((32, 32, 3), 10, init_scale=8.0)
    ```
    """
    axis = 1 if keras.config.image_data_format() == "channels_first" else -1
    counter = iter(range(10**6))

    def conv(x, filters, kernel, stride, name, in_channels):
        kernel_init = initializers(
            init, in_channels * kernel**2, _seed(seed, next(counter))
        )
        return keras.layers.Conv2D(
            filters,
            kernel,
            strides=stride,
            padding="same",
            use_bias=False,
            kernel_initializer=kernel_init["kernel_initializer"],
            name=name,
        )(x)

    def norm(x, name):
        return keras.layers.BatchNormalization(axis=axis, epsilon=1e-5, name=name)(x)

    inputs = keras.Input(tuple(input_shape), name="images")
    x = conv(inputs, width, 3, 1, "stem_conv", _channels(input_shape))
    x = keras.layers.ReLU(name="stem_relu")(norm(x, "stem_bn"))
    channels = width
    for stage, stride in enumerate((1, 2, 2, 2)):
        filters = width * 2**stage
        for block in range(2):
            name = f"stage{stage + 1}_block{block + 1}"
            step = stride if block == 0 else 1
            y = conv(x, filters, 3, step, f"{name}_conv1", channels)
            y = keras.layers.ReLU(name=f"{name}_relu1")(norm(y, f"{name}_bn1"))
            y = norm(conv(y, filters, 3, 1, f"{name}_conv2", filters), f"{name}_bn2")
            shortcut = x
            if step != 1 or channels != filters:
                shortcut = conv(x, filters, 1, step, f"{name}_project", channels)
                shortcut = norm(shortcut, f"{name}_project_bn")
            x = keras.layers.Add(name=f"{name}_add")([y, shortcut])
            x = keras.layers.ReLU(name=f"{name}_out")(x)
            channels = filters
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    logits = keras.layers.Dense(
        num_classes,
        name="logits",
        **initializers(init, channels, _seed(seed, next(counter))),
    )
    model = keras.Model(inputs, logits(x), name="resnet18")
    scale_weights([logits], init_scale)
    return model
