"""The public API: lazy modules on ``keras_grok``, layers registered for loading."""

from __future__ import annotations

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
from tests.testing import assert_serialization_round_trip

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED_MODULES = (
    "analysis",
    "callbacks",
    "data",
    "experiments",
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


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_exported_layer_is_registered_under_keras_grok_and_round_trips(name):
    layer = LAYERS[name]
    assert type(layer) is getattr(keras_grok.layers, name)
    assert keras.saving.get_registered_name(type(layer)) == f"keras_grok>{name}"
    assert keras.saving.get_registered_object(f"keras_grok>{name}") is type(layer)
    assert_serialization_round_trip(layer)
