"""Bad values are refused up front: exit 2, one line naming key and value, no folder."""

import json
import math
from pathlib import Path

import keras
import pytest
from click.testing import CliRunner

from keras_grok import cli
from keras_grok.experiments import cost_checks
from keras_grok.experiments.recipe import RecipeError, load_recipe

ROOT = Path(__file__).parents[2]
RECIPES = ("modadd", "complexity", "mnist", "weight_decay_sweep", "forecast_corpus")
BACKEND = keras.backend.backend()
# A key whose every value of its type is meaningful has no absurd value.
NO_ABSURD_VALUE = {
    "collapse",
    "collapse_test",
    "stratified",
    "data_dir",
    "refine",
    "causal",
    "forecast",
    "digits",
}


def absurd_values(key, default):
    """Values of the default's type that no run can mean."""
    if isinstance(default, bool):
        return []
    if isinstance(default, int):
        return [-7]
    if isinstance(default, float):
        return [-1.0, math.nan, math.inf]
    if isinstance(default, str):
        return ["no-such-thing:abc"]
    if isinstance(default, list):
        return [[], *([bad] for bad in absurd_values(key, default[0]))]
    return []


def base_config(name):
    recipe = load_recipe(ROOT / "recipes" / f"{name}.py")
    config = dict(recipe.defaults)
    if "dataset" in config:
        config["dataset"] = "digits"  # offline
    return recipe, config


@pytest.mark.parametrize("name", RECIPES)
def test_every_key_of_every_recipe_refuses_an_absurd_value(name):
    recipe, config = base_config(name)
    recipe.check(config)  # the defaults themselves run
    checked = 0
    for key, default in recipe.defaults.items():
        if key in NO_ABSURD_VALUE:
            continue
        values = absurd_values(key, default)
        assert values, f"{name}: no absurd value for {key}={default!r}"
        for value in values:
            with pytest.raises(RecipeError) as info:
                recipe.check({**config, key: value})
            assert key in str(info.value), (key, value, str(info.value))
            checked += 1
    assert checked >= len(recipe.defaults) - len(NO_ABSURD_VALUE)


def run(args, out):
    return CliRunner().invoke(
        cli.main, ["run", *args, "--backend", BACKEND, "--out", str(out)]
    )


