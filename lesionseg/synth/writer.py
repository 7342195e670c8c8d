"""Writing the synthetic cohort to disk in the ISLES'22 layouts, with the phantom truth beside it.

Public layout (as the ISLES'22 release)::

    dataset_description.json
    sub-strokecase0001/ses-0001/anat/sub-strokecase0001_ses-0001_FLAIR.nii.gz
    sub-strokecase0001/ses-0001/anat/sub-strokecase0001_ses-0001_ct.nii.gz
    sub-strokecase0001/ses-0001/anat/sub-strokecase0001_ses-0001_T1w.nii.gz
    sub-strokecase0001/ses-0001/dwi/sub-strokecase0001_ses-0001_dwi.nii.gz
    sub-strokecase0001/ses-0001/dwi/sub-strokecase0001_ses-0001_adc.nii.gz
    derivatives/sub-strokecase0001/ses-0001/sub-strokecase0001_ses-0001_msk.nii.gz

Flat layout: channels as ``rawdata/sub-*/ses-0001/sub-*_ses-0001_{flair,dwi,adc,ct,t1}.nii.gz``, masks as
in the public layout.

Perfusion cases (:mod:`lesionseg.synth.perfusion`): the maps go to ``perf/..._{Tmax,CBF,CBV,MTT}.nii.gz``
(flat: ``_{tmax,cbf,cbv,mtt}``), float32, each with a JSON sidecar giving its ``"Units"``; the mask (1 core,
2 penumbra) gets its label table beside it, ``..._msk.tsv`` (BIDS ``dseg.tsv`` columns; see
:mod:`lesionseg.data.label_table`).

Phantom truth (both layouts), under ``derivatives/lesionseg-synth/sub-*/ses-0001/``:
``sub-*_ses-0001_brainmask.nii.gz`` (the intracranial mask) and ``sub-*_ses-0001_synth.json`` (mid-sagittal
plane, channel transforms, lesion sides and territories, every drawn parameter; see
``SynthCase.truth``); with ``extra_truth=True`` also ``_tissues.nii.gz`` (tissue labels),
``_territories.nii.gz`` and ``_lesions.nii.gz`` (lesion instances), and ``_distractors.nii.gz`` (lesion
look-alikes, for cases made with ``distractors=True``).

Per-case options: ``write_cohort(..., case_options_fn=f)`` calls ``f(index)`` in the calling process for
each case and merges the returned options over the cohort's; every case's truth JSON records the options
it was made with under ``parameters["options"]``.

Images are int16, masks and labels uint8, written with :func:`lesionseg.io.write_image` (atomic, gzip).
"""

from __future__ import annotations

import functools
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lesionseg.data.label_table import write_label_table
from lesionseg.data.sidecar import UNITS_KEY, sidecar_path
from lesionseg.errors import ParameterError
from lesionseg.io import write_image, write_json_atomic
from lesionseg.progress import CancelFlag, ProgressCallback, ignore_progress
from lesionseg.synth.case import SynthCase, make_case
from lesionseg.synth.options import check_options
from lesionseg.synth.perfusion import PERFUSION_UNITS, fate_label_table

LAYOUTS: tuple[str, ...] = ("public", "flat")
SESSION = "ses-0001"
TRUTH_FOLDER = "lesionseg-synth"
_PUBLIC = {"flair": ("anat", "FLAIR"), "ct": ("anat", "ct"), "dwi": ("dwi", "dwi"), "adc": ("dwi", "adc"),
           "t1": ("anat", "T1w"), "tmax": ("perf", "Tmax"), "cbf": ("perf", "CBF"), "cbv": ("perf", "CBV"),
           "mtt": ("perf", "MTT")}


@dataclass
class CaseFiles:
    """Where one written case's files are.

    Attributes:
        case_id: ``sub-strokecaseNNNN``.
        channels: Image path per modality name.
        mask: The lesion mask.
        brain_mask: The phantom's intracranial mask (truth).
        truth: The JSON file with the phantom truth.
    """

    case_id: str
    channels: dict[str, Path]
    mask: Path
    brain_mask: Path
    truth: Path


