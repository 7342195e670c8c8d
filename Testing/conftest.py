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


#: the Slicer module folders, which Slicer puts on ``sys.path`` so that ``<Module>Lib`` imports
SLICER_MODULE_FOLDERS = [str(REPO / "LesionSegInference"), str(REPO / "LesionSegCurriculum")]


@pytest.fixture(scope="module")
def slicer_module_folders():
    """Both module folders on ``sys.path`` for the tests of a module file, as Slicer puts them; removed after."""
    added = [folder for folder in SLICER_MODULE_FOLDERS if folder not in sys.path]
    sys.path[:0] = added
    yield
    for folder in added:
        sys.path.remove(folder)


def _rules(factory):
    rules = factory.GetConverterRules() if hasattr(factory, "GetConverterRules") else []
    try:
        return list(rules)
    except TypeError:
        return []


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m lesionseg ARGS`` in a subprocess; returns the completed process (text output)."""
    environment = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "lesionseg", *map(str, args)], capture_output=True, text=True, encoding="utf-8", errors="replace",
                          cwd=cwd, timeout=timeout, env=environment)


#: small phantoms (112 x 128 x 28 voxels of 1.75 x 1.75 x 5 mm) for tests that prepare or train
SMALL_PHANTOM = {"size_xyz": (112, 128, 28), "spacing_mm": (1.75, 1.75, 5.0)}
#: a narrow 2D U-Net that trains in seconds on 64 x 64 slices
TINY_NETWORK = {"network": "unet2d", "network_kwargs": {"features": [8, 16, 32, 64, 128]}}


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory) -> Path:
    """Six small synthetic FLAIR cases prepared at 64 x 64 (with 30 % lesion-free slices and one neighbouring slice
    on each side), once per session."""
    from lesionseg.preprocess import PrepareConfig, prepare_dataset
    from lesionseg.synth import write_cohort

    root = tmp_path_factory.mktemp("tiny")
    write_cohort(root / "data", 6, modalities=("flair",), seed=11, **SMALL_PHANTOM)
    prepare_dataset(root / "data", root / "prepared", PrepareConfig(size=64, negatives=0.3, context_slices=1))
    return root / "prepared"


@pytest.fixture(scope="session")
def tiny_bundle(tiny_prepared, tmp_path_factory) -> Path:
    """A tiny model bundle trained once per session (all data, 3 epochs at 64 x 64, one thread).

    Its predictions are not good lesion masks (too little training for that); tests use it for what does
    not depend on quality: geometry, formats, batches, bad input.
    """
    from lesionseg.train import TrainConfig, train_run

    config = TrainConfig(**TINY_NETWORK, epochs=3, all_data=True, batch_size=8, lr=2e-3, optimiser="adam",
                         device="cpu", num_threads=1, curriculum="none", augmentation={"enabled": False})
    summary = train_run(tiny_prepared, tmp_path_factory.mktemp("tiny_run") / "run", config)
    return summary.bundle


@pytest.fixture(scope="session")
def tiny_run(tiny_prepared, tmp_path_factory) -> Path:
    """A tiny 3-fold cross-validated run folder (2 epochs at 64 x 64, area + contrast curriculum, one thread),
    trained once per session: folds.csv, fold_<i>/{log,val_cases,val_slices}.csv, difficulty.csv, model.lsb.

    Its models are not good (too little training); tests use it for the run folder's structure.
    """
    from lesionseg.train import TrainConfig, train_run

    config = TrainConfig(**TINY_NETWORK, epochs=2, folds=3, batch_size=4, lr=1e-3, device="cpu", num_threads=1,
                         val_every=1, metrics=["area", "contrast"], groups=3, augmentation={"enabled": False})
    run = tmp_path_factory.mktemp("tiny_cv_run") / "run"
    train_run(tiny_prepared, run, config)
    return run
