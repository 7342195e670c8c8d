"""``lesionseg segment BUNDLE INPUT -o OUT``: segment one case or a whole dataset with a model bundle."""

from __future__ import annotations

import argparse
from pathlib import Path

from lesionseg.errors import DatasetError, InputFileError, ParameterError
from lesionseg.progress import PROGRESS_MODES, make_progress

EXIT_PARTIAL = 3
#: ``--format`` choices (the keys of ``lesionseg.infer.outputs.OUTPUT_FORMATS``, listed here so that ``--help``
#: does not import the inference code)
FORMAT_CHOICES = ("nii.gz", "nii", "nrrd", "seg", "mha", "dcm-seg")
#: ``--engine`` choices: this process, or Ray actors (lesionseg.infer.ray_engine)
ENGINES = ("local", "ray")
DICOM_SEG_FORMAT = "dcm-seg"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment", help="segment stroke lesions with a model bundle",
        description="Segment one case or a dataset. INPUT is one image or DICOM folder (single-channel bundle), "
                    "name=path pairs (flair=a.nii.gz dwi=dicom/dwi), or a dataset folder (then OUT is a folder with "
                    "one mask per case, summary.csv and segment.log). Masks land on the reference channel's native "
                    "grid. A DICOM folder holding several series needs --series UID (the list is printed). "
                    "--format dcm-seg (or OUT ending in .dcm) writes a DICOM Segmentation that refers to the input "
                    "DICOM series (needs pip install 'lesionseg[dicom]'); it is refused for NIfTI/NRRD inputs, "
                    "which have no study or series to refer to.",
    )
    parser.add_argument("bundle", type=Path, help="model bundle (.lsb)")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="an image, name=path pairs, or a dataset folder")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output mask file, or folder for a dataset")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="(default auto)")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation (anterior-posterior flips)")
    parser.add_argument("--side", choices=("auto", "left", "right"), default="auto",
                        help="hemisphere of the lesion; auto runs both orientations (default auto)")
    parser.add_argument("--prob", type=Path, help="also write the probability map (a file, or a folder for a dataset)")
    parser.add_argument("--lesions", type=Path, help="single case: write the per-lesion table (.csv or .json)")
    parser.add_argument("--brain-mask", type=Path, help="single case: use this brain mask instead of extracting one")
    parser.add_argument("--brain-out", type=Path, help="single case: also write the brain mask used (0/1)")
    parser.add_argument("--format", choices=FORMAT_CHOICES, default=None,
                        help="output format: seg = Slicer .seg.nrrd, dcm-seg = DICOM SEG of a DICOM input "
                             "(default: a dataset writes nii.gz, a single case follows OUT's extension)")
    parser.add_argument("--series", action="append", default=[], metavar="UID",
                        help="DICOM input: the Series Instance UID to read from a folder holding several series "
                             "(repeat it for several DICOM channels)")
    parser.add_argument("--skip-existing", action="store_true", help="dataset: keep masks already in OUT (resume)")
    parser.add_argument("--threshold", type=float, help="probability threshold (default: the bundle's, 0.5)")
    parser.add_argument("--min-lesion-mm3", type=float, help="remove lesions smaller than this (default 10)")
    parser.add_argument("--slice-size", metavar="PIXELS[,PIXELS]",
                        help="2D models: read the scan as slices of this many pixels; with several sizes each voxel "
                             "keeps the largest probability (default: the bundle's readings, e.g. 128,160,192 for a "
                             "cpu-preset model trained on 128-pixel slices)")
    parser.add_argument("--reading-agreement", type=float, metavar="FRACTION",
                        help="several readings: a lesion of their largest probability is kept when their mean reaches "
                             "FRACTION x the threshold at one of its voxels; 0.5 keeps every lesion either reading "
                             "finds (faint hyperacute lesions), 1 only those their mean finds (default: the bundle's, "
                             "0.9 for MRI and 1 for CT)")
    parser.add_argument("--no-fill-holes", action="store_true", help="do not fill holes inside lesions")
    parser.add_argument("--batch-size", type=int, default=16, help="slices per network call (default 16)")
    parser.add_argument("--backend", default="auto", metavar="{auto,torch,onnx}",
                        help="how a 2D bundle's network runs: auto uses ONNX Runtime when installed (pip install "
                             "'lesionseg[onnx]'; exported once per bundle and cached), else PyTorch (default auto)")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="bar", help="progress display (default bar)")
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="dataset: local = this process (default); ray = Ray actors, one model each, on a local "
                             "Ray or the cluster at --address (needs pip install 'lesionseg[ray]')")
    parser.add_argument("--address", help="--engine ray: the Ray cluster to join (auto, or HOST:6379 of 'ray start "
                                          "--head'); default: start a local Ray on this machine")
    parser.add_argument("--workers", type=int, help="--engine ray: number of actors (default: one per CPU of the "
                                                    "cluster, or one per GPU when it has GPUs)")
    parser.set_defaults(func=run)


