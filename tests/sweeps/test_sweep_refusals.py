"""plot_sweep and executor_from_config refuse or default by name."""

import pytest

from keras_grok.sweeps.executors import ProcessExecutor, executor_from_config
from keras_grok.sweeps.sweep_results import plot_sweep

PANEL = ("accuracy", ("train_accuracy",), False)


def test_plot_sweep_refuses_empty_groups_and_panels_by_name(tmp_path):
    path = tmp_path / "sweep.png"
    with pytest.raises(
        ValueError, match="groups must hold at least one.*groups=\\{\\}"
    ):
        plot_sweep({}, path, [PANEL])
    with pytest.raises(
        ValueError, match="panels must list at least one.*panels=\\[\\]"
    ):
        plot_sweep({0.1: []}, path, [])
    with pytest.raises(ValueError, match="each panel must be"):
        plot_sweep({0.1: []}, path, [("accuracy", "train_accuracy", False)])
    with pytest.raises(ValueError, match="keyed by the swept values"):
        plot_sweep({"a": []}, path, [PANEL])
    with pytest.raises(TypeError, match="groups must be a dict"):
        plot_sweep([], path, [PANEL])
    assert not path.exists()


def test_plot_sweep_still_draws_a_valid_sweep(tmp_path):
    rows = [{"step": s, "train_accuracy": s / 10} for s in (1, 2, 5, 10)]
    plot_sweep({0.1: [rows], 0.01: [rows]}, tmp_path / "sweep.png", [PANEL])
    assert (tmp_path / "sweep.png").stat().st_size > 0


def test_executor_from_config_takes_the_documented_defaults_for_missing_keys():
    executor = executor_from_config({"executor": "process"})
    assert isinstance(executor, ProcessExecutor) and executor.parallel == 2
    assert isinstance(executor_from_config({}), ProcessExecutor)
    with pytest.raises(ValueError, match="Received: parallel=0"):
        executor_from_config({"executor": "process", "parallel": 0})
    with pytest.raises(TypeError, match="config must be a dict"):
        executor_from_config(None)


def test_summarize_uses_the_monitors_thresholds_by_default():
    from keras_grok.sweeps.sweep_results import summarize

    groups = {0.3: [[{"step": 10, "train_accuracy": 1.0, "test_accuracy": 0.995}]]}
    assert summarize(groups) == summarize(groups, 0.99, 0.99)
    assert summarize(groups)[0]["generalized_at"] == 10
