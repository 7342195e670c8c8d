"""Segmenting many cases with the model loaded once: reading the next case while computing the current
one, a bad case reported and skipped, ``summary.csv`` and a log, and ``--skip-existing`` to resume.

With ``output_format="dcm-seg"`` each case's mask is a DICOM SEG referring to the DICOM series of its
reference channel: a case whose reference channel is not a DICOM folder fails with the reason (the others
go on), and a dataset in which no case has one is refused before any work.

:func:`segment_case` is one case's work (read, predict, write each output atomically, the mask last), shared
with the Ray engine (:mod:`lesionseg.infer.ray_engine`, ``--engine ray``), which runs it on its actors.
"""

from __future__ import annotations

import csv
import io as text_io
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import SimpleITK as sitk

from lesionseg.data import Case
from lesionseg.errors import LesionSegError, ParameterError
from lesionseg.infer.inputs import CaseInputs, read_case_inputs
from lesionseg.infer.outputs import (
    DICOM_SEG_FORMAT,
    SEG_NEEDS_DICOM,
    output_path,
    write_labelmap,
    write_lesion_table,
    write_probabilities,
)
from lesionseg.infer.predictor import Predictor
from lesionseg.io import write_text_atomic

LOG = logging.getLogger(__name__)
SUMMARY_COLUMNS = ("case_id", "lesion_ml", "lesion_count", "seconds", "status")


@dataclass
class BatchResult:
    """Rows of ``summary.csv`` and how many cases failed."""

    rows: list[dict[str, Any]]

    @property
    def failed(self) -> int:
        return sum(1 for row in self.rows if row["status"].startswith("failed"))


def read_case(predictor: Predictor, case: Case) -> CaseInputs:
    """The case's channels the bundle needs, read from disk (runs in a prefetch thread); DICOM folders keep
    their series' identity."""
    return read_case_inputs(predictor.match_channels(dict(case.channels), case.case_id))


def check_dicom_seg(predictor: Predictor, cases: list[Case]) -> None:
    """Refuse a DICOM SEG batch that cannot write a single SEG (highdicom missing, no DICOM reference channel)."""
    from lesionseg.io.dicom_seg import highdicom_module

    highdicom_module()
    reference = predictor.config.reference
    for case in cases:
        try:
            source = predictor.match_channels(dict(case.channels), case.case_id)[reference]
        except LesionSegError:
            continue  # reported for this case when it is segmented
        if not isinstance(source, sitk.Image) and Path(source).is_dir():
            return
    raise ParameterError(f"--format {DICOM_SEG_FORMAT}: no case's {reference} channel is a DICOM folder; "
                         f"{SEG_NEEDS_DICOM}.")


def _reference_series(predictor: Predictor, inputs: CaseInputs, case_id: str):
    series = inputs.series.get(predictor.config.reference)
    if series is None:
        raise ParameterError(f"case {case_id}: its {predictor.config.reference} channel is not a DICOM folder; "
                             f"{SEG_NEEDS_DICOM}.")
    return series


