"""The files of one run: config, metrics, summary, figure and checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunFolder:
    """Names the files of a run folder and knows whether it holds a finished run.

    - ``config.json``: the resolved config, backend, package versions and seed;
    - ``metrics.csv``: one row per measured step, written row by row;
    - ``summary.json``: memorized_at, generalized_at, final figures, wall time
      (written last: its presence marks a finished run);
    - ``figure.png``: the run's figure;
    - ``checkpoint.npz``: the latest training state, for resuming.
    """

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def figure(self) -> Path:
        return self.path / "figure.png"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.npz"

    def is_finished(self) -> bool:
        """True once ``summary.json`` exists."""
        return self.summary.exists()

    def saved_config(self) -> dict | None:
        """The contents of ``config.json``, or None if there is none."""
        if not self.config.exists():
            return None
        return json.loads(self.config.read_text())

    def clear(self) -> None:
        """Removes this run's files (and nothing else) from the folder."""
        for path in (
            self.config,
            self.metrics,
            self.summary,
            self.figure,
            self.checkpoint,
        ):
            path.unlink(missing_ok=True)
