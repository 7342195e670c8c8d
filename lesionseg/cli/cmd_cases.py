"""``lesionseg cases ROOT``: list and check the cases of a dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cases", help="list and check the cases of a dataset",
        description="Discover the cases of a dataset (ISLES'22, ISLES'24, ATLAS v2.0, nnU-Net raw, CSV manifest), check "
                    "their files, and list them.",
    )
    parser.add_argument("root", type=Path, help="dataset folder or CSV manifest")
    parser.add_argument("--json", action="store_true", help="print the cases as JSON")
    parser.add_argument("--no-check", action="store_true", help="skip reading the files (faster, no validation)")
    parser.add_argument("--allow-unaligned", action="store_true",
                        help="accept channels on different grids (they will be registered by prepare)")
    parser.add_argument("--export-nnunet", type=Path, metavar="DIR", help="also write an nnU-Net v2 raw dataset here")
    parser.add_argument("--export-csv", type=Path, metavar="CSV", help="also write a CSV manifest here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lesionseg.data import detect_layout, discover, export_manifest, export_nnunet

    layout, _ = detect_layout(args.root)
    cases = discover(args.root, validate=not args.no_check, allow_unaligned_channels=args.allow_unaligned)
    if args.export_nnunet:
        export_nnunet(cases, args.export_nnunet)
    if args.export_csv:
        export_manifest(cases, args.export_csv)
    if args.json:
        print(json.dumps({"root": str(args.root), "layout": layout, "cases": [c.to_dict() for c in cases]}, indent=2))
        return 0
    with_mask = sum(1 for case in cases if case.mask)
    print(f"{args.root}: {len(cases)} cases ({layout} layout), {with_mask} with a lesion mask")
    for case in cases:
        mask = "mask" if case.mask else "no mask"
        print(f"  {case.case_id:<28} patient {case.patient_id:<24} {','.join(case.channels):<18} {mask}")
    return 0
