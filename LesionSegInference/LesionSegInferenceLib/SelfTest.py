"""What the modules' self-tests do, as functions of a scene, so pytest runs them too (on slicer-core).

Inside Slicer, ``LesionSegInferenceTest`` calls :func:`run_inference_self_test` with ``slicer.mrmlScene``:
a small synthetic cohort is written (``lesionseg.synth``), a tiny bundle is trained for one epoch on the
CPU by ``lesionseg prepare`` and ``lesionseg train`` jobs (unless a bundle is given), a synthetic FLAIR
volume is loaded, the inference logic runs to the end, and :func:`check_result` lists what is wrong:
the "Stroke lesion" segment is missing, the segment or the probability map is not on the volume's grid,
or the lesion volume is implausible (negative, not finite, outside the brain, or not the volume of the
segment's voxels). A one-epoch model segments badly; the checks are about the plumbing, not the quality.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable

from .JobProgress import JobResult
from .Parameters import InferenceParameters
from .Process import run_lesionseg

#: Small phantoms (112 x 128 x 28 voxels of 1.75 x 1.75 x 5 mm) that prepare and train in seconds.
PHANTOM = {"size_xyz": (112, 128, 28), "spacing_mm": (1.75, 1.75, 5.0)}
#: A narrow 2D U-Net trained on 64 x 64 slices.
TINY_NETWORK_KWARGS = {"features": [8, 16, 32, 64, 128]}
TINY_SLICE_SIZE = 64
SEED = 7


def write_synthetic_dataset(folder: str | os.PathLike, cases: int = 4, seed: int = SEED) -> Path:
    """Write a small synthetic FLAIR cohort (ISLES'22 layout) into ``folder``; returns it."""
    from lesionseg.synth import write_cohort

    folder = Path(folder)
    write_cohort(folder, cases, modalities=("flair",), seed=seed, **PHANTOM)
    return folder


def tiny_train_arguments(prepared: Path, run: Path, epochs: int = 1) -> list[str]:
    """``lesionseg train`` arguments of a tiny one-model run on the CPU (seconds, not a useful model)."""
    return [str(prepared), str(run), "--model", "unet2d", "--network-kwargs", json.dumps(TINY_NETWORK_KWARGS),
            "--epochs", str(epochs), "--all-data", "--batch-size", "8", "--curriculum", "none",
            "--optimiser", "adam", "--lr", "2e-3", "--device", "cpu", "--no-augment", "--threads", "1"]


def _check_job(result: JobResult, what: str) -> None:
    from lesionseg.errors import LesionSegError

    if not result.ok:
        raise LesionSegError(f"{what} {result.state}: {result.error}")


def train_tiny_bundle(folder: str | os.PathLike, *, launcher=None, python: str | None = None,
                      on_log: Callable[[str], None] | None = None) -> Path:
    """Synthesise 4 cases, prepare them at 64 x 64 and train a tiny bundle for one epoch, in background jobs.

    Returns:
        The bundle (``<folder>/run/model.lsb``).

    Raises:
        LesionSegError: a job failed (its sentence).
    """
    folder = Path(folder)
    data = write_synthetic_dataset(folder / "data")
    prepared, run = folder / "prepared", folder / "run"
    options = {"launcher": launcher, "python": python, "on_log": on_log}
    _check_job(run_lesionseg("prepare", [str(data), str(prepared), "--size", str(TINY_SLICE_SIZE),
                                         "--negatives", "0.3"], **options), "preparing the synthetic cases")
    _check_job(run_lesionseg("train", tiny_train_arguments(prepared, run), **options), "training the tiny bundle")
    return run / "model.lsb"


def synthetic_volume(scene, index: int = 101, seed: int = SEED):
    """A synthetic FLAIR case (not one the tiny bundle trained on) as a volume node.

    Returns:
        ``(volume node, lesionseg.synth.SynthCase)``.
    """
    from lesionseg.mrml import volume_node_from_image
    from lesionseg.synth import make_case

    case = make_case(index, seed, modalities=("flair",), **PHANTOM)
    return volume_node_from_image(scene, case.channels["flair"], "LesionSeg self-test FLAIR"), case


def check_result(scene, result, volume_node) -> list[str]:
    """What is wrong with a segmentation result (an empty list when nothing is).

    Args:
        scene: the MRML scene.
        result: an :class:`~.Results.InferenceResult`.
        volume_node: the input volume.
    """
    import numpy as np
    import SimpleITK as sitk

    from lesionseg.io import geometry_difference
    from lesionseg.labels import STROKE_LESION_NAME
    from lesionseg.mrml import geometry_of_volume_node, mask_from_segmentation_node, segment_names

    problems = []
    grid = geometry_of_volume_node(volume_node)
    if STROKE_LESION_NAME not in segment_names(result.segmentation_node):
        return [f"the segmentation has no '{STROKE_LESION_NAME}' segment"]
    mask = mask_from_segmentation_node(scene, result.segmentation_node, STROKE_LESION_NAME, volume_node)
    for what, image in (("segment", mask), ("probability map", _image(result.probability_node))):
        difference = geometry_difference(image, grid)
        if difference is not None:
            problems.append(f"the {what} is not on the volume's grid ({difference})")
    voxel_ml = float(np.prod(grid.spacing)) / 1000.0
    segment_ml = float(sitk.GetArrayViewFromImage(mask).sum()) * voxel_ml
    volume_ml = result.lesion_volume_ml
    if not (math.isfinite(volume_ml) and volume_ml >= 0):
        problems.append(f"the lesion volume {volume_ml} mL is not a volume")
    elif not math.isclose(volume_ml, segment_ml, rel_tol=1e-6, abs_tol=1e-9):
        problems.append(f"the lesion table says {volume_ml:.4f} mL but the segment holds {segment_ml:.4f} mL")
    if result.brain is not None:
        brain_ml = float(sitk.GetArrayViewFromImage(result.brain).sum()) * voxel_ml
        outside = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask) > sitk.GetArrayViewFromImage(result.brain)))
        if volume_ml > brain_ml or outside:
            problems.append(f"the lesion ({volume_ml:.2f} mL, {outside} voxels outside) is not inside the brain "
                            f"({brain_ml:.2f} mL)")
    return problems


