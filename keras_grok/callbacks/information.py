"""InformationPlaneMonitor: how much the features keep about inputs and labels."""

from __future__ import annotations

import keras
import numpy as np

from keras_grok.callbacks.collapse import _check_classes, _labelled
from keras_grok.callbacks.features import FeatureReduction
from keras_grok.callbacks.monitor import ScheduledMonitor
from keras_grok.callbacks.schedule import ScheduleSpec
from keras_grok.measures import information, lossy_compression

_NAMES = {
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
    ``keras_grok.measures.lossy_compression``) adds its figures:

    - ``"nhsic"``: ``nhsic_zx``, ``nhsic_zy`` (normalized HSIC, batches of 100);
    - ``"compression"``: ``mi_zx``, ``mi_zy`` in nats (Butakov et al.: X through
      an autoencoder trained once and cached on disk, Z through PCA, kNN
      entropies);
    - ``"kde"``: ``kde_zx``, ``kde_zy``, ``kde_zx_given_y`` in nats (Xu Ji et
      al.'s Gaussian mixture, 400 references and 2000 evaluation samples).

    Features come from one unshuffled, compiled pass over ``data`` (built once
    per model), so X, Z and Y stay aligned. The estimators are far costlier than
    the collapse figures (kNN trees, n x n solves): keep the schedule sparse.

    Args:
        data: ``(x, y)`` arrays, usually (a subset of) the test set; ``y`` holds
            integer labels or one-hot rows.
        layer: name of the features layer (see ``CollapseMonitor``).
            Defaults to `"features"`.
        estimators: any of ``"nhsic"``, ``"compression"``, ``"kde"``.
            Defaults to `("nhsic", "compression", "kde")`.
        schedule: when to measure (see ``ScheduledMonitor``).
            Defaults to `"geometric"`.
        num_classes: number of classes; None takes the largest label + 1.
            Defaults to `None`.
        encoder_data: inputs the autoencoder of ``"compression"`` is trained on
            (paper A: the training split); None uses ``data``'s inputs.
            Defaults to `None`.
        encoder_epochs: autoencoder training epochs (paper A: 200).
            Defaults to `200`.
        cache_dir: where trained autoencoders are cached (see
            ``fit_input_encoder``). Defaults to `None`.
        seed: seed of the estimators' subsets and of the autoencoder.
            Defaults to `0`.
        batch_size: samples per compiled feature call. Defaults to `4096`.

    Example:
    ```python
    monitor = InformationPlaneMonitor((x_test[:2500], y_test[:2500]),
                                      estimators=("nhsic", "kde"),
                                      schedule="geometric:2")
    history = model.fit(x, y, epochs=50, callbacks=[monitor])
    history.history["nhsic_zx"]
    ```
    """

    def __init__(
        self,
        data: tuple,
        layer: str = "features",
        estimators: tuple[str, ...] = ("nhsic", "compression", "kde"),
        schedule: ScheduleSpec = "geometric",
        num_classes: int | None = None,
        encoder_data=None,
        encoder_epochs: int = 200,
        cache_dir: str | None = None,
        seed: int = 0,
        batch_size: int = 4096,
    ):
        super().__init__(schedule)
        unknown = sorted(set(estimators) - set(_NAMES))
        if unknown or not estimators:
            raise ValueError(
                f"estimators must be a non-empty subset of {sorted(_NAMES)}. "
                f"Received: {tuple(estimators)}"
            )
        self.x, self.y = _labelled(data, "data")
        self.num_classes = int(num_classes) if num_classes else int(self.y.max()) + 1
        _check_classes(self.y, self.num_classes, "data")
        self.layer = layer
        self.estimators = tuple(estimators)
        self.metric_names = tuple(n for e in self.estimators for n in _NAMES[e])
        self.encoder_data = encoder_data
        self.encoder_epochs = int(encoder_epochs)
        self.cache_dir = cache_dir
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self._codes = None
        self._reduction = None
        self._reduction_model = None

    def on_train_begin(self, logs=None):
        if self._reduction_model is not self.model:
            self._reduction = FeatureReduction(
                self.model, self.layer, lambda features, _: features
            )
            self._reduction_model = self.model
        super().on_train_begin(logs)

    def features(self) -> np.ndarray:
        """``(N, d)`` features of ``data``, in order, from the current weights."""
        chunks = [
            self._reduction.predict_on_batch({"x": self.x[i : i + self.batch_size]})
            for i in range(0, len(self.x), self.batch_size)
        ]
        features = np.concatenate([np.asarray(c) for c in chunks])
        return features.reshape(len(features), -1)

    def input_codes(self) -> np.ndarray:
        """The autoencoder codes of ``data``'s inputs (trained or loaded once)."""
        if self._codes is None:
            source = self.x if self.encoder_data is None else self.encoder_data
            encoder = lossy_compression.fit_input_encoder(
                np.asarray(source, dtype="float32"),
                epochs=self.encoder_epochs,
                seed=self.seed,
                cache_dir=self.cache_dir,
            )
            self._codes = np.asarray(
                keras.ops.convert_to_numpy(
                    encoder.predict(self.x.astype("float32"), verbose=0)
                )
            )
        return self._codes

    def measure(self, step: int) -> dict[str, float]:
        z = self.features()
        values = {}
        if "nhsic" in self.estimators:
            x = self.x.reshape(len(self.x), -1).astype("float32")
            one_hot = np.eye(self.num_classes, dtype="float32")[self.y]
            values["nhsic_zx"] = information.normalized_hsic(z, x, seed=self.seed)
            values["nhsic_zy"] = information.normalized_hsic(
                z, one_hot, "linear", seed=self.seed
            )
        if "compression" in self.estimators:
            mi = lossy_compression.compression_mutual_information(
                z, self.input_codes(), self.y
            )
            values["mi_zx"], values["mi_zy"] = mi["zx"], mi["zy"]
        if "kde" in self.estimators:
            references = min(400, len(z) // 2)
            mi = information.kde_mutual_information(
                z, self.y, num_references=references, seed=self.seed
            )
            values.update(
                kde_zx=mi["zx"], kde_zy=mi["zy"], kde_zx_given_y=mi["zx_given_y"]
            )
        return {k: float(v) for k, v in values.items()}
