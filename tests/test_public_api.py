"""The public API: lazy modules on ``keras_grok``, objects registered for loading."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import types
from pathlib import Path

import keras
import pytest

import keras_grok
from keras_grok.layers import (
    ClassToken,
    FeatureTap,
    PositionEmbedding,
    RelativeGaussianNoise,
)
from keras_grok.losses import SumSquaredError, squared_error_one_hot
from keras_grok.regularizers import SpectralEntropy
from keras_grok.regularizers.weight_noise import WeightNoise
from tests.testing import assert_serialization_round_trip

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED_MODULES = (
    "analysis",
    "callbacks",
    "data",
    "experiments",
    "forecast",
    "layers",
    "losses",
    "measures",
    "models",
    "regularizers",
    "runs",
    "sweeps",
)
# One instance of every layer keras_grok.layers exports.
LAYERS = {
    "ClassToken": ClassToken(keras.initializers.RandomNormal(stddev=0.5)),
    "FeatureTap": FeatureTap(name="features"),
    "PositionEmbedding": PositionEmbedding(4, initializer="zeros"),
    "RelativeGaussianNoise": RelativeGaussianNoise(0.2, seed=3),
}


def _small_model() -> keras.Model:
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs), name="small")


# One instance (or the function itself) of every object the package registers for
# saving, by its registered name; test_every_registered_object_has_an_instance_here
# fails when a new one is registered without an entry.
REGISTERED = {
    **{f"keras_grok>{name}": layer for name, layer in LAYERS.items()},
    "keras_grok>SpectralEntropy": SpectralEntropy(0.25, decomposition="svd"),
    "keras_grok>SumSquaredError": SumSquaredError(
        sparse=False, reduction="sum_over_batch_size"
    ),
    "keras_grok>squared_error_one_hot": squared_error_one_hot,
    "keras_grok>WeightNoise": WeightNoise(_small_model(), stddev=0.02, seed=1),
}


def _registrations_in_source() -> dict[str, str]:
    """``{registered name: module}`` for every decorated definition in keras_grok/.

    Read from the source with ``ast``, so a registration counts even in a module
    nothing imports yet.
    """
    found = {}
    for path in sorted((ROOT / "keras_grok").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.FunctionDef | ast.ClassDef):
                continue
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                target = call.func if call else decorator
                name = getattr(target, "attr", getattr(target, "id", None))
                if name != "register_keras_serializable":
                    continue
                arguments = {k.arg: k.value for k in call.keywords} if call else {}
                package = arguments.get("package")
                package = package.value if package is not None else "Custom"
                own = arguments.get("name")
                found[f"{package}>{own.value if own else node.name}"] = module
    return found


REGISTERED_IN_SOURCE = _registrations_in_source()


def run_python(code: str) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter from the repository root."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_importing_the_package_imports_no_keras_and_no_backend():
    result = run_python(
        "import sys, keras_grok\n"
        "heavy = [m for m in ('keras', 'jax', 'tensorflow', 'torch')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    assert result.returncode == 0, result.stderr


def test_a_fresh_package_reaches_a_layer_through_its_attributes():
    result = run_python(
        "import sys, keras_grok\n"
        "print(keras_grok.layers.FeatureTap.__name__)\n"
        "assert 'keras' in sys.modules\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "FeatureTap"


@pytest.mark.parametrize("name", DOCUMENTED_MODULES)
def test_every_public_module_is_an_attribute_of_the_package(name):
    assert name in dir(keras_grok)
    module = getattr(keras_grok, name)
    assert isinstance(module, types.ModuleType)
    assert module.__name__ == f"keras_grok.{name}"


def test_the_package_exports_exactly_its_documented_list():
    assert sorted(keras_grok.__all__) == sorted(DOCUMENTED_MODULES)
    assert "cli" not in dir(keras_grok)


def test_an_unknown_attribute_raises_and_lists_the_public_modules():
    with pytest.raises(AttributeError, match="has no attribute 'lyers'.*layers"):
        keras_grok.lyers  # noqa: B018


def test_every_exported_layer_has_a_test_instance_here():
    assert set(LAYERS) == set(keras_grok.layers.__all__)


def test_every_registered_object_has_an_instance_here():
    assert len(REGISTERED_IN_SOURCE) >= len(LAYERS) + 4  # the grep found them
    assert set(REGISTERED) == set(REGISTERED_IN_SOURCE)


@pytest.mark.parametrize("registered_name", sorted(REGISTERED_IN_SOURCE))
def test_every_registered_object_is_under_keras_grok_and_round_trips(registered_name):
    assert registered_name.startswith("keras_grok>"), "register with package=..."
    module = importlib.import_module(REGISTERED_IN_SOURCE[registered_name])
    defined = getattr(module, registered_name.split(">", 1)[1])
    assert keras.saving.get_registered_object(registered_name) is defined
    assert keras.saving.get_registered_name(defined) == registered_name
    obj = REGISTERED[registered_name]
    assert obj is defined or type(obj) is defined
    assert_serialization_round_trip(obj)
