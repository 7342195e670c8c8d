"""``lesionseg cases ROOT``: list and check the cases of a dataset, and say what ``prepare`` will register."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from lesionseg.cli.common import parse_channel_list
from lesionseg.errors import LesionSegError, ParameterError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cases", help="list and check the cases of a dataset",
        description="Discover the cases of a dataset (ISLES'22, ISLES'24, ATLAS v2.0, nnU-Net raw, CSV manifest), check "
                    "their files, and list them. Channels on different grids are accepted (the normal case for "
                    "multimodal MRI, e.g. ISLES'22's FLAIR and DWI): each case says which channels 'prepare' will "
                    "register onto the reference channel, which already share its grid (not registered), and "
                    "whether the mask is carried to the reference from the grid it was drawn on.",
    )
    parser.add_argument("root", type=Path, help="dataset folder or CSV manifest")
    parser.add_argument("--json", action="store_true", help="print the cases as JSON (with each case's plan)")
    parser.add_argument("--no-check", action="store_true", help="skip reading the files (faster, no validation)")
    strictness = parser.add_mutually_exclusive_group()
    strictness.add_argument("--require-aligned", action="store_true",
                            help="strict mode: refuse a case whose channels are not all on one grid (exit 2)")
    strictness.add_argument("--allow-unaligned", action="store_true",
                            help="accept channels on different grids: the default now, kept for older scripts")
    parser.add_argument("--channels", help="the channels prepare will use, e.g. flair (default: all, in the "
                                           "dataset's order), for the plan shown")
    parser.add_argument("--reference", help="the reference channel prepare will use (default: the first channel), "
                                            "for the plan shown")
    parser.add_argument("--export-nnunet", type=Path, metavar="DIR", help="also write an nnU-Net v2 raw dataset here")
    parser.add_argument("--export-csv", type=Path, metavar="CSV", help="also write a CSV manifest here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lesionseg.cli import EXIT_BAD_INPUT
    from lesionseg.data import detect_layout, discover, export_manifest, export_nnunet
    from lesionseg.data.alignment import alignment_plan
    from lesionseg.data.validation import validate_case

    layout, _ = detect_layout(args.root)
    cases = discover(args.root, validate=False)
    failed: dict[str, str] = {}  # case id -> why it cannot be used; every case is checked, not only the first bad one
    if not args.no_check:
        for case in cases:
            try:
                validate_case(case, allow_unaligned_channels=not args.require_aligned)
            except LesionSegError as error:
                failed[case.case_id] = str(error)
        if failed:
            for reason in failed.values():
                print(f"lesionseg cases: error: {reason}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.export_nnunet:
        export_nnunet(cases, args.export_nnunet)
    if args.export_csv:
        export_manifest(cases, args.export_csv)
    channels = parse_channel_list(args.channels, "--channels") if args.channels else None
    reference = parse_channel_list(args.reference, "--reference")[0] if args.reference else None
    if channels and reference and reference not in channels:
        raise ParameterError(f"--reference {reference} is not among --channels {','.join(channels)}.")
    plans = {}
    if not args.no_check:
        for case in cases:
            plans[case.case_id] = alignment_plan(case, channels, reference)
            case.metadata["alignment"] = plans[case.case_id].to_dict()
    if args.json:
        print(json.dumps({"root": str(args.root), "layout": layout, "cases": [c.to_dict() for c in cases]}, indent=2))
        return 0
    with_mask = sum(1 for case in cases if case.mask)
    print(f"{args.root}: {len(cases)} cases ({layout} layout), {with_mask} with a lesion mask")
    for case in cases:
        mask = "mask" if case.mask else "no mask"
        plan = plans.get(case.case_id)
        print(f"  {case.case_id:<28} patient {case.patient_id:<24} {','.join(case.channels):<18} {mask:<8}"
              + (f" {plan.describe()}" if plan else ""))
    for line in _plan_summary(list(plans.values())):
        print(line)
    return 0


def _plan_summary(plans: list) -> list[str]:
    """Lines saying, over all cases, what prepare registers onto which reference and what it leaves alone."""
    if not plans:
        return []
    references = Counter(plan.reference for plan in plans)
    registered = Counter((plan.reference, name) for plan in plans for name in plan.registered)
    aligned = Counter((plan.reference, name) for plan in plans for name in plan.aligned)
    carried = Counter((plan.mask_channel, plan.reference) for plan in plans if plan.mask_carried)
    shared = Counter(pair for plan in plans for pair in plan.shared)
    lines = []
    if not registered and not carried:
        names = ", ".join(references)
        lines.append(f"prepare: every case's channels share the grid of its reference channel ({names}); "
                     "nothing to register.")
        return lines
    for (reference, name), count in sorted(registered.items()):
        lines.append(f"prepare registers {name} onto {reference} in {count} of {len(plans)} cases.")
    for (name, other), count in sorted(shared.items()):
        lines.append(f"prepare gives {name} the registration of {other} (same grid) in {count} of {len(plans)} cases.")
    for (reference, name), count in sorted(aligned.items()):
        lines.append(f"prepare leaves {name} as it is in {count} of {len(plans)} cases (already on {reference}'s grid).")
    for (source, reference), count in sorted(carried.items()):
        lines.append(f"prepare carries the mask from {source}'s grid to {reference} through that registration in "
                     f"{count} of {len(plans)} cases.")
    lines.append("(--reference chooses the reference channel; --require-aligned refuses channels on different grids.)")
    return lines
