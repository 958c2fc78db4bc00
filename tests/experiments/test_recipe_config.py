"""Recipe loading and ``--set`` overrides, typed by the recipe's defaults."""

import ast
import sys
from pathlib import Path

import keras
import pytest

from keras_grok.experiments.recipe import RecipeError, apply_overrides, load_recipe

RECIPES = sorted((Path(__file__).parents[2] / "recipes").glob("*.py"))

DEFAULTS = {"p": 97, "lr": 1e-3, "model": "mlp", "stop": True, "sizes": (64, 32)}


def test_overrides_are_typed_like_the_defaults():
    config = apply_overrides(
        DEFAULTS,
        ["p=113", "lr=3e-4", "model=transformer", "stop=false", "sizes=8,16,4"],
    )
    assert config == {
        "p": 113,
        "lr": 3e-4,
        "model": "transformer",
        "stop": False,
        "sizes": (8, 16, 4),
    }
    assert apply_overrides(DEFAULTS, []) == DEFAULTS


@pytest.mark.parametrize(
    "text, value",
    [("5", 5), ("0.1", 0.1), ("true", True), ("[1, 2]", [1, 2]), ("null", None)]
    + [("", None), ("None", None), ("adam", "adam"), ("a,b", "a,b")],
)
def test_an_override_of_a_none_default_is_read_as_json_else_as_text(text, value):
    # x=5 used to reach the recipe as the string '5'.
    assert apply_overrides({"x": None}, [f"x={text}"])["x"] == value


@pytest.mark.parametrize(
    "item, message",
    [
        ("q=1", "unknown --set key 'q'; valid keys: lr, model, p, sizes, stop"),
        ("p=1.5", "--set p=1.5: expected an integer"),
        ("lr=fast", "--set lr=fast: expected a number"),
        ("stop=maybe", "expected true or false"),
        ("p", "expected key=value"),
    ],
)
def test_bad_overrides_say_what_is_wrong(item, message):
    with pytest.raises(
        RecipeError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        apply_overrides(DEFAULTS, [item])


def test_a_file_without_config_and_run_is_not_a_recipe(tmp_path):
    path = tmp_path / "notes.py"
    path.write_text("x = 1\n")
    with pytest.raises(RecipeError, match="is not a recipe: it must define CONFIG"):
        load_recipe(path)
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(
        RecipeError, match="importing it failed with RuntimeError: boom"
    ):
        load_recipe(broken)
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "absent.py")


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_loads_and_its_defaults_validate(path):
    recipe = load_recipe(path)
    assert recipe.defaults and callable(recipe.run)
    assert recipe.validate is not None, f"{path.name} has no validate(config)"
    recipe.validate(dict(recipe.defaults))


# Calls that load code: a recipe has no business calling any of them.
LOADERS = {
    "__import__",
    "compile",
    "eval",
    "exec",
    "exec_module",
    "import_module",
    "load_module",
    "load_recipe",
    "module_from_spec",
    "run_module",
    "run_path",
    "SourceFileLoader",
    "spec_from_file_location",
    "spec_from_loader",
}


def _docstrings(tree: ast.Module) -> set[int]:
    nodes = [tree, *ast.walk(tree)]
    return {
        id(node.body[0].value)
        for node in nodes
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def recipe_loads(path: Path, siblings: set[str]) -> list[str]:
    """How the recipe at ``path`` could load another file of its folder.

    Imports of ``recipes`` or of a sibling by name, any call that loads code
    (``LOADERS``), any use of ``__file__`` (a path next to the recipe is a path
    under recipes/) and any string, docstrings aside, that names a sibling file.
    """
    tree = ast.parse(path.read_text(), str(path))
    docstrings = _docstrings(tree)
    others = siblings - {path.stem}
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [alias.name for alias in node.names]
            if node.level:
                found.append(f"{where}: relative import")
        else:
            names = []
        for name in names:
            if name.split(".")[0] in others | {"recipes"}:
                found.append(f"{where}: imports {name}")
        if isinstance(node, ast.Call):
            function = node.func
            name = getattr(function, "attr", getattr(function, "id", None))
            if name in LOADERS:
                found.append(f"{where}: calls {name}")
        if isinstance(node, ast.Name) and node.id == "__file__":
            found.append(f"{where}: locates a file next to itself (__file__)")
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and any(
                word.rstrip("\"'`,.;:)").endswith(f"{other}.py")
                for word in node.value.split()
                for other in others
            )
        ):
            found.append(f"{where}: names {node.value!r}")
    return found