def write_summary(folder: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``folder/summary.csv`` (columns :data:`SUMMARY_COLUMNS`, one row per case) atomically."""
    buffer = text_io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(folder / "summary.csv", buffer.getvalue())


def write_log(folder: Path, lines: list[str]) -> None:
    """Write ``folder/segment.log`` (one line per event) atomically."""
    write_text_atomic(folder / "segment.log", "\n".join(lines) + "\n")


@dataclass(frozen=True)
class BatchOutputs:
    """Where and how a batch writes each case: the same for every case and for both engines.

    Attributes:
        out: the output folder (a mask ``<case_id><extension>`` and ``<case_id>_lesions.csv`` per case).
        output_format: a ``--format`` name (a key of :data:`lesionseg.infer.outputs.OUTPUT_FORMATS`).
        prob_dir: also write ``<case_id>_prob.nii.gz`` there (float32 probabilities) when given.
        side: "auto", "left" or "right" (see :mod:`lesionseg.infer.predictor`).
        model_name: recorded in DICOM SEG outputs.
    """

    out: Path
    output_format: str = "nii.gz"
    prob_dir: Path | None = None
    side: str = "auto"
    model_name: str = ""

    def mask_path(self, case_id: str) -> Path:
        return output_path(self.out, case_id, self.output_format)


@dataclass
class CaseOutcome:
    """One case's ``summary.csv`` row, its ``segment.log`` lines and, when it failed, the reason."""

    row: dict[str, Any]
    log: list[str]
    error: str = ""

    @property
    def failed(self) -> bool:
        return str(self.row["status"]).startswith("failed")


def skipped_row(case_id: str) -> dict[str, Any]:
    """The summary row of a case kept by ``--skip-existing``."""
    return {"case_id": case_id, "lesion_ml": "", "lesion_count": "", "seconds": 0.0, "status": "skipped"}


def segment_case(predictor: Predictor, case: Case, read: Callable[[], CaseInputs], outputs: BatchOutputs) -> CaseOutcome:
    """Segment one case with a loaded predictor and write its outputs; a bad case becomes a "failed" row.

    Each file is written under a temporary name in its folder and renamed into place; the mask comes last,
    so a mask on disk means the case's outputs are complete (what ``--skip-existing`` relies on).

    Args:
        predictor: the loaded model.
        case: the case (its id names the outputs).
        read: returns the case's inputs (e.g. the result of a read started earlier in another thread); its
            errors are the case's.
        outputs: where and how to write.

    Returns:
        The summary row (status "ok" or "failed: <sentence>") and the log lines. Errors other than
        :class:`LesionSegError` (bugs, cancellation) propagate.
    """
    began = time.perf_counter()
    try:
        inputs = read()
        dicom_seg = outputs.output_format == DICOM_SEG_FORMAT
        series = _reference_series(predictor, inputs, case.case_id) if dicom_seg else None
        prediction = predictor.predict(inputs.images, side=outputs.side, case_id=case.case_id)
        if outputs.prob_dir is not None:
            write_probabilities(prediction.probabilities, outputs.prob_dir / f"{case.case_id}_prob.nii.gz")
        write_lesion_table(prediction.lesions, outputs.out / f"{case.case_id}_lesions.csv")
        write_labelmap(prediction.labelmap, outputs.mask_path(case.case_id), series=series,
                       model_name=outputs.model_name, labels=predictor.segment_labels)
    except LesionSegError as error:
        return CaseOutcome({"case_id": case.case_id, "lesion_ml": "", "lesion_count": "",
                            "seconds": f"{time.perf_counter() - began:.2f}", "status": f"failed: {error}"},
                           [f"{case.case_id}: failed: {error}"], str(error))
    seconds = time.perf_counter() - began
    log = [f"{case.case_id}: warning: {warning}" for warning in prediction.warnings]
    classes = "".join(f", {name} {volume:.2f} mL" for name, volume in prediction.class_volumes_ml.items())
    log.append(f"{case.case_id}: ok, {prediction.lesion_volume_ml:.2f} mL in {len(prediction.lesions)} lesion(s)"
               f"{classes}, {seconds:.1f} s")
    return CaseOutcome({"case_id": case.case_id, "lesion_ml": f"{prediction.lesion_volume_ml:.4f}",
                        "lesion_count": len(prediction.lesions), "seconds": f"{seconds:.2f}", "status": "ok"}, log)


def segment_cases(predictor: Predictor, cases: list[Case], out: Path, *, output_format: str = "nii.gz",
                  prob_dir: Path | None = None, side: str = "auto", skip_existing: bool = False) -> BatchResult:
    """Segment every case into ``out`` (see the module docstring); never stops on one bad case.

    Returns:
        The summary rows (status "ok", "skipped" or "failed: <sentence>").
    """
    if output_format == DICOM_SEG_FORMAT:
        check_dicom_seg(predictor, cases)
    outputs = BatchOutputs(out, output_format, prob_dir, side, model_name(predictor))
    out.mkdir(parents=True, exist_ok=True)
    log_lines: list[str] = []
    rows: list[dict[str, Any]] = []
    todo = []
    for case in cases:
        if skip_existing and outputs.mask_path(case.case_id).is_file():
            rows.append(skipped_row(case.case_id))
        else:
            todo.append(case)
    total = len(cases)
    predictor.progress({"event": "progress", "stage": "segment", "done": len(rows), "total": total})
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(read_case, predictor, todo[0]) if todo else None
        for position, case in enumerate(todo):
            current = pending  # this case's read; the next case's read starts now, whatever happens to this one
            pending = reader.submit(read_case, predictor, todo[position + 1]) if position + 1 < len(todo) else None
            if predictor.cancel:
                predictor.cancel.raise_if_cancelled()
            outcome = segment_case(predictor, case, current.result, outputs)
            rows.append(outcome.row)
            log_lines.extend(outcome.log)
            if outcome.failed:
                predictor.progress({"event": "warning", "message": f"{case.case_id}: {outcome.error}"})
            predictor.progress({"event": "progress", "stage": "segment", "done": len(rows), "total": total,
                                "message": case.case_id})
            write_summary(out, rows)
            write_log(out, log_lines)
    order = {case.case_id: index for index, case in enumerate(cases)}
    rows.sort(key=lambda row: order[row["case_id"]])
    write_summary(out, rows)
    write_log(out, log_lines)
    return BatchResult(rows)


def model_name(predictor: Predictor) -> str:
    """The model's name as recorded in outputs: the manifest's, else the bundle file's stem."""
    return str(predictor.manifest.get("name") or predictor.path.stem)
