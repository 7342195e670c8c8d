"""Make the starter model shipped in ``lesionseg/starter/starter.lsb``, and its log ``starter.log``.

The starter is a FLAIR-like single-channel 2.5D model with the ``cpu`` preset's network, slice size,
neighbouring slices and normalisation, so that ``lesionseg train`` fine-tunes it by default on a user's
FLAIR scans. It is trained from scratch on heavily varied synthetic cohorts
(:func:`lesionseg.synth.variety.varied_case_options`, recipe ``starter``): slice thickness 1-6 mm, oblique
storage, head tilt, scans with and without skull, random tissue contrasts, look-alike hyperintensities and
old infarcts, lesion patterns from one faint territorial infarct to showers of small embolic ones, lesion
ages 0-1. Most cases are FLAIR; some are DWI-, T1- and CT-like (given to the model as its one channel, so
it also meets other contrasts). Everything depends on ``--seed`` alone; the log records the cohorts, the
settings and each epoch.

A later stage continues an earlier starter (``--init``): it trains the earlier weights further on the
earlier cohorts and new ones (``--cohort-seeds``, one set of cohorts per seed), appends to the log and
keeps every stage in the manifest's ``provenance.made_by.stages``. The shipped starter was made in two
stages (the log gives both):

1. ``make_starter.py --work W --minutes 60 --seed 20261204`` (from scratch, 98 cases);
2. ``make_starter.py --work W --minutes 45 --seed 20261205 --cohort-seeds 20261204,20261205
   --init lesionseg/starter/starter.lsb --threads 1`` (196 cases; the masks resampled keeping each lesion's
   volume, which stage 1's masks were not).

``--modality ct`` makes the CT starter instead (``lesionseg/starter/ct_starter.lsb`` and ``ct_starter.log``): one
cohort of the ``ct_starter`` recipe (lesions 2-15 HU below their tissue, noise sigma 2-8 HU, 1-5 mm slices,
oblique storage and gantry tilt, the skull base, beam hardening, thick skulls, old infarcts as look-alikes),
prepared as a user's CT is by default (the brain window), so that ``lesionseg train`` fine-tunes it on CT scans.
The shipped CT starter was made in two stages (the log gives both):

1. ``make_starter.py --work W --minutes 60 --seed 20261206 --modality ct`` (100 cases; its planned 135 epochs ended
   after 52 of the 60 minutes; validation Dice 0.320 on 10 held-back cases of the recipe, whose faintest lesions are
   2 HU below their tissue; prepared without anti-aliasing);
2. ``make_starter.py --work W --minutes 60 --seed 20261207 --cohort-seeds 20261206,20261207 --modality ct
   --init lesionseg/starter/ct_starter.lsb`` (200 cases, prepared with anti-aliasing as the ``cpu`` preset now
   prepares; 75 epochs in 58 minutes; validation Dice 0.496 on 20 held-back cases, some of them seen by stage 1).

Run (about ``--minutes`` plus a quarter of an hour on a 2-core CPU):
``.venv/bin/python scripts/make_starter.py --work /tmp/starter [--minutes 90] [--seed 20261204] [--modality ct]``.
A trial that should not replace the shipped starter writes elsewhere (``--output FOLDER``: the bundle and its log);
``--size PX`` prepares the slices at another size than the preset's (a trial; ``lesionseg train`` fine-tunes such a
starter only when named with ``--finetune`` on data prepared at that size). ``--mirror-difference`` prepares the
cohorts with the mirrored-hemisphere difference planes (an ``--init`` bundle without them is widened, their input
weights starting at zero: :func:`lesionseg.train.finetune.widen_state_dict`). ``--varied-cortex SEEDS`` draws the
cohorts of those seeds with deeper, more varied cortical folding (the case option ``varied_cortex``; a trial).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import shutil
import time
from pathlib import Path

from lesionseg import __version__
from lesionseg.bundle import read_manifest, save_bundle
from lesionseg.bundle.archive import load_state_dicts
from lesionseg.preprocess import PrepareConfig, prepare_dataset
from lesionseg.starter import STARTERS
from lesionseg.synth import write_cohort
from lesionseg.synth.variety import varied_case_options
from lesionseg.train import TrainConfig, train_run
from lesionseg.train.presets import PRESETS

#: per starter: modality -> number of cases (the FLAIR starter's one input channel is called flair whatever the
#: contrast), the synthetic recipe and the channel name the model is trained on
COHORTS = {"flair": {"flair": 64, "dwi": 14, "t1": 10, "ct": 10}, "ct": {"ct": 100}}
RECIPE = {"flair": "starter", "ct": "ct_starter"}
OUTPUT = Path(__file__).resolve().parents[1] / "lesionseg" / "starter"


class Log:
    """Writes lines to the console and to the log file."""

    def __init__(self, path: Path, append: bool = False) -> None:
        self.path = path
        self.started = time.monotonic()
        if not append:
            path.write_text("", encoding="utf-8")

    def __call__(self, text: str) -> None:
        line = f"[{(time.monotonic() - self.started) / 60:6.1f} min] {text}"
        print(line, flush=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def cohort_seed(seed: int, number: int) -> int:
    """The seed of the ``number``-th modality's cohort drawn for ``seed``."""
    return seed + 1000 * (number + 1)


