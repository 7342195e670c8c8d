"""Benchmark: held-out cases on real brain anatomy (the MNI152 template), not on our phantom.

The product is judged on anatomy nobody on the team sees. This is the nearest we can get here: cases drawn
by :mod:`template_cohort` on the ICBM 2009a template's grey/white-matter maps with a lesion and acquisition
model that shares no code with :mod:`lesionseg.synth` (needs the ``[bench]`` extra: nilearn, whose wheel holds the
maps). Two kinds of rows:

- ``--bundle NAME=PATH`` scores a bundle as it is (``starter`` for the shipped starter; e.g. a model that
  ``bench_budget.py`` fine-tuned on phantom cases): does what was learnt on the phantom carry over?
- ``--arm NAME=OPTIONS`` trains on ``--train-cases`` template cases (other seed) with ``lesionseg train
  --minutes M OPTIONS`` and scores the result: the user's setting, a few of their own scans.

Printed per row as ``bench_budget.py`` prints: per-case Dice and lesion-wise F1 (means), false and missed
lesions per case, the volume ratio of every lesion over 10 mL. ``--log FILE`` appends JSON lines.
``--modality ct`` does the same with non-contrast CT heads drawn on the template
(:func:`template_cohort.make_template_ct_case`: a skull around its brain, hypodense lesions 2-8 HU, 5 mm slices,
noise 3-6 HU), in their own folders; ``starter`` is then the CT starter; ``--ct-lesion-hu`` and
``--ct-noise-correlation`` draw the same held-out heads with other lesion depths or white noise; ``--ct-asymmetry MM``
draws held-out and training heads whose hemispheres differ (folders ``*-ct-asym-MM``), and ``--prepare-options``
prepares the training heads otherwise (e.g. ``--mirror-difference``, in a folder of its own).
``--held-out-contrast LOW,HIGH`` draws the same FLAIR held-out cases with another per-case lesion contrast
(fraction over the tissue; default 0.3,1.5), in their own folder: e.g. 1.5,3.0 for very bright lesions (2.5-4
times their tissue).

Run: ``.venv/bin/python benchmarks/bench_template_anatomy.py --work W --bundle starter=starter --arm
starter= --arm scratch=--from-scratch --minutes 15 --log benchmarks/results/template-anatomy.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from bench_budget import evaluate, lesion, prepare_once, summary
from template_cohort import (CT_LESION_HU, CT_NOISE_CORRELATION_PX, DEFAULT_LESION_CONTRAST, load_template,
                             write_template_cohort)

from lesionseg.data import discover
from lesionseg.starter import starter_bundle_path

TRAIN_SEED, HELD_OUT_SEED = 8100, 8200


def _short(path: str | None) -> str | None:
    """The bundle as logged: its run folder and file name, never this machine's absolute path."""
    return None if path is None else path if path == "starter" else "/".join(Path(path).parts[-2:])


