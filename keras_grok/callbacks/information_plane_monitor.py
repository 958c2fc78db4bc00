"""InformationPlaneMonitor: how much the features keep about inputs and labels."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from keras_grok.callbacks.forward_reader import find_layer
from keras_grok.callbacks.measurement_requests import FeaturesOf, PassResults
from keras_grok.callbacks.schedule import ScheduleSpec
from keras_grok.callbacks.scheduled_monitor import ScheduledMonitor
from keras_grok.measures import information, lossy_compression
from keras_grok.runs.figures import Panel, PlanePanel
from keras_grok.utils.argument_validation import validate_int_arg, validate_seed
from keras_grok.utils.labelled_data import (
    LabelledData,
    validate_labelled_pair,
    validate_num_classes,
)

ESTIMATOR_MIN_SAMPLES = {"nhsic": 2, "compression": 6, "kde": 2}
"""Examples each estimator needs: nHSIC a pair, the kNN entropy of the
compression estimator more than its k = 5 neighbours, the KDE one reference and
one evaluation sample."""


def min_samples(estimators) -> int:
    """The examples a set needs for all of ``estimators`` (names)."""
    names = (estimators,) if isinstance(estimators, str) else tuple(estimators)
    return max(ESTIMATOR_MIN_SAMPLES[e] for e in names)


ESTIMATOR_METRICS = {
    "nhsic": ("nhsic_zx", "nhsic_zy"),
    "compression": ("mi_zx", "mi_zy"),
    "kde": ("kde_zx", "kde_zy", "kde_zx_given_y"),
}


class InformationPlaneMonitor(ScheduledMonitor):
    """Tracks the information plane of a layer's features Z at scheduled steps.

    Paper A (Sakamoto & Sato, arXiv 2509.20829) follows I(Z;X) and I(Z;Y) of the
    penultimate features through training: a fitting phase, then a compression
    phase in which the redundant information I(Z;X) - I(Z;Y) falls with RNC1.
    Each estimator (``keras_grok.measures.information`` and
    ``keras_grok.measures.lossy_compression``) adds its metrics, named
    ``{set}_{metric}`` for each data set given (``test_nhsic_zx``, ...):

    - ``"nhsic"``: ``nhsic_zx``, ``nhsic_zy`` (normalized HSIC, batches of 100);
    - ``"compression"``: ``mi_zx``, ``mi_zy`` in nats (Butakov et al.: X through
      an autoencoder trained once and cached on disk, Z through PCA, kNN
      entropies);
    - ``"kde"``: ``kde_zx``, ``kde_zy``, ``kde_zx_given_y`` in nats (Xu Ji et
      al.'s Gaussian mixture, 400 references and 2000 evaluation samples).

    Features come from the shared measurement pass (unshuffled, so X, Z and Y
    stay aligned). The estimators are far costlier than the collapse metrics
    (kNN trees, n x n solves): keep the schedule sparse.

    Args:
        train_data: ``(x, y)`` arrays measured as ``train_*``, or None.
            Defaults to `None`.
        test_data: ``(x, y)`` arrays measured as ``test_*`` (paper A: the test
            set), or None. At least one of the two. Defaults to `None`.
        layer: name of the features layer (see ``CollapseMonitor``).
            Defaults to `"features"`.
        estimators: any of ``"nhsic"``, ``"compression"``, ``"kde"`` (one name
            or several). Defaults to `("nhsic", "compression", "kde")`.
        schedule: when to measure (see ``ScheduledMonitor``).
            Defaults to `"geometric"`.
        num_classes: number of classes; None takes the largest label + 1.
            Defaults to `None`.
        encoder_data: inputs the autoencoder of ``"compression"`` is trained on
            (paper A: the training split); None uses the measured inputs.
            Defaults to `None`.
        encoder_epochs: autoencoder training epochs (paper A: 200).
            Defaults to `200`.
        cache_dir: where trained autoencoders are cached (see
            ``fit_input_encoder``). Defaults to `None`.
        seed: seed of the estimators' subsets and of the autoencoder.
            Defaults to `0`.
        batch_size: rows per compiled call. Defaults to `16384`.

    Example:
    ```python
    monitor = InformationPlaneMonitor(test_data=(x_test[:2500], y_test[:2500]),
                                      estimators=("nhsic", "kde"),
                                      schedule="geometric:2")
    history = model.fit(x, y, epochs=50, callbacks=[monitor])
    history.history["test_nhsic_zx"]
    ```
    """

    def __init__(
        self,
        train_data: tuple | None = None,
        test_data: tuple | None = None,
        layer: str = "features",
        estimators: str | tuple[str, ...] = ("nhsic", "compression", "kde"),
        schedule: ScheduleSpec = "geometric",
        num_classes: int | None = None,
        encoder_data=None,
        encoder_epochs: int = 200,
        cache_dir: str | None = None,
        seed: int = 0,
        batch_size: int = 16384,
    ):
        super().__init__(schedule, batch_size)
        estimators = (estimators,) if isinstance(estimators, str) else tuple(estimators)
        unknown = sorted(set(estimators) - set(ESTIMATOR_METRICS))
        if unknown or not estimators:
            raise ValueError(
                "estimators must be one or more of "
                f"{', '.join(ESTIMATOR_METRICS)}. Received: estimators={estimators}"
            )
        sets = {"train": (train_data, "train_data"), "test": (test_data, "test_data")}
        self.data: dict[str, LabelledData] = {
            split: validate_labelled_pair(pair, name)
            for split, (pair, name) in sets.items()
            if pair is not None
        }
        if not self.data:
            raise ValueError(
                "InformationPlaneMonitor needs train_data, test_data or both. "
                "Received neither."
            )
        self.num_classes = validate_num_classes(num_classes, self.data)
        needed = min_samples(estimators)
        for split, labelled in self.data.items():
            if len(labelled) < needed:
                raise ValueError(
                    f"{split}_data must hold at least {needed} examples for the "
                    f"estimators {', '.join(estimators)}. "
                    f"Received: {len(labelled)} examples"
                )
        self.layer = layer
        self.estimators = estimators
        self.metric_names = tuple(
            f"{split}_{name}"
            for split in self.data
            for e in self.estimators
            for name in ESTIMATOR_METRICS[e]
        )
        self.encoder_data = encoder_data
        self.encoder_epochs = validate_int_arg(encoder_epochs, "encoder_epochs")
        if (
            cache_dir is not None
            and Path(cache_dir).exists()
            and not (Path(cache_dir).is_dir())
        ):
            raise ValueError(
                "cache_dir must be a folder (trained autoencoders are kept there). "
                f"Received: cache_dir={str(cache_dir)!r}, a file"
            )
        self.cache_dir = cache_dir
        self.seed = validate_seed(seed) or 0
        self._request = FeaturesOf(layer)
        self._codes: dict[str, np.ndarray] = {}

    def needs(self):
        return [(self._request, data) for data in self.data.values()]

    def panels(self) -> tuple[Panel | PlanePanel, ...]:
        """A step panel per data set, then each set's plane of the first estimator.

        The plane is paper A's information plane: ``I(Z;X)`` on x, ``I(Z;Y)`` on
        y, the run's trajectory coloured by step.
        """
        steps = tuple(
            Panel(
                f"information ({split})",
                tuple(
                    f"{split}_{n}"
                    for e in self.estimators
                    for n in ESTIMATOR_METRICS[e]
                ),
            )
            for split in self.data
        )
        zx, zy = ESTIMATOR_METRICS[self.estimators[0]][:2]
        planes = tuple(
            PlanePanel(f"information plane ({split})", f"{split}_{zx}", f"{split}_{zy}")
            for split in self.data
        )
        return steps + planes

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        find_layer(self.trained_model, self.layer)  # a clear error up front

    def input_codes(self, split: str) -> np.ndarray:
        """The autoencoder codes of a data set's inputs (trained or loaded once)."""
        if split not in self._codes:
            x = self.data[split].x
            source = x if self.encoder_data is None else self.encoder_data
            encoder = lossy_compression.fit_input_encoder(
                np.asarray(source, dtype="float32"),
                epochs=self.encoder_epochs,
                seed=self.seed,
                cache_dir=self.cache_dir,
            )
            self._codes[split] = np.asarray(
                keras.ops.convert_to_numpy(
                    encoder.predict(x.astype("float32"), verbose=0)
                )
            )
        return self._codes[split]

    def measure(self, step: int, results: PassResults) -> dict[str, float]:
        values = {}
        for split, data in self.data.items():
            z = results.get(self._request, data)
            values.update(
                {f"{split}_{k}": v for k, v in self._estimate(split, data, z).items()}
            )
        return values

    def _estimate(self, split: str, data: LabelledData, z: np.ndarray) -> dict:
        if not np.all(np.isfinite(z)):
            # A diverged model's features: no information to estimate.
            return {
                name: float("nan")
                for e in self.estimators
                for name in ESTIMATOR_METRICS[e]
            }
        values = {}
        if "nhsic" in self.estimators:
            x = data.x.reshape(len(data.x), -1).astype("float32")
            one_hot = np.eye(self.num_classes, dtype="float32")[data.labels]
            values["nhsic_zx"] = information.normalized_hsic(z, x, seed=self.seed)
            values["nhsic_zy"] = information.normalized_hsic(
                z, one_hot, "linear", seed=self.seed
            )
        if "compression" in self.estimators:
            mi = lossy_compression.compression_mutual_information(
                z, self.input_codes(split), data.labels
            )
            values["mi_zx"], values["mi_zy"] = mi["zx"], mi["zy"]
        if "kde" in self.estimators:
            references = min(400, len(z) // 2)
            mi = information.kde_mutual_information(
                z, data.labels, num_references=references, seed=self.seed
            )
            values.update(
                kde_zx=mi["zx"], kde_zy=mi["zy"], kde_zx_given_y=mi["zx_given_y"]
            )
        return {k: float(v) for k, v in values.items()}
