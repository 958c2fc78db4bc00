"""What a recipe config would cost, bounded before anything is allocated.

The memory of its model and measurement pass (``check_memory``, against half this
machine's memory), the work of one measurement pass over a modular task
(``check_modular_cost``) and the length of its measurement schedules
(``check_schedules``). Each check raises ``ValueError`` naming the keys and values
that set the cost, so the command line refuses the config before the run folder
exists.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

from keras_grok.callbacks.schedule import resolve_schedule
from keras_grok.utils.argument_validation import validate_int_arg

MAX_MEASUREMENTS = 100_000
"""Most measurements a schedule may list (each is a pass over the measured sets)."""

MAX_SCHEDULE_TERMS = 1_000_000
"""Most powers of a geometric ratio a schedule may enumerate before ``max_steps``."""

MAX_PASS_MACS = 1e12
"""Most multiply-adds one measurement pass of a modular task may take. A pass over
the 1,000,000 pairs of p=1000 through the default MLP (517k parameters, 5e11
multiply-adds) took 7.8 s on JAX on a shared 2-core CPU (66 GMAC/s); p=3000 with
the default widths would take 1.2e13, minutes per measurement."""

PASS_CHUNK = 16384
"""Rows per compiled call of the measurement pass (the monitors' ``batch_size``)."""

IMAGE_PIXELS = {"mnist": 784, "fashion_mnist": 784, "cifar10": 3072, "digits": 64}
"""Inputs of one image of each set (the MLP's first layer reads them all)."""

OPTIMIZER_SLOTS = {"adamw": 2, "sgd": 1}
"""Variables per parameter that each optimizer keeps (AdamW: two moments)."""


def memory_budget() -> int:
    """The bytes a run may plan to use: half of this machine's physical memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        total = 16 * 2**30
    return total // 2


def check_schedules(
    config: dict, keys: Iterable[str], steps_key: str = "max_steps"
) -> None:
    """Each of ``keys`` (those present) is a schedule spec (see resolve_schedule)
    of at most ``MAX_MEASUREMENTS`` steps for a run of ``config[steps_key]`` steps.

    The length is computed from the spec before the schedule is listed, so a
    ratio next to 1 or a stride of 1 over a billion steps is refused at once.
    """
    total = max(int(config.get(steps_key, 1)), 1)
    for key in keys:
        if key not in config:
            continue
        try:
            count = schedule_length(config[key], total)
            if count > MAX_MEASUREMENTS:
                raise ValueError(
                    f"it lists {count:,} measurements over {steps_key}={total}, "
                    f"more than the {MAX_MEASUREMENTS:,} a run may take; choose a "
                    "sparser schedule"
                )
            resolve_schedule(config[key], total)
        except ValueError as error:
            raise ValueError(f"{key}={config[key]!r}: {error}") from None


def schedule_length(spec, total_steps: int) -> int:
    """Measurements a schedule spec lists over ``total_steps`` (adaptive: at most).

    Raises:
        ValueError: ``total_steps`` not an integer >= 1, a geometric ratio that
            is not finite, or so near 1 that listing it would enumerate more
            than ``MAX_SCHEDULE_TERMS`` powers.
    """
    total_steps = validate_int_arg(total_steps, "total_steps")
    if not isinstance(spec, str):
        return 0  # a Schedule or a list: already listed
    name, _, argument = spec.partition(":")
    if name == "geometric" and argument:
        try:
            ratio = float(argument)
        except ValueError:
            return 0  # resolve_schedule names the problem
        if not math.isfinite(ratio):
            raise ValueError(f"ratio must be a finite number > 1. Received: {ratio}")
        if ratio > 1:
            terms = math.log(total_steps) / math.log(ratio)
            if terms > MAX_SCHEDULE_TERMS:
                raise ValueError(
                    f"a ratio this near 1 enumerates {terms:.2g} powers before step "
                    f"{total_steps} (at most {MAX_SCHEDULE_TERMS:,}); use every:N "
                    "for a dense schedule"
                )
            return min(int(terms) + 2, total_steps)
    if name == "every" and argument.strip().isdigit() and int(argument) >= 1:
        return total_steps // int(argument) + 2
    return 0  # adaptive, omnigrok, geometric: bounded by their ratios


def check_memory(
    config: dict,
    keys: Iterable[str],
    parameters: int,
    slots: int,
    pass_width: int,
) -> None:
    """Refuses a model and measurement pass that cannot fit in memory.

    The estimate is ``parameters x 4 bytes x (weights + gradients + slots)`` for
    training, plus the measurement pass's largest arrays (``PASS_CHUNK`` rows of
    ``pass_width`` float32 outputs: logits and features), against
    ``memory_budget()``.

    Args:
        config: the config, for the message.
        keys: the keys that set the size (named in the message with their values).
        parameters: the model's parameters.
        slots: the optimizer's variables per parameter.
        pass_width: outputs per row of the measurement pass.

    Raises:
        ValueError: the estimate exceeds the budget.
    """
    training = parameters * 4 * (2 + slots)
    measuring = PASS_CHUNK * pass_width * 4
    total = training + measuring
    budget = memory_budget()
    if total > budget:
        raise ValueError(
            f"the model has {parameters:,} parameters: training needs about "
            f"{training / 1e9:.1f} GB ({parameters:,} x 4 bytes x (weights, "
            f"gradients and {slots} optimizer slots)) and measuring "
            f"{measuring / 1e9:.1f} GB, more than the budget of "
            f"{budget / 1e9:.1f} GB (half this machine's memory). Received: "
            + ", ".join(f"{k}={config[k]!r}" for k in keys if k in config)
        )


def modular_parameters(config: dict) -> int:
    """Parameters of the modular model ``config`` names (see build_modular_model)."""
    p, width = config["p"], config["embed_dim"]
    if config["model"] == "mlp":
        hidden, depth = config["hidden"], config.get("depth", 1)
        layers = 2 * width * hidden + hidden + (depth - 1) * (hidden + 1) * hidden
        return p * width + layers + (hidden + 1) * p
    # modular_transformer's defaults: an MLP of 512, a position table of one row
    # per token, logits over every token.
    d_mlp, vocab = 512, p + 2
    block = 4 * width * width + 4 * width + 2 * width * d_mlp + d_mlp + 5 * width
    tables = 2 * vocab * width
    return tables + config["transformer_layers"] * block + (width + 1) * vocab


def check_modular_cost(config: dict) -> None:
    """A modular config's model fits in memory and one measurement pass (all
    ``p**2`` pairs) takes at most ``MAX_PASS_MACS`` multiply-adds.

    Raises:
        ValueError: naming the sizes that set the cost.
    """
    parameters = modular_parameters(config)
    width = "hidden" if config["model"] == "mlp" else "embed_dim"
    sizes = ("p", "embed_dim", "hidden", "depth")
    if config["model"] == "transformer":
        sizes = ("p", "embed_dim", "transformer_layers")
    check_memory(config, sizes, parameters, 2, config["p"] + config[width])
    pairs = config["p"] ** 2
    macs = pairs * parameters * (1 if config["model"] == "mlp" else 4)
    if macs > MAX_PASS_MACS:
        raise ValueError(
            f"one measurement pass reads all p**2 = {pairs:,} pairs through "
            f"{parameters:,} parameters, {macs:.1e} multiply-adds, more than the "
            f"{MAX_PASS_MACS:.0e} a pass may take (about 15 s on a 2-core CPU); "
            f"lower p or the widths. Received: p={config['p']}, "
            f"{width}={config[width]}"
        )


def check_image_model(config: dict, num_classes: int) -> None:
    """An image config's model fits in memory (the MLP's size grows with ``hidden``)."""
    if config["model"] != "mlp":
        return  # the other image models have fixed sizes
    pixels, hidden = IMAGE_PIXELS[config["dataset"]], config["hidden"]
    parameters = (pixels + 1) * hidden + (hidden + 1) * hidden
    parameters += (hidden + 1) * num_classes
    slots = OPTIMIZER_SLOTS[config["optimizer"]]
    check_memory(config, ("hidden",), parameters, slots, num_classes + hidden)
