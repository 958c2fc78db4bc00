"""Achieved FLOP/s of paper B's transformer training step vs. a matmul, JAX.

Paper B's setting (DeMoss et al., arXiv 2412.09810): the one-layer transformer
(d_model 128, 4 heads, d_mlp 512, tokens ``[a, op, b, =]``) on a+b mod 113,
mini-batches of 512, AdamW. XLA's cost analysis of the compiled step (forward,
backward and update of ``jax.value_and_grad`` through ``stateless_call``) gives
its floating-point operations; the step is timed plain and as ``fit`` runs it in
``recipes/complexity.py``'s regularized run (spectral entropy 0.1, weight noise
1e-2), and the machine's float32 matmul rate is measured in the same process
(square matrices of the sizes given), so the printed fraction is step FLOP/s over
matmul FLOP/s on the same cores and threads.

    KERAS_BACKEND=jax python benchmarks/bench_transformer_flops.py
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

RECIPE = Path(__file__).parents[1] / "recipes" / "complexity.py"


def matmul_flops_per_second(size: int, repeats: int) -> float:
    """Best float32 ``size x size`` matmul rate, in FLOP/s."""
    import jax
    import jax.numpy as jnp

    a = jnp.ones((size, size), jnp.float32)
    fn = jax.jit(lambda x: x @ x)
    fn(a).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(a).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()

    import jax
    import keras
    import numpy as np

    from keras_grok.data.modular import modular_dataset
    from keras_grok.experiments.recipe import load_recipe
    from keras_grok.models.modular import build_modular_model
    from keras_grok.regularizers import apply_paper_b_regularization

    if keras.backend.backend() != "jax":
        raise SystemExit("Run with KERAS_BACKEND=jax (XLA's cost analysis).")
    recipe = load_recipe(RECIPE)
    config = {
        **recipe.defaults,
        "model": "transformer",
        "p": 113,
        "train_fraction": 0.3,
        "learning_rate": 1e-3,
    }
    split = modular_dataset(config["p"], "a+b", 0.3, 0, "tokens")
    batch = config["batch_size"]
    x, y = split.x_train[:batch], split.y_train[:batch]

    def build(regularized: bool) -> keras.Model:
        """The complexity recipe's model: plain (no weight decay) or paper B's."""
        decay = config["weight_decay"] if regularized else 0.0
        keras.utils.set_random_seed(0)
        model = build_modular_model(
            {**config, "weight_decay": decay}, split.vocab_size, split.num_classes
        )
        if not regularized:
            return model
        return apply_paper_b_regularization(model, 0.1, 0.01, seed=0)

    model = build(False)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss(trainable, non_trainable):
        logits, _ = model.stateless_call(trainable, non_trainable, x, training=True)
        return loss_fn(y, logits)

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    grad = jax.jit(jax.value_and_grad(loss))
    compiled = grad.lower(trainable, non_trainable).compile()
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0]
    flops = float(analysis["flops"])

    def fit_step_seconds(regularized: bool) -> float:
        m = build(regularized)
        steps_per_epoch = math.ceil(len(split.x_train) / batch)
        epochs = max(1, math.ceil(args.steps / steps_per_epoch))
        m.fit(split.x_train, split.y_train, batch_size=batch, verbose=0)
        start = time.perf_counter()
        m.fit(split.x_train, split.y_train, batch_size=batch, epochs=epochs, verbose=0)
        return (time.perf_counter() - start) / (epochs * steps_per_epoch)

    times = []
    for _ in range(5):
        start = time.perf_counter()
        jax.block_until_ready(grad(trainable, non_trainable))
        times.append(time.perf_counter() - start)
    grad_seconds = statistics.median(times)
    plain, regularized = fit_step_seconds(False), fit_step_seconds(True)
    params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    print(
        f"transformer p=113, {params:,} parameters, batch {batch}: "
        f"{flops / 1e9:.2f} GFLOP per step (forward + backward, XLA cost analysis)"
    )
    print(
        f"  value_and_grad alone: {grad_seconds * 1e3:.1f} ms, "
        f"{flops / grad_seconds / 1e9:.1f} GFLOP/s"
    )
    print(
        f"  fit step, plain: {plain * 1e3:.1f} ms ({flops / plain / 1e9:.1f} GFLOP/s); "
        f"regularized (spectral entropy + noise): {regularized * 1e3:.1f} ms"
    )
    for size in (256, 1024):
        rate = matmul_flops_per_second(size, 20)
        print(
            f"  float32 matmul {size}x{size}: {rate / 1e9:.1f} GFLOP/s; the plain "
            f"step reaches {flops / plain / rate:.0%} of it"
        )


if __name__ == "__main__":
    main()