def _number_range(text: str) -> tuple[float, float]:
    """``LOW,HIGH`` as two floats with 0 <= LOW <= HIGH (argparse type; argparse names the option in its error)."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants LOW,HIGH (two numbers), not {text!r}") from None
    if not 0.0 <= low <= high:
        raise argparse.ArgumentTypeError(f"wants 0 <= LOW <= HIGH, not {text!r}")
    return low, high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="work folder (cohorts and prepared data are kept)")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--train-cases", type=int, default=7)
    parser.add_argument("--held-out", type=int, default=20)
    parser.add_argument("--bundle", action="append", default=[], metavar="NAME=PATH",
                        help="score this bundle untrained (PATH 'starter': the shipped starter)")
    parser.add_argument("--arm", action="append", default=[], metavar="NAME=OPTIONS")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--log", type=Path, help="append each row's results to this JSON-lines file")
    parser.add_argument("--modality", choices=("flair", "ct"), default="flair")
    parser.add_argument("--ct-noise-correlation", type=float, default=CT_NOISE_CORRELATION_PX, metavar="PX",
                        help="CT held-out noise correlation in pixels (0: white noise; default %(default)s)")
    parser.add_argument("--ct-lesion-hu", type=_number_range, default=CT_LESION_HU, metavar="LOW,HIGH",
                        help="CT held-out lesion depth below the tissue in HU (default 2,8)")
    parser.add_argument("--ct-asymmetry", type=float, default=0.0, metavar="MM",
                        help="CT heads (held-out and training) warped further at the scale of gyri, this standard "
                             "deviation in mm, so that the hemispheres differ (default 0: the symmetric template)")
    parser.add_argument("--prepare-options", default="", help="extra options of lesionseg prepare for the arms")
    parser.add_argument("--held-out-contrast", type=_number_range, default=DEFAULT_LESION_CONTRAST,
                        metavar="LOW,HIGH", help="per-case lesion contrast of the held-out cases (default 0.3,1.5)")
    args = parser.parse_args()
    work = args.work
    template = load_template()
    contrast = tuple(args.held_out_contrast)
    suffix = ""
    if args.modality == "ct":
        suffix = "-ct" + (f"-asym-{args.ct_asymmetry:g}" if args.ct_asymmetry > 0 else "")
        depth = tuple(args.ct_lesion_hu)
        held_out_folder = work / ("heldout" + suffix
                                  + ("" if args.ct_noise_correlation == CT_NOISE_CORRELATION_PX
                                     else f"-noise-{args.ct_noise_correlation:g}px")
                                  + ("" if depth == CT_LESION_HU else f"-hu-{depth[0]:g}-{depth[1]:g}"))
    else:
        held_out_folder = work / ("heldout" if contrast == DEFAULT_LESION_CONTRAST
                                  else f"heldout-contrast-{contrast[0]:g}-{contrast[1]:g}")
    write_template_cohort(held_out_folder, args.held_out, HELD_OUT_SEED, template, contrast, args.modality,
                          args.ct_noise_correlation, tuple(args.ct_lesion_hu), args.ct_asymmetry)
    runs = [(name, path, None, "0") for name, _, path in (b.partition("=") for b in args.bundle)]
    # one prepared folder per set of prepare options (the default's keeps its name)
    prepared = work / ("prepared" + suffix + ("-" + "".join(c if c.isalnum() else "_" for c in args.prepare_options)
                                              if args.prepare_options else ""))
    if args.arm:
        write_template_cohort(work / ("train" + suffix), args.train_cases, TRAIN_SEED, template,
                              modality=args.modality, ct_asymmetry_mm=args.ct_asymmetry)
        prepare_once(work / ("train" + suffix), prepared, args.prepare_options)
        runs += [(name, None, options, seed) for name, _, options in (a.partition("=") for a in args.arm)
                 for seed in args.seeds.split(",")]
    held_out = discover(held_out_folder)
    for name, path, options, seed in runs:
        seconds = 0.0
        if path is not None:
            bundle = starter_bundle_path(args.modality) if path == "starter" else Path(path)
        else:
            run = work / f"run-{name}-{seed}"
            seconds = lesion(["train", str(prepared), str(run), "--minutes", f"{args.minutes:g}",
                              "--seed", seed, "--progress", "none", *shlex.split(options)])
            bundle = run / "model.lsb"
        rows = evaluate(bundle, held_out, args.modality)
        held = summary(rows)
        print(f"{name:>10} seed {seed}: {seconds / 60:.1f} min; template held-out Dice {held['dice']:.3f}, lesion F1 "
              f"{held['f1']:.3f}, {held['fp_per_case']:.1f} false and {held['fn_per_case']:.1f} missed lesions per "
              f"case; lesions > 10 mL: {len(held['large_ratios'])}, ratios "
              + " ".join(f"{r:.2f}" for r in held["large_ratios"]), flush=True)
        if args.log:
            args.log.parent.mkdir(parents=True, exist_ok=True)
            with args.log.open("a", encoding="utf-8") as handle:
                ct = args.modality == "ct"
                handle.write(json.dumps({"row": name, "bundle": _short(path), "options": options,
                                         "modality": args.modality,
                                         "held_out_contrast": None if ct else list(contrast),
                                         "ct_noise_correlation_px": args.ct_noise_correlation if ct else None,
                                         "ct_lesion_hu": list(args.ct_lesion_hu) if ct else None,
                                         "ct_asymmetry_mm": args.ct_asymmetry if ct else None,
                                         "prepare_options": args.prepare_options,
                                         "seed": int(seed), "minutes_budget": None if path else args.minutes,
                                         "minutes_wall": seconds / 60, "held_out": held, "cases": rows}) + "\n")


if __name__ == "__main__":
    main()
