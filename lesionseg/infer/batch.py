"""Segmenting many cases with the model loaded once: reading the next case while computing the current
one, a bad case reported and skipped, ``summary.csv`` and a log, and ``--skip-existing`` to resume."""

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
from lesionseg.errors import CancelledError, LesionSegError
from lesionseg.infer.outputs import output_path, write_labelmap, write_lesion_table, write_probabilities
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


def _read_case(predictor: Predictor, case: Case) -> dict[str, sitk.Image]:
    """The case's channels the bundle needs, read from disk (runs in the prefetch thread)."""
    from lesionseg.io import read_image

    ordered = predictor.match_channels(dict(case.channels), case.case_id)
    return {name: read_image(path, pixel_type=sitk.sitkFloat32) for name, path in ordered.items()}


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
                images = current.result()
                prediction = predictor.predict(images, side=side, case_id=case.case_id)
                write_labelmap(prediction.labelmap, output_path(out, case.case_id, output_format))
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
