"""The report's charts as PNG files: training curves, performance against difficulty, per-case bars.

Figures are drawn with matplotlib's object API on an Agg canvas (``Figure`` + ``FigureCanvasAgg``), so no
global backend is switched and nothing needs a display (this also runs inside Slicer). Each file is
written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lesionseg.io import atomic_path
from lesionseg.stats import SignedR2

#: Axis labels of the performance columns.
PERFORMANCE_LABELS: dict[str, str] = {
    "dice": "Dice per slice", "hd_mm": "Hausdorff distance per slice (mm)",
    "hd95_mm": "95th percentile Hausdorff distance per slice (mm)",
}


def new_figure(width: float, height: float, dpi: int = 100, layout: str | None = None) -> Any:
    """A matplotlib ``Figure`` attached to an Agg canvas (no pyplot, no global backend).

    ``layout="constrained"`` suits image grids (it accounts for the equal aspect of ``imshow``); other
    figures are laid out by :func:`save_figure` with ``tight_layout``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Any, path: str | os.PathLike, rect: tuple[float, float, float, float] | None = None) -> Path:
    """Lay a figure out (within ``rect`` of the canvas, when given) and write it as PNG, atomically."""
    path = Path(path)
    if figure.get_layout_engine() is None:
        figure.tight_layout(rect=rect)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    return path


