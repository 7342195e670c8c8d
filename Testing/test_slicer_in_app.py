"""What a Slicer user meets in the application, checked outside it (issue 16).

No Slicer application runs here. Each check either runs the modules' logic on real MRML classes (slicer-core),
or, where only the application could show a fault, reads the sources against facts taken from Slicer's own
sources (noted beside each table) so that the fault would have been caught.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CURRICULUM = REPO / "LesionSegCurriculum"
INFERENCE = REPO / "LesionSegInference"

pytestmark = pytest.mark.usefixtures("slicer_module_folders")


def _run(code: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run a snippet in a fresh Python (module names faked there stay there), from the repository root."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


# ----------------------------------------------------------------------------- 4. Slicer's algorithms in Slicer
def test_refine_tools_find_slicers_algorithms_under_the_applications_module_names():
    """In Slicer, vtkITK is the top-level module ``vtkITK`` and GrowCut is ``slicer.vtkImageGrowCutSegment``; the
    slicer-core names do not exist there. Stage exactly that and the resolver must still pick Slicer's backend."""
    pytest.importorskip("slicer_core")
    result = _run("""
        import sys, types
        import slicer_core.vtkITK as wheel_itk
        from slicer_core.vtkSlicerSegmentationsModuleLogic import vtkImageGrowCutSegment
        # The application's names: a top-level vtkITK, GrowCut on the slicer module; slicer-core's hidden.
        application_itk = types.ModuleType("vtkITK")
        application_itk.__dict__.update({k: v for k, v in vars(wheel_itk).items() if k.startswith("vtkITK")})
        application_slicer = types.ModuleType("slicer")
        application_slicer.vtkImageGrowCutSegment = vtkImageGrowCutSegment
        sys.modules.update({"vtkITK": application_itk, "slicer": application_slicer, "slicer_core": None,
                            "slicer_core.vtkITK": None, "slicer_core.vtkSlicerSegmentationsModuleLogic": None})
        import numpy as np
        from lesionseg.refine import slicer_algorithms as algorithms
        assert algorithms.resolve_backend("auto") == "slicer", algorithms.resolve_backend("auto")
        assert algorithms.slicer_naming() == "application"
        assert algorithms._modules()["vtkITK"] is application_itk
        seeds = np.zeros((5, 9, 9), np.uint8); seeds[2, 4, 4] = 1; seeds[:, 0, :] = 2
        labels = algorithms.grow_cut(np.ones((5, 9, 9), np.float32), seeds)
        assert labels[2, 4, 5] in (1, 2)
        mask = np.zeros((5, 9, 9), bool); mask[2, 3:6, 3:6] = True; mask[2, 0, 0] = True
        islands = algorithms.island_labels(mask)
        assert islands.max() == 2 and (islands == 1).sum() == 9
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


def test_refine_tools_still_find_slicer_core_outside_slicer():
    pytest.importorskip("slicer_core")
    result = _run("""
        from lesionseg.refine import slicer_algorithms as algorithms
        assert algorithms.resolve_backend("auto") == "slicer"
        print(algorithms.slicer_naming())
    """)
    assert result.returncode == 0 and result.stdout.strip() == "slicer-core", result.stderr[-2000:]


# ----------------------------------------------------------------------------- 9. torch for Slicer's NumPy 2
def test_torch_bound_admits_only_wheels_built_for_numpy_2():
    """Slicer 5.10 ships NumPy 2.0.2. torch wheels before 2.3 are NumPy-1 builds, and 2.4.0's Windows wheels
    were still NumPy-1 builds (pytorch/pytorch#131668, fixed in 2.4.1): the bound must refuse those."""
    from LesionSegInferenceLib.InstallLogic import TORCH_REQUIREMENT, requirement_status

    def admitted(version):
        return requirement_status(f"torch{TORCH_REQUIREMENT}", lambda name: version).satisfied

    assert [version for version in ("2.1.2", "2.2.0", "2.2.2", "2.3.1", "2.4.0") if admitted(version)] == []
    assert all(admitted(version) for version in ("2.4.1", "2.5.1", "2.6.0", "2.13.0"))