MODADD, COMPLEXITY = "recipes/modadd.py", "recipes/complexity.py"
MNIST, SWEEP = "recipes/mnist.py", "recipes/weight_decay_sweep.py"
LATE = "recipes/late_phase.py"
DIGITS = "dataset=digits"
BILLION = "max_steps=1000000000"
BAD_INPUTS = [
    # (arguments, words the one line must hold)
    ([MODADD, "learning_rate=-1"], "learning_rate=-1.0"),
    ([MODADD, "learning_rate=nan"], "learning_rate=nan"),
    ([MODADD, "learning_rate=0"], "learning_rate=0.0"),
    ([MODADD, "weight_decay=-1"], "weight_decay=-1.0"),
    ([MODADD, "beta_2=2"], "beta_2 must be a finite number >= 0 and < 1. Received"),
    ([MODADD, "beta_2=1"], "beta_2 must be a finite number >= 0 and < 1. Received"),
    ([MODADD, "threshold=0"], "threshold=0.0"),
    ([MODADD, "threshold=1.5"], "threshold=1.5"),
    ([MODADD, "schedule=geometric:abc"], "schedule='geometric:abc'"),
    ([MODADD, "schedule=sometimes"], "schedule='sometimes'"),
    ([MODADD, "--seed", "-1"], "--seed -1"),
    ([MODADD, "--seed", "x"], "--seed x"),
    ([MODADD, "p=1"], "p=1"),
    ([MODADD, "p=100000"], "p=100000"),
    ([MODADD, "p=12", "op=a/b"], "p=12"),
    ([MODADD, "op=a%b"], "a%b"),
    ([MODADD, "train_fraction=1.5"], "train_fraction"),
    ([MODADD, "train_fraction=0"], "train_fraction"),
    ([MODADD, "model=rnn"], "model='rnn'"),
    ([MODADD, "hidden=0"], "hidden=0"),
    ([MODADD, "embed_dim=10000000"], "embed_dim=10000000"),
    ([MODADD, "depth=1000"], "depth=1000"),
    ([MODADD, "batch_size=0"], "batch_size=0"),
    ([MODADD, "max_steps=0"], "max_steps=0"),
    ([MODADD, "patience=-5"], "patience=-5"),
    ([MODADD, "checkpoint_seconds=-1"], "checkpoint_seconds=-1.0"),
    ([MODADD, "colour=red"], "colour"),
    ([MODADD, "p=ninety"], "p=ninety"),
    ([MODADD, "collapse=maybe"], "collapse=maybe"),
    ([COMPLEXITY, "epsilons=nan"], "epsilons"),
    ([COMPLEXITY, "epsilons=-0.1"], "epsilons"),
    ([COMPLEXITY, "complexity_schedule=every:0"], "complexity_schedule"),
    ([COMPLEXITY, "complexity_examples=0"], "complexity_examples=0"),
    ([COMPLEXITY, "spectral_entropy=-1"], "spectral_entropy=-1.0"),
    ([COMPLEXITY, "weight_noise=inf"], "weight_noise=inf"),
    ([COMPLEXITY, "unregularized_weight_decay=-2"], "unregularized_weight_decay"),
    ([COMPLEXITY, "learning_rate=nan"], "learning_rate=nan"),
    ([MNIST, DIGITS, "train_size=5000"], "train_size=5000"),
    ([MNIST, DIGITS, "test_size=600"], "test_size=600"),
    ([MNIST, DIGITS, "information_size=0"], "information_size=0"),
    ([MNIST, DIGITS, "information=nhsic,abc"], "information='nhsic,abc'"),
    ([MNIST, DIGITS, "test_threshold=2"], "test_threshold=2.0"),
    ([MNIST, DIGITS, "init_scale=0"], "init_scale=0.0"),
    ([MNIST, DIGITS, "optimizer=lbfgs"], "optimizer='lbfgs'"),
    ([MNIST, DIGITS, "loss=hinge"], "loss='hinge'"),
    ([MNIST, DIGITS, "--seed", "-1"], "--seed -1"),
    ([MNIST, "dataset=imagenet"], "dataset='imagenet'"),
    ([MNIST, "train_size=70000"], "train_size=70000"),
    ([SWEEP, DIGITS, "seeds=0,0"], "seeds=[0, 0]"),
    ([SWEEP, DIGITS, "weight_decays=0.1,0.1000001"], "weight_decays=[0.1, 0.1000001]"),
    ([SWEEP, DIGITS, "weight_decays=-0.1"], "weight_decays"),
    ([SWEEP, DIGITS, "seeds=-1"], "seeds"),
    ([SWEEP, DIGITS, "parallel=0"], "parallel=0"),
]
# Values that passed the checks, then hung, ran out of memory or raised after
# the run folder existed (issue 18, item 3).
COSTLY_INPUTS = [
    ([MODADD, "schedule=geometric:1.000000001"], "schedule='geometric:1.000000001'"),
    ([MODADD, "schedule=geometric:inf"], "schedule='geometric:inf'"),
    ([MODADD, BILLION, "schedule=every:1"], "schedule='every:1'"),
    ([MODADD, "p=3000"], "p=3000"),
    ([MODADD, "p=997", "hidden=1024"], "hidden=1024"),
    ([MODADD, "hidden=65536"], "hidden=65536"),
    ([MODADD, "model=transformer", "embed_dim=10"], "embed_dim=10"),
    ([MODADD, "model=transformer", "hidden=64"], "hidden=64"),
    ([COMPLEXITY, "transformer_layers=2"], "transformer_layers=2"),
    ([MODADD, "--seed", "4294967296"], "--seed 4294967296"),
    ([MODADD, "devices=4096"], "devices='4096'"),
    ([COMPLEXITY, "complexity_schedule=geometric:1.0000001"], "complexity_schedule"),
    ([COMPLEXITY, "p=997", "hidden=4096"], "hidden=4096"),
    ([MNIST, DIGITS, "train_size=1"], "train_size=1"),
    ([MNIST, DIGITS, "test_size=1"], "test_size=1"),
    ([MNIST, DIGITS, "stratified=true", "train_size=5"], "train_size=5"),
    ([MNIST, DIGITS, "hidden=65536"], "hidden=65536"),
    ([MNIST, DIGITS, BILLION, "schedule=every:1"], "schedule='every:1'"),
    ([MNIST, DIGITS, "--seed", "4294967296"], "--seed 4294967296"),
    ([SWEEP, DIGITS, "seeds=0,4294967296"], "seeds"),
    ([LATE, "task=digits", "image_test_threshold=0"], "image_test_threshold=0.0"),
    ([LATE, "task=digits", "model=transformer"], "model='transformer'"),
    ([LATE, "task=digits", "max_steps=50"], "max_steps=50"),
    ([LATE, "image_max_steps=50"], "image_max_steps=50"),
    (
        [LATE, "task=digits", "image_max_steps=1000000000", "schedule=every:1"],
        "every:1",
    ),
    ([LATE, "information_schedule=geometric:inf"], "information_schedule"),
]