def _image(node):
    from lesionseg.mrml import image_from_volume_node

    return image_from_volume_node(node)


def run_inference_self_test(scene, folder: str | os.PathLike, *, bundle: str | os.PathLike | None = None,
                            launcher=None, python: str | None = None,
                            on_log: Callable[[str], None] | None = None) -> tuple[Any, list[str]]:
    """The whole inference self-test: bundle (trained when not given), synthetic volume, run, checks.

    Args:
        scene: the MRML scene.
        folder: an empty work folder.
        bundle: a bundle to use instead of training one.
        launcher, python, on_log: for the jobs (defaults: plain subprocesses of this Python or PythonSlicer).

    Returns:
        ``(InferenceResult, problems)``; ``problems`` is empty when the result is right.
    """
    from .Logic import InferenceLogic

    folder = Path(folder)
    bundle_path = Path(bundle) if bundle is not None else train_tiny_bundle(folder / "bundle", launcher=launcher,
                                                                         python=python, on_log=on_log)
    volume, _case = synthetic_volume(scene)
    logic = InferenceLogic(scene, launcher=launcher, python=python, work_root=str(folder))
    parameters = InferenceParameters(bundle_path=str(bundle_path), input_volumes={"flair": volume}, device="cpu",
                                     side="auto")
    result = logic.process(parameters, on_log=on_log)
    return result, check_result(scene, result, volume)


def self_test_readiness(requirements_path: str | os.PathLike | None,
                        version_of: Callable[[str], str | None] | None = None) -> tuple[bool, str]:
    """Whether the packages the end-to-end self-tests need (torch, MONAI, ...) are installed; nothing installed.

    The Extensions Index's test machines run the self-tests in testing mode, where nothing is installed, and
    have neither torch nor MONAI: the tests that need them are then skipped with this reason (the others run).

    Args:
        requirements_path: the extension's ``requirements.txt`` (None: only torch is checked).
        version_of: name -> installed version (default: ``importlib.metadata``).

    Returns:
        ``(True, "")``, or ``(False, reason)`` naming what is missing.
    """
    from .InstallLogic import TORCH_REQUIREMENT, InstallLogic, installed_version, requirement_status

    version_of = version_of or installed_version
    if requirements_path is None:
        status = requirement_status(f"torch{TORCH_REQUIREMENT}", version_of)
        return (True, "") if status.satisfied else (False, f"LesionSeg needs {status.describe()} for this test.")
    ok, reason = InstallLogic(requirements_path, testing=True, version_of=version_of).ensure()
    return (True, "") if ok else (False, reason)
