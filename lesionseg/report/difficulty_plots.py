"""Histograms of difficulty metrics with their curriculum groups (the curriculum paper's Fig. 1), as PNG.

One figure per metric: the histogram of the metric over the lesion slices, its bars stacked and coloured
by difficulty group (K equal-size quantile groups from :func:`lesionseg.curriculum.assign_groups`, green
= easiest group G1 to red = hardest GK, easy end per :data:`lesionseg.curriculum.EASY_DIRECTIONS`), the
group boundaries drawn as dashed vertical lines and the group names written above each interval. The x
axis is logarithmic when the positive values span two decades or more (areas and contrasts do); values
<= 0 cannot be shown on it (e.g. contrast 0.0 = not measurable) and are counted in the title instead.

Figures are drawn with matplotlib's object API on an Agg canvas, so no global backend is switched (this
runs inside Slicer too) and nothing needs a display.

The figure joins the difficulty table (:mod:`lesionseg.difficulty`) and the curriculum's groups
(:mod:`lesionseg.curriculum`), so it belongs to the reports, which come after both in the package's layers.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lesionseg.curriculum import EASY_DIRECTIONS, assign_groups
from lesionseg.difficulty.table import DifficultyTable
from lesionseg.errors import ParameterError
from lesionseg.io import atomic_path

#: Axis label of each metric column.
METRIC_LABELS: dict[str, str] = {
    "area_mm2": "lesion area per slice (mm², native spacing)",
    "contrast_fisher": "Fisher contrast F (lesion vs healthy hemisphere)",
    "gradient": "gradient difficulty (normalised loss decrease)",
    "human": "human rating score (0 easy, 1 medium, 2 hard)",
}
#: Plot on a log axis when max / min of the positive values is at least this.
LOG_SPAN = 100.0
BINS = 40


def group_boundaries(values: np.ndarray, groups: np.ndarray, log: bool = False) -> list[float]:
    """The K-1 values that separate consecutive difficulty groups (midway between the groups' facing ends).

    Args:
        values: the metric per slice.
        groups: the group per slice (0 = easiest), as from :func:`assign_groups`.
        log: take the geometric mean instead of the arithmetic one (for a log axis); a boundary next to a
            value <= 0 is then 0.0 (not drawable).

    Returns:
        Boundaries sorted by group: the one between G1 and G2 first.
    """
    boundaries = []
    for group in range(int(groups.max())):
        a, b = values[groups == group], values[groups == group + 1]
        # facing ends: the easier group's hardest value and the harder group's easiest value
        if np.median(a) >= np.median(b):
            low, high = float(b.max()), float(a.min())
        else:
            low, high = float(a.max()), float(b.min())
        if log:  # geometric mean; a boundary next to a value <= 0 cannot be drawn on a log axis: 0.0
            boundaries.append(float(np.sqrt(low * high)) if low > 0 else 0.0)
        else:
            boundaries.append(0.5 * (low + high))
    return boundaries


def plot_metric(values: np.ndarray, column: str, path: str | os.PathLike, *, groups: int = 6,
                title: str | None = None) -> Path:
    """Draw one metric's histogram with its group boundaries and write it as PNG (atomically).

    Args:
        values: the metric per lesion slice (finite).
        column: the metric column name (for the label and the easy direction).
        path: the PNG to write.
        groups: K, the number of equal-size quantile groups.
        title: the figure title (default: the metric and the number of slices).

    Returns:
        The path written.

    Raises:
        ParameterError: fewer slices than groups, or a metric whose easy direction is unknown.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = np.asarray(values, dtype=float)
    if column not in EASY_DIRECTIONS:
        raise ParameterError(f"the easy direction of metric {column!r} is unknown; cannot draw its groups.")
    easy = EASY_DIRECTIONS[column]
    group_of = assign_groups(values, groups, method="quantile", easy=easy)
    positive = values[values > 0]
    log = positive.size > 1 and positive.max() / positive.min() >= LOG_SPAN
    hidden = int((values <= 0).sum()) if log else 0
    shown = values > 0 if log else np.ones(values.size, dtype=bool)
    low, high = float(values[shown].min()), float(values[shown].max())
    if high <= low:
        low, high = low - 0.5, high + 0.5
    bins = np.geomspace(low, high, BINS + 1) if log else np.linspace(low, high, BINS + 1)

    figure = Figure(figsize=(9.0, 4.5), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colours = colormaps["RdYlGn_r"](np.linspace(0.05, 0.95, groups))
    stacks = [values[shown & (group_of == g)] for g in range(groups)]
    axes.hist(stacks, bins=bins, stacked=True, color=colours, edgecolor="white", linewidth=0.3,
              label=[f"G{g + 1}" + (" (easiest)" if g == 0 else " (hardest)" if g == groups - 1 else "")
                     for g in range(groups)])
    if log:
        axes.set_xscale("log")
    boundaries = group_boundaries(values, group_of, log=log)
    for boundary in boundaries:
        if not log or boundary > 0:
            axes.axvline(boundary, color="black", linestyle="--", linewidth=1.0)
    # group names centred in their intervals, just above the bars
    edges = [low, *sorted(b for b in boundaries if (not log or b > 0)), high]
    names = [f"G{g + 1}" for g in range(groups)]
    if easy == "high":
        names = names[::-1]  # the easiest group holds the largest values, at the right
    names = names[len(names) - (len(edges) - 1):]  # boundaries hidden at 0 on a log axis merge intervals
    for name, left, right in zip(names, edges[:-1], edges[1:]):
        centre = np.sqrt(left * right) if log else 0.5 * (left + right)
        axes.text(centre, 1.01, name, transform=axes.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
    direction = "easy →" if easy == "high" else "← easy"
    axes.set_xlabel(f"{METRIC_LABELS.get(column, column)}    [{direction}]")
    axes.set_ylabel("lesion slices")
    heading = title or f"{column}: {values.size} lesion slices, {groups} equal-size groups"
    if hidden:
        heading += f"\n({hidden} slices at {values[values <= 0].max():g} not shown on the log axis)"
    axes.set_title(heading, fontsize=10, pad=16)
    axes.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never on them
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    return path


def plot_difficulty(table: DifficultyTable, out_dir: str | os.PathLike, *, metrics: list[str] | None = None,
                    groups: int = 6) -> list[Path]:
    """Write one histogram PNG per metric column of a table: ``OUT_DIR/difficulty_<column>.png``.

    Args:
        table: the difficulty table.
        out_dir: the folder (created when missing).
        metrics: the columns to draw (default: every metric column of the table).
        groups: K, the number of equal-size quantile groups whose boundaries are drawn.

    Returns:
        The PNG paths, in column order.

    Raises:
        ParameterError: a column not in the table, or fewer lesion slices than groups.
    """
    columns = metrics or table.metric_names
    missing = [name for name in columns if name not in table.metrics]
    if missing:
        raise ParameterError(
            f"the difficulty table has no {missing[0]!r} column (it has {', '.join(table.metric_names)})."
        )
    if isinstance(groups, bool) or not isinstance(groups, int) or not 1 <= groups <= len(table):
        raise ParameterError(
            f"the number of groups must be between 1 and the {len(table)} lesion slices, not {groups!r}."
        )
    out = Path(out_dir)
    return [plot_metric(table.metrics[name], name, out / f"difficulty_{name}.png", groups=groups)
            for name in columns]
