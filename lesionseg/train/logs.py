"""The per-epoch training log: ``log.csv`` and ``log.json`` in the fold's folder (TensorBoard when installed)."""

from __future__ import annotations

import csv
import io as text_io
import math
from pathlib import Path
from typing import Any

from lesionseg.io import write_json_atomic, write_text_atomic

LOG_COLUMNS = ("epoch", "iterations", "active_slices", "crop_size", "loss", "lr", "seconds", "val_dice",
               "val_lesion_f1", "val_hd95_mm", "val_hd_mm", "val_detection_rate", "critic_loss", "adversarial_loss")


class EpochLog:
    """Writes the whole history at each epoch (atomically), so that a resumed run's log is complete."""

    def __init__(self, folder: Path, enabled: bool = True) -> None:
        self.folder = folder
        self.enabled = enabled
        self._tensorboard = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the optional tensorboard package

                self._tensorboard = SummaryWriter(str(folder / "tensorboard"))
            except ImportError:
                self._tensorboard = None

    def write(self, history: list[dict[str, Any]]) -> None:
        if not self.enabled:
            return
        buffer = text_io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for record in history:
            writer.writerow({key: _cell(record.get(key)) for key in LOG_COLUMNS})
        write_text_atomic(self.folder / "log.csv", buffer.getvalue())
        write_json_atomic(self.folder / "log.json", [_json_safe(record) for record in history])
        if self._tensorboard is not None and history:
            last = history[-1]
            for key in ("loss", "lr", "val_dice", "val_lesion_f1", "val_hd95_mm", "val_detection_rate"):
                value = last.get(key)
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self._tensorboard.add_scalar(key, value, last["epoch"])
            self._tensorboard.flush()


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def _json_safe(record: dict[str, Any]) -> dict[str, Any]:
    return {key: (None if isinstance(value, float) and not math.isfinite(value) else value)
            for key, value in record.items()}
