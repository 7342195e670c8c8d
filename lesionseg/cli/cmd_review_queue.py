"""``lesionseg review-queue DATASET --bundle B``: which cases an annotator should look at first.

Ranks the cases (and lists their slices) by how much attention they need, from the image, the current
mask revision and a model bundle: model disagreement, model uncertainty (test-time augmentation),
intensity misfit, difficulty (small, faint lesions), never-reviewed cases first. Without ``--bundle`` the
model measures are left out. ``--export-ratings OUT --prepared P`` instead writes the annotators' ratings
as a difficulty table with a ``human`` column for ``lesionseg train --metric human``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from lesionseg.errors import ParameterError
from lesionseg.progress import PROGRESS_MODES, make_progress


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "review-queue", help="rank a dataset's cases for review (model disagreement, uncertainty, difficulty)",
        description="Rank the cases of a dataset by how much an annotator's attention they need; or export "
                    "the annotators' ratings as a 'human' difficulty table (--export-ratings).",
    )
    parser.add_argument("dataset", type=Path, help="dataset folder or CSV manifest")
    parser.add_argument("--bundle", type=Path, help="model bundle (.lsb) for disagreement and uncertainty")
    parser.add_argument("--revisions", type=Path, metavar="DIR", help="revisions kept in DIR/<case>/")
    parser.add_argument("--revision", default="latest", help="revision of each mask to rank (default latest)")
    parser.add_argument("--channel", help="channel to measure on (default: the one each mask was drawn on)")
    parser.add_argument("--no-tta", action="store_true", help="no test-time augmentation (faster, no variance)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="(default auto)")
    parser.add_argument("--top", type=int, default=0, help="show only the first N cases (default all)")
    parser.add_argument("--out", type=Path, help="write the queue (or the ratings table) as CSV")
    parser.add_argument("--json", action="store_true", help="print the queue as JSON")
    parser.add_argument("--export-ratings", action="store_true",
                        help="write the ratings as a difficulty table (needs --prepared and --out)")
    parser.add_argument("--prepared", type=Path, help="with --export-ratings: the prepared dataset")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="bar", help="progress display (default bar)")
    parser.set_defaults(func=run)


def _export(args: argparse.Namespace) -> int:
    from lesionseg.difficulty import write_difficulty
    from lesionseg.preprocess import PreparedDataset
    from lesionseg.refine.ratings import case_ratings, ratings_table

    if args.prepared is None or args.out is None:
        raise ParameterError("--export-ratings needs --prepared PREPARED and --out FILE.csv.")
    prepared = PreparedDataset(args.prepared)
    ratings = case_ratings(args.dataset, prepared.case_ids, args.revisions)
    table = ratings_table(prepared, ratings)
    write_difficulty(table, args.out)
    lesion_cases = {row["case_id"] for row in prepared.slices if row["has_lesion"]}
    missing = sorted(lesion_cases - set(ratings))
    print(f"wrote {args.out}: {len(table)} lesion slices of {len(ratings)} rated case(s)"
          + (f"; {len(missing)} case(s) with lesion slices are not rated yet ({', '.join(missing[:5])}"
             + (", ..." if len(missing) > 5 else "") + ")" if missing else ""))
    return 0


def run(args: argparse.Namespace) -> int:
    from lesionseg.refine.review_queue import outline_judged, review_queue

    if args.export_ratings:
        return _export(args)
    if args.top < 0:
        raise ParameterError(f"--top must be >= 0, not {args.top}.")
    entries = review_queue(args.dataset, bundle=args.bundle, revision=args.revision, revisions_dir=args.revisions,
                           channel=args.channel, tta=not args.no_tta, device=args.device,
                           progress=make_progress(args.progress))
    shown = entries[: args.top] if args.top else entries
    rows = [entry.to_row() for entry in shown]
    if args.out is not None:
        from lesionseg.io import write_text_atomic

        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        write_text_atomic(args.out, buffer.getvalue())
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    evidence = "image, shape and model" if args.bundle else "image and shape (no --bundle: model measures left out)"
    print(f"review queue of {args.dataset}: {len(entries)} case(s), worst estimated mask first, from the {evidence}")
    for entry in shown:
        slices = ", ".join(str(index) for index, _ in entry.slices[:3])
        estimate = f"{entry.measures['estimated_dice_loss']:.2f}" if outline_judged(entry.measures) else "n/a "
        print(f"  {entry.rank:>3}. {entry.case_id:<28} attention {entry.attention:.3f}  "
              f"est. 1-Dice {estimate}  {entry.status:<20}"
              f" {entry.revision:<9} {entry.volume_ml:6.2f} mL  slices {slices or '-'}")
    if not all(outline_judged(entry.measures) for entry in shown):
        print("  (est. 1-Dice n/a: neither the image nor a model can judge that outline; such a case is ranked by how "
              "hard it is to judge)")
    return 0
