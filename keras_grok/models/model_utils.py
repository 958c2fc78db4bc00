"""Small helpers shared by the image model builders: seeds and image channels."""

from __future__ import annotations

import keras


def layer_seed(seed: int | None, index: int) -> int | None:
    """The initializer seed of a builder's ``index``-th layer, or None.

    Each layer takes two seeds (kernel, bias; see ``keras_grok.models.init_scale``), so
    layer ``index`` starts at ``seed + 2 * index`` and no two layers share one.

    Args:
        seed: the builder's seed, or None for Keras' global seed.
        index: the layer's position among the builder's seeded layers.

    Returns:
        ``seed + 2 * index``, or None when ``seed`` is None.

    Example:
    ```python
    layer_seed(0, 3)  # 6
    layer_seed(None, 3)  # None
    ```
    """
    return None if seed is None else seed + 2 * index


def image_channels(input_shape: tuple[int, ...]) -> int:
    """The channel count of one image's shape, in Keras' image data format.

    Args:
        input_shape: shape of one image, ``(H, W, C)`` when
            ``keras.config.image_data_format()`` is ``"channels_last"``,
            ``(C, H, W)`` otherwise.

    Returns:
        C.

    Example:
    ```python
    image_channels((28, 28, 1))  # 1 (channels last)
    ```
    """
    channels_first = keras.config.image_data_format() == "channels_first"
    return int(input_shape[0] if channels_first else input_shape[-1])
