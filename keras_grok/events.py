"""Events of a run read off its metrics: the first step a metric crosses a level."""

from __future__ import annotations

import math


def first_step_at(rows: list[dict], key: str, threshold: float) -> int | None:
    """The step of the first row whose ``key`` is >= ``threshold``, or None.

    Rows are in step order (as ``metrics.csv`` and a monitor's ``records`` are);
    missing and NaN values never count.
    """
    for row in rows:
        value = row.get(key, math.nan)
        if isinstance(value, (int, float)) and value >= threshold:
            return int(row["step"])
    return None