def write_cohorts(work: Path, seeds: list[int], workers: int, log: Log, scale: float = 1.0,
                  starter: str = "flair", varied_cortex_seeds: frozenset[int] = frozenset()) -> Path:
    """Per seed, one synthetic cohort per modality of ``COHORTS[starter]``; a CSV manifest that gives every image as
    the starter's channel (``flair`` or ``ct``). The cohorts of ``varied_cortex_seeds`` are drawn with the case
    option ``varied_cortex`` (deeper, more varied cortical folding than the recipe's).

    The first seed's cohorts are in ``work/cohorts/<modality>``, a later seed's in
    ``work/cohorts/<seed>/<modality>``; case ids carry the modality and, after the first seed, the seed.
    """
    rows = []
    for position, seed in enumerate(seeds):
        rows += _cohort_rows(work, seed, workers, log, scale, "" if position == 0 else f"{seed}-",
                             work / "cohorts" if position == 0 else work / "cohorts" / str(seed), starter,
                             seed in varied_cortex_seeds)
    manifest = work / "cohorts" / "starter.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["case_id", "patient_id", starter, "mask", "brain_mask"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def _cohort_rows(work: Path, seed: int, workers: int, log: Log, scale: float, prefix: str, folder: Path,
                 starter: str, varied_cortex: bool = False) -> list[dict]:
    rows = []
    recipe = RECIPE[starter]
    extra = {"varied_cortex": True} if varied_cortex else {}
    for number, (modality, count) in enumerate(COHORTS[starter].items()):
        count = max(1, round(count * scale))
        cohort_seed_value = cohort_seed(seed, number)
        root = folder / modality
        if not (root / "dataset_description.json").exists():
            write_cohort(root, count, modalities=(modality,), seed=cohort_seed_value, workers=workers,
                         case_options_fn=lambda index, s=cohort_seed_value: {
                             **varied_case_options(s, index, recipe=recipe), **extra})
        from lesionseg.data import discover
        from lesionseg.synth.writer import case_files

        for case in discover(root):
            # the phantom's own brain mask: classical brain extraction is for MRI, and CT is given as the channel
            brain = case_files(root, case.case_id, (modality,)).brain_mask
            rows.append({"case_id": f"{modality}-{prefix}{case.case_id}",
                         "patient_id": f"{modality}-{prefix}{case.patient_id}",
                         starter: str(next(iter(case.channels.values()))),  # the cohort's one channel
                         "mask": str(case.mask), "brain_mask": str(brain)})
        log(f"cohort {modality}: {count} cases, seed {cohort_seed_value}, recipe '{recipe}'"
            + (", varied cortical folding" if varied_cortex else ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="work folder (cohorts, prepared data, run)")
    parser.add_argument("--minutes", type=float, default=90.0, help="training time (default 90)")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cases-scale", type=float, default=1.0,
                        help="multiply the cohort sizes (below 1 for a quick trial of the script)")
    parser.add_argument("--cohort-seeds", help="comma-separated seeds of the cohorts (default: --seed)")
    parser.add_argument("--init", type=Path, help="continue from this bundle's weights (a later stage)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--modality", choices=sorted(STARTERS), default="flair",
                        help="which starter: flair (FLAIR-like, shipped as starter.lsb) or ct (ct_starter.lsb)")
    parser.add_argument("--mirror-difference", action="store_true",
                        help="prepare with the mirrored-hemisphere difference planes (a bundle given by --init "
                             "without them is widened, their weights starting at zero)")
    parser.add_argument("--size", type=int, help="slice size in pixels (default: the cpu preset's); a trial at "
                        "another size than the shipped starter's")
    parser.add_argument("--varied-cortex", default="", metavar="SEEDS",
                        help="comma-separated cohort seeds whose heads are drawn with deeper, more varied cortical "
                             "folding (the synthetic case option varied_cortex)")
    parser.add_argument("--train-options", type=json.loads, default={}, metavar="JSON",
                        help="training settings over the cpu preset's for a trial, e.g. "
                             "'{\"loss_kwargs\": {\"batch_dice\": true, \"lambda_blob\": 2.0}}' (recorded in the "
                             "manifest's stage and the log)")
    parser.add_argument("--output", type=Path, default=OUTPUT,
                        help="folder of the bundle and its log (default: the package's starter folder, which a "
                             "trial should not overwrite)")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    seeds = [int(value) for value in args.cohort_seeds.split(",")] if args.cohort_seeds else [args.seed]
    earlier_stages = []
    if args.init is not None:  # the bundle may be the shipped starter, which this run overwrites at its end
        initial = args.work / "init.lsb"
        shutil.copyfile(args.init, initial)
        made_by = read_manifest(initial)["provenance"].get("made_by", {})
        earlier_stages = made_by.get("stages", [{k: v for k, v in made_by.items() if k != "log"}])
    starter = STARTERS[args.modality]
    cohorts = COHORTS[args.modality]
    log = Log(args.output / starter.log, append=args.init is not None)
    preset = PRESETS["cpu"]
    log(f"lesionseg {__version__}, Python {platform.python_version()}, seed {args.seed}, {args.minutes:g} minutes, "
        f"preset '{preset.name}'" + (f", continuing from {args.init.name} (stage {len(earlier_stages) + 1})"
                                    if args.init is not None else ""))
    varied_cortex_seeds = frozenset(int(value) for value in args.varied_cortex.split(",") if value)
    manifest = write_cohorts(args.work, seeds, args.workers, log, args.cases_scale, args.modality, varied_cortex_seeds)
    prepared = args.work / "prepared"
    began = time.monotonic()
    size = {} if args.size is None else {"size": args.size}
    prepare_values = {**preset.prepare_values(), **size}
    prepare = PrepareConfig(channels=[args.modality], seed=args.seed, mirror_difference=args.mirror_difference,
                            **prepare_values)
    summary = prepare_dataset(manifest, prepared, prepare, workers=args.workers)
    log(f"prepared {summary['cases']} cases: {summary['slices']} slices, {summary['lesion_slices']} with lesion "
        f"({time.monotonic() - began:.0f} s; {json.dumps({**preset.prepare, **size})}"
        + (", mirrored-hemisphere differences" if args.mirror_difference else "") + ")")
    values = {**preset.train_values(), "minutes": args.minutes, "seed": args.seed, "fold": 0,
              "folds": min(10, len(seeds) * sum(max(1, round(n * args.cases_scale)) for n in cohorts.values())),
              "starter_if_fits": False, "num_threads": args.threads, **args.train_options}
    if args.init is not None:  # a later stage: the earlier weights, at the preset's own learning rate again
        values.update(finetune_from=str(args.work / "init.lsb"), finetune_lr=values["lr"])
    config = TrainConfig.from_dict(values)
    shown = {k: v for k, v in config.to_dict().items() if v not in (None, [], {})}
    if "finetune_from" in shown:  # the work folder's copy of the earlier stage: no machine path in the log
        shown["finetune_from"] = "the previous stage's starter"
    log(f"training: {json.dumps(shown)}")

    def progress(event: dict) -> None:
        if event.get("event") == "message":
            log(event["message"])
        elif event.get("event") == "epoch":
            validation = f", validation Dice {event['val_dice']:.3f}" if "val_dice" in event else ""
            log(f"epoch {event['epoch'] + 1}/{event['epochs']}: loss {event['loss']:.4f}, "
                f"{event['active_slices']} slices, lr {event['lr']:.2e}{validation}")

    run = args.work / "run"
    result = train_run(prepared, run, config, progress=progress)
    bundle_manifest = read_manifest(result.bundle)
    bundle_manifest["name"] = starter.name
    bundle_manifest["description"] = starter.description
    stage = {"script": "scripts/make_starter.py", "seed": args.seed, "minutes": args.minutes,
             "cohorts": {f"{name}" + ("" if position == 0 else f"-{seed}"):
                         {"cases": count, "seed": cohort_seed(seed, number), "recipe": RECIPE[args.modality],
                          **({"varied_cortex": True} if seed in varied_cortex_seeds else {})}
                         for position, seed in enumerate(seeds)
                         for number, (name, count) in enumerate(cohorts.items())},
             "init": None if args.init is None else "the previous stage's bundle",
             **({"train_options": args.train_options} if args.train_options else {})}

    def shown(name: str) -> str:  # a file written to --output, as the manifest and the log name it
        return f"lesionseg/starter/{name}" if args.output.resolve() == OUTPUT else name

    bundle_manifest["provenance"]["made_by"] = {**stage, "stages": [*earlier_stages, stage],
                                                "log": shown(starter.log)}
    save_bundle(args.output / starter.file, bundle_manifest, load_state_dicts(result.bundle))
    fold = result.results[0]
    log(f"wrote {shown(starter.file)} ({(args.output / starter.file).stat().st_size / 1e6:.1f} MB): "
        f"{fold.epochs_run} epochs, {fold.iterations} steps, validation Dice {fold.validation.get('val_dice', 0):.3f}, "
        f"lesion F1 {fold.validation.get('val_lesion_f1', 0):.3f}")


if __name__ == "__main__":
    main()
