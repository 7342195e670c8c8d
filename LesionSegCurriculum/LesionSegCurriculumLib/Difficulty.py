"""A difficulty table (``lesionseg difficulty --out CSV``) shown in Slicer: a table node and a histogram per metric.

The table is read (and validated) with ``lesionseg.difficulty.read_difficulty``. Each metric's histogram
splits the slices into the curriculum's difficulty groups (``lesionseg.curriculum.assign_groups``, equal
-size quantile groups, group 1 the easiest, the easy end of each metric from
``lesionseg.curriculum.EASY_DIRECTIONS``), one bar series per group over shared bins, so the chart shows
both the distribution and where the groups cut it. Nodes are made with ``lesionseg.mrml``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

#: Chart titles and axis labels per metric column.
METRIC_TITLES: dict[str, str] = {
    "area_mm2": "Lesion area (mm²)",
    "contrast_fisher": "Fisher contrast",
    "gradient": "Gradient difficulty",
    "human": "Human rating (0 easy, 2 hard)",
}
HISTOGRAM_BINS = 20


@dataclass
class DifficultyDisplay:
    """The difficulty table in the scene.

    Attributes:
        rows: number of lesion slices.
        table_node: one row per lesion slice.
        charts: metric column -> histogram chart node.
        group_sizes: metric column -> slices per group (easiest first).
    """

    rows: int
    table_node: Any = None
    charts: dict[str, Any] = field(default_factory=dict)
    group_sizes: dict[str, list[int]] = field(default_factory=dict)

    def summary(self) -> str:
        """One sentence, e.g. ``"212 lesion slices; metrics: area_mm2, contrast_fisher."``."""
        return f"{self.rows} lesion slices; metrics: {', '.join(self.charts) or 'none'}."


def group_samples(values, groups: int, easy: str) -> dict[str, list[float]]:
    """Split a metric's values into curriculum groups, easiest first.

    Args:
        values: the metric of each slice.
        groups: number of equal-size groups (fewer when there are fewer slices).
        easy: which end is easy, "high" or "low".

    Returns:
        ``{"group 1 (easiest)": [...], "group 2": [...], ..., "group K (hardest)": [...]}``.
    """
    import numpy as np

    from lesionseg.curriculum import assign_groups

    array = np.asarray(values, dtype=float)
    k = max(1, min(int(groups), array.size))
    assigned = assign_groups(array, k=k, method="quantile", easy=easy)
    samples = {}
    for group in range(k):
        label = f"group {group + 1}"
        if k > 1 and group == 0:
            label += " (easiest)"
        elif k > 1 and group == k - 1:
            label += " (hardest)"
        samples[label] = array[assigned == group].tolist()
    return samples


def show_difficulty(scene, csv_path: str | os.PathLike, groups: int = 6,
                    previous: DifficultyDisplay | None = None) -> DifficultyDisplay:
    """Put a difficulty table and its histograms into the scene.

    Args:
        scene: the MRML scene.
        csv_path: the difficulty table (CSV).
        groups: number of curriculum groups shown in the histograms.
        previous: the display drawn before; its table and charts are refilled.

    Returns:
        The :class:`DifficultyDisplay`.

    Raises:
        LesionSegError: the file is missing or not a valid difficulty table.
    """
    from lesionseg.curriculum import EASY_DIRECTIONS
    from lesionseg.difficulty import read_difficulty
    from lesionseg.mrml import histogram_chart_node, table_node_from_columns

    from .TrainingCurves import remove_series

    table = read_difficulty(csv_path)
    columns: dict[str, Any] = {"case_id": table.case_ids, "slice_index": table.slice_indices.tolist()}
    columns.update({name: values.tolist() for name, values in table.metrics.items()})
    columns.update({name: values.astype(int).tolist() for name, values in table.flags.items()})
    old_table = previous.table_node if previous is not None and scene.IsNodePresent(previous.table_node) else None
    display = DifficultyDisplay(len(table))
    display.table_node = table_node_from_columns(scene, columns, "Difficulty", node=old_table,
                                                 units={"area_mm2": "mm2"})
    if len(table) == 0:
        return display
    for name, values in table.metrics.items():
        samples = group_samples(values, groups, EASY_DIRECTIONS.get(name, "high"))
        chart = (previous.charts.get(name) if previous is not None else None)
        if chart is not None and not scene.IsNodePresent(chart):
            chart = None
        if chart is not None:
            remove_series(scene, chart)
        title = METRIC_TITLES.get(name, name)
        display.charts[name] = histogram_chart_node(scene, samples, title=title, x_label=title,
                                                    y_label="lesion slices", bins=HISTOGRAM_BINS, chart=chart)
        display.group_sizes[name] = [len(sample) for sample in samples.values()]
    return display
