"""Training loss and validation Dice per epoch and fold: live from a job's epoch events, or from a run's logs.

A training job prints an ``epoch`` event per epoch (``fold``, ``epoch`` counted from 0, ``loss``, and
``val_dice`` on the epochs it validates); each fold's folder keeps the whole history in ``log.json``
(``RUN/fold_<i>/log.json``, or ``RUN/all_data/log.json``). Both feed the same points, so a resumed run's
chart starts with the epochs trained before. Charts count epochs from 1, as people do.

The charts are plot nodes made with ``lesionseg.mrml.curve_chart_node`` (imported when they are drawn).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

#: The chart of each curve: metric key -> (chart title, y-axis title).
CHARTS: dict[str, tuple[str, str]] = {
    "loss": ("Training loss", "loss"),
    "val_dice": ("Validation Dice", "Dice"),
}


def curve_name(fold: int | None) -> str:
    """``"fold 0"``, or ``"all data"`` for a model trained on every case."""
    return "all data" if fold is None else f"fold {fold}"


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class TrainingCurves:
    """Per fold and epoch, the last known value of each metric of :data:`CHARTS`."""

    def __init__(self) -> None:
        self.points: dict[int | None, dict[int, dict[str, float]]] = {}

    def clear(self) -> None:
        """Forget every point."""
        self.points.clear()

    def add(self, fold: int | None, epoch: int, metrics: dict[str, Any]) -> bool:
        """Record one epoch's metrics (non-finite ones are left out).

        Args:
            fold: the fold (None for all data).
            epoch: the epoch, counted from 0.
            metrics: metric name -> value.

        Returns:
            True when a value was new or changed.
        """
        epoch_points = self.points.setdefault(fold, {}).setdefault(int(epoch), {})
        changed = False
        for name in CHARTS:
            value = _finite(metrics.get(name))
            if value is not None and epoch_points.get(name) != value:
                epoch_points[name] = value
                changed = True
        return changed

    def add_progress(self, progress) -> bool:
        """Record the epoch a job's :class:`~LesionSegInferenceLib.JobProgress.JobProgress` reports (if any).

        Returns:
            True when a point was new or changed (the charts need redrawing).
        """
        if progress.epoch is None:
            return False
        return self.add(progress.fold, progress.epoch, progress.metrics)

    def read_run(self, run_folder: str | os.PathLike) -> int:
        """Add the points of every fold log of a run folder.

        Returns:
            The number of fold logs read (0 when the run has none yet).
        """
        run = Path(run_folder)
        logs = [(int(path.parent.name.split("_", 1)[1]), path) for path in run.glob("fold_*/log.json")
                if path.parent.name.split("_", 1)[1].isdigit()]
        if (run / "all_data" / "log.json").is_file():
            logs.append((None, run / "all_data" / "log.json"))
        for fold, path in logs:
            for record in json.loads(path.read_text(encoding="utf-8")):
                if isinstance(record, dict) and isinstance(record.get("epoch"), int):
                    self.add(fold, record["epoch"], record)
        return len(logs)

    def curves(self, metric: str) -> dict[str, tuple[list[int], list[float]]]:
        """One curve per fold: (epochs counted from 1, values), only epochs that have the metric.

        Args:
            metric: a key of :data:`CHARTS`.
        """
        curves = {}
        for fold in sorted(self.points, key=lambda f: (f is None, f if f is not None else 0)):
            epochs = sorted(epoch for epoch, values in self.points[fold].items() if metric in values)
            if epochs:
                curves[curve_name(fold)] = ([epoch + 1 for epoch in epochs],
                                            [self.points[fold][epoch][metric] for epoch in epochs])
        return curves

    def charts(self, scene, previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """Draw (or redraw) a chart per metric that has points.

        Args:
            scene: the MRML scene.
            previous: the charts drawn before (metric -> chart node), refilled instead of added.

        Returns:
            metric -> ``vtkMRMLPlotChartNode``.
        """
        from lesionseg.mrml import curve_chart_node

        drawn = dict(previous or {})
        for metric, (title, y_label) in CHARTS.items():
            curves = self.curves(metric)
            if curves:
                chart = drawn.get(metric)
                if chart is not None and not scene.IsNodePresent(chart):
                    chart = None
                if chart is not None:
                    remove_series(scene, chart)
                drawn[metric] = curve_chart_node(scene, curves, title=title, x_label="epoch", y_label=y_label,
                                                 chart=chart)
        return drawn


def remove_series(scene, chart) -> None:
    """Remove a chart's series and the tables they read from the scene (``curve_chart_node`` refills a chart
    with new series and tables; without this, every redraw would leave the old ones behind)."""
    series_nodes = [chart.GetNthPlotSeriesNode(index) for index in range(chart.GetNumberOfPlotSeriesNodes())]
    chart.RemoveAllPlotSeriesNodeIDs()
    for series in series_nodes:
        if series is None:
            continue
        table = series.GetTableNode()
        scene.RemoveNode(series)
        if table is not None and scene.IsNodePresent(table):
            scene.RemoveNode(table)
