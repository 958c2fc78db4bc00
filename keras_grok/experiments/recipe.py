"""Recipes: one experiment each, as a Python file the command line runs.

The recipe contract. A recipe file defines:

- ``CONFIG``: a dict of defaults, one entry per setting; ``--set key=value``
  overrides parse as the default's type (bool, int, float, str, list).
- ``validate(config)`` (optional): raises ``ValueError`` naming the key and the
  value for any config the recipe cannot run. It checks values only and is fast.
- ``prepare(config)`` (optional): raises ``ValueError`` if something the run needs
  outside the config is missing (a data set that is not prepared, say).
- ``run(config, out_dir, verbose=True) -> dict``: trains and records the run in
  ``out_dir`` (see ``keras_grok.runs.run_folder``) and returns its summary, which holds
  at least ``memorized_at``, ``generalized_at``, ``final_test_accuracy`` and
  ``wall_time_s`` (the command line prints them) and ``diverged_at`` when the loss
  became non-finite.

The command line calls ``validate`` and ``prepare`` before it creates or touches
the run folder, and ``RunFolder.check_resumable`` before ``run`` trains; a
``RecipeError`` (or ``ValueError``) that ``run`` raises before anything was
recorded leaves the folder as it found it. A recipe that trains several runs
keeps them in nested run folders (``RunFolder.child``), so ``--overwrite`` clears
them too. Recipes import the library (``keras_grok``), never each other.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SUMMARY_KEYS = ("memorized_at", "generalized_at", "final_test_accuracy", "wall_time_s")


class RecipeError(ValueError):
    """A problem with a recipe or its settings, shown to the user as one line.

    A ``ValueError``, so that library users catch it as one; the command line
    catches it first, by name.
    """


class RecipeFault(Exception):
    """A recipe's work failed while running (a sweep's run crashed or was
    killed): one line and exit 1, and rerunning the command retries it."""


@dataclass(frozen=True)
class Recipe:
    """A loaded recipe file (see the module docstring for the contract)."""

    path: Path
    defaults: dict
    run: Callable[..., dict]
    validate: Callable[[dict], None] | None
    prepare: Callable[[dict], None] | None

    @property
    def name(self) -> str:
        return self.path.stem

    def check(self, config: dict) -> None:
        """Runs ``validate`` then ``prepare``; ``RecipeError`` with their message.

        Every number must first survive the float32 arithmetic of training
        (``check_float32``).
        """
        for step in (check_float32, self.validate, self.prepare):
            if step is None:
                continue
            try:
                step(config)
            except RecipeError:
                raise  # already one line for the user, as it was
            except ValueError as error:
                raise RecipeError(f"invalid config: {error}") from None


FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.1754943508222875e-38
"""The largest float32, and the smallest normal one."""


def check_float32(config: dict) -> None:
    """Raises ValueError for a float that float32 turns into another number.

    Training reads the config's numbers as float32 (optimizer variables, losses,
    regularizer strengths): ``learning_rate=1e-320`` would train at 0 and
    ``weight_decay=1e39`` at inf while the run records the asked value.
    NaN and inf are left to the recipe's own checks.
    """
    for key, value in config.items():
        values = value if isinstance(value, (list, tuple)) else (value,)
        for item in values:
            if not isinstance(item, float) or not math.isfinite(item) or item == 0:
                continue
            if not FLOAT32_TINY <= abs(item) <= FLOAT32_MAX:
                raise ValueError(
                    f"{key} must be 0 or of magnitude in [{FLOAT32_TINY:.2g}, "
                    f"{FLOAT32_MAX:.2g}]: training computes in float32, which would "
                    f"make it {'0' if abs(item) < 1 else 'inf'}. "
                    f"Received: {key}={value!r}"
                )


def load_recipe(path: str | Path) -> Recipe:
    """Imports a recipe file; ``RecipeError`` if it is missing or not a recipe.

    While it is imported, its folder comes first on ``sys.path``, as for ``python
    recipe.py``, so it can import modules that sit beside it.
    """
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {path}")
    spec = importlib.util.spec_from_file_location(
        f"keras_grok_recipe_{path.stem}", path
    )
    if spec is None or spec.loader is None:
        raise RecipeError(f"{path} is not a recipe: a recipe is a Python (.py) file")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:  # any failure is the recipe's fault
        message = str(error).splitlines()[0] if str(error) else ""
        raise RecipeError(
            f"{path} is not a recipe: importing it failed with "
            f"{type(error).__name__}: {message}"
        ) from error
    finally:
        with contextlib.suppress(ValueError):  # the recipe may have removed it
            sys.path.remove(folder)
    defaults, run = getattr(module, "CONFIG", None), getattr(module, "run", None)
    if not isinstance(defaults, dict) or not callable(run):
        raise RecipeError(
            f"{path} is not a recipe: it must define CONFIG (a dict of defaults) "
            "and run(config, out_dir)"
        )
    for key, value in defaults.items():
        _check_json_value(path, key, value)
    return Recipe(
        path,
        dict(defaults),
        run,
        getattr(module, "validate", None),
        getattr(module, "prepare", None),
    )


def _check_json_value(path, key, value) -> None:
    # A run records its config in config.json and compares a resumed run's
    # with it, so each default must survive a JSON round trip.
    try:
        same = json.loads(json.dumps(value)) == value
    except (TypeError, ValueError):
        same = False
    if not isinstance(key, str) or not same:
        raise RecipeError(
            f"{path} is not a recipe: CONFIG[{key!r}] must be a JSON value (a "
            "number, string, bool, None, or a list or dict of them, with string "
            f"keys), as config.json records it. Received: {value!r} of type "
            f"{type(value).__name__}"
        )


def apply_overrides(defaults: dict, overrides: list[str]) -> dict:
    """Returns ``defaults`` updated by ``key=value`` strings, typed like the defaults.

    Raises:
        RecipeError: an item is not ``key=value``, names an unknown key, or its value
            does not parse as the default's type.
        TypeError: ``defaults`` not a dict or ``overrides`` not a list of strings.
    """
    if not isinstance(defaults, dict):
        raise TypeError(
            f"defaults must be a dict. Received: defaults of type "
            f"{type(defaults).__name__}"
        )
    if isinstance(overrides, (str, bytes)) or not isinstance(overrides, (list, tuple)):
        raise TypeError(
            f"overrides must be a list of key=value strings. Received: "
            f"overrides={overrides!r}"
        )
    config = dict(defaults)
    for item in overrides:
        if not isinstance(item, str):
            raise TypeError(
                f"each override must be a key=value string. Received: {item!r} in "
                "overrides"
            )
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RecipeError(f"--set {item!r}: expected key=value")
        if key not in defaults:
            valid = ", ".join(sorted(defaults))
            raise RecipeError(f"unknown --set key {key!r}; valid keys: {valid}")
        config[key] = parse_value(key, text.strip(), defaults[key])
    return config


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def parse_value(key: str, text: str, default):
    """Parses ``text`` as a value of the same type as ``default``.

    A None default takes ``none``/``null`` (or nothing) as None, and otherwise
    ``text`` as JSON where it parses (``5``, ``0.1``, ``true``, ``[1, 2]``),
    else as a string.
    """

    def fail(expected: str):
        raise RecipeError(
            f"--set {key}={text}: expected {expected} (the default is {default!r})"
        )

    if isinstance(default, bool):
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        fail("true or false")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            fail("an integer")
    if isinstance(default, float):
        try:
            return float(text) + 0.0  # -0 is 0
        except ValueError:
            fail("a number")
    if isinstance(default, (list, tuple)):
        element = default[0] if default else ""
        items = [t.strip() for t in text.split(",") if t.strip()]
        return type(default)(parse_value(key, t, element) for t in items)
    if default is None:  # no type to parse as: a JSON value (5, 0.1, true), else text
        if text.lower() in ("none", "null", ""):
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    if isinstance(default, dict):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            fail('a JSON object, e.g. {"a": 1}')
        return value
    return text
