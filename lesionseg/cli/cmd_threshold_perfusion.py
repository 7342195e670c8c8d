"""``lesionseg threshold-perfusion DATASET -o OUT``: ischaemic core and penumbra by the clinical threshold rule.

The baseline a perfusion network is measured against (:mod:`lesionseg.infer.perfusion_threshold`: core =
relative CBF < 30 % of the contralateral tissue's median, penumbra = Tmax > 6 s minus core), run on every case
of a dataset that holds Tmax, CBF and CBV maps with their units in JSON sidecars
(:mod:`lesionseg.infer.perfusion_cases`). Writes ``OUT/<case_id>.nii.gz`` (0 background, 1 core, 2 penumbra) with
its label table beside it (so ``lesionseg evaluate OUT DATASET`` scores each class), and ``OUT/summary.csv``
(volumes in mL, the reference CBF, the affected side, or why a case failed). A failed case does not stop
the others; the exit code is then 3 (2 when every case failed).
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

SUMMARY_COLUMNS = ("case_id", "status", "core_ml", "penumbra_ml", "reference_cbf", "affected_side", "error")


def register(subparsers: argparse._SubParsersAction) -> None:
    from lesionseg.infer.perfusion_threshold import CORE_RELATIVE_CBF, MIN_TISSUE_CBV, PENUMBRA_TMAX_S
    from lesionseg.infer.postprocess import DEFAULT_MIN_LESION_MM3

    parser = subparsers.add_parser(
        "threshold-perfusion", help="core and penumbra by the clinical thresholds on perfusion maps (the baseline)",
        description="Core = relative CBF below a fraction of the contralateral tissue's median, penumbra = Tmax above "
                    "a number of seconds minus core, on every case of DATASET (Tmax, CBF and CBV maps with units).")
    parser.add_argument("dataset", type=Path, help="dataset folder (BIDS, nnU-Net or a manifest CSV)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument("--core-rcbf", type=float, default=CORE_RELATIVE_CBF,
                        help=f"core: CBF below this fraction of the contralateral median (default {CORE_RELATIVE_CBF})")
    parser.add_argument("--penumbra-tmax", type=float, default=PENUMBRA_TMAX_S,
                        help=f"penumbra: Tmax above this many seconds, minus core (default {PENUMBRA_TMAX_S:g})")
    parser.add_argument("--min-cbv", type=float, default=MIN_TISSUE_CBV,
                        help=f"tissue: CBV at least this (mL/100 g; default {MIN_TISSUE_CBV})")
    parser.add_argument("--min-lesion-mm3", type=float, default=DEFAULT_MIN_LESION_MM3,
                        help=f"drop smaller parts of either class (default {DEFAULT_MIN_LESION_MM3:g})")
    parser.set_defaults(func=run)


def _settings(args: argparse.Namespace):
    import math

    from lesionseg.errors import ParameterError
    from lesionseg.infer.perfusion_cases import ThresholdSettings

    if not (0.0 < args.core_rcbf < 1.0):
        raise ParameterError(f"--core-rcbf must be a fraction between 0 and 1, not {args.core_rcbf!r}.")
    for flag, value in (("--penumbra-tmax", args.penumbra_tmax), ("--min-cbv", args.min_cbv),
                        ("--min-lesion-mm3", args.min_lesion_mm3)):
        if not (math.isfinite(value) and value >= 0):
            raise ParameterError(f"{flag} must be a number of 0 or more, not {value!r}.")
    return ThresholdSettings(args.core_rcbf, args.penumbra_tmax, args.min_cbv, args.min_lesion_mm3)


def run(args: argparse.Namespace) -> int:
    from lesionseg.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_PARTIAL
    from lesionseg.data import discover
    from lesionseg.data.label_table import write_label_table
    from lesionseg.data.validation import lesion_volume_ml
    from lesionseg.errors import LesionSegError
    from lesionseg.infer.perfusion_cases import threshold_case
    from lesionseg.infer.perfusion_threshold import CORE_LABEL, PENUMBRA_LABEL
    from lesionseg.io import write_image
    from lesionseg.io.atomic import write_text_atomic
    from lesionseg.synth.perfusion import fate_label_table

    settings = _settings(args)
    cases = discover(args.dataset, validate=False)  # the masks, if any, are not read: each map is checked as it is read
    args.output.mkdir(parents=True, exist_ok=True)
    table = fate_label_table()
    rows = []
    for case in cases:
        try:
            result = threshold_case(case, settings)
        except LesionSegError as error:
            print(f"{case.case_id}: {error}", flush=True)
            rows.append({"case_id": case.case_id, "status": "failed", "error": str(error)})
            continue
        path = write_image(result.labels, args.output / f"{case.case_id}.nii.gz")
        write_label_table(path, table)
        core_ml = lesion_volume_ml(result.labels == CORE_LABEL)
        penumbra_ml = lesion_volume_ml(result.labels == PENUMBRA_LABEL)
        print(f"{case.case_id}: core {core_ml:.1f} mL, penumbra {penumbra_ml:.1f} mL "
              f"({result.affected_side} hemisphere; reference CBF {result.reference_cbf:.1f} mL/100 g/min)", flush=True)
        rows.append({"case_id": case.case_id, "status": "ok", "core_ml": f"{core_ml:.3f}",
                     "penumbra_ml": f"{penumbra_ml:.3f}", "reference_cbf": f"{result.reference_cbf:.3f}",
                     "affected_side": result.affected_side, "error": ""})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: row.get(key, "") for key in SUMMARY_COLUMNS} for row in rows)
    write_text_atomic(args.output / "summary.csv", buffer.getvalue())
    failed = sum(row["status"] == "failed" for row in rows)
    if failed:
        print(f"{failed} of {len(rows)} case(s) failed; see {args.output / 'summary.csv'}", flush=True)
        return EXIT_BAD_INPUT if failed == len(rows) else EXIT_PARTIAL
    return EXIT_OK
