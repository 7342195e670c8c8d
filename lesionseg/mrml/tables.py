"""Tables (difficulty metrics, per-lesion measures, fold metrics) as ``vtkMRMLTableNode`` with typed columns.

A column whose values are all numbers (or missing) becomes a ``vtkDoubleArray`` (missing = NaN); any
other column becomes a ``vtkStringArray`` (missing = ""). Booleans count as numbers (0/1).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Sequence

import numpy as np
import vtk
import vtk.util.numpy_support

from lesionseg.errors import ParameterError

TABLE_CLASS = "vtkMRMLTableNode"


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, (numbers.Real, np.bool_)) and not isinstance(value, str)


def column_array(name: str, values: Sequence[Any]) -> vtk.vtkAbstractArray:
    """One named VTK column: doubles when every present value is a number (or none is present), else strings."""
    values = list(values)
    if all(_is_missing(value) or _is_number(value) for value in values):
        doubles = np.array([math.nan if _is_missing(v) else float(v) for v in values], dtype=np.float64)
        array = vtk.util.numpy_support.numpy_to_vtk(doubles, deep=True, array_type=vtk.VTK_DOUBLE)
    else:
        array = vtk.vtkStringArray()
        array.SetNumberOfValues(len(values))
        for index, value in enumerate(values):
            array.SetValue(index, "" if _is_missing(value) else str(value))
    array.SetName(name)
    return array


def table_node_from_columns(scene, columns: Mapping[str, Sequence[Any]], name: str, *, node=None,
                            units: Mapping[str, str] | None = None):
    """A table node from named columns of equal length.

    Args:
        scene: the MRML scene.
        columns: column name -> values, in display order (numbers, strings, None/NaN for missing).
        name: name of a new node.
        node: an existing table node to refill (its columns are replaced).
        units: optional column name -> unit label shown in Slicer (e.g. ``{"area_mm2": "mm2"}``).

    Returns:
        The ``vtkMRMLTableNode``.

    Raises:
        ParameterError: columns of different lengths, or an empty column name.
    """
    lengths = {column: len(values) for column, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ParameterError(f"the columns of table '{name}' have different lengths: "
                             + ", ".join(f"{column} {length}" for column, length in lengths.items()) + ".")
    if any(not str(column) for column in columns):
        raise ParameterError(f"table '{name}' has a column without a name.")
    if node is None:
        node = scene.AddNewNodeByClass(TABLE_CLASS, scene.GenerateUniqueName(name))
    was_modifying = node.StartModify()
    try:
        node.RemoveAllColumns()
        table = node.GetTable()
        for column, values in columns.items():
            table.AddColumn(column_array(str(column), values))
        for column, unit in (units or {}).items():
            node.SetColumnUnitLabel(column, unit)
        node.Modified()
    finally:
        node.EndModify(was_modifying)
    return node


def table_node_from_rows(scene, rows: Sequence[Mapping[str, Any]], name: str, *,
                         columns: Sequence[str] | None = None, node=None, units: Mapping[str, str] | None = None):
    """A table node from a list of row dicts (e.g. the per-lesion table or one row per fold).

    Args:
        scene: the MRML scene.
        rows: one mapping per row; a key absent from a row is a missing value.
        name: name of a new node.
        columns: the columns to show, in order (default: every key, in order of first appearance).
        node: an existing table node to refill.
        units: optional column name -> unit label.

    Returns:
        The ``vtkMRMLTableNode``.
    """
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    return table_node_from_columns(scene, {column: [row.get(column) for row in rows] for column in columns},
                                   name, node=node, units=units)
