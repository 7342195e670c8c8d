"""``lesionseg synth OUT``: write the synthetic cohort in the ISLES'22 layout."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lesionseg.cli.common import parse_channel_list
from lesionseg.errors import ParameterError
from lesionseg.progress import PROGRESS_MODES, make_progress

SYNTH_MODALITIES = ("flair", "dwi", "adc", "ct")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth", help="write a synthetic stroke cohort (ISLES'22 layout)",
        description="Write N synthetic head scans with lesions, in the public ISLES'22 layout (or the flat one).",
    )
    parser.add_argument("out", type=Path, help="output folder (created)")
    parser.add_argument("--cases", type=int, default=20, help="number of cases (default 20)")
    parser.add_argument("--modality", default="flair",
                        help=f"comma-separated channels among {', '.join(SYNTH_MODALITIES)} (default flair)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same cohort (default 0)")
    parser.add_argument("--layout", choices=("public", "flat"), default="public",
                        help="ISLES'22 public layout (anat/, dwi/ folders) or flat rawdata/ layout")
    parser.add_argument("--spacing", default="1,1,3", help="voxel size x,y,z in mm (default 1,1,3)")
    parser.add_argument("--misalign", action="store_true",
                        help="move each channel after the first by a small random rigid transform")
    parser.add_argument("--lesion-age", default="0,1",
                        help="range LOW,HIGH in [0, 1] of the cases' lesion age (0 hyperacute, faint on FLAIR; 1 late, "
                             "bright); default 0,1 spans both; 0.5,1 resembles FLAIR a few days after the stroke")
    parser.add_argument("--workers", type=int, default=1, help="cases written in parallel (default 1)")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="none", help="progress display (default none)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    modalities = parse_channel_list(args.modality, "--modality", allowed=SYNTH_MODALITIES)
    if args.cases < 1:
        raise ParameterError(f"--cases must be at least 1, not {args.cases}.")
    try:
        spacing = tuple(float(v) for v in args.spacing.split(","))
    except ValueError:
        raise ParameterError(f"--spacing must be three numbers like 1,1,3, not {args.spacing!r}.") from None
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ParameterError(f"--spacing must be three positive numbers like 1,1,3, not {args.spacing!r}.")
    from lesionseg.synth import write_cohort

    start = time.perf_counter()
    try:
        lesion_age = tuple(float(v) for v in args.lesion_age.split(","))
    except ValueError:
        lesion_age = ()
    if len(lesion_age) != 2 or not 0.0 <= lesion_age[0] <= lesion_age[1] <= 1.0:
        raise ParameterError(f"--lesion-age must be two numbers LOW,HIGH with 0 <= LOW <= HIGH <= 1, "
                             f"not {args.lesion_age!r}.")
    options = {"spacing_mm": spacing, "lesion_age": lesion_age}
    if args.misalign:
        options["misalignment"] = (5.0, 5.0)
    if args.workers < 1:
        raise ParameterError(f"--workers must be at least 1, not {args.workers}.")
    progress = make_progress(args.progress)
    write_cohort(args.out, args.cases, modalities=tuple(modalities), seed=args.seed, layout=args.layout,
                 workers=args.workers, progress=progress, **options)
    message = (f"wrote {args.cases} synthetic cases ({', '.join(modalities)}) to {args.out} "
               f"in {time.perf_counter() - start:.1f} s")
    if args.progress == "jsonl":
        progress({"event": "done", "stage": "synth", "cases": args.cases, "out": str(args.out)})
    else:
        print(message)
    return 0
