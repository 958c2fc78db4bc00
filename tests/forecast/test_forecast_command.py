"""`keras-grok forecast RUN_DIR` on a run folder, finished or not."""

import json
import math
from pathlib import Path

from click.testing import CliRunner

from keras_grok import cli
from keras_grok.forecast import forecast_run

ROOT = Path(__file__).resolve().parents[2]


def write_run(folder, rows, config=None):
    folder.mkdir()
    config = config or {"learning_rate": 1e-3, "weight_decay": 1.0, "max_steps": 9000}
    (folder / "config.json").write_text(json.dumps({"config": config}))
    keys = ["step", "elapsed", "train_accuracy", "test_accuracy", "test_rnc1"]
    lines = [",".join(keys)]
    for row in rows:
        lines.append(",".join(str(row.get(k, 0.0)) for k in keys))
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")


def rows(generalized=None):
    return [
        {
            "step": s,
            "train_accuracy": min(1.0, s / 1000),
            "test_accuracy": 1.0 if generalized and s >= generalized else 0.0,
            "test_rnc1": 0.3 * math.exp(-s / 3000),
        }
        for s in range(100, 2001, 100)
    ]


def forecast_command(*args):
    return CliRunner().invoke(cli.main, ["forecast", *map(str, args)])


def test_prints_the_forecast_of_an_unfinished_run(tmp_path):
    write_run(tmp_path / "run", rows())
    result = forecast_command(tmp_path / "run")
    assert result.exit_code == 0, result.output
    expected = forecast_run(tmp_path / "run")
    assert f"{expected.generalized_at:,.0f}" in result.output
    assert "P(generalized by step 9,000)" in result.output
    data = json.loads(forecast_command(tmp_path / "run", "--json").output)
    assert data["generalized_at"] == expected.generalized_at
    assert data["low"] <= data["generalized_at"] <= data["high"]
    early = json.loads(
        forecast_command(tmp_path / "run", "--step", 500, "--json").output
    )
    assert early["step"] == 500


def test_a_generalized_run_prints_its_measured_step(tmp_path):
    write_run(tmp_path / "run", rows(generalized=1500))
    result = forecast_command(tmp_path / "run")
    assert result.exit_code == 0
    assert "generalized at step 1500 (measured)" in result.output


def test_refusals_are_one_line_with_exit_2(tmp_path):
    result = forecast_command(tmp_path)
    assert result.exit_code == 2 and "not a run folder" in result.output
    write_run(tmp_path / "adam", rows(), {"learning_rate": 1e-3})
    result = forecast_command(tmp_path / "adam")
    assert result.exit_code == 2 and "weight_decay" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_corpus_recipe_refuses_what_it_would_not_read(tmp_path):
    corpus = str(ROOT / "recipes" / "forecast_corpus.py")
    for words in (["--seed", "5"], ["--set", "cpus_per_run=2"], ["ray_address=auto"]):
        result = CliRunner().invoke(
            cli.main, ["run", corpus, "--out", str(tmp_path / "c"), *words]
        )
        assert result.exit_code == 2, (words, result.output)
        assert not (tmp_path / "c").exists()  # refused before the folder exists
    assert (
        "no seed"
        in CliRunner()
        .invoke(cli.main, ["run", corpus, "--out", str(tmp_path / "c"), "--seed", "5"])
        .output
    )
