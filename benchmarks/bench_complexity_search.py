"""Complexity search: keras-grok's structured search vs. 62-point Bayesian optimization.

Paper B (DeMoss et al., arXiv 2412.09810) finds the coarse-graining threshold t and
bin size b for each epsilon with Bayesian optimization: 2 probes + 10 random + 50
guided points, t in [0, 1] (linear), b in [1e-3, 1] (log). This benchmark trains the
modadd model to its grokked state, then on the same weights, data and epsilon runs

- ours: ``keras_grok.measures.complexity.estimate_complexity`` in its two modes,
  ``"global"`` (paper B's one threshold and one bin size for the network) and
  ``"per_matrix"`` (one of each per weight, under the same loss bound);
- baseline: the ``bayesian-optimization`` package over the same two parameters and
  the same compressed size (objective: minus the size if the loss bound holds, else
  minus the naive size), reusing the same SVDs.

It prints the compressed sizes (targets: global <= 1.0x the baseline; per-matrix
<= 0.6x global) and wall times (targets: global >= 10x faster than the baseline;
per-matrix <= 3x global), checks that every returned loss meets the bound and that
the weights are restored bit for bit, and prints the naive size over our
complexity (paper B: 30-40x). Needs the ``bench`` extra:
``pip install -e ".[bench]"``.

    KERAS_BACKEND=jax python benchmarks/bench_complexity_search.py --epsilon 0.1
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import keras
import numpy as np
from bayes_opt import BayesianOptimization

from keras_grok.callbacks import GrokkingMonitor
from keras_grok.data.modular import modular_dataset
from keras_grok.experiments.recipe import load_recipe
from keras_grok.measures import coarse_graining, complexity, weight_codec
from keras_grok.models.modular import build_modular_model

RECIPE = Path(__file__).parents[1] / "recipes" / "modadd.py"


def grokked_model(steps: int, seed: int):
    recipe = load_recipe(RECIPE)
    config = dict(recipe.defaults)
    split = modular_dataset(config["p"], config["op"], config["train_fraction"], seed)
    keras.utils.set_random_seed(seed)
    model = build_modular_model(config, split.vocab_size, split.num_classes)
    monitor = GrokkingMonitor(
        (split.x_train, split.y_train),
        (split.x_test, split.y_test),
        schedule="geometric:1.2",
        patience=config["patience"],
    )
    epochs = math.ceil(steps / math.ceil(len(split.x_train) / config["batch_size"]))
    model.fit(
        split.x_train,
        split.y_train,
        batch_size=config["batch_size"],
        epochs=epochs,
        verbose=0,
        callbacks=[monitor],
    )
    return model, split, monitor


def bayesian_search(model, data, epsilon, factors, seed):
    """Paper B's search: 2 probes + 10 random + 50 guided points."""
    evaluate = complexity.WeightLoss(model, data)
    naive = weight_codec.naive_size(evaluate.original)
    try:
        bound = evaluate.current() + epsilon
        best = {"size": naive, "t": 1.0, "b": 0.0}

        def objective(threshold: float, log_bin: float) -> float:
            coarse = coarse_graining.coarse_grain(
                evaluate.original, threshold, 10.0**log_bin, factors
            )
            loss = evaluate(coarse.weights)
            size = weight_codec.compressed_size(coarse)
            if loss > bound:
                return -float(naive)
            if size < best["size"]:
                best.update(size=size, t=threshold, b=10.0**log_bin)
            return -float(size)

        optimizer = BayesianOptimization(
            objective,
            {"threshold": (0.0, 1.0), "log_bin": (-3.0, 0.0)},
            random_state=seed,
            verbose=0,
        )
        optimizer.probe({"threshold": 1.0, "log_bin": -3.0})
        optimizer.probe({"threshold": 0.9, "log_bin": -2.0})
        optimizer.maximize(init_points=10, n_iter=50)
        return best, evaluate.calls
    finally:
        evaluate.restore()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--examples", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model, split, monitor = grokked_model(args.steps, args.seed)
    summary = monitor.summary()
    print(
        f"backend {keras.backend.backend()}; trained to step {summary['final_step']}: "
        f"train acc {summary['final_train_accuracy']:.3f}, "
        f"test acc {summary['final_test_accuracy']:.3f}, "
        f"generalized_at {summary['generalized_at']}"
    )
    data = (split.x_train[: args.examples], split.y_train[: args.examples])
    before = [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights]

    times = {"global": [], "per_matrix": [], "bayesopt": []}
    estimates = {}
    for _ in range(args.repeats):
        for mode in ("global", "per_matrix"):
            start = time.perf_counter()
            factors = coarse_graining.factorize(model.trainable_weights)
            estimates[mode] = complexity.estimate_complexity(
                model, data, args.epsilon, factorizations=factors, mode=mode
            )
            times[mode].append(time.perf_counter() - start)
        start = time.perf_counter()
        factors = coarse_graining.factorize(model.trainable_weights)
        bo, bo_calls = bayesian_search(model, data, args.epsilon, factors, args.seed)
        times["bayesopt"].append(time.perf_counter() - start)
    for a, v in zip(before, model.weights):
        assert np.array_equal(a, keras.ops.convert_to_numpy(v)), "weights changed"

    naive = weight_codec.naive_size(model.trainable_weights)
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"epsilon {args.epsilon} nats on {args.examples} training examples")
    for mode, estimate in estimates.items():
        assert estimate.loss <= estimate.base_loss + args.epsilon, mode
        bins = ", ".join(f"{b:.3g}" for b in estimate.bin_sizes)
        print(
            f"{mode + ':':11} {estimate.size_bytes} bytes, measured loss "
            f"{estimate.loss:.4f} <= {estimate.base_loss + args.epsilon:.4f} "
            f"(ranks {estimate.ranks}, bins [{bins}], "
            f"{estimate.evaluations} evaluations, "
            f"{estimate.compressions} compressions), {median[mode]:.2f} s"
        )
    print(
        f"bayesopt:   {bo['size']} bytes (t={bo['t']:.3g}, b={bo['b']:.3g}, "
        f"{bo_calls} losses and compressions), {median['bayesopt']:.2f} s"
    )
    ours, per = estimates["global"], estimates["per_matrix"]
    print(
        f"size global/bayesopt = {ours.size_bytes / bo['size']:.3f} (target <= 1.0); "
        f"speed-up = {median['bayesopt'] / median['global']:.1f}x (target >= 10)"
    )
    print(
        f"size per_matrix/global = {per.size_bytes / ours.size_bytes:.3f} "
        f"(target <= 0.6); time per_matrix/global = "
        f"{median['per_matrix'] / median['global']:.2f}x (target <= 3)"
    )
    print(
        f"naive {naive} bytes; naive/complexity = {naive / ours.size_bytes:.1f}x "
        f"global, {naive / per.size_bytes:.1f}x per_matrix (paper B: 30-40x)"
    )


if __name__ == "__main__":
    main()
