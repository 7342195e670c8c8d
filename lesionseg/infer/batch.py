"""Segmenting many cases with the model loaded once: reading the next case while computing the current
one, a bad case reported and skipped, ``summary.csv`` and a log, and ``--skip-existing`` to resume.

With ``output_format="dcm-seg"`` each case's mask is a DICOM SEG referring to the DICOM series of its
reference channel: a case whose reference channel is not a DICOM folder fails with the reason (the others
go on), and a dataset in which no case has one is refused before any work.
"""

from __future__ import annotations

import csv
import io as text_io
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from lesionseg.data import Case
from lesionseg.errors import CancelledError, LesionSegError, ParameterError
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


def _read_case(predictor: Predictor, case: Case) -> CaseInputs:
    """The case's channels the bundle needs, read from disk (runs in the prefetch thread); DICOM folders keep
    their series' identity."""
    return read_case_inputs(predictor.match_channels(dict(case.channels), case.case_id))


def _check_dicom_seg(predictor: Predictor, cases: list[Case]) -> None:
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


def _write_summary(folder: Path, rows: list[dict[str, Any]]) -> None:
    buffer = text_io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(folder / "summary.csv", buffer.getvalue())


def segment_cases(predictor: Predictor, cases: list[Case], out: Path, *, output_format: str = "nii.gz",
                  prob_dir: Path | None = None, side: str = "auto", skip_existing: bool = False) -> BatchResult:
    """Segment every case into ``out`` (see the module docstring); never stops on one bad case.

    Returns:
        The summary rows (status "ok", "skipped" or "failed: <sentence>").
    """
    dicom_seg = output_format == DICOM_SEG_FORMAT
    if dicom_seg:
        _check_dicom_seg(predictor, cases)
    model_name = str(predictor.manifest.get("name") or predictor.path.stem)
    out.mkdir(parents=True, exist_ok=True)
    log_lines: list[str] = []
    rows: list[dict[str, Any]] = []
    todo = []
    for case in cases:
        target = output_path(out, case.case_id, output_format)
        if skip_existing and target.is_file():
            rows.append({"case_id": case.case_id, "lesion_ml": "", "lesion_count": "", "seconds": 0.0, "status": "skipped"})
        else:
            todo.append(case)
    total = len(cases)
    predictor.progress({"event": "progress", "stage": "segment", "done": len(rows), "total": total})
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(_read_case, predictor, todo[0]) if todo else None
        for position, case in enumerate(todo):
            began = time.perf_counter()
            current = pending  # this case's read; the next case's read starts now, whatever happens to this one
            pending = reader.submit(_read_case, predictor, todo[position + 1]) if position + 1 < len(todo) else None
            try:
                if predictor.cancel:
                    predictor.cancel.raise_if_cancelled()
                inputs = current.result()
                series = _reference_series(predictor, inputs, case.case_id) if dicom_seg else None
                prediction = predictor.predict(inputs.images, side=side, case_id=case.case_id)
                write_labelmap(prediction.labelmap, output_path(out, case.case_id, output_format), series=series,
                               model_name=model_name)
                write_lesion_table(prediction.lesions, out / f"{case.case_id}_lesions.csv")
                if prob_dir is not None:
                    write_probabilities(prediction.probabilities, prob_dir / f"{case.case_id}_prob.nii.gz")
                seconds = time.perf_counter() - began
                rows.append({"case_id": case.case_id, "lesion_ml": f"{prediction.lesion_volume_ml:.4f}",
                             "lesion_count": len(prediction.lesions), "seconds": f"{seconds:.2f}", "status": "ok"})
                for warning in prediction.warnings:
                    log_lines.append(f"{case.case_id}: warning: {warning}")
                log_lines.append(f"{case.case_id}: ok, {prediction.lesion_volume_ml:.2f} mL in {len(prediction.lesions)} "
                                 f"lesion(s), {seconds:.1f} s")
            except CancelledError:
                raise
            except LesionSegError as error:
                rows.append({"case_id": case.case_id, "lesion_ml": "", "lesion_count": "",
                             "seconds": f"{time.perf_counter() - began:.2f}", "status": f"failed: {error}"})
                log_lines.append(f"{case.case_id}: failed: {error}")
                predictor.progress({"event": "warning", "message": f"{case.case_id}: {error}"})
            predictor.progress({"event": "progress", "stage": "segment", "done": len(rows), "total": total,
                                "message": case.case_id})
            _write_summary(out, rows)
            write_text_atomic(out / "segment.log", "\n".join(log_lines) + "\n")
    order = {case.case_id: index for index, case in enumerate(cases)}
    rows.sort(key=lambda row: order[row["case_id"]])
    _write_summary(out, rows)
    write_text_atomic(out / "segment.log", "\n".join(log_lines) + "\n")
    return BatchResult(rows)
