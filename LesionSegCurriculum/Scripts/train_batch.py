"""Prepare a dataset and train a curriculum model, without a window.

Inside 3D Slicer (Slicer's Python, the extension's packages)::

    Slicer --no-splash --no-main-window --python-script LesionSegCurriculum/Scripts/train_batch.py \\
        [--] --dataset DATASET --prepared PREPARED --run RUN [--preset cpu] [--minutes 15 | --epochs 200] ...

or with any Python where lesionseg is installed: ``python LesionSegCurriculum/Scripts/train_batch.py ...``.

It runs the module's logic blocking: ``lesionseg prepare DATASET PREPARED`` when ``--dataset`` is given
and PREPARED holds no prepared dataset yet, then ``lesionseg train PREPARED RUN`` with the curriculum
options, each in a background process with one progress line per step (per epoch while training). What is
not given comes from the preset (``--preset``, the same for both steps; ``auto`` by default: gpu with a GPU,
else cpu, which trains for 15 minutes and fine-tunes the shipped starter model when it fits). The bundle is
RUN/model.lsb. ``--resume`` continues a stopped run. The exit code is that of the first
command that did not succeed (0 done, 1 internal error, 2 bad input, 130 cancelled); when ``prepare`` could
not prepare some cases (listed in its log and PREPARED/prepare.json) the others are trained on and the exit
code is 3.
"""

import argparse
import json
import sys
from pathlib import Path

# The module folder (source tree) or Slicer's scripted-modules folder (installed extension) holds the Libs.
MODULE_FOLDER = Path(globals().get("__file__") or sys.argv[0]).resolve().parent.parent
if str(MODULE_FOLDER) not in sys.path:
    sys.path.insert(0, str(MODULE_FOLDER))

