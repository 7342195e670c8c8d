"""``lesionseg train PREPARED RUN``: train a model (or a K-fold ensemble) with a curriculum."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lesionseg.errors import ParameterError
from lesionseg.progress import PROGRESS_MODES, make_progress
from lesionseg.train.presets import PRESET_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a segmentation model with a curriculum",
        description="Train on a prepared dataset (from 'lesionseg prepare'), slices fed from easy to hard, for a "
                    "given time (--minutes; the trainer plans its epochs) or a number of epochs. What is not given "
                    "comes from a preset: 'cpu' (the default without a GPU: 15 minutes, a small 2.5D U-Net "
                    "fine-tuned from the shipped starter model when it fits), 'gpu', or 'paper' (the published "
                    "settings: 200 epochs, 5 folds, from scratch). Writes RUN/model.lsb, per-fold logs, "
                    "checkpoints and a table of the folds' validation metrics. 3D networks (--model unet3d or "
                    "unet2plus1d) train on patches of whole cases (prepare with --negatives 1), without a curriculum.",
    )
    parser.add_argument("prepared", type=Path, help="prepared dataset folder")
    parser.add_argument("run", type=Path, help="run folder (created)")
    parser.add_argument("--preset", choices=PRESET_NAMES, default="auto",
                        help="the recipe for what is not given: cpu, gpu, paper (the published settings) or auto "
                             "(gpu with a GPU, else cpu; default)")
    parser.add_argument("--minutes", type=float,
                        help="training time for the whole run (every fold): the trainer measures its pace and plans "
                             "the epochs, validations and schedules to end within it (default: the preset's, 15 for "
                             "cpu; the paper preset trains 200 epochs)")
    parser.add_argument("--config", type=Path, help="a train_config.json to start from (options below override it)")
    parser.add_argument("--model", dest="network",
                        help="network name (default: the preset's); gnb: the classical voxel-wise Gaussian naive "
                             "Bayes baseline, fitted in one pass; detect_segment: lesion boxes, then a mask inside "
                             "each box (the curriculum paper's Mask R-CNN), trained with its own losses")
    parser.add_argument("--network-kwargs", help="network options as JSON, e.g. '{\"features\": [16, 32, 64, 128, 256]}'")
    parser.add_argument("--loss", help="loss name (default ce_dice)")
    parser.add_argument("--loss-kwargs", help="loss options as JSON, e.g. '{\"alpha\": 0.2, \"estimator\": \"f1.pt\"}'")
    parser.add_argument("--curriculum", choices=("vanilla", "anti", "spl", "none"),
                        help="schedule (default vanilla; 3D networks support none only, their default)")
    parser.add_argument("--metric", help="difficulty metric(s): contrast, area, gradient, human, or a,b (default contrast)")
    parser.add_argument("--difficulty", dest="difficulty_csv", help="difficulty table from 'lesionseg difficulty'")
    parser.add_argument("--groups", type=int, help="number of difficulty groups (default 6)")
    parser.add_argument("--grouping", choices=("quantile", "step"), help="groups of equal size or equal metric steps")
    parser.add_argument("--epochs", type=int, help="epochs, instead of a time (advanced; the paper's 200)")
    parser.add_argument("--context", type=int, dest="context_slices", metavar="K",
                        help="2.5D input: K neighbouring slices on each side as extra channels (default: the "
                             "preset's, 1 for cpu and gpu, 0 for paper); the dataset must be prepared with at least K")
    parser.add_argument("--size-curriculum", metavar="F,F,...",
                        help="train early epochs on crops of these fractions of the slice, growing to 1, e.g. "
                             "0.5,0.75,1 ('off' for whole slices throughout; default: the preset's)")
    parser.add_argument("--batch-size", type=int, help="slices per batch, or patches for a 3D network (default 12)")
    parser.add_argument("--patch-size", metavar="Z,Y,X",
                        help="3D networks: training patch and inference window in voxels, slices first, each a "
                             "multiple of 16 for unet3d and unet2plus1d (default 16,64,64)")
    parser.add_argument("--patches-per-volume", type=int, metavar="N",
                        help="3D networks: patches drawn from each training case every epoch, at least 40 %% of "
                             "them with lesion (default 8)")
    parser.add_argument("--optimiser", choices=("rmsprop", "adam", "sgd"), help="optimiser (default rmsprop)")
    parser.add_argument("--lr", type=float, help="learning rate (default 1e-4)")
    parser.add_argument("--lr-schedule", choices=("constant", "cosine", "step", "plateau"), help="(default constant)")
    folds = parser.add_mutually_exclusive_group()
    folds.add_argument("--folds", type=int, help="K-fold cross-validation by patient, K models in an ensemble (default 5)")
    folds.add_argument("--fold", type=int, help="train only this fold (0-based) of --folds (default 5)")
    folds.add_argument("--all-data", action="store_true", help="one model on every case, no validation")
    parser.add_argument("--k", type=int, dest="fold_count", help="number of folds when --fold is used (default 5)")
    parser.add_argument("--min-lesion-ml", type=float, help="drop training cases with a smaller lesion (e.g. 2.5)")
    parser.add_argument("--no-augment", action="store_true", help="turn augmentation off")
    parser.add_argument("--augmentation", metavar="JSON",
                        help="augmentation settings over the preset's, e.g. '{\"lesion_contrast_prob\": 0.3}' "
                             "(names: lesionseg.train.augment.AugmentConfig)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help="(default fp32)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="(default auto)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--deterministic", action="store_true", help="deterministic algorithms (exact resume)")
    parser.add_argument("--val-every", type=int, help="validate every N epochs (default 5)")
    parser.add_argument("--early-stopping", type=int, help="stop after N validations without improvement")
    parser.add_argument("--mask-revision",
                        help="check that the prepared slices were made from this mask revision of every case "
                             "(original, latest or an id); a mask refined since 'prepare' is refused")
    parser.add_argument("--revisions", type=Path, dest="revisions_dir",
                        help="folder of the mask revisions when not where 'prepare' found them")
    parser.add_argument("--finetune", dest="finetune_from", metavar="BUNDLE|starter",
                        help="start from this bundle's weights, or from the shipped starter model (the cpu preset "
                             "does this by default when the starter fits the run)")
    parser.add_argument("--from-scratch", action="store_true", help="do not start from the starter model")
    parser.add_argument("--finetune-lr", type=float, help="learning rate when starting from a bundle (default: the "
                                                          "preset's, 1e-4 for cpu; else --lr)")
    parser.add_argument("--rehearsal", metavar="N|auto",
                        help="when fine-tuning a shipped starter: also train on N synthetic cases of the starter's "
                             "recipe (auto: as many as the dataset's training cases, at most 16, the cpu preset's default "
                             "when it fine-tunes the starter; 0: none)")
    parser.add_argument("--inference-scale", metavar="F|auto",
                        help="2D networks: the bundle reads new scans at the training slice size and at F times it, "
                             "keeping the larger probability (auto, the cpu preset's: 1.25 and 1.5, i.e. 128-pixel "
                             "training read at 128, 160 and 192, a lesion kept where the readings' mean reaches 0.9 x "
                             "the threshold, 1 x for CT; 1: the training size alone)")
    parser.add_argument("--adversarial", type=float, metavar="WEIGHT",
                        help="train against an adversarial critic that tells true masks from predicted ones, its "
                             "term weighted by WEIGHT (e.g. 0.1; default 0: none); 2D networks")
    parser.add_argument("--channel-map", metavar="NEW=OLD[,...]",
                        help="with --finetune: which of the bundle's channels each of the dataset's channels "
                             "replaces, e.g. ct=flair")
    parser.add_argument("--freeze-encoder", action="store_true", help="with --finetune: keep the encoder fixed")
    parser.add_argument("--threads", type=int, dest="num_threads", help="CPU threads for torch")
    parser.add_argument("--resume", action="store_true", help="continue a stopped run from its checkpoints")
    parser.add_argument("--record-visits", action="store_true", help=argparse.SUPPRESS)  # test aid: visits per rank
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="bar", help="progress display (default bar)")
    parser.set_defaults(func=run)


def _json_option(text: str | None, option: str) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ParameterError(f"{option} must be a JSON object, e.g. '{{\"features\": [16, 32]}}' ({error}).") from None
    if not isinstance(value, dict):
        raise ParameterError(f"{option} must be a JSON object, not {text!r}.")
    return value


def parse_channel_map(text: str | None) -> dict[str, str] | None:
    """``"ct=flair,dwi=flair"`` -> {"ct": "flair", "dwi": "flair"} (channel names in canonical form)."""
    if text is None:
        return None
    from lesionseg.data.channels import channel_or_lower

    mapping = {}
    for part in text.split(","):
        new, _, old = part.partition("=")
        if not new.strip() or not old.strip():
            raise ParameterError(f"--channel-map must be NEW=OLD pairs separated by commas, such as ct=flair, "
                                 f"not {text!r}.")
        mapping[channel_or_lower(new)] = channel_or_lower(old)
    return mapping


def _auto_or_number(text: str | None, number: type, refusal: str) -> float | int | str | None:
    """An option that takes ``auto`` or a number: None when not given (the preset's), "auto", or ``number(text)``
    (its range is checked by TrainConfig); ``refusal`` is the sentence for anything else, ending "not {text!r}."."""
    if text is None or text.strip().lower() == "auto":
        return None if text is None else "auto"
    try:
        return number(text)
    except ValueError:
        raise ParameterError(f"{refusal}, not {text!r}.") from None


def _size_curriculum(text: str | None) -> list[float] | None:
    if text is None:
        return None
    if text.strip().lower() in ("off", "none", ""):
        return []
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ParameterError(f"--size-curriculum must be fractions such as 0.5,0.75,1 (or off), not {text!r}.") from None


def _preset_base(args: argparse.Namespace) -> dict:
    """The preset's training values, its time (unless --epochs is given) and its starter choice."""
    from lesionseg.train.presets import get_preset

    preset = get_preset(args.preset, args.device or "auto")
    base = preset.train_values()
    if args.epochs is None and preset.minutes is not None:
        base["minutes"] = preset.minutes
    base["starter_if_fits"] = preset.starter
    return base


def build_config(args: argparse.Namespace):
    """The TrainConfig from the run's saved config on --resume, else --config, else the preset; then the
    options given."""
    from lesionseg.train import TrainConfig

    if args.minutes is not None and args.epochs is not None:
        raise ParameterError("give either --minutes (a training time; the epochs are planned) or --epochs, not both.")
    if args.from_scratch and args.finetune_from:
        raise ParameterError("--from-scratch and --finetune contradict each other; give one of them.")
    saved = args.run / "train_config.json"
    if args.resume and saved.is_file():
        base = TrainConfig.load(saved).to_dict()
    elif args.config:
        base = TrainConfig.load(args.config).to_dict()
    else:
        base = _preset_base(args)
    if args.epochs is not None:
        base["minutes"] = None
    if args.from_scratch or args.finetune_from:
        base["starter_if_fits"] = False
    overrides = {
        "network": args.network, "network_kwargs": _json_option(args.network_kwargs, "--network-kwargs"),
        "loss": args.loss, "loss_kwargs": _json_option(args.loss_kwargs, "--loss-kwargs"),
        "curriculum": args.curriculum, "difficulty_csv": args.difficulty_csv, "groups": args.groups,
        "grouping": args.grouping, "epochs": args.epochs, "batch_size": args.batch_size, "optimiser": args.optimiser,
        "lr": args.lr, "lr_schedule": args.lr_schedule, "min_lesion_ml": args.min_lesion_ml,
        "precision": args.precision, "device": args.device, "seed": args.seed, "val_every": args.val_every,
        "early_stopping": args.early_stopping, "finetune_from": args.finetune_from, "num_threads": args.num_threads,
        "patch_size": args.patch_size, "patches_per_volume": args.patches_per_volume,
        "minutes": args.minutes, "context_slices": args.context_slices, "finetune_lr": args.finetune_lr,
        "adversarial": args.adversarial, "rehearsal": _auto_or_number(args.rehearsal, int, "--rehearsal must be auto or a whole number of cases (0 = none)"),
        "inference_scale": _auto_or_number(args.inference_scale, float,
                                           "--inference-scale must be auto or a number such as 1.25"),
        "size_curriculum": _size_curriculum(args.size_curriculum), "channel_map": parse_channel_map(args.channel_map),
    }
    if args.metric:
        overrides["metrics"] = [m.strip() for m in args.metric.split(",") if m.strip()]
    if args.augmentation is not None:
        overrides["augmentation"] = {**base.get("augmentation", {}), **_json_option(args.augmentation, "--augmentation")}
    if args.no_augment:
        overrides["augmentation"] = {**overrides.get("augmentation", base.get("augmentation", {})), "enabled": False}
    if args.deterministic:
        overrides["deterministic"] = True
    if args.freeze_encoder:
        overrides["freeze_encoder"] = True
    if args.all_data:
        overrides.update(all_data=True, fold=None)
    elif args.fold is not None:
        overrides.update(fold=args.fold, folds=args.fold_count or base.get("folds", 5), hold_out_min_cases=0)
    elif args.folds is not None:
        overrides.update(folds=args.folds, fold=None, hold_out_min_cases=0)
    merged = {**base, **{key: value for key, value in overrides.items() if value is not None}}
    if args.folds is not None or args.all_data:
        merged["fold"] = None  # every fold (or none), whatever fold the preset or the saved config names
    if merged.get("network") == "detect_segment" and (args.loss or args.loss_kwargs):
        raise ParameterError(f"{'--loss' if args.loss else '--loss-kwargs'} is not used by --model detect_segment, "
                             "which trains with its own detection and box-mask losses; leave it out.")
    if args.network and args.network != base.get("network") and args.network_kwargs is None:
        merged["network_kwargs"] = {}  # the preset's widths belong to the preset's network
    if args.loss and args.loss != base.get("loss") and args.loss_kwargs is None:
        merged["loss_kwargs"] = {}  # the preset's options (e.g. batch_dice) belong to the preset's loss
    if _is_3d(merged):  # a 3D network takes none of a 2D preset's slice options unless they are asked for
        for key, value in (("context_slices", 0), ("size_curriculum", []), ("curriculum", None)):
            if overrides[key] is None:
                merged[key] = value
    return TrainConfig.from_dict(merged)


def _is_3d(values: dict) -> bool:
    from lesionseg.models import NETWORKS, spatial_dims

    name = values.get("network", "unet2d")
    try:
        return name in NETWORKS and spatial_dims(name, **values.get("network_kwargs", {})) == 3
    except ParameterError:
        return False


#: options of the networks' training that the fitted baseline (--model gnb) has no use for: (attribute, flag)
_NETWORK_ONLY = (("network_kwargs", "--network-kwargs"), ("loss", "--loss"), ("loss_kwargs", "--loss-kwargs"),
                 ("curriculum", "--curriculum"), ("metric", "--metric"), ("difficulty_csv", "--difficulty"),
                 ("groups", "--groups"), ("grouping", "--grouping"), ("epochs", "--epochs"),
                 ("minutes", "--minutes"), ("context_slices", "--context"), ("size_curriculum", "--size-curriculum"),
                 ("batch_size", "--batch-size"), ("patch_size", "--patch-size"),
                 ("patches_per_volume", "--patches-per-volume"), ("optimiser", "--optimiser"), ("lr", "--lr"),
                 ("lr_schedule", "--lr-schedule"), ("no_augment", "--no-augment"), ("precision", "--precision"),
                 ("finetune_from", "--finetune"), ("finetune_lr", "--finetune-lr"), ("channel_map", "--channel-map"),
                 ("adversarial", "--adversarial"), ("rehearsal", "--rehearsal"),
                 ("inference_scale", "--inference-scale"), ("freeze_encoder", "--freeze-encoder"),
                 ("resume", "--resume"), ("val_every", "--val-every"),
                 ("early_stopping", "--early-stopping"), ("deterministic", "--deterministic"),
                 ("config", "--config"))


def gnb_config(args: argparse.Namespace):
    """The TrainConfig of ``--model gnb``: folds, seed and smallest lesion from the options, nothing else.

    Raises:
        ParameterError: an option of the networks' training was given (one sentence naming it).
    """
    from lesionseg.train import TrainConfig

    given = [flag for attribute, flag in _NETWORK_ONLY if getattr(args, attribute, None) not in (None, False)]
    if given:
        raise ParameterError(f"{given[0]} is an option of the networks' training; --model gnb is fitted in one pass "
                             "and takes only --folds, --fold, --all-data, --min-lesion-ml and --seed.")
    values = {"network": "gnb", "curriculum": "none", "context_slices": 0, "minutes": None, "preset": None}
    if args.all_data:
        values.update(all_data=True)
    elif args.fold is not None:
        values.update(fold=args.fold, folds=args.fold_count or 5)
    elif args.folds is not None:
        values.update(folds=args.folds)
    for key in ("seed", "min_lesion_ml", "device"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    return TrainConfig.from_dict(values)


def _run_gnb(args: argparse.Namespace) -> int:
    from lesionseg.train.gnb import train_gnb

    config = gnb_config(args)
    progress = make_progress(args.progress)
    summary = train_gnb(args.prepared, args.run, config, progress=progress)
    if args.progress == "jsonl":
        progress({"event": "done", "stage": "train", "bundle": str(summary.bundle), "mean_dice": summary.mean_dice})
    else:
        print(f"fitted {len(summary.results)} Gaussian naive Bayes model(s) into {args.run}; bundle {summary.bundle}")
    return 0


def run(args: argparse.Namespace) -> int:
    from lesionseg.train import train_run

    if args.network == "gnb":
        return _run_gnb(args)
    config = build_config(args)
    if args.mask_revision:
        from lesionseg.refine.prepared_revisions import check_prepared_revisions

        check_prepared_revisions(args.prepared, args.mask_revision, args.revisions_dir)
    progress = make_progress(args.progress)
    summary = train_run(args.prepared, args.run, config, resume=args.resume, progress=progress,
                        record_visits=args.record_visits)
    if summary.bundle is None:  # a non-zero rank of a distributed run
        return 0
    lines = [f"trained {len(summary.results)} model(s) into {args.run}; bundle {summary.bundle}"]
    for result in summary.results:
        name = "all data" if result.fold is None else f"fold {result.fold}"
        dice = result.validation.get("val_dice")
        lines.append(f"  {name}: {result.epochs_run} epochs, {result.iterations} iterations"
                     + (f", validation Dice {dice:.3f}" if dice is not None else ""))
    if args.progress == "jsonl":
        progress({"event": "done", "stage": "train", "bundle": str(summary.bundle), "mean_dice": summary.mean_dice})
    else:
        print("\n".join(lines))
    return 0
