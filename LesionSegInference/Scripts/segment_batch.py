"""Segment every case of a dataset folder with a LesionSeg model bundle, without a window.

Inside 3D Slicer (Slicer's Python, the extension's packages)::

    Slicer --no-splash --no-main-window --python-script LesionSegInference/Scripts/segment_batch.py \\
        [--] --bundle model.lsb --input DATASET --output OUT [--device cpu] [--tta] ...

or with any Python where lesionseg is installed: ``python LesionSegInference/Scripts/segment_batch.py ...``.

It runs the module's logic blocking: ``lesionseg segment BUNDLE DATASET -o OUT`` in a background process,
one progress line per case, then OUT holds a mask per case, ``summary.csv`` (a row per case, failures
with their reason) and ``segment.log``. The exit code is the command's: 0 done, 1 internal error, 2 bad
input, 3 some cases failed, 130 cancelled.
"""

import argparse
import sys
from pathlib import Path

# The module folder (source tree) or Slicer's scripted-modules folder (installed extension) holds the Lib.
MODULE_FOLDER = Path(globals().get("__file__") or sys.argv[0]).resolve().parent.parent
if str(MODULE_FOLDER) not in sys.path:
    sys.path.insert(0, str(MODULE_FOLDER))

from LesionSegInferenceLib import DEVICE_CHOICES, EXIT_BAD_INPUT, SIDE_CHOICES, InferenceLogic  # noqa: E402
from LesionSegInferenceLib.BatchScript import (  # noqa: E402
    ProgressPrinter,
    log_printer,
    missing_dependencies,
    report,
    script_arguments,
)

#: the formats of ``lesionseg segment --format``; dcm-seg writes a DICOM SEG per case that refers to the case's
#: DICOM series (cases whose reference channel is a DICOM folder; others are listed as failed)
OUTPUT_FORMATS = ("nii.gz", "nii", "nrrd", "seg", "mha", "dcm-seg")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segment_batch.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, help="model bundle (.lsb)")
    parser.add_argument("--input", required=True, help="dataset folder (any layout 'lesionseg cases' reads)")
    parser.add_argument("--output", required=True, help="output folder: one mask per case and summary.csv")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="(default auto)")
    parser.add_argument("--side", choices=SIDE_CHOICES, default="auto", help="lesion hemisphere (default auto)")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation")
    parser.add_argument("--threshold", type=float, help="probability threshold (default: the bundle's)")
    parser.add_argument("--min-lesion-mm3", type=float, help="remove smaller lesions (default 10)")
    parser.add_argument("--no-fill-holes", action="store_true", help="do not fill holes inside lesions")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default="nii.gz",
                        help="mask format (default nii.gz; seg = Slicer .seg.nrrd; dcm-seg = DICOM SEG of cases "
                             "given as DICOM folders, needs highdicom)")
    parser.add_argument("--prob", help="also write each case's probability map into this folder")
    parser.add_argument("--skip-existing", action="store_true", help="keep masks already in the output (resume)")
    return parser


def main(argv=None) -> int:
    try:
        args = parser().parse_args(script_arguments(sys.argv if argv is None else argv))
    except SystemExit as stop:  # argparse printed the usage and the error
        return EXIT_BAD_INPUT if stop.code else 0
    missing = missing_dependencies(MODULE_FOLDER)
    if missing:
        print(f"segment_batch.py: error: {missing}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"Segmenting {args.input} with {args.bundle} into {args.output}", flush=True)
    result = InferenceLogic().segment_dataset(
        args.bundle, args.input, args.output, on_progress=ProgressPrinter(label="segment"), on_log=log_printer(),
        device=args.device, side=args.side, tta=args.tta, threshold=args.threshold,
        min_lesion_mm3=args.min_lesion_mm3, fill_holes=not args.no_fill_holes, output_format=args.format,
        prob_folder=args.prob, skip_existing=args.skip_existing)
    code = report(result)
    summary = Path(args.output) / "summary.csv"
    if summary.is_file():
        print(f"Summary: {summary}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
