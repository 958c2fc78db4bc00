"""What the forecast refuses, and what it reads as rows (the second fuzz's cases)."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from keras_grok import cli
from keras_grok.forecast import SIGNALS, Forecaster, forecast, forecast_run
from keras_grok.forecast.model import fit_forecaster


def rows(generalized=None):
    return [
        {
            "step": s,
            "train_accuracy": min(1.0, s / 1000),
            "test_accuracy": 1.0 if generalized and s >= generalized else 0.0,
            "test_rnc1": 0.3 * math.exp(-s / 3000),
            "train_rnc1": 0.1 * math.exp(-s / 3000),
        }
        for s in range(50, 2001, 50)
    ]


def test_rows_as_strings_or_numpy_scalars_read_as_floats():
    expected = forecast(rows(), 1e-3, 1.0, budget=9000)
    as_text = [{k: str(v) for k, v in r.items()} for r in rows()]
    as_float32 = [{k: np.float32(v) for k, v in r.items()} for r in rows()]
    for variant in (as_text, as_float32):
        got = forecast(variant, 1e-3, 1.0, budget=9000)
        assert got.generalized_at == pytest.approx(expected.generalized_at, rel=1e-5)
    integer_one = rows()
    integer_one[5]["test_accuracy"] = 1  # an int: still generalized there
    assert forecast(integer_one, 1e-3, 1.0).generalized_at == integer_one[5]["step"]


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"step": 0}, "step"),
        ({"step": -5}, "step"),
        ({"step": 150.5}, "step"),
        ({"step": True}, "step"),
        ({"step": "150"}, "step"),
        ({"step": 10}, "step"),  # before the first row (50)
        ({"step": 10**6}, "last measured step"),
        ({"budget": 0}, "budget"),
        ({"budget": -100}, "budget"),
        ({"budget": 1000.5}, "budget"),
        ({"budget": True}, "budget"),
        ({"budget": math.inf}, "budget"),
        ({"budget": math.nan}, "budget"),
        ({"budget": "30000"}, "budget"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": math.nan}, "threshold"),
        ({"test_threshold": -0.5}, "test_threshold"),
        ({"test_threshold": 2}, "test_threshold"),
        ({"learning_rate": "abc"}, "learning_rate"),
        ({"learning_rate": None}, "learning_rate"),
        ({"learning_rate": np.ones(3)}, "learning_rate"),
        ({"learning_rate": math.inf}, "learning_rate"),
        ({"learning_rate": True}, "learning_rate"),
        ({"weight_decay": 1e-320}, "time scale"),
    ],
)
def test_arguments_with_no_forecast_are_named(kwargs, name):
    arguments = {"learning_rate": 1e-3, "weight_decay": 1.0, **kwargs}
    with pytest.raises(ValueError, match=name):
        forecast(rows(), **arguments)


@pytest.mark.parametrize(
    "bad, error, words",
    [
        ({"step": 1, "train_accuracy": 0.5}, TypeError, "list"),  # one dict
        ([{"train_accuracy": 0.5}], ValueError, "step"),
        ([{"step": math.nan, "train_accuracy": 0.5}], ValueError, "step"),
        ([{"step": "last", "train_accuracy": 0.5}], ValueError, "step"),
        ([{"step": 1, "train_accuracy": 7.0}], ValueError, "train_accuracy"),
        ([{"step": 1, "train_accuracy": math.nan}], ValueError, "train_accuracy"),
        ([{"step": 1}, {"step": 2}], ValueError, "train_accuracy"),
        (["row"], TypeError, "dict"),
    ],
)
def test_rows_that_are_not_a_run_are_refused(bad, error, words):
    with pytest.raises(error, match=words):
        forecast(bad, 1e-3, 1.0)


@pytest.mark.parametrize("bad", [5, "no/such/file.json", {"weights": []}])
def test_a_bad_forecaster_is_named(bad):
    with pytest.raises((TypeError, ValueError), match="forecaster"):
        forecast(rows(), 1e-3, 1.0, forecaster=bad)


def test_forecaster_files_that_cannot_forecast(tmp_path):
    good = Forecaster(SIGNALS, np.zeros(9), np.ones(9), np.zeros(9), 8.0, 0.4)
    cases = {
        "garbage": "{not json",
        "missing": json.dumps(
            {k: v for k, v in good.to_json().items() if k != "weights"}
        ),
        "short": json.dumps({**good.to_json(), "weights": [1.0, 2.0]}),
        "sigma0": json.dumps({**good.to_json(), "sigma": 0.0}),
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(text)
        with pytest.raises(ValueError, match="forecaster"):
            Forecaster.load(path)
    with pytest.raises(ValueError, match="signals"):
        good.predict(np.zeros(3), 100)


def fit_args(n=40):
    rng = np.random.default_rng(0)
    steps = list(range(100, 100 + 10 * n, 10))
    return dict(
        signals=rng.normal(size=(n, 9)),
        steps=steps,
        generalized_at=[s * 2 for s in steps],
        budgets=[10**5] * n,
    )


@pytest.mark.parametrize(
    "change, name",
    [
        (lambda a: a.update(signals=np.full((40, 9), np.nan)), "signals"),
        (lambda a: a.update(signals=np.zeros((40, 3))), "signals"),
        (lambda a: a.update(signals=np.zeros(40)), "signals"),
        (lambda a: a.update(budgets=[0] * 40), "budgets"),
        (lambda a: a.update(generalized_at=[-5] * 40), "generalized_at"),
        (lambda a: a.update(generalized_at=[50] * 40), "generalized_at"),
        (lambda a: a.update(steps=a["steps"][:-1]), "one entry per row"),
        (lambda a: a.update(weights=[0.0] * 40), "weights"),
        (lambda a: a.update(ridge=-1.0), "ridge"),
    ],
)
def test_fit_refuses_examples_it_cannot_fit(change, name):
    arguments = fit_args()
    change(arguments)
    with pytest.raises(ValueError, match=name):
        fit_forecaster(**arguments)


def write_run(folder, config):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"config": config}))
    keys = ["step", "elapsed", "train_accuracy", "test_accuracy"]
    lines = [",".join(keys)] + [
        f"{r['step']},0.0,{r['train_accuracy']},{r['test_accuracy']}" for r in rows()
    ]
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")


GOOD = {"learning_rate": 1e-3, "weight_decay": 1.0, "max_steps": 9000}


@pytest.mark.parametrize(
    "config, name",
    [
        (5, "config"),
        ({**GOOD, "learning_rate": None}, "learning_rate"),
        ({**GOOD, "learning_rate": "fast"}, "learning_rate"),
        ({**GOOD, "learning_rate": 1e-200, "weight_decay": 1e-200}, "time scale"),
        ({**GOOD, "threshold": 0}, "threshold"),
        ({**GOOD, "threshold": "high"}, "threshold"),
        ({**GOOD, "test_threshold": math.nan}, "test_threshold"),
        ({**GOOD, "max_steps": "lots"}, "max_steps"),
        ({**GOOD, "max_steps": -5}, "max_steps"),
        ({**GOOD, "max_steps": 399.5}, "max_steps"),
    ],
)
def test_a_run_folder_config_with_no_forecast_is_named(tmp_path, config, name):
    write_run(tmp_path / "run", config)
    with pytest.raises(ValueError, match=name):
        forecast_run(tmp_path / "run")
    result = CliRunner().invoke(cli.main, ["forecast", str(tmp_path / "run")])
    assert result.exit_code == 2 and name in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_folder_of_nested_runs_points_to_them(tmp_path):
    write_run(tmp_path / "recipe" / "runs" / "regularized", GOOD)
    with pytest.raises(ValueError, match="runs/regularized"):
        forecast_run(tmp_path / "recipe")
    with pytest.raises(TypeError, match="run_dir"):
        forecast_run(5)
    write_run(tmp_path / "run", GOOD)
    with pytest.raises(ValueError, match="last measured step"):
        forecast_run(tmp_path / "run", step=10**6)


def test_an_overflowing_time_scale_is_named():
    with pytest.raises(ValueError, match="time scale"):
        forecast(rows(), 1e200, 1e200)
