"""A module's settings and results in the scene: a ``vtkMRMLScriptedModuleNode``, saved with the scene.

The values are stored the way Slicer's ``parameterNodeWrapper`` (Base/Python/slicer/parameterNodeWrapper,
Slicer 5.10) stores them, so that a scene reads the same whichever of the two wrote it:

- ``str``: ``SetParameter(name, text)``; ``int`` and ``float``: ``SetParameter(name, str(value))``;
- ``bool``: ``"True"`` or ``"False"``;
- a node: ``SetParameter(name, "")`` and ``SetNodeReferenceID(name, node ID)`` (the scene keeps the reference
  across saving, loading and node-ID changes on import);
- ``dict[str, X]``: a list of (key, value) pairs: ``name.len``, then ``name.<i>.0`` (the key) and ``name.<i>.1``
  (the value, itself stored as above).

A field table (name -> :class:`Field`) says each field's kind and default; :class:`ParameterStore` reads and
writes a node with it. :func:`module_parameter_node` finds or makes the module's singleton node as
``ScriptedLoadableModuleLogic.getParameterNode`` does (singleton tag and ``ModuleName`` attribute = the module's
name). Nothing here imports Qt or the Slicer application.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

STR, INT, FLOAT, BOOL, NODE = "str", "int", "float", "bool", "node"
STR_DICT, NODE_DICT = "dict[str, str]", "dict[str, node]"
KINDS = (STR, INT, FLOAT, BOOL, NODE, STR_DICT, NODE_DICT)


@dataclass(frozen=True)
class Field:
    """One stored setting: its kind (one of :data:`KINDS`) and the value read when the node does not hold it."""

    kind: str
    default: Any = None


def module_parameter_node(scene, module_name: str):
    """The module's parameter node in ``scene`` (made and added when there is none), as Slicer's scripted-module
    logic finds it: the ``vtkMRMLScriptedModuleNode`` whose singleton tag is the module's name."""
    node = scene.GetSingletonNode(module_name, "vtkMRMLScriptedModuleNode")
    if node is None:
        node = scene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
        node.UnRegister(None)
        node.SetSingletonTag(module_name)
        node.SetAttribute("ModuleName", module_name)
        node = scene.AddNode(node)
    elif node.GetAttribute("ModuleName") != module_name:
        node.SetAttribute("ModuleName", module_name)
    return node


def _write_scalar(node, name: str, kind: str, value: Any) -> None:
    if kind == NODE:
        node.SetParameter(name, "")
        node.SetNodeReferenceID(name, value.GetID() if value is not None else None)
    elif kind == BOOL:
        node.SetParameter(name, "True" if value else "False")
    elif kind in (INT, FLOAT):
        node.SetParameter(name, str(int(value) if kind == INT else float(value)))
    else:
        node.SetParameter(name, "" if value is None else str(value))


def _read_scalar(node, name: str, kind: str, default: Any) -> Any:
    if kind == NODE:
        return node.GetNodeReference(name)
    if not node.GetParameter(name) and not _has(node, name):
        return default
    text = node.GetParameter(name)
    try:
        if kind == BOOL:
            return text == "True"
        if kind == INT:
            return int(text)
        if kind == FLOAT:
            return float(text)
    except ValueError:
        return default
    return text


def _has(node, name: str) -> bool:
    return bool(node.HasParameter(name)) if hasattr(node, "HasParameter") else bool(node.GetParameter(name))


class ParameterStore:
    """Reads and writes a field table's values on a ``vtkMRMLScriptedModuleNode``.

    Args:
        node: the parameter node.
        fields: name -> :class:`Field`.
    """

    def __init__(self, node, fields: Mapping[str, Field]) -> None:
        self.node = node
        self.fields = dict(fields)

    def write(self, **values: Any) -> None:
        """Store the given fields (others are left as they are).

        Raises:
            KeyError: a name that is not in the field table.
        """
        unknown = sorted(set(values) - set(self.fields))
        if unknown:
            raise KeyError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(self.fields)}.")
        was_modifying = self.node.StartModify()
        try:
            for name, value in values.items():
                kind = self.fields[name].kind
                if kind in (STR_DICT, NODE_DICT):
                    self._write_dict(name, STR if kind == STR_DICT else NODE, dict(value or {}))
                else:
                    _write_scalar(self.node, name, kind, value)
        finally:
            self.node.EndModify(was_modifying)

    def read(self) -> dict[str, Any]:
        """Every field's value (its default when the node does not hold it; None for a missing node)."""
        values = {}
        for name, field in self.fields.items():
            if field.kind in (STR_DICT, NODE_DICT):
                values[name] = self._read_dict(name, STR if field.kind == STR_DICT else NODE)
            else:
                values[name] = _read_scalar(self.node, name, field.kind, field.default)
        return values

    def _write_dict(self, name: str, value_kind: str, values: dict) -> None:
        old_length = _read_scalar(self.node, f"{name}.len", INT, 0)
        for index, (key, value) in enumerate(values.items()):
            _write_scalar(self.node, f"{name}.{index}.0", STR, key)
            _write_scalar(self.node, f"{name}.{index}.1", value_kind, value)
        _write_scalar(self.node, f"{name}.len", INT, len(values))
        for index in range(len(values), old_length):  # forget pairs beyond the new length
            self.node.UnsetParameter(f"{name}.{index}.0")
            if value_kind == NODE:
                self.node.SetNodeReferenceID(f"{name}.{index}.1", None)
            self.node.UnsetParameter(f"{name}.{index}.1")

    def _read_dict(self, name: str, value_kind: str) -> dict:
        length = _read_scalar(self.node, f"{name}.len", INT, 0)
        return {_read_scalar(self.node, f"{name}.{index}.0", STR, ""):
                _read_scalar(self.node, f"{name}.{index}.1", value_kind, None) for index in range(length)}