def parse_inputs(inputs: list[str]) -> tuple[str, object]:
    """("pairs", {name: path}), ("image", path) or ("dataset", path)."""
    from lesionseg.data.channels import channel_or_lower

    if any("=" in item for item in inputs):
        pairs = {}
        for item in inputs:
            if "=" not in item:
                raise ParameterError(f"mix of name=path pairs and a plain path ({item!r}); give every channel as name=path.")
            name, _, path = item.partition("=")
            key = channel_or_lower(name)
            if not key or not path:
                raise ParameterError(f"{item!r} is not a name=path pair (e.g. flair=scan.nii.gz).")
            if key in pairs:
                raise ParameterError(f"channel {key!r} is given twice.")
            pairs[key] = Path(path)
        return "pairs", pairs
    if len(inputs) > 1:
        raise ParameterError("several inputs must be given as name=path pairs (e.g. flair=a.nii.gz dwi=b.nii.gz).")
    path = Path(inputs[0])
    if not path.exists():
        raise InputFileError(f"{path} does not exist.")
    if path.is_dir():
        from lesionseg.data import detect_layout

        try:
            detect_layout(path)
            return "dataset", path
        except DatasetError:
            return "image", path  # a DICOM series folder
    return "image", path


def single_output_format(out: Path, output_format: str | None) -> str:
    """The format of a single case's OUT: ``--format`` when given (it must agree with OUT's extension, except
    dcm-seg, whose file may have any name), else the extension's (``.dcm`` = dcm-seg)."""
    from lesionseg.infer.outputs import OUTPUT_FORMATS, check_writable, is_dicom_seg_path

    if output_format == DICOM_SEG_FORMAT or (output_format is None and is_dicom_seg_path(out)):
        return DICOM_SEG_FORMAT
    check_writable(out)
    if output_format is not None and not out.name.lower().endswith(OUTPUT_FORMATS[output_format]):
        raise ParameterError(f"--format {output_format} does not match the output name {out.name}; end it with "
                             f"{OUTPUT_FORMATS[output_format]} or leave --format out.")
    matching = [name for name, extension in OUTPUT_FORMATS.items() if out.name.lower().endswith(extension)]
    return max(matching, key=lambda name: len(OUTPUT_FORMATS[name]))  # .seg.nrrd before .nrrd