def case_files(root: str | os.PathLike, case_id: str, modalities, layout: str = "public") -> CaseFiles:
    """The paths a case gets in a layout (nothing is written).

    Args:
        root: Dataset folder.
        case_id: ``sub-strokecaseNNNN``.
        modalities: Channel names among ``MODALITIES``.
        layout: ``"public"`` or ``"flat"``.

    Returns:
        The :class:`CaseFiles` of that case.

    Raises:
        ParameterError: An unknown layout.
    """
    if layout not in LAYOUTS:
        raise ParameterError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}.")
    root = Path(root)
    stem = f"{case_id}_{SESSION}"
    channels = {}
    for m in modalities:
        if layout == "public":
            folder, suffix = _PUBLIC[m]
            channels[m] = root / case_id / SESSION / folder / f"{stem}_{suffix}.nii.gz"
        else:
            channels[m] = root / "rawdata" / case_id / SESSION / f"{stem}_{m}.nii.gz"
    truth = root / "derivatives" / TRUTH_FOLDER / case_id / SESSION
    return CaseFiles(case_id, channels, root / "derivatives" / case_id / SESSION / f"{stem}_msk.nii.gz",
                     truth / f"{stem}_brainmask.nii.gz", truth / f"{stem}_synth.json")


def write_case(case: SynthCase, root: str | os.PathLike, layout: str = "public",
               extra_truth: bool = False) -> CaseFiles:
    """Write one in-memory case (channels, lesion mask and truth) into a dataset folder.

    Args:
        case: The case from :func:`make_case`.
        root: Dataset folder (created when missing).
        layout: ``"public"`` or ``"flat"``.
        extra_truth: Also write tissue labels, territory labels, lesion instances and (when the case has
            them) the lesion look-alikes' labels.

    Returns:
        The written :class:`CaseFiles`.
    """
    files = case_files(root, case.case_id, case.channels, layout)
    for name, image in case.channels.items():
        write_image(image, files.channels[name])
        if name in PERFUSION_UNITS:
            write_json_atomic(sidecar_path(files.channels[name]), {
                UNITS_KEY: PERFUSION_UNITS[name], "Description": f"{name.upper()} map of the LesionSeg phantom"})
    write_image(case.lesion_mask, files.mask)
    if any(name in PERFUSION_UNITS for name in case.channels):
        write_label_table(files.mask, fate_label_table())
    write_image(case.brain_mask, files.brain_mask)
    if extra_truth:
        stem = str(files.brain_mask).removesuffix("_brainmask.nii.gz")
        write_image(case.tissue_labels, f"{stem}_tissues.nii.gz")
        write_image(case.territory_labels, f"{stem}_territories.nii.gz")
        write_image(case.lesion_instances, f"{stem}_lesions.nii.gz")
        if case.distractor_labels is not None:
            write_image(case.distractor_labels, f"{stem}_distractors.nii.gz")
    write_json_atomic(files.truth, case.truth())
    return files


def _make_and_write(index: int, seed: int, modalities, root: Path, layout: str, extra_truth: bool,
                    options: dict) -> CaseFiles:
    case = make_case(index, seed, modalities=modalities, **options)
    return write_case(case, root, layout, extra_truth)


