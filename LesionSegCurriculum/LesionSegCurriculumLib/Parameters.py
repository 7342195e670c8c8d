"""The settings of the curriculum panel's jobs (prepare, difficulty, train) and the CLI arguments they make.

Plain dataclasses, each with ``validate() -> (ok, reason)`` (one sentence saying what to do) and
``arguments()`` (the ``lesionseg <command>`` arguments, without ``--progress``). The choice lists mirror
``lesionseg.train.config`` and the network and loss registries, which import torch: they are written out
here so that the panel loads without torch, and a test checks that they match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: ``lesionseg train --curriculum``: the schedule by which difficulty groups enter training.
CURRICULA: tuple[str, ...] = ("vanilla", "anti", "spl", "none")
CURRICULUM_LABELS: dict[str, str] = {
    "vanilla": "Easy to hard (groups added over the epochs)",
    "anti": "Hard to easy (anti-curriculum)",
    "spl": "Self-paced (by the model's own loss)",
    "none": "No curriculum (all slices from the start)",
}
#: ``lesionseg train --metric``: difficulty metrics (several are combined by mean rank).
TRAIN_METRICS: tuple[str, ...] = ("contrast", "area", "gradient", "human")
#: ``lesionseg difficulty --metric``: the metrics measured from the data alone.
DATA_METRICS: tuple[str, ...] = ("area", "contrast")
#: The difficulty table's column of each metric (``lesionseg.difficulty.METRICS``; gradient and human columns
#: carry the metric's own name, see ``lesionseg.difficulty.table``).
METRIC_COLUMNS: dict[str, str] = {"area": "area_mm2", "contrast": "contrast_fisher", "gradient": "gradient",
                                  "human": "human"}
#: ``lesionseg train --model`` (``lesionseg.models.NETWORKS``) and ``--loss`` (``lesionseg.losses.LOSSES``).
NETWORKS: tuple[str, ...] = ("unet2d", "monai_unet", "basic_unet", "res_unet", "unet3d", "unet2plus1d")
#: The networks that train on 3D patches of whole cases (``lesionseg.models.spatial_dims(name) == 3``).
VOLUME_NETWORKS: tuple[str, ...] = ("unet3d", "unet2plus1d")
#: ``lesionseg train --patch-size`` default of the volume networks (slices, rows, columns).
DEFAULT_PATCH_SIZE: tuple[int, int, int] = (16, 64, 64)
LOSSES: tuple[str, ...] = ("ce_dice", "gdice_ce", "dice_bce", "lovasz", "boundary_nll", "f1")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")

Check = tuple[bool, str]


def _folder(text: str) -> Path:
    return Path(str(text or "").strip()).expanduser()


def _blank(text: Any) -> bool:
    return not str(text or "").strip()


@dataclass
class PrepareParameters:
    """``lesionseg prepare DATASET OUT``: slices, brain extraction, registration, normalisation.

    Attributes:
        dataset: the dataset folder (or CSV manifest).
        output: the prepared dataset folder to write.
        size: side of the prepared slices in pixels.
        negatives: fraction of each case's lesion-free brain slices to keep (0..1).
        channels: channel names to use, in order ([] = all of the first case).
        workers: cases prepared in parallel.
    """

    dataset: str = ""
    output: str = ""
    size: int = 192
    negatives: float = 0.1
    channels: list[str] = field(default_factory=list)
    workers: int = 1

    def validate(self) -> Check:
        if _blank(self.dataset):
            return False, "Choose a dataset folder (or a CSV manifest)."
        if not _folder(self.dataset).exists():
            return False, f"The dataset folder '{_folder(self.dataset)}' does not exist; choose an existing one."
        if _blank(self.output):
            return False, "Choose the folder where the prepared slices will be written."
        if _folder(self.output).resolve() == _folder(self.dataset).resolve():
            return False, "The prepared folder must not be the dataset folder; choose another, e.g. an empty one."
        if not 16 <= int(self.size) <= 1024:
            return False, f"The slice size {self.size} must be between 16 and 1024 pixels (the paper's is 192)."
        if not 0.0 <= float(self.negatives) <= 1.0:
            return False, f"The fraction of lesion-free slices {self.negatives} must be between 0 and 1."
        if int(self.workers) < 1:
            return False, f"The number of workers {self.workers} must be 1 or more."
        return True, ""

    def arguments(self) -> list[str]:
        arguments = [str(_folder(self.dataset)), str(_folder(self.output)), "--size", str(int(self.size)),
                     "--negatives", f"{float(self.negatives):g}", "--workers", str(int(self.workers))]
        if self.channels:
            arguments += ["--channels", ",".join(self.channels)]
        return arguments


def _prepared_check(prepared: str) -> Check:
    if _blank(prepared):
        return False, "Choose a prepared dataset folder (click Prepare first, or pick one prepared before)."
    folder = _folder(prepared)
    if not (folder / "slices.csv").is_file():
        return False, f"The folder '{folder}' holds no prepared dataset (no slices.csv); click Prepare first."
    return True, ""


@dataclass
class DifficultyParameters:
    """``lesionseg difficulty PREPARED --metric ... --out CSV``.

    Attributes:
        prepared: the prepared dataset folder.
        metrics: data metrics among :data:`DATA_METRICS`.
        output_csv: the table to write (default ``<prepared>/difficulty.csv``).
        groups: number of curriculum groups (drawn on the histograms).
    """

    prepared: str = ""
    metrics: list[str] = field(default_factory=lambda: list(DATA_METRICS))
    output_csv: str = ""
    groups: int = 6

    @property
    def csv_path(self) -> Path:
        """The difficulty table file."""
        return _folder(self.output_csv) if not _blank(self.output_csv) else _folder(self.prepared) / "difficulty.csv"

    def validate(self) -> Check:
        ok, reason = _prepared_check(self.prepared)
        if not ok:
            return ok, reason
        unknown = [metric for metric in self.metrics if metric not in DATA_METRICS]
        if not self.metrics or unknown:
            return False, f"Tick at least one difficulty metric among {', '.join(DATA_METRICS)}."
        if int(self.groups) < 1:
            return False, f"The number of groups {self.groups} must be 1 or more (the paper uses 6)."
        return True, ""

    def arguments(self) -> list[str]:
        return [str(_folder(self.prepared)), "--metric", ",".join(self.metrics), "--out", str(self.csv_path),
                "--groups", str(int(self.groups))]


@dataclass
class TrainParameters:
    """``lesionseg train PREPARED RUN``: a model (or K-fold ensemble) trained with a curriculum.

    Attributes:
        prepared: the prepared dataset folder.
        run: the run folder (the bundle is written to ``RUN/model.lsb``).
        network, network_kwargs, loss: by name (see :data:`NETWORKS`, :data:`LOSSES`).
        curriculum: the schedule (see :data:`CURRICULA`).
        metrics: difficulty metrics, combined by mean rank (see :data:`TRAIN_METRICS`).
        groups: number of difficulty groups; epochs: total epochs; batch_size: slices per batch.
        folds: K-fold cross-validation by patient (K models); all_data: one model on every case instead.
        device: "auto", "cpu", "cuda" or "mps".
        patch_size: 3D networks only: the training patch and inference window "Z,Y,X" in voxels, each a
            multiple of 16 ("" = :data:`DEFAULT_PATCH_SIZE`); ignored for 2D networks.
        difficulty_csv: a table from the difficulty step ("" = computed by the run).
        resume: continue a stopped run from its checkpoints.
        extra: further ``lesionseg train`` options, as command-line words (e.g. ``["--threads", "1"]``).
    """

    prepared: str = ""
    run: str = ""
    network: str = "unet2d"
    network_kwargs: dict[str, Any] = field(default_factory=dict)
    loss: str = "ce_dice"
    curriculum: str = "vanilla"
    metrics: list[str] = field(default_factory=lambda: ["contrast"])
    groups: int = 6
    epochs: int = 200
    batch_size: int = 12
    folds: int = 5
    all_data: bool = False
    device: str = "auto"
    patch_size: str = ""
    difficulty_csv: str = ""
    resume: bool = False
    extra: list[str] = field(default_factory=list)

    @property
    def bundle_path(self) -> Path:
        """Where the run writes its bundle."""
        return _folder(self.run) / "model.lsb"

    def validate(self) -> Check:
        ok, reason = _prepared_check(self.prepared)
        if not ok:
            return ok, reason
        if _blank(self.run):
            return False, "Choose a run folder, where the model and its logs will be written."
        run = _folder(self.run)
        started = (run / "train_config.json").is_file()
        if self.resume and not started:
            return False, f"The run folder '{run}' holds no run to resume; untick Resume to start a new one."
        if not self.resume and started:
            return False, (f"The run folder '{run}' already holds a training run; tick Resume to continue it "
                           "or choose an empty folder.")
        for name, value, known in (("network", self.network, NETWORKS), ("loss", self.loss, LOSSES),
                                   ("schedule", self.curriculum, CURRICULA), ("device", self.device, DEVICES)):
            if value not in known:
                return False, f"The {name} {value!r} is not one of {', '.join(known)}; choose one of those."
        if self.network in VOLUME_NETWORKS:
            if self.curriculum != "none":
                return False, (f"The 3D network {self.network} trains on patches without a curriculum; choose "
                               "'No curriculum', or a 2D network for a curriculum.")
            if self.patch_dimensions() is None:
                return False, (f"The patch size {self.patch_size!r} must be three whole numbers Z,Y,X, each a "
                               f"positive multiple of 16, not all 16 (e.g. {','.join(map(str, DEFAULT_PATCH_SIZE))}).")
        unknown = [metric for metric in self.metrics if metric not in TRAIN_METRICS]
        if self.curriculum != "none" and (not self.metrics or unknown):
            return False, f"Choose the difficulty metric among {', '.join(TRAIN_METRICS)}."
        if int(self.epochs) < 1:
            return False, f"The number of epochs {self.epochs} must be 1 or more (the paper trains 200)."
        if int(self.groups) < 1:
            return False, f"The number of groups {self.groups} must be 1 or more (the paper uses 6)."
        if self.curriculum in ("vanilla", "anti") and int(self.groups) > int(self.epochs):
            return False, (f"{self.groups} groups cannot each enter within {self.epochs} epochs; use fewer groups "
                           "or more epochs.")
        if int(self.batch_size) < 1:
            return False, f"The batch size {self.batch_size} must be 1 or more (the paper uses 12)."
        if not self.all_data and int(self.folds) < 2:
            return False, f"Cross-validation needs 2 folds or more, not {self.folds}; or tick 'All data'."
        if not _blank(self.difficulty_csv) and not _folder(self.difficulty_csv).is_file():
            return False, f"The difficulty table '{_folder(self.difficulty_csv)}' does not exist; compute it first."
        return True, ""

    def patch_dimensions(self) -> tuple[int, int, int] | None:
        """The patch size as (z, y, x) voxels (blank: the default), or None when it is not valid."""
        if _blank(self.patch_size):
            return DEFAULT_PATCH_SIZE
        try:
            values = tuple(int(part) for part in str(self.patch_size).replace(" ", "").split(","))
        except ValueError:
            return None
        if len(values) != 3 or any(value < 16 or value % 16 for value in values) or values == (16, 16, 16):
            return None  # 16,16,16 leaves the deepest level a single voxel (lesionseg.train.config refuses it)
        return values

    def arguments(self) -> list[str]:
        arguments = [str(_folder(self.prepared)), str(_folder(self.run))]
        if self.resume:  # the run's saved configuration is used; only the device may change
            return arguments + ["--resume", "--device", self.device, *self.extra]
        arguments += ["--model", self.network, "--loss", self.loss, "--curriculum", self.curriculum,
                      "--groups", str(int(self.groups)), "--epochs", str(int(self.epochs)),
                      "--batch-size", str(int(self.batch_size)), "--device", self.device]
        if self.network_kwargs:
            arguments += ["--network-kwargs", json.dumps(self.network_kwargs)]
        if self.network in VOLUME_NETWORKS:
            arguments += ["--patch-size", ",".join(map(str, self.patch_dimensions() or DEFAULT_PATCH_SIZE))]
        if self.metrics:
            arguments += ["--metric", ",".join(self.metrics)]
        arguments += ["--all-data"] if self.all_data else ["--folds", str(int(self.folds))]
        if not _blank(self.difficulty_csv):
            arguments += ["--difficulty", str(_folder(self.difficulty_csv))]
        return arguments + list(self.extra)
