"""EpochBatches: training batches in an order that depends on the seed and step only.

Keras' ``fit(shuffle=True)`` draws each epoch's permutation from NumPy's global RNG
(JAX), from torch's global generator (PyTorch) or from a stateful
``tf.random.shuffle`` inside ``tf.data`` (TensorFlow): states that no checkpoint can
restore on all three backends. Feeding the batches through ``EpochBatches`` makes
the order a pure function of ``(seed, step)``, so a run resumed from a checkpoint
sees exactly the batches the uninterrupted run saw.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from keras_grok.utils.argument_validation import validate_int_arg


class EpochBatches(keras.utils.PyDataset):
    """The training batches of every epoch, in an order that depends on the seed only.

    Epoch ``e`` visits the ``N`` examples in the order
    ``numpy.random.default_rng([seed, e]).permutation(N)``, in batches of
    ``batch_size`` (the last one smaller when ``N`` is not a multiple). Keras reads
    it as an endless sequence (``fit(..., steps_per_epoch=...)``): item ``i`` is
    the batch of global step ``start_epoch * steps_per_epoch + i``, so a run
    resumed at an epoch boundary sees exactly the batches the uninterrupted run
    saw, on every backend, whatever the backend prefetches.

    Args:
        x: ``(N, ...)`` training inputs.
        y: ``(N, ...)`` training targets.
        batch_size: examples per batch, >= 1.
        seed: seed of the permutations, an integer >= 0.
        start_epoch: the epoch of item 0 (the resumed epoch), >= 0.
            Defaults to `0`.

    Raises:
        ValueError: ``x`` and ``y`` that are empty or of different lengths, a
            ``batch_size`` below 1, or a negative ``seed`` or ``start_epoch``.

    Example:
    ```python
    model.fit(EpochBatches(x, y, 64, seed=0), epochs=10,
              steps_per_epoch=math.ceil(len(x) / 64))
    ```
    """

    def __init__(self, x, y, batch_size: int, seed: int, start_epoch: int = 0):
        super().__init__()
        self.x, self.y = np.asarray(x), np.asarray(y)
        if self.x.ndim == 0 or self.y.ndim == 0 or len(self.x) != len(self.y):
            raise ValueError(
                "x and y must hold one example per row, as many targets as inputs. "
                f"Received: x of shape {self.x.shape}, y of shape {self.y.shape}"
            )
        if len(self.x) == 0:
            raise ValueError(
                "x and y must hold at least one example. Received: x of shape "
                f"{self.x.shape}, y of shape {self.y.shape}"
            )
        self.batch_size = validate_int_arg(batch_size, "batch_size", minimum=1)
        self.seed = validate_int_arg(seed, "seed", minimum=0)
        start_epoch = validate_int_arg(start_epoch, "start_epoch", minimum=0)
        self.steps_per_epoch = math.ceil(len(self.x) / self.batch_size)
        self.start_step = start_epoch * self.steps_per_epoch
        self._epoch, self._order = None, None

    @property
    def num_batches(self) -> None:
        return None  # endless: fit's steps_per_epoch cuts it into epochs

    def order(self, epoch: int) -> np.ndarray:
        """The permutation of the examples in ``epoch`` (an integer >= 0)."""
        epoch = validate_int_arg(epoch, "epoch", minimum=0)
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._epoch, self._order = epoch, rng.permutation(len(self.x))
        return self._order

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        step = self.start_step + int(index)
        if step < 0:
            raise IndexError(
                f"index must not reach before step 0. Received: index={index!r}"
            )
        epoch, batch = divmod(step, self.steps_per_epoch)
        rows = self.order(epoch)[
            batch * self.batch_size : (batch + 1) * self.batch_size
        ]
        return self.x[rows], self.y[rows]