def write_cohort(
    out_dir: str | os.PathLike,
    n_cases: int,
    modalities=("flair",),
    seed: int = 0,
    layout: str = "public",
    extra_truth: bool = False,
    workers: int = 1,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelFlag | None = None,
    case_options_fn: Callable[[int], dict[str, Any]] | None = None,
    **case_options,
) -> list[CaseFiles]:
    """Generate and write cases 1..n_cases of a seed (see :func:`make_case` for the case options).

    Args:
        out_dir: Dataset folder (created when missing; existing case files are overwritten).
        n_cases: Number of cases (>= 1).
        modalities: Channel names among ``flair``, ``dwi``, ``adc``, ``ct``.
        seed: Cohort seed; case i depends only on (seed, i), so files are identical on re-run.
        layout: ``"public"`` (ISLES'22 release) or ``"flat"`` (``rawdata/``).
        extra_truth: Also write tissue, territory and lesion-instance label images.
        workers: Processes to use (1 = in this process).
        progress: Receives ``{"event": "progress", "stage": "synth", "done": k, "total": n}``.
        cancel: Checked between cases.
        case_options_fn: Optional per-case options: called as ``case_options_fn(index)`` (1-based) in this
            process, before any case is made; the dict it returns (e.g.
            :func:`~lesionseg.synth.variety.varied_case_options`) is merged over ``case_options``. It
            should depend on the index only (and constants), so that a re-run writes the same files. Any
            callable works with ``workers > 1`` (a lambda too): only its results go to the workers.
        **case_options: Any option of :func:`make_case`: ``size_xyz``, ``spacing_mm``, ``misalignment``,
            ``head_pose``, ``noise``, ``bias``, ``lesion_age``, ``lesion_pattern``, ``lesion_contrast``,
            ``oblique_deg``, ``head_tilt_deg``, ``skull``, ``tissue_contrast``, ``distractors``.

    Returns:
        One :class:`CaseFiles` per case, in case order.

    Raises:
        ParameterError: A bad count, layout, worker count, modality or case option.
        CancelledError: When ``cancel`` is set.
    """
    if not isinstance(n_cases, int) or n_cases < 1:
        raise ParameterError(f"n_cases must be a whole number >= 1, not {n_cases!r}.")
    if layout not in LAYOUTS:
        raise ParameterError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}.")
    if not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"workers must be a whole number >= 1, not {workers!r}.")
    modalities = check_options(modalities, seed=seed, **case_options)
    per_case = [dict(case_options) for _ in range(n_cases)]
    if case_options_fn is not None:
        if not callable(case_options_fn):
            raise ParameterError(
                f"case_options_fn must be a function of the case index, not {case_options_fn!r}.")
        for i, options in enumerate(per_case, start=1):
            extra = case_options_fn(i)
            if not isinstance(extra, dict):
                raise ParameterError(f"case_options_fn({i}) must return a dict of case options, not {extra!r}.")
            options.update(extra)
            check_options(modalities, index=i, seed=seed, **options)
    root = Path(out_dir)
    described = dict(case_options)
    if case_options_fn is not None:
        described["case_options_fn"] = _describe(case_options_fn)
    _write_descriptions(root, n_cases, modalities, seed, layout, described)
    progress({"event": "progress", "stage": "synth", "done": 0, "total": n_cases})
    results: list[CaseFiles] = []
    args = [(i, int(seed), modalities, root, layout, extra_truth, per_case[i - 1])
            for i in range(1, n_cases + 1)]
    if workers == 1:
        for done, arg in enumerate(args, start=1):
            if cancel is not None:
                cancel.raise_if_cancelled()
            results.append(_make_and_write(*arg))
            progress({"event": "progress", "stage": "synth", "done": done, "total": n_cases})
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_make_and_write, *arg) for arg in args]
        for done, future in enumerate(futures, start=1):
            if cancel is not None and cancel.is_cancelled:
                for pending in futures:
                    pending.cancel()
                cancel.raise_if_cancelled()
            results.append(future.result())
            progress({"event": "progress", "stage": "synth", "done": done, "total": n_cases})
    return results


def _describe(function) -> str:
    """A stable name for a per-case options function (no memory addresses, so re-runs write the same bytes)."""
    if isinstance(function, functools.partial):
        arguments = [repr(a) for a in function.args] + [f"{k}={v!r}" for k, v in function.keywords.items()]
        return f"{_describe(function.func)}({', '.join(arguments)}, index)"
    module = getattr(function, "__module__", None) or ""
    name = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{module}.{name}" if module else name


def _write_descriptions(root: Path, n_cases: int, modalities, seed: int, layout: str, options: dict) -> None:
    from lesionseg import __version__

    generator = {"Name": "lesionseg.synth", "Version": __version__,
                 "Description": "Synthetic head phantom with ischemic lesions in arterial territories"}
    settings = {"n_cases": n_cases, "modalities": list(modalities), "seed": seed, "layout": layout,
                "case_options": json.loads(json.dumps(options, default=list))}
    raw = {"Name": "LesionSeg synthetic stroke cohort", "BIDSVersion": "1.7.0", "DatasetType": "raw",
           "License": "CC0", "GeneratedBy": [generator], "LesionSegSynth": settings}
    derivative = {"Name": "LesionSeg synthetic phantom truth", "BIDSVersion": "1.7.0",
                  "DatasetType": "derivative", "GeneratedBy": [generator]}
    write_json_atomic(root / "dataset_description.json", raw)
    write_json_atomic(root / "derivatives" / TRUTH_FOLDER / "dataset_description.json", derivative)


__all__ = ["CaseFiles", "LAYOUTS", "case_files", "write_case", "write_cohort"]