# A fresh fuzz (issue 18) found these passing the checks, then training on and
# recording something other than asked (or raising after the folder existed).
FUZZ_INPUTS = [
    # float32 turns the value into another number: 0 or inf
    ([MODADD, "learning_rate=1e-320"], "learning_rate=1e-320"),
    ([MODADD, "weight_decay=1e39"], "weight_decay=1e+39"),
    ([COMPLEXITY, "spectral_entropy=1e39"], "spectral_entropy=1e+39"),
    ([MNIST, DIGITS, "init_scale=1e39"], "init_scale=1e+39"),
    # keys the chosen variant does not read
    ([LATE, "spectral_entropy=0.5"], "spectral_entropy=0.5"),
    ([LATE, "weight_noise=0.5"], "weight_noise=0.5"),
    ([MNIST, DIGITS, "model=cnn", "hidden=100"], "hidden=100"),
    ([MNIST, DIGITS, "data_dir=/tmp"], "data_dir='/tmp'"),
    ([MNIST, DIGITS, "information_size=100"], "information_size=100"),
    ([SWEEP, DIGITS, "ray_address=auto"], "ray_address='auto'"),
    ([SWEEP, DIGITS, "cpus_per_run=2"], "cpus_per_run=2.0"),
    # more examples than the sets hold (silently cut to the set)
    ([COMPLEXITY, "complexity_examples=100000"], "complexity_examples=100000"),
    ([LATE, "information_size=100000"], "information_size=100000"),
    ([LATE, "complexity_examples=100000"], "complexity_examples=100000"),
    ([MNIST, DIGITS, "information=nhsic", "information_size=9999"], "=9999"),
    # too few for the estimator (raised after the folder existed)
    ([MNIST, DIGITS, "information=nhsic", "information_size=1"], "information_size"),
    # one measurement asked twice
    ([COMPLEXITY, "epsilons=0.1,0.1"], "epsilons=[0.1, 0.1]"),
    ([MNIST, DIGITS, "information=nhsic,nhsic"], "information='nhsic,nhsic'"),
    # a lens that would never measure
    ([LATE, "lens_start=1000000"], "lens_start=1000000"),
    # a third fuzz (issue 18)
    ([LATE, "complexity_thresholds=0.5,0.5"], "complexity_thresholds=[0.5, 0.5]"),
    ([MODADD, "schedule=geometric:"], "schedule='geometric:'"),
    ([SWEEP, DIGITS, "weight_decays=0,-0"], "weight_decays=[0.0, 0.0]"),
]


