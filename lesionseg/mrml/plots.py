"""Curves (training loss, validation Dice per epoch) and distributions (difficulty metrics) as plot nodes.

Each chart is a ``vtkMRMLPlotChartNode`` holding one ``vtkMRMLPlotSeriesNode`` per curve or distribution;
each series reads its numbers from columns of a ``vtkMRMLTableNode`` (one table per curve, since curves
may have different lengths; one shared table for the histograms of a chart, which share their bins).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import slicer

from lesionseg.errors import ParameterError
from lesionseg.mrml.tables import table_node_from_columns

CHART_CLASS = "vtkMRMLPlotChartNode"
SCATTER = slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter
BAR = slicer.vtkMRMLPlotSeriesNode.PlotTypeBar
SERIES_CLASS = "vtkMRMLPlotSeriesNode"
#: Series colours (RGB 0..1) in order: blue, orange, green, red, purple, brown (the "tab10" start).
SERIES_COLORS: tuple[tuple[float, float, float], ...] = (
    (0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16), (0.58, 0.4, 0.74),
    (0.55, 0.34, 0.29),
)


def _remove_series(scene, chart) -> None:
    """Take a chart's series out of the scene, with the tables they read (refilling must not pile them up)."""
    tables = set()
    series_nodes = [chart.GetNthPlotSeriesNode(i) for i in range(chart.GetNumberOfPlotSeriesNodes())]
    chart.RemoveAllPlotSeriesNodeIDs()
    for series in series_nodes:
        if series is None:
            continue
        table = series.GetTableNode()
        if table is not None:
            tables.add(table)
        scene.RemoveNode(series)
    for table in tables:
        scene.RemoveNode(table)


def _chart(scene, name: str, title: str, x_label: str, y_label: str, chart):
    if chart is None:
        chart = scene.AddNewNodeByClass(CHART_CLASS, scene.GenerateUniqueName(name))
    else:
        _remove_series(scene, chart)
    chart.SetTitle(title)
    chart.SetXAxisTitle(x_label)
    chart.SetYAxisTitle(y_label)
    return chart


def _series(scene, name: str, table, x_column: str, y_column: str, plot_type: int, index: int):
    series = scene.AddNewNodeByClass(SERIES_CLASS, scene.GenerateUniqueName(name))
    series.SetAndObserveTableNodeID(table.GetID())
    series.SetXColumnName(x_column)
    series.SetYColumnName(y_column)
    series.SetPlotType(plot_type)
    series.SetColor(*SERIES_COLORS[index % len(SERIES_COLORS)])
    return series


def curve_chart_node(scene, curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, title: str,
                     x_label: str, y_label: str, name: str | None = None, chart=None):
    """A chart with one line per curve, e.g. ``{"fold 0": (epochs, losses), "fold 1": (...)}``.

    Args:
        scene: the MRML scene.
        curves: curve name -> (x values, y values) of equal length.
        title, x_label, y_label: chart and axis titles (with units, e.g. "epoch", "validation Dice").
        name: name of a new chart node (default: the title).
        chart: an existing chart node to refill (its series are replaced).

    Returns:
        The ``vtkMRMLPlotChartNode``; its series and their tables are in the scene.

    Raises:
        ParameterError: no curve, or x and y of different lengths.
    """
    if not curves:
        raise ParameterError(f"the chart '{title}' needs at least one curve.")
    chart = _chart(scene, name or title, title, x_label, y_label, chart)
    for index, (curve, (x, y)) in enumerate(curves.items()):
        if len(x) != len(y):
            raise ParameterError(
                f"curve '{curve}' of chart '{title}' has {len(x)} x values and {len(y)} y values.")
        y_column = curve if curve != x_label else f"{curve} (y)"
        table = table_node_from_columns(scene, {x_label: list(x), y_column: list(y)}, f"{title} - {curve}")
        series = _series(scene, curve, table, x_label, y_column, SCATTER, index)
        series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleNone)
        series.SetLineStyle(slicer.vtkMRMLPlotSeriesNode.LineStyleSolid)
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
    return chart


def histogram_counts(samples: Mapping[str, Sequence[float]],
                     bins: int | Sequence[float]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Shared bin edges over all samples and the count per bin of each (NaN values are left out).

    Returns:
        ``(edges, {name: counts})`` with ``len(edges) == len(counts) + 1``.
    """
    finite = {key: np.asarray(values, dtype=float) for key, values in samples.items()}
    finite = {key: values[np.isfinite(values)] for key, values in finite.items()}
    pooled = np.concatenate(list(finite.values())) if finite else np.zeros(0)
    edges = np.histogram_bin_edges(pooled, bins=bins)
    return edges, {key: np.histogram(values, bins=edges)[0] for key, values in finite.items()}


def histogram_chart_node(scene, samples: Mapping[str, Sequence[float]], *, title: str, x_label: str,
                         y_label: str = "count", bins: int | Sequence[float] = 20, name: str | None = None,
                         chart=None):
    """A bar chart of the distribution of each sample over shared bins, e.g. a difficulty metric per group.

    The table has a "bin centre" column (x of the bars), a "bin" column of ``"low - high"`` labels (shown
    when hovering a bar), and one count column per sample.

    Args:
        scene: the MRML scene.
        samples: sample name -> values (non-finite values are ignored).
        title, x_label, y_label: chart and axis titles.
        bins: number of equal bins over the pooled range, or the bin edges.
        name: name of a new chart node (default: the title).
        chart: an existing chart node to refill.

    Returns:
        The ``vtkMRMLPlotChartNode``.

    Raises:
        ParameterError: no sample.
    """
    if not samples:
        raise ParameterError(f"the histogram '{title}' needs at least one sample.")
    if {"bin centre", "bin"} & set(samples):
        raise ParameterError(f"the histogram '{title}' cannot have a sample named 'bin' or 'bin centre'.")
    edges, counts = histogram_counts(samples, bins)
    centres = (edges[:-1] + edges[1:]) / 2
    labels = [f"{low:.4g} - {high:.4g}" for low, high in zip(edges[:-1], edges[1:])]
    columns = {"bin centre": centres.tolist(), "bin": labels}
    columns.update({sample: counts[sample].tolist() for sample in samples})
    table = table_node_from_columns(scene, columns, f"{title} - histogram")
    chart = _chart(scene, name or title, title, x_label, y_label, chart)
    for index, sample in enumerate(samples):
        series = _series(scene, sample, table, "bin centre", sample, BAR, index)
        series.SetLabelColumnName("bin")
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
    return chart