def _slice_sizes(text: str | None) -> list[int] | None:
    """``--slice-size 160`` or ``128,160`` as a list of pixels (None when not given)."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ParameterError(f"--slice-size must be whole numbers of pixels such as 160 or 128,160, not {text!r}.") from None


def _reading_agreement(value: float | None) -> float | None:
    """``--reading-agreement`` checked here so that the sentence names the option."""
    if value is not None and not 0.0 < value <= 1.0:
        raise ParameterError(f"--reading-agreement must lie in (0, 1] (a fraction of the threshold), not {value}.")
    return value


def run(args: argparse.Namespace) -> int:
    from lesionseg.infer import Predictor, segment_cases, write_labelmap, write_lesion_table, write_probabilities
    from lesionseg.infer.backend import check_backend
    from lesionseg.infer.outputs import SEG_NEEDS_DICOM, check_writable, is_dicom_seg_path

    check_backend(args.backend)  # one sentence, exit 2, before anything is read
    kind, value = parse_inputs(args.inputs)
    _check_engine(args, kind)
    progress = make_progress(args.progress)
    output_format = args.format
    if kind == "dataset" and args.series:
        raise ParameterError("--series chooses the series of a DICOM folder given as INPUT; it does not apply to a "
                             "dataset folder.")
    if kind != "dataset":
        output_format = single_output_format(args.out, args.format)
        if output_format == DICOM_SEG_FORMAT:
            _check_dicom_seg_output(args.out, value if kind == "pairs" else {"input": value})
        if args.prob:
            check_writable(args.prob)
        if args.lesions:
            _check_table(args.lesions)
        if args.brain_out:
            check_writable(args.brain_out)
            if is_dicom_seg_path(args.brain_out):
                raise ParameterError(f"--brain-out {args.brain_out}: the brain mask is written as an image "
                                     "(.nii.gz, .nrrd), not as a DICOM SEG.")
        _check_dicom_series(value if kind == "pairs" else {"input": value}, args.series)
    predictor = Predictor(args.bundle, device=args.device, tta=args.tta, batch_size=args.batch_size,
                          threshold=args.threshold, min_lesion_mm3=args.min_lesion_mm3,
                          fill_holes=not args.no_fill_holes, progress=progress, backend=args.backend,
                          slice_sizes=_slice_sizes(args.slice_size),
                          reading_agreement=_reading_agreement(args.reading_agreement))
    if kind == "dataset":
        from lesionseg.data import discover

        cases = discover(value, validate=False, allow_unaligned_channels=True)
        if args.engine == "ray":
            from lesionseg.infer.ray_engine import segment_cases_ray

            result = segment_cases_ray(predictor, cases, args.out, output_format=output_format or "nii.gz",
                                       prob_dir=args.prob, side=args.side, skip_existing=args.skip_existing,
                                       address=args.address, workers=args.workers, device=args.device)
        else:
            result = segment_cases(predictor, cases, args.out, output_format=output_format or "nii.gz",
                                   prob_dir=args.prob, side=args.side, skip_existing=args.skip_existing)
        message = (f"segmented {len(result.rows) - result.failed} of {len(result.rows)} cases into {args.out}"
                   + (f"; {result.failed} failed (see {args.out / 'summary.csv'})" if result.failed else ""))
        if args.progress == "jsonl":
            progress({"event": "done", "stage": "segment", "cases": len(result.rows), "failed": result.failed})
        else:
            print(message)
        return EXIT_PARTIAL if result.failed else 0
    inputs = _read_inputs(predictor, kind, value, args)
    series = inputs.series.get(predictor.config.reference)
    if output_format == DICOM_SEG_FORMAT and series is None:
        raise ParameterError(f"--format {DICOM_SEG_FORMAT}: the {predictor.config.reference} input is not a DICOM "
                             f"folder; {SEG_NEEDS_DICOM}.")
    prediction = predictor.predict(inputs.images, side=args.side, brain_mask=args.brain_mask,
                                   case_id=_case_name(args.inputs))
    write_labelmap(prediction.labelmap, args.out, series=series if output_format == DICOM_SEG_FORMAT else None,
                   model_name=str(predictor.manifest.get("name") or predictor.path.stem),
                   labels=predictor.segment_labels)
    if args.prob:
        write_probabilities(prediction.probabilities, args.prob)
    if args.lesions:
        write_lesion_table(prediction.lesions, args.lesions)
    if args.brain_out:
        write_labelmap(prediction.brain_mask, args.brain_out)
    for warning in prediction.warnings:
        progress({"event": "warning", "message": warning})
    if args.progress == "jsonl":
        progress({"event": "done", "stage": "segment", "lesion_ml": prediction.lesion_volume_ml,
                  "lesions": len(prediction.lesions), "output": str(args.out)})
    else:
        classes = "".join(f", {name} {volume:.2f} mL" for name, volume in prediction.class_volumes_ml.items())
        print(f"{args.out}: {prediction.lesion_volume_ml:.2f} mL in {len(prediction.lesions)} lesion(s){classes} "
              f"({sum(prediction.timings.values()):.1f} s on {prediction.device})")
    return 0


def _check_engine(args: argparse.Namespace, kind: str) -> None:
    """Before loading the model: ``--engine ray`` is for a dataset, Ray is installed, and ``--address`` and
    ``--workers`` come with it."""
    if args.engine != "ray":
        if args.address or args.workers is not None:
            raise ParameterError("--address and --workers choose the Ray cluster and its actors; add --engine ray.")
        return
    if kind != "dataset":
        raise ParameterError("--engine ray segments a dataset folder; give one as INPUT, or leave --engine out for "
                             "a single case.")
    if args.workers is not None and args.workers < 1:
        raise ParameterError(f"--workers must be at least 1, not {args.workers}.")
    from lesionseg.infer.ray_engine import ray_module

    ray_module()


def _check_dicom_seg_output(out: Path, sources: dict) -> None:
    """Before loading the model: highdicom is there, OUT can be written, and some input is a DICOM folder."""
    from lesionseg.infer.outputs import SEG_NEEDS_DICOM, check_writable
    from lesionseg.io.dicom_seg import highdicom_module

    highdicom_module()
    check_writable(out, any_name=True)  # DICOM files often have no extension
    folders = [Path(path) for path in sources.values() if Path(path).is_dir()]
    if not folders:
        paths = [str(path) for path in sources.values()]
        what = f"{paths[0]} is not a DICOM folder" if len(paths) == 1 else f"none of {', '.join(paths)} is a DICOM folder"
        raise ParameterError(f"--format {DICOM_SEG_FORMAT}: {what}; {SEG_NEEDS_DICOM}.")


def _check_dicom_series(sources: dict, series_uids: list[str]) -> None:
    """Before loading the model: each DICOM folder given holds one series or one of ``--series`` (else the
    folder's series are listed), and each ``--series`` UID is in one of the folders."""
    from lesionseg.io.dicom_series import check_series_found, select_series

    folders = [Path(path) for path in sources.values() if Path(path).is_dir()]
    if series_uids and not folders:
        raise ParameterError("--series chooses the series of a DICOM folder, but no input is a folder.")
    if series_uids:
        check_series_found(folders, series_uids)
    for folder in folders:
        select_series(folder, series_uids, strict=False)


def _read_inputs(predictor, kind: str, value, args: argparse.Namespace):
    """The case's volumes in the bundle's channel names; DICOM folders keep their series' identity."""
    from lesionseg.infer.inputs import read_case_inputs

    sources = value if kind == "pairs" else {predictor.channels[0]: value}
    if kind == "image" and len(predictor.channels) > 1:
        sources = {"input": value}  # let the channel check explain what is missing
    return read_case_inputs(predictor.match_channels(sources, _case_name(args.inputs)), args.series)


def _check_table(path: Path) -> None:
    if path.suffix.lower() not in (".csv", ".json"):
        raise ParameterError(f"--lesions {path}: use a .csv or .json file name.")


def _case_name(inputs: list[str]) -> str:
    from lesionseg.io import strip_image_extension

    first = inputs[0].partition("=")[2] or inputs[0]
    return strip_image_extension(first) or "case"