from LesionSegCurriculumLib import (  # noqa: E402
    CURRICULA,
    DEVICES,
    LOSSES,
    NETWORKS,
    PRESET_NAMES,
    CurriculumLogic,
    PrepareParameters,
    TrainParameters,
)
from LesionSegInferenceLib import EXIT_BAD_INPUT, EXIT_OK, EXIT_PARTIAL  # noqa: E402
from LesionSegInferenceLib.BatchScript import (  # noqa: E402
    ProgressPrinter,
    exit_code,
    log_printer,
    missing_dependencies,
    script_arguments,
)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_batch.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", help="dataset folder or CSV manifest to prepare (skip when PREPARED exists)")
    parser.add_argument("--prepared", required=True, help="prepared dataset folder (written by the prepare step)")
    parser.add_argument("--run", required=True, help="run folder; the bundle is RUN/model.lsb")
    parser.add_argument("--preset", choices=PRESET_NAMES, default="auto",
                        help="the recipe for what is not given, for both steps: cpu, gpu, paper or auto (default)")
    parser.add_argument("--size", type=int, help="prepared slice size in pixels (default: the preset's)")
    parser.add_argument("--negatives", type=float, help="fraction of lesion-free slices kept (default: the preset's)")
    parser.add_argument("--context", type=int,
                        help="neighbouring slices on each side, prepared and given to the network (default: the "
                             "preset's)")
    parser.add_argument("--channels", default="", help="comma-separated channels (default: all)")
    parser.add_argument("--workers", type=int, default=1, help="cases prepared in parallel (default 1)")
    time = parser.add_mutually_exclusive_group()
    time.add_argument("--minutes", type=float, help="training time of the whole run (default: the preset's, 15 for cpu)")
    time.add_argument("--epochs", type=int, help="a number of epochs instead of a time (the paper's 200)")
    parser.add_argument("--model", choices=NETWORKS, help="network (default: the preset's)")
    parser.add_argument("--network-kwargs", default="", help="network options as JSON")
    parser.add_argument("--loss", choices=LOSSES, help="loss (default: the preset's)")
    parser.add_argument("--curriculum", choices=CURRICULA, help="schedule (default: the preset's)")
    parser.add_argument("--metric", default="contrast", help="difficulty metric(s), e.g. area,contrast")
    parser.add_argument("--groups", type=int, help="difficulty groups (default 6)")
    parser.add_argument("--batch-size", type=int, help="slices per batch (default: the preset's)")
    folds = parser.add_mutually_exclusive_group()
    folds.add_argument("--folds", type=int, help="K-fold cross-validation by patient (default: the preset's)")
    folds.add_argument("--all-data", action="store_true", help="one model on every case, no validation")
    parser.add_argument("--finetune", default="", help="a bundle to start from, or 'starter'")
    parser.add_argument("--from-scratch", action="store_true", help="do not start from the starter model")
    parser.add_argument("--channel-map", default="", help="with a fine-tuned bundle: NEW=OLD[,...]")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="(default auto)")
    parser.add_argument("--difficulty", default="", help="difficulty table from 'lesionseg difficulty'")
    parser.add_argument("--resume", action="store_true", help="continue a stopped run from its checkpoints")
    parser.add_argument("--no-augment", action="store_true", help="turn augmentation off")
    parser.add_argument("--val-every", type=int, help="validate every N epochs (default 5)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    return parser


def train_parameters(args: argparse.Namespace) -> TrainParameters:
    """The panel's training settings from the script's options."""
    extra = ["--no-augment"] if args.no_augment else []
    if args.val_every is not None:
        extra += ["--val-every", str(args.val_every)]
    if args.threads is not None:
        extra += ["--threads", str(args.threads)]
    training = TrainParameters(
        prepared=args.prepared, run=args.run, network=args.model,
        network_kwargs=json.loads(args.network_kwargs) if args.network_kwargs else {}, loss=args.loss,
        curriculum=args.curriculum, metrics=[m.strip() for m in args.metric.split(",") if m.strip()],
        groups=args.groups, batch_size=args.batch_size, folds=args.folds, all_data=args.all_data,
        context=args.context, starter=not args.from_scratch, finetune=args.finetune, channel_map=args.channel_map,
        device=args.device, difficulty_csv=args.difficulty, resume=args.resume, extra=extra)
    training.apply_preset(args.preset)
    if args.minutes is not None:
        training.minutes = args.minutes
    if args.epochs is not None:
        training.minutes, training.epochs = 0, args.epochs
    return training


def _fail(message: str) -> int:
    print(f"train_batch.py: error: {message}", file=sys.stderr, flush=True)
    return EXIT_BAD_INPUT


def main(argv=None) -> int:
    try:
        args = parser().parse_args(script_arguments(sys.argv if argv is None else argv))
    except SystemExit as stop:  # argparse printed the usage and the error
        return EXIT_BAD_INPUT if stop.code else EXIT_OK
    missing = missing_dependencies(MODULE_FOLDER)
    if missing:
        return _fail(missing)
    try:
        training = train_parameters(args)
    except json.JSONDecodeError as error:
        return _fail(f"--network-kwargs is not JSON ({error}); e.g. '{{\"features\": [16, 32, 64, 128, 256]}}'.")
    logic = CurriculumLogic()
    options = {"on_log": log_printer(), "wait": True}
    partial = False
    if args.dataset and not (Path(args.prepared) / "slices.csv").is_file():
        preparing = PrepareParameters(args.dataset, args.prepared, preset=args.preset, size=args.size,
                                      negatives=args.negatives, context=args.context,
                                      channels=[c.strip() for c in args.channels.split(",") if c.strip()],
                                      workers=args.workers)
        ok, reason = preparing.validate()
        if not ok:
            return _fail(reason)
        print(f"Preparing {args.dataset} into {args.prepared}", flush=True)
        result = logic.prepare(preparing, on_progress=ProgressPrinter(label="prepare"), **options).result
        if result.state == "partial":  # the failed cases are in the log and prepare.json; train on the others
            print(f"prepare partial: {result.error} Training on the cases that were prepared.", flush=True)
            partial = True
        elif not result.ok:
            print(f"prepare {result.state}: {result.error}", flush=True)
            return exit_code(result)
    elif args.dataset:
        print(f"Using the prepared dataset in {args.prepared} (delete it to prepare again)", flush=True)
    ok, reason = training.validate()
    if not ok:
        return _fail(reason)
    print(f"Training {args.prepared} into {args.run}", flush=True)
    result = logic.train(training, on_progress=ProgressPrinter(label="train"), **options).result
    if not result.ok:
        print(f"train {result.state}: {result.error}", flush=True)
        return exit_code(result)
    print(f"Bundle: {logic.bundle_of(result, training)}", flush=True)
    return EXIT_PARTIAL if partial else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
