"""``lesionseg synth OUT``: write the synthetic cohort in the ISLES'22 layout."""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

from lesionseg.cli.common import parse_channel_list
from lesionseg.errors import ParameterError
from lesionseg.progress import PROGRESS_MODES, make_progress

SYNTH_MODALITIES = ("flair", "dwi", "adc", "ct", "t1", "tmax", "cbf", "cbv", "mtt")
_CHANNEL_TO_SYNTH = {"t1w": "t1"}  # parse_channel_list names T1 "t1w" (its canonical channel name)


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
    parser.add_argument("--lesion-pattern", default="default", metavar="PATTERN",
                        help="lesion pattern: default (1-5 lesions of radius 2-11 mm), territorial (one 8-120 mL "
                             "infarct), embolic (4-15 small lesions), lacunar (1-3 small deep lesions) or mixed "
                             "(one of those per case); default: default")
    parser.add_argument("--lesion-contrast", default=None, metavar="LOW,HIGH",
                        help="multiply each case's lesion contrast by a factor drawn in LOW,HIGH (0 to 4), "
                             "e.g. 1,1.6 for brighter lesions (default: unchanged)")
    parser.add_argument("--oblique", default=None, metavar="DEG",
                        help="store the images obliquely: grid axes rotated by random angles up to DEG degrees "
                             "(0 to 45; default: axis-aligned)")
    parser.add_argument("--head-tilt", default=None, metavar="DEG",
                        help="tilt the head: pitch up to DEG degrees and roll up to DEG/3 (0 to 30; default none)")
    parser.add_argument("--no-skull", action="store_true",
                        help="skull-stripped scans: every voxel outside the brain mask is 0")
    parser.add_argument("--tissue-contrast", default=None, metavar="random",
                        help="'random': random tissue intensities per case and class, lesion hyper- or "
                             "hypointense (contrast-robust pre-training; default: each modality's own model)")
    parser.add_argument("--distractors", action="store_true",
                        help="add lesion look-alikes that are not in the mask (white-matter hyperintensities, "
                             "sometimes an old infarct)")
    parser.add_argument("--varied", default=None, metavar="RECIPE",
                        help="per-case varied options from a recipe, starter (training), heldout, ct_heldout or "
                             "ct_starter (CT: lesions a few HU below their tissue, low-dose noise, skull base); they replace "
                             "--spacing and the options above")
    parser.add_argument("--workers", type=int, default=1, help="cases written in parallel (default 1)")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="none", help="progress display (default none)")
    parser.set_defaults(func=run)


def _parse_numbers(text: str, option: str, count: int, example: str) -> tuple[float, ...]:
    """``count`` comma-separated numbers, or a one-sentence ParameterError naming the option."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != count:
        what = "a number" if count == 1 else f"{count} numbers"
        raise ParameterError(f"{option} must be {what} like {example}, not {text!r}.")
    return values


def _variety_options(args: argparse.Namespace) -> dict:
    """The variety flags as ``make_case`` options (only those given), each checked with one sentence."""
    from lesionseg.synth import LESION_PATTERNS

    options: dict = {}
    if args.lesion_pattern not in LESION_PATTERNS:
        raise ParameterError(f"--lesion-pattern must be one of {', '.join(LESION_PATTERNS)}, "
                             f"not {args.lesion_pattern!r}.")
    if args.lesion_pattern != "default":
        options["lesion_pattern"] = args.lesion_pattern
    if args.lesion_contrast is not None:
        low, high = _parse_numbers(args.lesion_contrast, "--lesion-contrast", 2, "1,1.6")
        if not 0.0 <= low <= high <= 4.0:
            raise ParameterError(f"--lesion-contrast must be LOW,HIGH with 0 <= LOW <= HIGH <= 4, "
                                 f"not {args.lesion_contrast!r}.")
        options["lesion_contrast"] = (low, high)
    for flag, text, name, largest in (("--oblique", args.oblique, "oblique_deg", 45.0),
                                      ("--head-tilt", args.head_tilt, "head_tilt_deg", 30.0)):
        if text is not None:
            (value,) = _parse_numbers(text, flag, 1, "15")
            if not 0.0 <= value <= largest:
                raise ParameterError(
                    f"{flag} must be an angle in degrees between 0 and {largest:g}, not {text!r}.")
            options[name] = value
    if args.no_skull:
        options["skull"] = False
    if args.tissue_contrast is not None:
        if args.tissue_contrast != "random":
            raise ParameterError(f"--tissue-contrast must be 'random', not {args.tissue_contrast!r}.")
        options["tissue_contrast"] = "random"
    if args.distractors:
        options["distractors"] = True
    return options


def run(args: argparse.Namespace) -> int:
    channels = parse_channel_list(args.modality, "--modality", allowed=SYNTH_MODALITIES + tuple(_CHANNEL_TO_SYNTH))
    modalities = [_CHANNEL_TO_SYNTH.get(name, name) for name in channels]
    if args.cases < 1:
        raise ParameterError(f"--cases must be at least 1, not {args.cases}.")
    try:
        spacing = tuple(float(v) for v in args.spacing.split(","))
    except ValueError:
        raise ParameterError(f"--spacing must be three numbers like 1,1,3, not {args.spacing!r}.") from None
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ParameterError(f"--spacing must be three positive numbers like 1,1,3, not {args.spacing!r}.")
    from lesionseg.synth import RECIPES, varied_case_options, write_cohort

    start = time.perf_counter()
    try:
        lesion_age = tuple(float(v) for v in args.lesion_age.split(","))
    except ValueError:
        lesion_age = ()
    if len(lesion_age) != 2 or not 0.0 <= lesion_age[0] <= lesion_age[1] <= 1.0:
        raise ParameterError(f"--lesion-age must be two numbers LOW,HIGH with 0 <= LOW <= HIGH <= 1, "
                             f"not {args.lesion_age!r}.")
    options = {"spacing_mm": spacing, "lesion_age": lesion_age}
    options.update(_variety_options(args))
    if args.misalign:
        options["misalignment"] = (5.0, 5.0)
    options_fn = None
    if args.varied is not None:
        if args.varied not in RECIPES:
            raise ParameterError(f"--varied must be one of {', '.join(RECIPES)}, not {args.varied!r}.")
        options_fn = functools.partial(varied_case_options, args.seed, recipe=args.varied)
        options = {k: v for k, v in options.items() if k == "misalignment"}  # the recipe sets the rest
    if args.workers < 1:
        raise ParameterError(f"--workers must be at least 1, not {args.workers}.")
    progress = make_progress(args.progress)
    write_cohort(args.out, args.cases, modalities=tuple(modalities), seed=args.seed, layout=args.layout,
                 workers=args.workers, progress=progress, case_options_fn=options_fn, **options)
    message = (f"wrote {args.cases} synthetic cases ({', '.join(modalities)}) to {args.out} "
               f"in {time.perf_counter() - start:.1f} s")
    if args.progress == "jsonl":
        progress({"event": "done", "stage": "synth", "cases": args.cases, "out": str(args.out)})
    else:
        print(message)
    return 0