@pytest.mark.parametrize(
    "args, words", FUZZ_INPUTS, ids=[" ".join(a[1:]) for a, _ in FUZZ_INPUTS]
)
def test_a_value_training_would_not_honour_is_refused_before_the_folder_exists(
    tmp_path, args, words
):
    out = tmp_path / "run"
    result = run([str(ROOT / args[0]), *args[1:]], out)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (args, result.output, result.exception)
    assert len(lines) == 1 and lines[0].startswith("Error: "), (args, lines)
    assert words in lines[0], (args, lines[0])
    assert not out.exists(), args


def test_sizes_at_their_defaults_are_caps_not_refusals():
    recipe, config = base_config("complexity")
    recipe.check({**config, "p": 23})  # 1,024 examples > 211 training pairs


@pytest.fixture
def fixed_memory_budget(monkeypatch):
    # The same verdicts on any machine: a budget of 8 GB, not half of this one's.
    monkeypatch.setattr(cost_checks, "memory_budget", lambda: 8 * 10**9)


@pytest.mark.parametrize(
    "args, words", COSTLY_INPUTS, ids=[" ".join(a[1:]) for a, _ in COSTLY_INPUTS]
)
def test_a_costly_or_unused_value_is_refused_before_the_folder_exists(
    tmp_path, fixed_memory_budget, args, words
):
    out = tmp_path / "run"
    result = run([str(ROOT / args[0]), *args[1:]], out)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (args, result.output, result.exception)
    assert len(lines) == 1 and lines[0].startswith("Error: "), (args, lines)
    assert words in lines[0], (args, lines[0])
    assert not out.exists(), args


def test_the_memory_estimate_names_parameters_bytes_and_the_budget(
    fixed_memory_budget,
):
    recipe, config = base_config("modadd")
    with pytest.raises(RecipeError) as info:
        recipe.check({**config, "hidden": 65536})
    message = str(info.value)
    assert "4,318,245,089 parameters" in message and "parameters" in message
    assert "budget of 8.0 GB" in message and "optimizer slots" in message


@pytest.mark.parametrize(
    "config",
    [
        {"model": "mlp", "p": 13, "embed_dim": 8, "hidden": 16, "depth": 3},
        {"model": "transformer", "p": 11, "embed_dim": 8, "transformer_layers": 2},
    ],
    ids=["mlp", "transformer"],
)
def test_the_parameter_estimate_is_the_built_models_count(config):
    from keras_grok.models.modular import build_modular_model

    full = {**config, "learning_rate": 1e-3, "weight_decay": 0.1, "beta_2": 0.98}
    vocab = config["p"] + (2 if config["model"] == "transformer" else 0)
    model = build_modular_model(full, vocab, config["p"])
    assert cost_checks.modular_parameters(full) == model.count_params()


def test_a_schedule_is_measured_before_it_is_listed():
    assert cost_checks.schedule_length("every:10", 1000) == 102
    assert cost_checks.schedule_length("geometric:2", 1024) == 12
    with pytest.raises(ValueError, match="near 1"):
        cost_checks.schedule_length("geometric:1.000000001", 30000)


def test_a_recipe_that_refuses_its_config_while_running_leaves_no_folder(tmp_path):
    recipe = tmp_path / "late_refusal.py"
    recipe.write_text(
        "from keras_grok.experiments.recipe import RecipeError\n"
        "CONFIG = {'seed': 0}\n"
        "def run(config, out_dir, verbose=True):\n"
        "    raise RecipeError('invalid config: not on this machine')\n"
    )
    out = tmp_path / "run"
    result = run([str(recipe)], out)
    assert result.exit_code == 2 and "not on this machine" in result.stderr
    assert not out.exists()  # the corrected command finds a free folder


