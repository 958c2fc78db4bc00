"""Recipe loading and ``--set`` overrides, typed by the recipe's defaults."""

from pathlib import Path

import pytest

from keras_grok.experiments.recipe import RecipeError, apply_overrides, load_recipe

RECIPES = sorted((Path(__file__).parents[1] / "recipes").glob("*.py"))

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


def test_recipes_import_the_library_never_each_other():
    for path in RECIPES:
        text = path.read_text()
        assert "load_recipe" not in text and "import recipes" not in text, path.name
