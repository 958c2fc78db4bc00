"""A plain Keras script: the modadd recipe's model and data, trained, nothing else.

The baseline of ``bench_modadd_process.py``: what a user would write without
keras-grok (build, compile, ``fit`` for the same steps, no callbacks).

    KERAS_BACKEND=jax python benchmarks/plain_modadd.py --steps 4500
"""

from __future__ import annotations

import argparse
import math

import keras

from keras_grok.data.modular import modular_dataset
from keras_grok.models.modular import build_modular_model

CONFIG = {
    "model": "mlp",
    "embed_dim": 128,
    "hidden": 256,
    "depth": 2,
    "transformer_layers": 1,
    "learning_rate": 1e-3,
    "weight_decay": 1.0,
    "beta_2": 0.98,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4500)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    split = modular_dataset(97, "a+b", 0.4, 0)
    model = build_modular_model(CONFIG, split.vocab_size, split.num_classes)
    epochs = math.ceil(args.steps / math.ceil(len(split.x_train) / 512))
    model.fit(split.x_train, split.y_train, batch_size=512, epochs=epochs, verbose=0)


if __name__ == "__main__":
    main()