@pytest.mark.parametrize(
    "value, kind",
    [
        ("{1, 2}", "set"),
        ("(1, 2)", "tuple"),
        ("float('nan')", "float"),
        ("b'x'", "bytes"),
    ],
)
def test_a_recipe_default_that_config_json_cannot_hold_is_refused(
    tmp_path, value, kind
):
    recipe = tmp_path / "odd_default.py"
    recipe.write_text(
        f"CONFIG = {{'x': {value}, 'seed': 0}}\ndef run(config, out_dir):\n"
        "    return {}\n"
    )
    out = tmp_path / "run"
    result = run([str(recipe)], out)
    assert result.exit_code == 2, result.output
    assert "CONFIG['x'] must be a JSON value" in result.stderr
    assert f"of type {kind}" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_forty_bad_cli_inputs_are_refused_before_anything_is_written(tmp_path):
    assert len(BAD_INPUTS) >= 40
    for index, (args, words) in enumerate(BAD_INPUTS):
        out = tmp_path / f"run{index}"
        result = run([str(ROOT / args[0]), *args[1:]], out)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2, (args, result.output)
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, lines)
        assert words in lines[0], (args, lines[0])
        assert "Traceback" not in result.output
        assert not out.exists(), args


def test_a_refused_config_leaves_the_out_folder_free_for_the_corrected_command(
    tmp_path,
):
    out = tmp_path / "run"
    recipe = str(ROOT / MODADD)
    assert run([recipe, "learning_rate=-1"], out).exit_code == 2
    assert not out.exists()
    result = run([recipe, "p=5", "max_steps=2", "batch_size=8", "collapse=false"], out)
    assert result.exit_code == 0, result.output
    assert (out / "summary.json").exists()


@pytest.fixture
def any_run_folder(tmp_path):
    # What `measure` reads before it replays: a config naming the backend.
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"backend": BACKEND}))
    return folder


@pytest.mark.parametrize(
    "args, words",
    [
        (["--steps", "1:1000000000:1"], "1,000,000,000 steps"),
        (["--steps", "10", "--lens", ""], "lenses must name at least one lens"),
        (["--steps", "10", "--name", "../escape"], "name='../escape'"),
        (["--steps", "10", "--name", "/tmp/elsewhere"], "name='/tmp/elsewhere'"),
        (["--steps", "10", "--name", "."], "name='.'"),
    ],
    ids=["a billion steps", "no lens", "a parent path", "an absolute path", "a dot"],
)
def test_a_measure_request_out_of_bounds_is_refused_in_one_line(
    any_run_folder, args, words
):
    before = sorted(p.name for p in any_run_folder.parent.rglob("*"))
    result = CliRunner().invoke(cli.main, ["measure", str(any_run_folder), *args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (args, result.output, result.exception)
    assert len(lines) == 1 and words in lines[0], (args, lines)
    assert sorted(p.name for p in any_run_folder.parent.rglob("*")) == before


def test_an_empty_out_is_refused_not_replaced_by_the_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli.main, ["run", str(ROOT / MODADD), "--backend", BACKEND, "--out", ""]
    )
    assert result.exit_code == 2 and "--out must name a folder" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "source, words",
    [
        ("import sys\nsys.exit(3)\n", "importing it failed with SystemExit: 3"),
        (
            "CONFIG = {'seed': 0}\ndef run(config, out_dir, verbose=True):\n"
            "    return None\n",
            "its run() must return the summary dict. Received: NoneType",
        ),
    ],
    ids=["exits at import", "returns no summary"],
)
def test_a_recipe_that_breaks_its_contract_ends_in_one_line(tmp_path, source, words):
    recipe = tmp_path / "broken.py"
    recipe.write_text(source)
    result = run([str(recipe)], tmp_path / "out")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.output, result.exception)
    assert len(lines) == 1 and words in lines[0], lines


