"""Searches for the coarsest coarse-graining whose loss stays within a bound.

Paper B (DeMoss et al., *The Complexity Dynamics of Grokking*, arXiv 2412.09810)
minimises the compressed size of the coarse-grained weights subject to
``loss(coarse) <= loss(original) + epsilon``, over one threshold t and one bin size
b for the whole network (``global_search``). ``per_matrix_search`` starts from that
point and gives each weight its own t and b under the same single loss bound.
Both take ``loss_of(values) -> float`` (which measures the loss of the model with
its trainable weights set to ``values``) and the weights' factorizations; every
point they return had its loss measured. ``keras_grok.measures.complexity``
wraps them in ``estimate_complexity``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from keras_grok.measures.coarse_graining import (
    CoarseGrained,
    Factorization,
    coarse_grain,
)
from keras_grok.measures.weight_codec import compressed_size, weight_sizes

LossOf = Callable[[Sequence], float]


@dataclass(frozen=True)
class SearchResult:
    """The best point a search found: its weights, measured loss and size.

    Attributes:
        coarse: the chosen coarse-grained weights.
        loss: their measured loss.
        size_bytes: their compressed size.
        compressions: how many coarse-grained weight sets (or single weights)
            the search compressed.
    """

    coarse: CoarseGrained
    loss: float
    size_bytes: int
    compressions: int


def global_search(
    loss_of: LossOf,
    factors: Sequence[Factorization],
    bound: float,
    thresholds: Sequence[float],
    bin_range: tuple[float, float],
    resolution: float,
    codec: str,
) -> SearchResult | None:
    """Paper B's single (t, b) for the whole network; None if none meets the bound.

    - thresholds that give the same kept ranks are tried once;
    - the loss grows (nearly) monotonically with b while the size falls, so for
      each threshold the best b is the largest feasible one. For the first
      threshold it is bisected in log b over ``bin_range``; each smaller threshold
      starts from the previous b and, if that is infeasible, halves it until
      feasible and bisects the last halving, to a factor of ``resolution``;
    - thresholds go from 1 down and the search stops at the first threshold
      where even the smallest bin size is infeasible;
    - only each threshold's best point is compressed.
    """
    originals = [f.original for f in factors]
    best: SearchResult | None = None
    compressions = 0
    seen_ranks: set[tuple] = set()
    low, upper = bin_range
    for t in sorted({float(t) for t in thresholds}, reverse=True):
        ranks = tuple(f.rank_for(t) if f.is_matrix else None for f in factors)
        if ranks in seen_ranks:
            continue
        seen_ranks.add(ranks)

        def loss_at(b, t=t):
            coarse = coarse_grain(originals, t, b, factors)
            return coarse, loss_of(coarse.weights)

        found = _largest_feasible_bin(
            loss_at, bound, low, upper, bisect=best is None, resolution=resolution
        )
        if found is None:
            break  # coarser thresholds only add error
        coarse, loss = found
        upper = coarse.bin_size
        size = compressed_size(coarse, codec)
        compressions += 1
        if best is None or size < best.size_bytes:
            best = SearchResult(coarse, loss, size, 0)
    if best is None:
        return None
    return SearchResult(best.coarse, best.loss, best.size_bytes, compressions)


def _largest_feasible_bin(loss_at, bound, low, start, *, bisect, resolution):
    """The (near) largest b in ``[low, start]`` with ``loss_at(b) <= bound``.

    Tries ``start`` (feasible: done). Otherwise brackets a feasible b below it:
    with ``bisect`` the whole range ``[low, start]`` (``low`` infeasible: None),
    else by halving from ``start`` down to ``low``. Then bisects the bracket in
    log b until its ends are within ``resolution``. Returns ``(coarse, loss)`` of
    the largest feasible b evaluated, or None.
    """
    coarse, loss = loss_at(start)
    if loss <= bound:
        return coarse, loss
    feasible, hi_b = None, start
    if not bisect:
        b = start
        while b > low:
            b = max(b / 2, low)
            coarse, loss = loss_at(b)
            if loss <= bound:
                feasible = (coarse, loss)
                break
            hi_b = b
    elif start > low:
        coarse, loss = loss_at(low)
        if loss <= bound:
            feasible = (coarse, loss)
    if feasible is None:
        return None
    lo_b = feasible[0].bin_size
    while hi_b / lo_b > resolution:
        middle = math.sqrt(lo_b * hi_b)
        coarse, loss = loss_at(middle)
        if loss <= bound:
            feasible, lo_b = (coarse, loss), middle
        else:
            hi_b = middle
    return feasible


def per_matrix_search(
    evaluate,
    factors: Sequence[Factorization],
    bound: float,
    start: SearchResult,
    bin_range: tuple[float, float],
    codec: str,
    rank_steps: int = 1,
    bin_steps: int = 6,
    bisections: int = 12,
    fill_rounds: int = 3,
) -> SearchResult:
    """Gives each weight its own (t, b), from ``start``, under the one loss bound.

    The loss is far from additive over weights (near a perfect fit, the errors
    of all weights compound in the logits), but the output errors they cause
    nearly are: with ``e_i`` the mean squared change of the model's outputs when
    only weight i is coarse-grained, the outputs of all coarse weights at once
    change by about ``sum_i e_i``. So:

    1. for each matrix and each candidate (t_i, b_i) near ``start`` (the
       thresholds keeping ranks ``k - rank_steps .. k + rank_steps`` around its
       rank k, bin sizes ``b * 2^(j/2)`` for ``j = -2 .. bin_steps`` inside
       ``bin_range``, factors split as paper B's ``U_k S_k``, ``V_k^T`` or
       balanced, see ``coarse_grain``) measure ``e_i`` and the weight's
       compressed size alone (``weight_sizes``); vectors keep ``start``'s t
       and b;
    2. for a multiplier ``lam``, each matrix independently takes the candidate
       minimising ``size_i + lam * e_i`` (a Lagrangian relaxation of "least
       size for a given total output error");
    3. bisect ``lam`` (in log) for the largest total error whose joint point
       meets the loss bound, measuring each tried point's loss;
    4. spend the slack the discrete options leave: matrix by matrix, largest
       first, try its most accurate option smaller than the chosen one, for up
       to ``fill_rounds`` rounds while one succeeds.

    Returns the smallest measured feasible point (its loss measured for exactly
    its weights, its size compressed jointly), or ``start`` if none is smaller.
    ``evaluate`` is a ``keras_grok.measures.complexity.WeightLoss`` (its
    ``outputs`` and its call, which measures the loss).
    """
    originals = [f.original for f in factors]
    base = evaluate.outputs(originals)
    options: dict[int, list[tuple]] = {}  # i -> [(size, error, (t, b, balanced))]
    compressions = 0
    for i, f in enumerate(factors):
        if not f.is_matrix:
            continue
        b0 = start.coarse.bin_sizes[i]
        options[i] = []
        for t in _nearby_thresholds(f, start.coarse.thresholds[i], rank_steps):
            for j in range(-2, bin_steps + 1):
                b = b0 * 2.0 ** (j / 2)
                if not bin_range[0] <= b <= bin_range[1]:
                    continue
                for balanced in (False, True):
                    coarse = coarse_grain([originals[i]], t, b, [f], balanced)
                    if balanced and coarse.ranks[0] is None:
                        continue  # stored whole: the split does not apply
                    size = weight_sizes(coarse, codec)[0]
                    compressions += 1
                    values = list(originals)
                    values[i] = coarse.weights[0]
                    error = float(np.mean((evaluate.outputs(values) - base) ** 2))
                    options[i].append((size, error, (t, b, balanced)))

    def pick(lam: float) -> dict[int, tuple]:
        return {
            i: min(o, key=lambda c: c[0] + lam * c[1])[2] for i, o in options.items()
        }

    best, best_choice = start, None
    measured: dict[tuple, bool] = {}  # a choice -> it meets the bound

    def measure(choice: dict[int, tuple]) -> bool:
        nonlocal best, best_choice, compressions
        key = tuple(sorted(choice.items()))
        if key not in measured:
            per_t = list(start.coarse.thresholds)
            per_b = list(start.coarse.bin_sizes)
            per_split = list(start.coarse.balanced)
            for i, (t, b, balanced) in choice.items():
                per_t[i], per_b[i], per_split[i] = t, b, balanced
            coarse = coarse_grain(originals, per_t, per_b, factors, per_split)
            loss = evaluate(coarse.weights)
            measured[key] = loss <= bound
            if measured[key]:
                size = compressed_size(coarse, codec)
                compressions += 1
                if size < best.size_bytes:
                    best, best_choice = SearchResult(coarse, loss, size, 0), choice
        return measured[key]

    low, high = -8.0, 12.0  # log10 of lam: small lam favours size
    for _ in range(bisections):
        middle = (low + high) / 2
        if measure(pick(10.0**middle)):
            high = middle  # feasible: try favouring size more
        else:
            low = middle
    for _ in range(fill_rounds):
        # Spend the slack the discrete options left: per matrix, largest first,
        # the most accurate of its smaller options, if the joint loss allows.
        if best_choice is None:
            break
        improved = False
        sizes = {i: _option(options[i], c)[0] for i, c in best_choice.items()}
        for i in sorted(sizes, key=sizes.get, reverse=True):
            current = _option(options[i], best_choice[i])[0]
            smaller = [o for o in options[i] if o[0] < current]
            if smaller:
                trial = dict(best_choice)
                trial[i] = min(smaller, key=lambda o: o[1])[2]
                improved |= measure(trial) and best_choice == trial
        if not improved:
            break
    return SearchResult(
        best.coarse, best.loss, best.size_bytes, start.compressions + compressions
    )


def _nearby_thresholds(f: Factorization, threshold: float, steps: int) -> list[float]:
    """Thresholds giving the ranks ``k - steps .. k + steps`` around ``threshold``'s.

    Rank r is kept by any threshold in ``(mass[r - 2], mass[r - 1]]``; this
    returns ``mass[r - 1]`` itself, exactly representable by ``rank_for``.
    """
    k = f.rank_for(threshold)
    by_rank = {}
    for r in range(max(k - steps, 1), min(k + steps, len(f.s)) + 1):
        t = float(f.mass[r - 1])
        by_rank.setdefault(f.rank_for(t), t)
    return list(by_rank.values())


def _option(options: list[tuple], setting: tuple) -> tuple:
    """The ``(size, error, setting)`` entry of ``setting``."""
    return next(o for o in options if o[2] == setting)
