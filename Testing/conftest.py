"""Shared fixtures: the synthetic cohort (written once per session) and a slicer-core MRML scene."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory) -> Path:
    """Four single-channel FLAIR cases in the public ISLES'22 layout (seed 1), written once per session."""
    from lesionseg.synth import write_cohort

    root = tmp_path_factory.mktemp("synthetic") / "isles"
    write_cohort(root, 4, modalities=("flair",), seed=1)
    return root


@pytest.fixture()
def slicer_scene():
    """A fresh MRML scene with the segmentation converter rules registered and the Segmentations logic.

    Returns (slicer module, scene, segmentations logic). Skips when slicer-core is not installed.
    """
    slicer = pytest.importorskip("slicer")
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    registered = {type(rule).__name__ for rule in _rules(factory)}
    for rule_class in (slicer.vtkBinaryLabelmapToClosedSurfaceConversionRule,
                       slicer.vtkClosedSurfaceToBinaryLabelmapConversionRule):
        if rule_class.__name__ not in registered:
            factory.RegisterConverterRule(rule_class())
    scene = slicer.vtkMRMLScene()
    logic = slicer.vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLScene(scene)
    yield slicer, scene, logic
    scene.Clear(1)


def _rules(factory):
    rules = factory.GetConverterRules() if hasattr(factory, "GetConverterRules") else []
    try:
        return list(rules)
    except TypeError:
        return []


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m lesionseg ARGS`` in a subprocess; returns the completed process (text output)."""
    environment = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "lesionseg", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=environment)