def _column(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epoch, value) of the rows where ``key`` has a value."""
    kept = [(row["epoch"], row[key]) for row in rows if row.get(key) is not None and row.get("epoch") is not None]
    if not kept:
        return np.zeros(0), np.zeros(0)
    epochs, values = zip(*kept)
    return np.asarray(epochs, float), np.asarray(values, float)


def plot_training_curves(logs: Mapping[str, Sequence[Mapping[str, Any]]], path: str | os.PathLike) -> Path:
    """Training loss, and validation Dice and lesion-wise F1 (dashed), per epoch, one line per fold (two panels
    side by side); a third panel with the adversarial critic's loss and the segmenter's adversarial term when the
    run trained against a critic (``critic_loss`` in its log).

    Args:
        logs: fold name -> rows of its ``log.csv`` (epoch, loss, val_dice, ...).
        path: the PNG to write.
    """
    from matplotlib import colormaps

    adversarial = any(_column(rows, "critic_loss")[0].size for rows in logs.values())
    figure = new_figure(18.0 if adversarial else 12.0, 4.2)
    panels = figure.subplots(1, 3 if adversarial else 2)
    loss_axes, dice_axes = panels[0], panels[1]
    colours = colormaps["tab10"](np.arange(max(len(logs), 1)) % 10)
    for colour, (fold, rows) in zip(colours, logs.items()):
        label = "all data" if fold == "all" else f"fold {fold}"
        epochs, loss = _column(rows, "loss")
        loss_axes.plot(epochs, loss, color=colour, label=label)
        epochs, dice = _column(rows, "val_dice")
        if dice.size:
            dice_axes.plot(epochs, dice, color=colour, marker="o", markersize=3, label=f"{label} Dice")
        epochs, f1 = _column(rows, "val_lesion_f1")
        if f1.size:
            dice_axes.plot(epochs, f1, color=colour, marker="s", markersize=3, linestyle="--",
                           label=f"{label} lesion F1")
        if adversarial:
            for key, style, name in (("critic_loss", "-", "critic"), ("adversarial_loss", ":", "segmenter's term")):
                epochs, values = _column(rows, key)
                if values.size:
                    panels[2].plot(epochs, values, color=colour, linestyle=style, label=f"{label} {name}")
    loss_axes.set(xlabel="epoch", ylabel="training loss (mean per epoch)", title="Training loss")
    dice_axes.set(xlabel="epoch", ylabel="validation Dice, lesion-wise F1 (mean per case)",
                  title="Validation Dice and lesion-wise F1", ylim=(-0.02, 1.02))
    if not dice_axes.lines:  # say why the panel is empty: an all-data model (the fast presets' default below
        # 20 cases) has no validation; a cross-validated run has none before its first validated epoch
        why = ("no validation:\nthe model was trained on every case" if set(logs) == {"all"}
               else "no validation yet")
        dice_axes.text(0.5, 0.5, why, ha="center", va="center", transform=dice_axes.transAxes, fontsize=11,
                       color="0.35")
    if adversarial:  # ln 2: the critic's loss when it cannot tell true masks from predicted ones
        panels[2].axhline(np.log(2.0), color="0.5", linewidth=0.8, linestyle="--", label="ln 2 (cannot tell)")
        panels[2].set(xlabel="epoch", ylabel="binary cross-entropy (mean per epoch)", title="Adversarial critic")
    for axes in panels:
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend(fontsize=8, frameon=False)
    return save_figure(figure, path)


def r2_label(result: SignedR2) -> str:
    """``"signed R² = -0.31 (r = -0.56, p = 0.015, n = 18)"`` or the reason it is undefined."""
    if not result.defined:
        return f"R² undefined ({result.note}), n = {result.n}"
    return f"signed R² = {result.r2:+.2f} (r = {result.r:+.2f}, p = {result.p:.2g}, n = {result.n})"


def plot_performance_vs_metric(x: np.ndarray, ys: Mapping[str, np.ndarray], fits: Mapping[str, SignedR2],
                               metric: str, metric_label: str, path: str | os.PathLike, *,
                               excluded: int = 0) -> Path:
    """Scatter of each performance column against one difficulty metric, with the least-squares line.

    Args:
        x: the metric per slice (valid slices only).
        ys: performance column -> values per slice (same order as ``x``).
        fits: performance column -> its :class:`SignedR2` (the line drawn and the R² in the title).
        metric: the metric's column name; metric_label: its axis label.
        path: the PNG to write.
        excluded: slices left out because the metric was not measurable (said in the title).
    """
    figure = new_figure(5.2 * len(ys), 4.2)
    axes_list = np.atleast_1d(figure.subplots(1, len(ys)))
    for axes, (column, y) in zip(axes_list, ys.items()):
        fit = fits[column]
        axes.scatter(x, y, s=14, alpha=0.7, color="#1f77b4", edgecolors="none", label="validation slice")
        if fit.defined and x.size:
            line_x = np.linspace(float(x.min()), float(x.max()), 50)
            axes.plot(line_x, fit.slope * line_x + fit.intercept, color="#d62728", linewidth=1.5,
                      label=f"least squares: {fit.slope:.3g} x + {fit.intercept:.3g}")
        axes.set_xlabel(metric_label)
        axes.set_ylabel(PERFORMANCE_LABELS.get(column, column))
        axes.set_title(r2_label(fit), fontsize=9)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, frameon=False, loc="best")
    heading = f"{metric}: performance against difficulty"
    if excluded:
        heading += f" ({excluded} slice(s) without a measurable value left out)"
    figure.suptitle(heading, fontsize=10)
    return save_figure(figure, path)


def plot_case_bars(case_ids: Sequence[str], values: Sequence[float], path: str | os.PathLike, *,
                   ylabel: str = "Dice", title: str = "Dice per case") -> Path:
    """A bar chart of one value per case (cases in the given order), with the mean as a dashed line."""
    values = np.asarray(values, dtype=float)
    figure = new_figure(min(max(6.0, 0.45 * len(case_ids) + 2.0), 16.0), 4.2)
    axes = figure.add_subplot()
    positions = np.arange(len(case_ids))
    bars = axes.bar(positions, values, color="#4c72b0")
    if len(case_ids) <= 30:  # the value above each bar (a Dice of 0 has no visible bar otherwise)
        axes.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7, padding=2)
    if values.size:
        axes.axhline(float(values.mean()), color="black", linestyle="--", linewidth=1,
                     label=f"mean {values.mean():.3f}")
        axes.legend(fontsize=8, frameon=False)
    axes.set_xticks(positions, labels=list(case_ids), rotation=60, ha="right", fontsize=7)
    axes.set(ylabel=ylabel, title=title)
    if ylabel.lower().startswith("dice"):
        axes.set_ylim(0, 1.1)
    axes.grid(axis="y", alpha=0.3)
    return save_figure(figure, path)
