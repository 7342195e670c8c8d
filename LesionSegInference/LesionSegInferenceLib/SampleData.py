"""The "Stroke lesion FLAIR (synthetic)" entry of Slicer's Sample Data module, made on first use (no download).

The case comes from LesionSeg's own synthetic cohort generator (``lesionseg.synth``): one FLAIR volume of a
phantom head with a few-days-old (bright) stroke lesion, written once into a cache folder as NRRD, and its
lesion mask beside it (for comparing a result with the truth). The same seed always makes the same case, so the
extension's screenshot (``Resources/Screenshots``) shows exactly what a user gets from this entry.

Nothing here imports Qt or Slicer; the module file registers the entry with ``SampleData``'s
``registerCustomSampleDataSource(..., customDownloader=...)`` and loads the file this writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: What the Sample Data module shows, and the category it shows it under.
SAMPLE_NAME = "Stroke lesion FLAIR (synthetic)"
SAMPLE_CATEGORY = "LesionSeg"
#: The node name of the loaded volume (its name holds "flair", so the Inference panel picks it as FLAIR).
SAMPLE_NODE_NAME = "StrokeLesionFLAIR"
#: The generator's settings: cohort seed and case index, a lesion a few days old (visible on FLAIR), the
#: default phantom grid (192 x 224 x 48 voxels of 1 x 1 x 3 mm).
SAMPLE_SEED = 20261204
SAMPLE_INDEX = 3
SAMPLE_OPTIONS = {"lesion_age": (0.5, 1.0)}
#: Bump when the settings above change, so that an old cached file is not shown for the new case.
SAMPLE_VERSION = 1


@dataclass(frozen=True)
class SampleFiles:
    """The written sample: the FLAIR volume and its true lesion mask (0/1)."""

    flair: Path
    truth: Path


def sample_files(folder: str | os.PathLike) -> SampleFiles:
    """Where the sample is (or will be) written inside ``folder``."""
    base = Path(folder) / f"lesionseg-sample-v{SAMPLE_VERSION}"
    return SampleFiles(base / f"{SAMPLE_NODE_NAME}.nrrd", base / f"{SAMPLE_NODE_NAME}-truth.nrrd")


def make_sample_case():
    """The sample as an in-memory ``lesionseg.synth`` case (deterministic)."""
    from lesionseg.synth import make_case

    return make_case(SAMPLE_INDEX, seed=SAMPLE_SEED, modalities=("flair",), **SAMPLE_OPTIONS)


def ensure_sample(folder: str | os.PathLike) -> SampleFiles:
    """Write the sample into ``folder`` unless it is already there; return its files.

    Raises:
        OSError: the folder cannot be written (the message names it).
    """
    files = sample_files(folder)
    if files.flair.is_file() and files.truth.is_file():
        return files
    from lesionseg.io import write_image

    case = make_sample_case()
    write_image(case.lesion_mask, files.truth, compress=True)
    write_image(case.channels["flair"], files.flair, compress=True)  # written last: its presence means done
    return files
