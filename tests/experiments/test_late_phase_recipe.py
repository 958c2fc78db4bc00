"""recipes/late_phase.py: every lens on one run, the events table, the figure."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import pytest

from keras_grok.analysis.events import LATE_PHASE_EVENTS, event_order, late_phase_events
from keras_grok.data.modular import modular_dataset
from keras_grok.experiments.recipe import load_recipe
from keras_grok.models.modular import build_modular_model
from keras_grok.runs.figures import Panel, PlanePanel, plot_metrics, pyplot
from keras_grok.runs.run_folder import RunFolder
from keras_grok.runs.train_and_record import train_and_record

RECIPE = load_recipe(Path(__file__).parents[2] / "recipes" / "late_phase.py")

TINY = {
    "p": 11,
    "train_fraction": 0.5,
    "embed_dim": 8,
    "hidden": 16,
    "batch_size": 32,
    "max_steps": 12,
    "information_size": 40,
    "information_schedule": "geometric:4",
    "complexity_schedule": "geometric:6",
    "complexity_examples": 32,
    "complexity_thresholds": [1.0, 0.5],
    "key_frequencies": 2,
    "checkpoint_seconds": 1000.0,
}


def _config(**overrides) -> dict:
    config = {**RECIPE.defaults, **TINY, **overrides}
    RECIPE.validate(config)
    return config


@pytest.mark.slow
@pytest.mark.parametrize("regularization", ["weight_decay", "ours"])
def test_one_run_records_every_lens_the_events_and_the_figure(tmp_path, regularization):
    summary = RECIPE.run(_config(regularization=regularization), tmp_path, False)
    folder = RunFolder(tmp_path)
    assert folder.read_summary()["events"] == summary["events"]
    assert set(summary["events"]) == set(LATE_PHASE_EVENTS)
    assert summary["event_order"] == [
        name
        for name in sorted(
            (n for n in LATE_PHASE_EVENTS if summary["events"][n] is not None),
            key=lambda n: (summary["events"][n]["step"], LATE_PHASE_EVENTS.index(n)),
        )
    ]
    last = folder.read_measurements()[-1]
    for key in (
        "test_accuracy",
        "test_rnc1",
        "train_nc2",
        "test_nhsic_zx",
        "test_nhsic_zy",
        "complexity_bits",
        "fourier_sparsity",
        "train_excluded_loss",
        "train_restricted_loss",
        "squared_weight_norm",
    ):
        assert math.isfinite(last[key]), key
    assert folder.figure.stat().st_size > 0
    assert len(summary["fourier_key_frequencies"]) == 2


def test_summarize_adds_the_events_to_summary_json_once(tmp_path, monkeypatch):
    split = modular_dataset(7, "a+b", 0.5)
    keras.utils.set_random_seed(0)
    model = build_modular_model({**RECIPE.defaults, "embed_dim": 4, "hidden": 8}, 7, 7)
    written = []
    monkeypatch.setattr(RunFolder, "write_summary", lambda self, s: written.append(s))
    seen = []

    def summarize(rows):
        seen.append(rows)
        found = late_phase_events(rows)
        return {"events": found, "event_order": event_order(found)}

    summary = train_and_record(
        model,
        (split.x_train, split.y_train),
        (split.x_test, split.y_test),
        tmp_path,
        batch_size=32,
        max_steps=3,
        verbose=False,
        summarize=summarize,
    )
    assert written == [summary]
    # The rows measured in line, and any replayed to refine the events.
    assert {r["step"] for r in seen[0]} >= {
        r["step"] for r in RunFolder(tmp_path).read_metrics()
    }
    assert set(summary["events"]) == set(LATE_PHASE_EVENTS)


def test_invalid_settings_name_the_key():
    with pytest.raises(ValueError, match="task"):
        _config(task="mnist")
    with pytest.raises(ValueError, match="regularization"):
        _config(regularization="dropout")
    with pytest.raises(ValueError, match="key_frequencies must be <= "):
        _config(key_frequencies=6)
    with pytest.raises(ValueError, match="complexity_thresholds"):
        _config(complexity_thresholds=[1.5])


@pytest.mark.slow
def test_digits_counterpart_has_every_lens_but_fourier(tmp_path):
    modular_only = ("p", "train_fraction", "embed_dim", "hidden", "batch_size")
    tiny = {k: v for k, v in TINY.items() if k not in (*modular_only, "max_steps")}
    tiny.pop("key_frequencies")
    config = {
        **RECIPE.defaults,
        **tiny,
        "task": "digits",
        "image_max_steps": 6,
        "information_size": 60,
    }
    RECIPE.validate(config)
    summary = RECIPE.run(config, tmp_path, False)
    last = RunFolder(tmp_path).read_measurements()[-1]
    assert math.isfinite(last["test_nhsic_zx"])
    assert math.isfinite(last["complexity_bits"])
    assert "fourier_sparsity" not in last
    assert "events" in summary


def test_figure_draws_the_information_plane_below_the_step_panels(tmp_path):
    rows = [
        {"step": s, "test_accuracy": a, "test_nhsic_zx": zx, "test_nhsic_zy": zy}
        for s, a, zx, zy in (
            (1, 0.1, 5.0, 1.0),
            (10, 0.5, 8.0, 2.0),
            (100, 1.0, 3.0, 2.5),
        )
    ]
    rows.append({"step": 200, "test_accuracy": 1.0, "test_nhsic_zx": math.nan})
    path = tmp_path / "figure.png"
    plot_metrics(
        rows,
        path,
        (
            Panel("accuracy", ("test_accuracy",)),
            PlanePanel("information plane", "test_nhsic_zx", "test_nhsic_zy"),
            Panel("nHSIC", ("test_nhsic_zx",)),
        ),
        marks={"generalized": 100},
    )
    image = pyplot().imread(path)
    assert image.shape[0] > image.shape[1]  # three panels stacked
