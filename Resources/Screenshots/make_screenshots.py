"""Draw the extension's screenshot: LesionSeg's shipped starter model on the Sample Data case.

Run from the repository root with the package installed: ``python Resources/Screenshots/make_screenshots.py``.
It makes the "Stroke lesion FLAIR (synthetic)" case exactly as the Sample Data entry does
(``LesionSegInference/LesionSegInferenceLib/SampleData.py``), segments it on the CPU with the starter model
(``lesionseg.infer.Predictor``, the code the Inference module runs), and draws the axial slices holding the
most lesion with the report's overlay (``lesionseg.report.overlay``: the result against the generator's truth).
It writes ``Resources/Screenshots/LesionSegInference.png`` and prints the case's Dice and volumes. The PNG is
committed (the Extensions Index shows it); this script is not part of the Slicer build.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "Resources" / "Screenshots" / "LesionSegInference.png"
#: Axial slices shown (those with the most lesion in the truth, in slice order).
SLICES = 3


def main() -> int:
    sys.path.insert(0, str(REPO / "LesionSegInference"))
    import torch

    from LesionSegInferenceLib.SampleData import SAMPLE_NAME, make_sample_case
    from lesionseg.infer import Predictor
    from lesionseg.metrics import dice
    from lesionseg.report.overlay import make_sample, plot_overlays
    from lesionseg.starter import starter_bundle_path

    torch.set_num_threads(1)
    case = make_sample_case()
    flair = case.channels["flair"]
    prediction = Predictor(starter_bundle_path(), device="cpu").predict({"flair": flair}, case_id=SAMPLE_NAME)
    image = sitk.GetArrayFromImage(flair).astype(float)
    truth = sitk.GetArrayFromImage(case.lesion_mask) > 0
    predicted = sitk.GetArrayFromImage(prediction.labelmap) > 0
    per_slice = truth.sum(axis=(1, 2))
    chosen = sorted(np.argsort(per_slice)[::-1][:SLICES])
    samples = [make_sample(f"axial slice {k + 1} of {image.shape[0]}", image[k], predicted[k], truth[k]) for k in chosen]
    voxel_ml = float(np.prod(flair.GetSpacing())) / 1000.0
    case_dice = dice(predicted, truth)
    title = (f"LesionSeg Inference, starter model, on the Sample Data case \"{SAMPLE_NAME}\": "
             f"{predicted.sum() * voxel_ml:.1f} mL found, {truth.sum() * voxel_ml:.1f} mL true, Dice {case_dice:.2f}")
    plot_overlays(samples, OUTPUT, columns=SLICES, title=title)
    print(f"{OUTPUT.relative_to(REPO)}: {title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
