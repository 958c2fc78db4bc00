"""ResNet-18 in the CIFAR style (He et al., 2016), as paper A trains it on images.

Sakamoto & Sato (arXiv 2509.20829) scale its initial read-out by alpha (Omnigrok,
Liu et al., 2023; see ``keras_grok.models.init_scale``). Images follow
``keras.config.image_data_format()``, as ``keras_grok.data.load_images`` returns
them.
"""

from __future__ import annotations

import keras

from keras_grok.models.init_scale import initializers, scale_weights
from keras_grok.models.model_utils import check_input_shape, image_channels, layer_seed
from keras_grok.utils.argument_validation import validate_int_arg, validate_seed


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

    Raises:
        ValueError: ``input_shape`` not 3 integers >= 1, or ``num_classes`` or
            ``width`` not an integer >= 1 (each message names the argument).

    Example:
    ```python
    model = resnet18((32, 32, 3), 10, init_scale=8.0)
    ```
    """
    input_shape = check_input_shape(input_shape)
    validate_int_arg(num_classes, "num_classes")
    validate_int_arg(width, "width")
    validate_seed(seed)
    axis = 1 if keras.config.image_data_format() == "channels_first" else -1
    counter = iter(range(10**6))

    def conv(x, filters, kernel, stride, name, in_channels):
        kernel_init = initializers(
            init, in_channels * kernel**2, layer_seed(seed, next(counter))
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
    x = conv(inputs, width, 3, 1, "stem_conv", image_channels(input_shape))
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
        **initializers(init, channels, layer_seed(seed, next(counter))),
    )
    model = keras.Model(inputs, logits(x), name="resnet18")
    scale_weights([logits], init_scale)
    return model
