"""``lesionseg transfer-mask MASK SOURCE TARGET -o OUT``: carry a mask to another scan of the same head.

The typical use is the CT study of the curriculum paper, whose lesion masks were drawn on a FLAIR taken
days later: SOURCE is that FLAIR, MASK the lesion drawn on it, TARGET the CT. SOURCE is registered onto
TARGET (rigid then affine, Mattes mutual information; ``--deformable`` adds a B-spline stage) and the
mask is resampled onto TARGET's grid (see :func:`lesionseg.preprocess.registration.transfer_mask`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lesionseg.errors import GeometryError, ParameterError, PreprocessingError

if TYPE_CHECKING:
    import SimpleITK as sitk


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "transfer-mask", help="carry a mask drawn on one scan onto another scan of the same patient",
        description="Register SOURCE onto TARGET and resample MASK (drawn on SOURCE) onto TARGET's grid.",
    )
    parser.add_argument("mask", type=Path, help="the mask drawn on SOURCE (any image format or .seg.nrrd)")
    parser.add_argument("source", type=Path, help="the scan the mask was drawn on (file or DICOM folder)")
    parser.add_argument("target", type=Path, help="the scan to carry the mask to (file or DICOM folder)")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="output mask on TARGET's grid (.nii.gz, .nrrd, .mha or .seg.nrrd)")
    parser.add_argument("--deformable", action="store_true",
                        help="add a B-spline stage after rigid and affine")
    parser.add_argument("--rigid-only", action="store_true", help="register with a rigid transform only")
    parser.add_argument("--label", type=int, default=None, help="label to take from a multi-label MASK")
    parser.add_argument("--seed", type=int, default=0, help="registration sampling seed (default 0)")
    parser.add_argument("--series", action="append", default=[], metavar="UID",
                        help="a DICOM folder holding several series: the Series Instance UID to read (repeat it "
                             "when SOURCE and TARGET are both such folders)")
    parser.set_defaults(func=run)


def _volume_ml(mask: sitk.Image) -> float:
    import numpy as np
    import SimpleITK as sitk

    voxels = np.count_nonzero(sitk.GetArrayViewFromImage(mask))
    return float(voxels) * float(np.prod(mask.GetSpacing())) / 1000.0


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import SimpleITK as sitk

    from lesionseg.io import read_image, read_mask, write_image
    from lesionseg.io.dicom_series import check_series_found
    from lesionseg.io.geometry import geometry_difference
    from lesionseg.preprocess.registration import transfer_mask

    folders = [path for path in (args.source, args.target) if path.is_dir()]
    if args.series:
        if not folders:
            raise ParameterError("--series chooses the series of a DICOM folder, but SOURCE and TARGET are files.")
        check_series_found(folders, args.series)
    source = read_image(args.source, series_uid=args.series)
    target = read_image(args.target, series_uid=args.series)
    mask = read_mask(args.mask, reference=source, label=args.label)
    difference = geometry_difference(mask, source)
    if difference is not None:
        raise GeometryError(f"{args.mask} is not on the grid of {args.source} ({difference}); "
                            "give the scan the mask was drawn on as SOURCE.")
    if not np.any(sitk.GetArrayViewFromImage(mask)):
        raise PreprocessingError(f"{args.mask} is empty; there is nothing to transfer.")
    started = time.perf_counter()
    moved = transfer_mask(mask, source, target, deformable=args.deformable,
                          stages=("rigid",) if args.rigid_only else ("rigid", "affine"), seed=args.seed,
                          source_name=str(args.source), target_name=str(args.target))
    written = write_image(moved, args.output)
    source_ml = _volume_ml(mask)
    target_ml = _volume_ml(moved)
    print(f"wrote {written}: {target_ml:.2f} mL on the target grid ({source_ml:.2f} mL on the source) "
          f"in {time.perf_counter() - started:.1f} s")
    return 0