def test_negative_zero_is_recorded_as_zero(tmp_path):
    recipe, config = base_config("modadd")
    from keras_grok.experiments.recipe import apply_overrides

    config = apply_overrides(recipe.defaults, ["weight_decay=-0"])
    assert json.dumps(config["weight_decay"]) == "0.0"


RAISING_RECIPE = """CONFIG = {{"seed": 0}}
def run(config, out_dir, verbose=True):
    raise {error}("x must be 3. Received: x=2")
"""


def test_a_recipe_refusing_its_config_while_running_ends_in_one_line(tmp_path):
    recipe = tmp_path / "refusing.py"
    recipe.write_text(RAISING_RECIPE.format(error="ValueError"))
    result = run([str(recipe)], tmp_path / "out")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.output, result.exception)
    assert len(lines) == 1 and "x must be 3" in lines[0], lines
    assert "refusing.py:3" in lines[0]  # where, for the recipe's author
    assert not (tmp_path / "out").exists()


def test_a_fault_in_a_recipe_shows_its_traceback_then_one_line(tmp_path):
    recipe = tmp_path / "faulty.py"
    recipe.write_text(RAISING_RECIPE.format(error="RuntimeError"))
    result = run([str(recipe)], tmp_path / "out")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, (result.output, result.exception)
    assert "Traceback" in result.stderr
    assert lines[-1].startswith("Error: faulty's run() raised RuntimeError at "), lines
    assert "rerun the same command" in lines[-1]


def test_a_recipe_fault_it_reports_itself_ends_in_one_line_with_exit_1(tmp_path):
    # A sweep whose runs failed while running is a fault (rerun to retry), not
    # a refused command (exit 2), and needs no traceback.
    recipe = tmp_path / "sweeping.py"
    recipe.write_text(
        "from keras_grok.experiments.recipe import RecipeFault\n"
        "CONFIG = {'seed': 0}\n"
        "def run(config, out_dir):\n"
        "    raise RecipeFault('1 of 2 runs failed (the first: killed by SIGKILL)')\n"
    )
    result = run([str(recipe)], tmp_path / "out")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, (result.output, result.exception)
    assert "Traceback" not in result.stderr
    assert lines == ["Error: 1 of 2 runs failed (the first: killed by SIGKILL)"]


def test_a_dict_default_is_set_from_json(tmp_path):
    recipe = tmp_path / "options.py"
    recipe.write_text(
        'CONFIG = {"opts": {"a": 1}, "seed": 0}\n'
        "def run(config, out_dir, verbose=True):\n"
        '    assert config["opts"] == {"a": 2}, config["opts"]\n'
        '    return {"memorized_at": None, "generalized_at": None,\n'
        '            "final_test_accuracy": 0.0, "wall_time_s": 0.0}\n'
    )
    result = run([str(recipe), 'opts={"a": 2}'], tmp_path / "out")
    assert result.exit_code == 0, (result.output, result.exception)
    result = run([str(recipe), "opts=[2]"], tmp_path / "other")
    assert result.exit_code == 2 and "expected a JSON object" in result.stderr


def test_an_unknown_backend_says_where_it_came_from(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "numpy")
    result = CliRunner().invoke(
        cli.main, ["run", str(ROOT / MODADD), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert "unknown backend 'numpy' (from $KERAS_BACKEND)" in result.stderr


def test_an_out_name_too_long_is_refused_in_one_line(tmp_path):
    result = run([str(ROOT / MODADD)], tmp_path / ("x" * 300))
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, lines
    assert "--out cannot be a folder here" in lines[0]


def test_no_verb_shows_the_help_and_a_recipe_without_run_is_pointed_to_it():
    result = CliRunner().invoke(cli.main, [])
    assert result.exit_code == 0 and "Commands:" in result.output
    result = CliRunner().invoke(cli.main, ["recipes/modadd.py"])
    assert result.exit_code == 2
    assert "keras-grok run recipes/modadd.py" in result.stderr
