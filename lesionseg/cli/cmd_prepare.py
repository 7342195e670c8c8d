"""``lesionseg prepare DATASET OUT``: make the 2D training slices of a dataset, with their records."""

from __future__ import annotations

import argparse
from pathlib import Path

from lesionseg.cli.common import parse_channel_list, parse_float_pair
from lesionseg.preprocess.config import BRAIN_METHODS
from lesionseg.progress import PROGRESS_MODES, make_progress
from lesionseg.train.presets import PRESET_NAMES

EXIT_PARTIAL = 3  # as lesionseg.cli.EXIT_PARTIAL (not imported: that module imports this one)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare", help="prepare 2D training slices (brain extraction, registration, flip, resize)",
        description="Prepare a dataset for 2D training: brain extraction, registration of the channels onto the "
                    "reference (channels already on its grid are taken as they are; a mask drawn on another "
                    "channel's grid, e.g. ISLES'22's DWI for --channels flair, is carried to the reference through "
                    "that registration), normalisation, axial slices with lesion (and some without), lesions "
                    "flipped into one hemisphere, resized to SxS without cropping. Every step is recorded per case. "
                    "A case that cannot be prepared is listed with its reason (on screen and in prepare.json) and "
                    "the others are prepared (exit code 3); running the command again prepares only the failed and "
                    "missing cases.",
    )
    parser.add_argument("dataset", type=Path, help="dataset folder or CSV manifest (any layout 'cases' reads)")
    parser.add_argument("out", type=Path, help="output folder of the prepared dataset")
    parser.add_argument("--channels", help="comma-separated channels, in order (default: all of the first case)")
    parser.add_argument("--reference", help="the reference channel (default: the first channel)")
    parser.add_argument("--preset", choices=PRESET_NAMES, default="auto",
                        help="the recipe for --size, --negatives and --context when not given: cpu (128, 1, 1), gpu "
                             "(192, 1, 1), paper (192, 0.1, 0) or auto (gpu with a GPU, else cpu; default); train "
                             "with the same preset")
    parser.add_argument("--size", type=int, help="side of the prepared slices in pixels (the paper's 192)")
    parser.add_argument("--negatives", type=float,
                        help="fraction of each case's lesion-free brain slices to keep (the paper's 0.1)")
    parser.add_argument("--context", type=int, dest="context_slices", metavar="K",
                        help="store K neighbouring slices on each side of every slice, for 2.5D training")
    parser.add_argument("--brain-margin", type=float, metavar="MM",
                        help="frame the slices on the brain with this margin in mm (cpu and gpu presets: 10) instead "
                             "of the whole field of view; 'off' is --brain-margin -1")
    parser.add_argument("--antialias", choices=("on", "off"),
                        help="smooth each channel before sampling it onto coarser prepared pixels, so that a pixel "
                             "averages the voxels it covers (cpu and gpu presets: on; paper: off); models trained "
                             "on it do it too")
    parser.add_argument("--mirror-difference", action="store_true",
                        help="also store each channel minus its reflection about the mid-sagittal plane as a channel "
                             "<channel>-mirror (a one-sided lesion stands out); models trained on it compute it too")
    parser.add_argument("--side", choices=("left", "right"), default="left",
                        help="hemisphere (patient's) that lesions are flipped into (default left)")
    parser.add_argument("--brain-extraction", choices=BRAIN_METHODS, default="auto",
                        help="brain extraction method: classical, deepbet or hdbet (learned, MRI only, from "
                             "pip install 'lesionseg[brain]'), or auto (default: classical, and a learned "
                             "extractor, when installed, for an MRI whose classical mask has an atypical volume; "
                             "CT is always classical); the method used is recorded per case")
    parser.add_argument("--no-register", action="store_true", help="assume the channels are already aligned")
    parser.add_argument("--rigid-only", action="store_true",
                        help="register with a rigid transform only, no affine stage (better when the reference has "
                             "thick slices, e.g. ISLES'22's 5 mm FLAIR as reference: on the synthetic release the "
                             "DWI-to-FLAIR error was 0.7 mm rigid, 3.6 mm rigid + affine)")
    parser.add_argument("--register-aligned", action="store_true",
                        help="also register channels already on the reference channel's grid (by default a channel "
                             "with the reference's size, spacing, origin and direction, such as ADC beside DWI, is "
                             "taken as it is)")
    parser.add_argument("--deformable", action="store_true", help="add a deformable registration stage")
    parser.add_argument("--ct-window", default="0,80", help="CT window in HU, low,high (default 0,80)")
    parser.add_argument("--ct-windows", default=None,
                        help="CT input planes, comma-separated among brain (the --ct-window) and stroke (20-60 HU, "
                             "centre 40, width 40): e.g. brain,stroke gives each CT channel two input planes "
                             "(default: one plane, the --ct-window)")
    parser.add_argument("--replace-nonfinite", action="store_true",
                        help="replace NaN/infinite voxels (and count them) instead of refusing the case")
    parser.add_argument("--mask-revision", default="original",
                        help="which mask to use: original, latest or a revision id such as rev-0003 "
                             "(default original; see 'lesionseg revisions')")
    parser.add_argument("--revisions", type=Path, dest="revisions_dir",
                        help="folder of the mask revisions when not in <dataset>/derivatives/lesionseg/revisions")
    parser.add_argument("--bias-correction", choices=("none", "n4"), default="none",
                        help="n4: divide MRI channels by an N4 bias field fitted inside the brain before the z-score "
                             "(about 1 s per channel at size 128); models remember it (default none)")
    parser.add_argument("--classes", choices=("auto", "binary"), default="auto",
                        help="auto (default): masks with a label table of several classes (e.g. core and penumbra) "
                             "are prepared for a model with one output per class; binary: one lesion class")
    parser.add_argument("--seed", type=int, default=0, help="seed for the choice of lesion-free slices")
    parser.add_argument("--workers", type=int, default=1, help="cases prepared in parallel (default 1)")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="bar", help="progress display (default bar)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lesionseg.preprocess import PrepareConfig, prepare_dataset
    from lesionseg.preprocess.brain import check_method_available
    from lesionseg.train.presets import get_preset

    check_method_available(args.brain_extraction)  # a missing [brain] extra is said before any case runs

    preset = get_preset(args.preset).prepare_values()
    given = {"size": args.size, "negatives": args.negatives, "context_slices": args.context_slices,
             "brain_margin_mm": args.brain_margin,
             "antialias": None if args.antialias is None else args.antialias == "on"}
    chosen = {**preset, **{key: value for key, value in given.items() if value is not None}}
    if chosen["brain_margin_mm"] is not None and chosen["brain_margin_mm"] < 0:
        chosen["brain_margin_mm"] = None
    config = PrepareConfig(
        channels=parse_channel_list(args.channels, "--channels") if args.channels else None,
        reference=parse_channel_list(args.reference, "--reference")[0] if args.reference else None,
        size=chosen["size"], negatives=chosen["negatives"], context_slices=chosen["context_slices"],
        brain_margin_mm=chosen["brain_margin_mm"], antialias=bool(chosen.get("antialias", False)),
        lesion_side=args.side, brain_extraction=args.brain_extraction,
        registration=[] if args.no_register else (["rigid"] if args.rigid_only else ["rigid", "affine"]),
        deformable=args.deformable,
        register_aligned=args.register_aligned,
        ct_window=parse_float_pair(args.ct_window, "--ct-window"), replace_nonfinite=args.replace_nonfinite,
        ct_windows=[w.strip() for w in args.ct_windows.split(",") if w.strip()] if args.ct_windows else None,
        seed=args.seed, mask_revision=args.mask_revision, bias_correction=args.bias_correction,
        mirror_difference=args.mirror_difference,
    )
    summary = prepare_dataset(args.dataset, args.out, config, workers=args.workers, progress=make_progress(args.progress),
                              revisions_dir=args.revisions_dir, classes=args.classes)
    if args.progress == "jsonl":
        make_progress("jsonl")({"event": "done", "stage": "prepare", **summary})
    else:
        print(f"prepared {summary['cases']} cases into {args.out}: {summary['slices']} slices, "
              f"{summary['lesion_slices']} with lesion ({summary['skipped']} cases unchanged and skipped"
              + (f", {summary['retried']} that failed before tried again" if summary["retried"] else "") + ")")
        if summary["failed"]:
            print(f"{summary['failed']} case(s) could not be prepared (listed in {args.out / 'prepare.json'}; "
                  "run the same command again to retry only these):")
            for failure in summary["failures"]:
                print(f"  {failure['case_id']}: {failure['reason']}")
    return EXIT_PARTIAL if summary["failed"] else 0