def test_the_recipe_scan_sees_every_way_of_loading_a_sibling(tmp_path):
    path = tmp_path / "sweep.py"
    docstring = '"""Sweeps recipes/mnist.py (``keras-grok run recipes/mnist.py``)."""\n'
    loads = [
        "import mnist",
        "from recipes import mnist",
        "from . import mnist",
        "import importlib\nm = importlib.import_module('recipes.mnist')",
        "import runpy\nrunpy.run_path(PATH)",
        "from keras_grok.experiments.recipe import load_recipe\nload_recipe(p)",
        "exec(open(p).read())",
        "RECIPE = 'recipes/mnist.py'",
        "from pathlib import Path\nR = Path(__file__).parent / 'data.txt'",
    ]
    for code in loads:
        path.write_text(docstring + code + "\n")
        assert recipe_loads(path, {"sweep", "mnist"}), code
    clean = "import keras_grok\nfrom keras_grok.data import images\nDATASET = 'mnist'\n"
    path.write_text(docstring + clean)
    assert recipe_loads(path, {"sweep", "mnist"}) == []


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_a_recipe_imports_the_library_never_another_recipe(path):
    assert recipe_loads(path, {p.stem for p in RECIPES}) == []


def test_a_recipe_error_is_a_value_error_for_library_users(tmp_path):
    with pytest.raises(ValueError, match="unknown --set key '__class__'"):
        apply_overrides({"p": 7}, ["__class__=1"])
    with pytest.raises(ValueError, match="recipe file not found"):
        load_recipe(tmp_path / "nonexistent.py")
    assert issubclass(RecipeError, ValueError)


def test_a_recipe_error_from_validate_is_passed_on_unwrapped(tmp_path):
    path = tmp_path / "r.py"
    path.write_text(
        "from keras_grok.experiments.recipe import RecipeError\n"
        "CONFIG = {'p': 7}\n"
        "def validate(config):\n    raise RecipeError('p is odd')\n"
        "def run(config, out_dir):\n    return {}\n"
    )
    with pytest.raises(RecipeError, match="^p is odd$"):
        load_recipe(path).check({"p": 7})


def test_apply_overrides_refuses_overrides_that_are_not_strings():
    with pytest.raises(TypeError, match="overrides must be a list"):
        apply_overrides({"p": 7}, "p=3")
    with pytest.raises(TypeError, match="each override must be a key=value string"):
        apply_overrides({"p": 7}, [3])


def test_schedule_length_refuses_fewer_than_one_step():
    from keras_grok.experiments.cost_checks import schedule_length

    with pytest.raises(ValueError, match="Received: total_steps=0"):
        schedule_length("geometric", 0)
    assert schedule_length("every:10", 100) == 12


def test_a_device_count_is_parsed_like_the_devices_setting():
    from keras_grok.experiments.config_checks import check_device_count

    with pytest.raises(ValueError, match="number of devices >= 1. Received: devices=0"):
        check_device_count("0")
    with pytest.raises(ValueError, match="Received: devices=-2"):
        check_device_count(-2)
    if keras.backend.backend() == "jax":  # the one backend that lists devices
        with pytest.raises(ValueError, match="only 1 device"):
            check_device_count("99")
    for valid in ("", "all", 1, "1"):
        check_device_count(valid)


def test_an_image_config_missing_keys_is_refused_by_name():
    from keras_grok.experiments.image_grokking import validate_image_config

    with pytest.raises(ValueError, match="lacks the key.*'dataset'.*Received"):
        validate_image_config({})
    with pytest.raises(TypeError, match="config must be a dict"):
        validate_image_config(None)


def test_num_classes_of_no_labels_is_refused_by_name():
    from keras_grok.utils.labelled_data import validate_num_classes

    with pytest.raises(ValueError, match="Received: num_classes=0"):
        validate_num_classes(0, {})
    with pytest.raises(ValueError, match="data must hold labelled examples"):
        validate_num_classes(None, {})


def test_a_recipe_imports_a_module_beside_it_as_a_script_would(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "kg_sibling_helpers.py").write_text("STEPS = 7\n")
    (folder / "r.py").write_text(
        "from kg_sibling_helpers import STEPS\n"
        "CONFIG = {'steps': STEPS}\n"
        "def run(config, out_dir):\n    return {}\n"
    )
    path_before = list(sys.path)
    assert load_recipe(folder / "r.py").defaults == {"steps": 7}
    assert sys.path == path_before  # only while it is imported
