"""``lesionseg refine TOOL DATASET CASE [--from REVISION]``: refine a case's lesion mask into a new revision.

TOOL is ``intensity`` (boundary from the image's intensities), ``grow`` (GrowCut from seeds), ``cleanup``
(islands, holes, smoothing), ``fill-between`` (interpolate between drawn slices) or ``transfer`` (carry
a mask from another scan of the same patient). The result is stored as a new revision with its provenance
(see ``lesionseg revisions``); nothing is overwritten, and a tool that changes nothing writes nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lesionseg.errors import ParameterError

TOOL_NAMES = ("intensity", "grow", "cleanup", "fill-between", "transfer")
#: option destination -> the tools it applies to
OPTION_TOOLS = {
    "band_mm": ("intensity",),
    "context_mm": ("intensity", "grow"),
    "smoothing_mm": ("intensity", "grow", "cleanup"),
    "max_lookalike": ("intensity", "grow"),
    "polarity": ("intensity", "grow"),
    "erosion_mm": ("grow",),
    "margin_mm": ("grow",),
    "lesion_point": ("grow",),
    "background_point": ("grow",),
    "seed_radius_mm": ("grow",),
    "seeds": ("grow",),
    "min_island_mm3": ("cleanup",),
    "no_fill_holes": ("cleanup",),
    "keep_largest": ("cleanup",),
    "axis": ("fill-between",),
    "source_case": ("transfer",),
    "source_revision": ("transfer",),
    "source_channel": ("transfer",),
    "source_image": ("transfer",),
    "source_mask": ("transfer",),
    "affine": ("transfer",),
    "deformable": ("transfer",),
    "registration_seed": ("transfer",),
    "backend": ("grow", "cleanup", "fill-between"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "refine", help="refine a case's lesion mask with a tool; the result is a new revision",
        description="Apply a refinement tool to a revision of a case's mask and store the result as a new "
                    "revision (derivatives/lesionseg/revisions/<case>/ in the dataset, or --revisions DIR). "
                    "Tools: intensity, grow, cleanup, fill-between, transfer.",
    )
    parser.add_argument("tool", choices=TOOL_NAMES, help="the refinement tool")
    parser.add_argument("dataset", type=Path, help="dataset folder or CSV manifest")
    parser.add_argument("case", help="case id (as 'lesionseg cases' lists it)")
    parser.add_argument("--from", dest="source", default="latest",
                        help="revision to start from: latest (default), original or an id such as rev-0002")
    parser.add_argument("--revisions", type=Path, metavar="DIR",
                        help="keep revisions in DIR/<case>/ instead of inside the dataset (read-only datasets)")
    parser.add_argument("--channel", help="channel to refine on (default: the one the mask was drawn on)")
    parser.add_argument("--author", help="who made this revision")
    parser.add_argument("--comment", help="a note stored with the revision")
    parser.add_argument("--json", action="store_true", help="print the new revision's entry as JSON")
    group = parser.add_argument_group("intensity and grow")
    group.add_argument("--band-mm", type=float, help="intensity: re-decided band around the boundary (default 4)")
    group.add_argument("--context-mm", type=float, help="healthy-tissue shell thickness (default 10)")
    group.add_argument("--smoothing-mm", type=float,
                       help="intensity/grow: Gaussian sigma in mm (default 0.7 on MRI, 2 on CT); cleanup: median "
                            "kernel size in mm (default 0: none)")
    group.add_argument("--max-lookalike", type=float,
                       help="leave the mask unchanged when more than this fraction of the healthy tissue looks "
                            "like lesion (default 0.05)")
    group.add_argument("--polarity", choices=("auto", "bright", "dark"),
                       help="lesion brighter or darker than tissue (default: from the channel, FLAIR bright, CT dark)")
    group = parser.add_argument_group("grow")
    group.add_argument("--erosion-mm", type=float, help="lesion seeds lie deeper than this in the mask (default 4)")
    group.add_argument("--margin-mm", type=float, help="background seeds lie farther than this outside (default 4)")
    group.add_argument("--lesion-point", action="append", metavar="R,A,S",
                       help="a lesion seed point in RAS mm (as Slicer shows it); repeatable; write "
                            "--lesion-point=-12,30,4 when the first number is negative")
    group.add_argument("--background-point", action="append", metavar="R,A,S",
                       help="a background seed point in RAS mm; repeatable")
    group.add_argument("--seed-radius-mm", type=float, help="radius of the ball drawn at each point (default 2)")
    group.add_argument("--seeds", type=Path, help="seed label image on the case's grid: 1 lesion, 2 background")
    group = parser.add_argument_group("cleanup")
    group.add_argument("--min-island-mm3", type=float, help="remove islands smaller than this (default 20 mm³)")
    group.add_argument("--no-fill-holes", action="store_true", help="do not fill holes")
    group.add_argument("--keep-largest", type=int, help="keep only the N largest components (default: all)")
    group = parser.add_argument_group("fill-between")
    group.add_argument("--axis", choices=("auto", "z", "y", "x"), help="slice axis (default auto)")
    group = parser.add_argument_group("transfer")
    group.add_argument("--source-case", help="another case of the same patient in DATASET to carry the mask from")
    group.add_argument("--source-revision", help="its revision to carry (default latest)")
    group.add_argument("--source-channel", help="its channel the mask was drawn on (default: its mask's channel)")
    group.add_argument("--source-image", type=Path, help="or: the scan the mask was drawn on (file)")
    group.add_argument("--source-mask", type=Path, help="and the mask drawn on it (file)")
    group.add_argument("--affine", action="store_true",
                       help="add an affine stage after the rigid one (scanner scaling; default rigid only)")
    group.add_argument("--deformable", action="store_true", help="add a B-spline stage")
    group.add_argument("--registration-seed", type=int, help="registration sampling seed (default 0)")
    parser.add_argument("--backend", choices=("auto", "slicer", "sitk"),
                        help="Slicer's algorithms (slicer-core) or the SimpleITK/scikit-image ones (default auto)")
    parser.set_defaults(func=run)


def _check_options(args: argparse.Namespace) -> None:
    for name, tools in OPTION_TOOLS.items():
        value = getattr(args, name)
        if value not in (None, False) and args.tool not in tools:
            option = "--" + name.replace("_", "-")
            owners = f"the {tools[0]} tool" if len(tools) == 1 else f"the {', '.join(tools[:-1])} and {tools[-1]} tools"
            raise ParameterError(f"{option} is an option of {owners}, not of {args.tool}.")


def _parameters(args: argparse.Namespace, session) -> dict:
    from lesionseg.refine._checks import expected_polarity

    names = {"intensity": ("band_mm", "context_mm", "smoothing_mm", "max_lookalike", "polarity"),
             "grow": ("erosion_mm", "margin_mm", "context_mm", "smoothing_mm", "max_lookalike", "polarity", "backend"),
             "cleanup": ("min_island_mm3", "smoothing_mm", "keep_largest", "backend"),
             "fill-between": ("axis", "backend"), "transfer": ()}[args.tool]
    parameters = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if "polarity" in names and "polarity" not in parameters:
        parameters["polarity"] = expected_polarity(session.channel)
    if args.tool == "cleanup" and args.no_fill_holes:
        parameters["fill_holes"] = False
    if args.tool == "transfer":
        parameters.update(stages=("rigid", "affine") if args.affine else ("rigid",), deformable=args.deformable,
                          seed=args.registration_seed or 0)
    return parameters


def _inputs(args: argparse.Namespace, session) -> dict:
    from lesionseg.io import read_image, read_mask
    from lesionseg.refine.seeds import parse_point, points_to_mask, split_seed_labels

    if args.tool == "grow":
        image = session.image()
        lesion = points_to_mask([parse_point(p, "--lesion-point") for p in args.lesion_point or []], image,
                                args.seed_radius_mm if args.seed_radius_mm is not None else 2.0, "the lesion seed")
        background = points_to_mask([parse_point(p, "--background-point") for p in args.background_point or []],
                                    image, args.seed_radius_mm if args.seed_radius_mm is not None else 2.0,
                                    "the background seed")
        if args.seeds is not None:
            from_file = split_seed_labels(read_image(args.seeds), image, str(args.seeds))
            lesion = _union(lesion, from_file[0])
            background = _union(background, from_file[1])
        return {"lesion_seeds": lesion, "background_seeds": background}
    if args.tool == "transfer":
        return _transfer_inputs(args, session, read_image, read_mask)
    return {}


def _union(first, second):
    """The union of two optional seed masks."""
    if first is None or second is None:
        return first if second is None else second
    return (first != 0) | (second != 0)


def _transfer_inputs(args, session, read_image, read_mask) -> dict:
    from lesionseg.refine.session import open_case

    if (args.source_case is None) == (args.source_image is None and args.source_mask is None):
        raise ParameterError("transfer needs either --source-case CASE or --source-image FILE with --source-mask FILE.")
    if args.source_case is not None:
        if args.source_image is not None or args.source_mask is not None:
            raise ParameterError("give --source-case or --source-image/--source-mask, not both.")
        source = open_case(args.dataset, args.source_case, revisions_dir=args.revisions, channel=args.source_channel)
        revision = source.store.resolve(args.source_revision or "latest")
        return {"source_image": source.image(), "source_mask": source.store.read(revision),
                "source_description": f"{args.source_case}:{revision} on {source.channel}"}
    if args.source_image is None or args.source_mask is None:
        raise ParameterError("--source-image and --source-mask go together.")
    image = read_image(args.source_image)
    return {"source_image": image, "source_mask": read_mask(args.source_mask, reference=image),
            "source_description": f"{args.source_mask} on {args.source_image}"}


def run(args: argparse.Namespace) -> int:
    from lesionseg.refine.session import apply_tool, open_case

    _check_options(args)
    session = open_case(args.dataset, args.case, revisions_dir=args.revisions, channel=args.channel)
    refinement = apply_tool(session, args.tool, source=args.source, parameters=_parameters(args, session),
                            inputs=_inputs(args, session), author=args.author, comment=args.comment)
    revision = refinement.revision
    if args.json:
        print(json.dumps({"revision": None if revision is None else revision.__dict__, "source": refinement.source,
                          "difference": None if refinement.difference is None else refinement.difference.__dict__,
                          "details": {k: v for k, v in refinement.details.items() if not k.startswith("_")}},
                         indent=2, default=str))
        return 0
    if revision is None:
        reason = refinement.details.get("reason", "the result equals the source")
        print(f"case {args.case}: {args.tool} changed nothing ({reason}); no revision written")
        return 0
    line = f"case {args.case}: {revision.id} ({args.tool}"
    line += f", from {refinement.source})" if refinement.source else ")"
    if refinement.difference is not None:
        diff = refinement.difference
        line += f": +{diff.added_ml:.2f} mL, -{diff.removed_ml:.2f} mL, Dice {diff.dice:.3f} with {diff.first}"
    print(f"{line}; {revision.volume_ml:.2f} mL, written to {session.store.folder}")
    return 0
