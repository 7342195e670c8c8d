"""``lesionseg revisions DATASET CASE [--restore ID] [--diff A B]``: a case's mask revisions.

Without an action, lists the revisions with their provenance and the case's review state. ``--restore``
makes an earlier revision current again (as a new revision: nothing is deleted); ``--diff`` reports the
mL added and removed and the Dice between two revisions; ``--import`` stores a mask edited elsewhere (e.g.
saved from Slicer) as a new revision; ``--review`` marks the case reviewed or flagged, with an easy /
medium / hard ``--rating`` and a ``--comment``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lesionseg.errors import ParameterError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "revisions", help="list, compare, restore and review a case's mask revisions",
        description="List a case's mask revisions, compare two (--diff), make one current again (--restore), "
                    "import an edited mask (--import) or mark the case reviewed/flagged (--review).",
    )
    parser.add_argument("dataset", type=Path, help="dataset folder or CSV manifest")
    parser.add_argument("case", help="case id")
    parser.add_argument("--revisions", type=Path, metavar="DIR",
                        help="revisions kept in DIR/<case>/ (read-only datasets)")
    actions = parser.add_mutually_exclusive_group()
    actions.add_argument("--restore", metavar="ID", help="make revision ID (or original) current again")
    actions.add_argument("--diff", nargs=2, metavar=("A", "B"), help="compare revisions A and B")
    actions.add_argument("--import", dest="import_mask", type=Path, metavar="FILE",
                         help="store FILE (a mask on the case's grid) as a new revision")
    actions.add_argument("--review", choices=("reviewed", "flagged"), help="mark the case reviewed or flagged")
    parser.add_argument("--rating", choices=("easy", "medium", "hard"), help="with --review: the case's difficulty")
    parser.add_argument("--comment", help="a note stored with the revision or the review mark")
    parser.add_argument("--author", help="who did it")
    parser.add_argument("--from", dest="source", default="latest",
                        help="with --import: the revision the edit started from (default latest)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def _print(args, data: dict, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def run(args: argparse.Namespace) -> int:
    from lesionseg.refine.ratings import add_mark, current_state, read_marks
    from lesionseg.refine.session import open_case

    if args.rating and not args.review:
        raise ParameterError("--rating goes with --review reviewed|flagged.")
    session = open_case(args.dataset, args.case, revisions_dir=args.revisions)
    store = session.store
    if args.restore:
        revision = store.restore(args.restore, author=args.author, comment=args.comment)
        _print(args, revision.__dict__, f"case {args.case}: {revision.id} restores {revision.source} "
                                        f"({revision.volume_ml:.2f} mL)")
        return 0
    if args.diff:
        from lesionseg.refine.revision_diff import diff_revisions

        difference = diff_revisions(store, *args.diff)
        _print(args, difference.__dict__, f"case {args.case}: {difference.describe()}")
        return 0
    if args.import_mask:
        from lesionseg.io import read_mask

        source = store.resolve(args.source) if store.ids() else None
        mask = read_mask(args.import_mask, reference=store.reference().reference_image() if store.reference() else None)
        revision = store.add(mask, tool="import", source=source, parameters={"file": str(args.import_mask)},
                             author=args.author, comment=args.comment, mask_name=str(args.import_mask))
        _print(args, revision.__dict__, f"case {args.case}: {revision.id} imported from {args.import_mask} "
                                        f"({revision.volume_ml:.2f} mL)")
        return 0
    if args.review:
        revision = store.resolve("latest") if store.ids() else None
        mark = add_mark(store.folder, args.case, args.review, rating=args.rating, comment=args.comment,
                        author=args.author, revision=revision)
        _print(args, mark.__dict__, f"case {args.case}: marked {mark.status}"
                                    + (f", rated {mark.rating}" if mark.rating else "") + f" ({revision})")
        return 0
    revisions = store.revisions()
    state = current_state(read_marks(store.folder))
    if args.json:
        print(json.dumps({"case_id": args.case, "folder": str(store.folder), "original": str(store.original),
                          "revisions": [r.__dict__ for r in revisions], "review": state}, indent=2, default=str))
        return 0
    print(f"case {args.case}: {len(revisions)} revision(s) in {store.folder}; {state['status']}"
          + (f", rated {state['rating']}" if state["rating"] else ""))
    if store.original is not None:
        print(f"  {'original':<10} the dataset's mask {store.original}")
    for revision in revisions:
        who = f" by {revision.author}" if revision.author else ""
        note = f"  \"{revision.comment}\"" if revision.comment else ""
        print(f"  {revision.id:<10} {revision.created}  {revision.tool:<12} from {revision.source or '-':<10}"
              f"{revision.volume_ml:8.2f} mL{who}{note}")
    return 0
