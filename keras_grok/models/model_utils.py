"""Small helpers shared by the image model builders: seeds and image channels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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


def check_input_shape(
    input_shape, rank: int | None = 3, name: str = "input_shape"
) -> tuple[int, ...]:
    """Returns ``input_shape`` as a tuple of ints >= 1, of ``rank`` entries.

    Args:
        input_shape: the shape of one input (no batch axis).
        rank: the number of entries it must have (3 for an image); None: any
            number >= 1. Defaults to `3`.
        name: the argument's name, for the message. Defaults to `"input_shape"`.

    Raises:
        ValueError: not a sequence of integers >= 1 of that length, e.g.
            "input_shape must be 3 integers >= 1 ... Received: input_shape=(8, 8)".
    """
    what = f"{rank} integers >= 1" if rank else "one or more integers >= 1"
    if rank == 3:
        layout = keras.config.image_data_format()
        what += f" (height, width, channels in {layout})"
    try:
        shape = tuple(input_shape)
        valid = (len(shape) == rank if rank else len(shape) >= 1) and all(
            not isinstance(v, bool) and int(v) == v and int(v) >= 1 for v in shape
        )
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"{name} must be {what}. Received: {name}={input_shape!r}")
    return tuple(int(v) for v in shape)


def image_sides(input_shape: tuple[int, ...]) -> tuple[int, int]:
    """The (height, width) of one image's shape, in Keras' image data format."""
    channels_first = keras.config.image_data_format() == "channels_first"
    sides = input_shape[1:] if channels_first else input_shape[:2]
    return int(sides[0]), int(sides[1])


def check_config_keys(config, keys: Iterable[str], what: str) -> None:
    """Refuses a ``config`` that is not a dict or lacks one of ``keys``.

    Args:
        config: the builder's config.
        keys: the keys it must hold.
        what: what needs them, for the message (e.g. ``"model='mlp'"``).

    Raises:
        TypeError: ``config`` is not a mapping.
        ValueError: naming the missing keys, e.g. "config lacks the key(s)
            'embed_dim' that model='mlp' needs. Received: config={...}".
    """
    if not isinstance(config, Mapping):
        raise TypeError(
            f"config must be a dict. Received: config of type {type(config).__name__}"
        )
    missing = [key for key in keys if key not in config]
    if missing:
        names = ", ".join(repr(key) for key in missing)
        raise ValueError(
            f"config lacks the key(s) {names} that {what} needs. "
            f"Received: config={dict(config)!r}"
        )
