"""FourierMonitor: Nanda et al.'s Fourier progress measures at scheduled steps."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import keras
import numpy as np

from keras_grok.callbacks.forward_reader import all_layers, find_layer
from keras_grok.callbacks.measurement_requests import Outputs, PassResults
from keras_grok.callbacks.schedule import ScheduleSpec
from keras_grok.callbacks.scheduled_monitor import ScheduledMonitor
from keras_grok.data.modular import OPERATIONS, canonical_operation
from keras_grok.measures import fourier, fourier_losses
from keras_grok.measures.float64 import float64_scope
from keras_grok.runs.figures import Panel
from keras_grok.utils.argument_validation import (
    validate_choice_arg,
    validate_int_arg,
    validate_string_arg,
)
from keras_grok.utils.labelled_data import LabelledData, validate_labelled_pair

SPECTRUM_METRICS = ("fourier_sparsity", "fourier_gini", "fourier_top_frequency")
LOSS_METRICS = ("restricted_loss", "excluded_loss")


class FourierMonitor(ScheduledMonitor):
    """Tracks the Fourier circuit of modular addition at scheduled steps.

    Nanda et al. (*Progress measures for grokking via mechanistic
    interpretability*, arXiv 2301.05217) find that a network trained on
    ``a + b mod p`` builds a circuit on a few key frequencies, in three phases:
    memorization, circuit formation (the excluded loss rises while the training
    loss stays low) and cleanup (the restricted loss and the weight norm fall,
    and the test loss with them). This monitor logs their progress measures
    (``keras_grok.measures.fourier``):

    - ``fourier_sparsity``: the fraction of the token embedding's energy in its
      ``num_key_frequencies`` largest frequencies; ``fourier_gini``: the Gini
      coefficient of its frequency norms; ``fourier_top_frequency``: its
      largest frequency;
    - ``squared_weight_norm``: the sum of squares of the trainable weights;
    - ``train_restricted_loss`` and ``train_excluded_loss`` (and ``test_*``
      with ``test_data``): the loss of the logits restricted to, or with removed,
      the key-frequency terms ``cos(w_k(a+b-c))``, ``sin(w_k(a+b-c))``.

    The key frequencies are the embedding's largest at each measured step, or
    fixed ones (``key_frequencies``; Nanda et al. take those of the final,
    grokked model). The logit table over all ``p^2`` pairs is assembled from the
    outputs on ``train_data`` and ``test_data`` (which together must hold every
    pair once), read in the shared measurement pass: with a ``GrokkingMonitor``
    on the same arrays, no further forward pass. For an operation other than
    ``a+b`` and ``a-b`` the losses are undefined and logged as NaN (one
    warning); the spectrum is still measured.

    Args:
        train_data: ``(x, y)`` training pairs: rows ``[a, b]`` (the MLP) or
            ``[a, op, b, =]`` (the transformer), integer labels ``a op b mod p``.
        test_data: ``(x, y)`` the other pairs, or None (then the losses are
            NaN unless ``train_data`` holds every pair). Defaults to `None`.
        p: the modulus.
        op: the operation, ``"a+b"`` or ``"a-b"`` (others: NaN losses).
            Defaults to `"a+b"`.
        embedding: name of the token-embedding layer; None takes the model's
            first ``keras.layers.Embedding`` with at least ``p`` rows.
            Defaults to `None`.
        num_key_frequencies: how many key frequencies. Defaults to `5`.
        key_frequencies: fixed key frequencies, or None to take the current
            largest at each step. Defaults to `None`.
        directions: the key-frequency directions, ``"paper"`` or ``"code"``
            (see ``keras_grok.measures.fourier_losses.key_frequency_component``).
            Defaults to `"paper"`.
        positions: the columns of ``a`` and ``b`` in ``x``; None: ``(0, 1)``
            for 2 columns, ``(0, 2)`` for 4. Defaults to `None`.
        schedule: when to measure (see ``ScheduledMonitor``).
            Defaults to `"geometric"`.
        batch_size: rows per compiled call. Defaults to `16384`.

    Example:
    ```python
    split = modular_dataset(97, "a+b", 0.4)
    monitor = FourierMonitor((split.x_train, split.y_train),
                             (split.x_test, split.y_test), p=97)
    model.fit(split.x_train, split.y_train, epochs=100, callbacks=[monitor])
    monitor.latest["train_excluded_loss"], monitor.key_frequencies_now
    ```
    """

    progress_keys = ("fourier_sparsity",)

    def __init__(
        self,
        train_data: tuple,
        test_data: tuple | None = None,
        p: int = 97,
        op: str = "a+b",
        embedding: str | None = None,
        num_key_frequencies: int = 5,
        key_frequencies: Sequence[int] | None = None,
        directions: str = "paper",
        positions: tuple[int, int] | None = None,
        schedule: ScheduleSpec = "geometric",
        batch_size: int = 16384,
    ):
        super().__init__(schedule, batch_size)
        fourier.num_frequencies(p)  # checks p
        self.p = int(p)
        self.op = canonical_operation(op)
        validate_choice_arg(directions, "directions", fourier_losses.DIRECTIONS)
        self.directions = directions
        if embedding is not None:
            validate_string_arg(embedding, "embedding")
        self.embedding = embedding
        frequencies = (self.p - 1) // 2  # an even p's p/2 has no sine
        num_key_frequencies = validate_int_arg(
            num_key_frequencies, "num_key_frequencies"
        )
        if not 1 <= num_key_frequencies <= frequencies:
            raise ValueError(
                f"num_key_frequencies must be in [1, {frequencies}]. "
                f"Received: num_key_frequencies={num_key_frequencies}"
            )
        self.num_key_frequencies = int(num_key_frequencies)
        self.fixed_frequencies = (
            None
            if key_frequencies is None
            else tuple(int(k) for k in _checked(key_frequencies, self.p))
        )
        sets = {"train": (train_data, "train_data"), "test": (test_data, "test_data")}
        self.data: dict[str, LabelledData] = {
            split: validate_labelled_pair(pair, name, self.p)
            for split, (pair, name) in sets.items()
            if pair is not None
        }
        self.positions = _positions(self.data["train"].x, positions)
        self._rows = {
            split: _pair_rows(data.x, self.positions, self.p, split)
            for split, data in self.data.items()
        }
        self.defined = self.op in fourier.FOURIER_OPERATIONS
        if self.defined:
            self._check_labels()
            self.defined = self._covers_every_pair()
        if not self.defined:
            warnings.warn(
                f"FourierMonitor logs the restricted and excluded losses as NaN: "
                f"{self._why_undefined()}",
                stacklevel=2,
            )
        self.metric_names = (
            *SPECTRUM_METRICS,
            "squared_weight_norm",
            *(f"{s}_{m}" for s in self.data for m in LOSS_METRICS),
        )
        self.key_frequencies_now: tuple[int, ...] = ()
        self._request = Outputs()
        self._layer = None

    def _check_labels(self) -> None:
        a_col, b_col = self.positions
        for split, data in self.data.items():
            a = data.x[:, a_col].astype(np.int64)
            b = data.x[:, b_col].astype(np.int64)
            if not np.array_equal(OPERATIONS[self.op](a, b, self.p), data.labels):
                raise ValueError(
                    f"{split}_data labels are not {self.op} mod {self.p} of the "
                    f"columns {self.positions} of x: pass the op and p the data "
                    "was made with, or the columns of a and b as positions."
                )

    def _covers_every_pair(self) -> bool:
        rows = np.concatenate(list(self._rows.values()))
        return len(rows) == self.p**2 and len(np.unique(rows)) == self.p**2

    def _why_undefined(self) -> str:
        if self.op not in fourier.FOURIER_OPERATIONS:
            return f"they are defined for a+b and a-b only, not {self.op}."
        return (
            "train_data and test_data together must hold every pair (a, b) once "
            f"({self.p**2} rows) to make the logit table."
        )

    def needs(self):
        if not self.defined:
            return []
        return [(self._request, data) for data in self.data.values()]

    def panels(self) -> tuple[Panel, ...]:
        losses = tuple(f"{s}_{m}" for s in self.data for m in LOSS_METRICS)
        return (
            Panel(
                "Fourier sparsity, Gini",
                ("fourier_sparsity", "fourier_gini"),
                limits=(-0.02, 1.02),
            ),
            Panel("restricted / excluded loss", losses, log_y=True),
            Panel("squared weight norm", ("squared_weight_norm",), log_y=True),
        )

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._layer = self._find_embedding(self.trained_model)

    def _find_embedding(self, model: keras.Model) -> keras.layers.Layer:
        if self.embedding is not None:
            layer = find_layer(model, self.embedding)
            if not hasattr(layer, "embeddings"):
                raise ValueError(
                    f"Layer {self.embedding!r} is not an embedding layer (it has "
                    "no `embeddings` table)."
                )
            return layer
        for layer in all_layers(model):
            if isinstance(layer, keras.layers.Embedding) and (
                layer.input_dim >= self.p
            ):
                return layer
        raise ValueError(
            f"Model {model.name!r} has no keras.layers.Embedding with at least "
            f"p = {self.p} rows; name the token embedding with embedding=..."
        )

    def key_frequencies_of(self, model: keras.Model) -> tuple[int, ...]:
        """The ``num_key_frequencies`` strongest frequencies of ``model``'s embedding.

        Nanda et al. (arXiv 2301.05217) take the key frequencies of the final
        model and use them at every checkpoint; pass these as
        ``key_frequencies`` to measure a run that way (``keras-grok measure``
        does, by default).
        """
        ops = keras.ops
        table = ops.convert_to_tensor(self._find_embedding(model).embeddings)
        norms = fourier.embedding_spectrum(table, self.p)
        keys = fourier.ranked_frequencies(
            _without_nyquist(norms, self.p), self.num_key_frequencies
        )
        return tuple(int(f) for f in ops.convert_to_numpy(keys))

    def prepare_after_the_fact(self, model: keras.Model) -> None:
        """Fixes the key frequencies to those of the trained ``model``.

        Called before a run's lenses are measured after the fact
        (``train_and_record(after_the_fact=...)``): every step is then measured
        with the final model's key frequencies, as Nanda et al. do. Keys given
        as ``key_frequencies`` are kept.
        """
        if self.fixed_frequencies is None:
            self.fixed_frequencies = self.key_frequencies_of(model)

    def measure(self, step: int, results: PassResults) -> dict[str, float]:
        ops = keras.ops
        table = ops.convert_to_tensor(self._layer.embeddings)
        norms = fourier.embedding_spectrum(table, self.p)
        k = self.num_key_frequencies
        keys = (
            self.fixed_frequencies
            if self.fixed_frequencies is not None
            else tuple(
                int(f)
                for f in ops.convert_to_numpy(
                    fourier.ranked_frequencies(_without_nyquist(norms, self.p), k)
                )
            )
        )
        self.key_frequencies_now = keys
        values = {
            "fourier_sparsity": fourier.fourier_sparsity(norms, k),
            "fourier_gini": fourier.gini_coefficient(norms),
            "fourier_top_frequency": ops.argmax(norms) + 1,
            "squared_weight_norm": fourier.squared_weight_norm(
                self.trained_model.trainable_weights
            ),
        }
        values.update(self._losses(results, keys))
        return {
            name: float(ops.convert_to_numpy(value)) for name, value in values.items()
        }

    def _losses(self, results: PassResults, keys: tuple[int, ...]) -> dict:
        if not self.defined:
            return {f"{s}_{m}": math.nan for s in self.data for m in LOSS_METRICS}
        # Float64, as Nanda et al. compute: after grokking the restricted loss is
        # ~4e-6 nats, below float32's resolution of a loss near log p.
        logits = np.zeros((self.p**2, self.p), dtype="float64")
        labels = np.zeros((self.p**2,), dtype="int32")
        for split, data in self.data.items():
            rows = self._rows[split]
            logits[rows] = results.get(self._request, data).reshape(len(rows), -1)[
                :, : self.p
            ]  # a model may also score its op and "=" tokens
            labels[rows] = data.labels
        values = {}
        with float64_scope():
            table = keras.ops.convert_to_tensor(logits, "float64")
            component = fourier_losses.key_frequency_component(
                table, self.p, self.op, keys, self.directions
            )
            for split in self.data:
                rows = self._rows[split]
                for name, loss in (
                    ("restricted_loss", fourier_losses.restricted_loss),
                    ("excluded_loss", fourier_losses.excluded_loss),
                ):
                    value = loss(
                        table,
                        labels,
                        self.p,
                        self.op,
                        keys,
                        rows,
                        self.directions,
                        component=component,
                    )
                    values[f"{split}_{name}"] = float(keras.ops.convert_to_numpy(value))
        return values

    def summary(self) -> dict:
        """Final values and the final key frequencies."""
        return {
            **super().summary(),
            # Fixed keys (given, or the final model's after the fact) are the
            # run's, whether or not this process measured the last step.
            "fourier_key_frequencies": list(
                self.fixed_frequencies or self.key_frequencies_now
            ),
        }


def _without_nyquist(norms, p: int):
    # An even p's frequency p/2 has no sine: never a key frequency of the circuit.
    return norms[: (p - 1) // 2]


def _checked(frequencies: Sequence[int], p: int) -> np.ndarray:
    k = np.asarray(list(frequencies)).astype("int64")
    if k.size == 0 or k.min() < 1 or 2 * k.max() >= p or len(set(k)) != k.size:
        raise ValueError(
            f"key_frequencies must be distinct integers in [1, {(p - 1) // 2}]. "
            f"Received: key_frequencies={list(frequencies)}"
        )
    return k


def _positions(x: np.ndarray, positions: tuple[int, int] | None) -> tuple[int, int]:
    width = x.shape[1] if x.ndim == 2 else None
    if positions is not None:
        columns = range(width or 0)
        valid = (
            isinstance(positions, (tuple, list))
            and len(positions) == 2
            and all(isinstance(i, (int, np.integer)) for i in positions)
            and all(i in columns for i in positions)
            and positions[0] != positions[1]
        )
        if not valid:
            raise ValueError(
                "positions must name two distinct columns of x (of shape "
                f"{x.shape}) that hold a and b. Received: positions={positions!r}"
            )
        return (int(positions[0]), int(positions[1]))
    if width == 2:
        return (0, 1)
    if width == 4:
        return (0, 2)
    raise ValueError(
        "FourierMonitor reads a and b from rows [a, b] or [a, op, b, =]; for "
        f"inputs of shape {x.shape} pass their columns as positions=(i, j)."
    )


def _pair_rows(x: np.ndarray, positions: tuple[int, int], p: int, split: str):
    a = x[:, positions[0]].astype(np.int64)
    b = x[:, positions[1]].astype(np.int64)
    if a.min() < 0 or b.min() < 0 or a.max() >= p or b.max() >= p:
        raise ValueError(
            f"{split}_data: a and b (columns {positions} of x) must be in "
            f"[0, {p}). Received values in [{min(a.min(), b.min())}, "
            f"{max(a.max(), b.max())}]"
        )
    return a * p + b
