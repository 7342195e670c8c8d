"""The settings of the curriculum panel's jobs (prepare, difficulty, train) and the CLI arguments they make.

Plain dataclasses, each with ``validate() -> (ok, reason)`` (one sentence saying what to do) and
``arguments()`` (the ``lesionseg <command>`` arguments, without ``--progress``). The choice lists mirror
``lesionseg.train.config``, ``lesionseg.train.presets`` and the network and loss registries, which import
torch: they are written out here so that the panel loads without torch, and a test checks that they match.

**Preset defaults.** What a run uses when the user says nothing comes from a preset (``lesionseg.train.presets``:
``cpu``, ``gpu``, ``paper``, or ``auto`` = gpu with a GPU, else cpu). A field the user leaves at "the preset's"
is ``None`` (or a blank string for the text fields: network, loss, curriculum, size curriculum, fine-tune
bundle, channel map), and ``arguments()`` then leaves its option out, so that the CLI's preset decides; a
field with a value is passed. The preset's name itself is always passed. The training time (``minutes``)
is the main control (15, the cpu preset's, by default); 0 or blank means "train ``epochs`` epochs instead".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .Presets import (  # noqa: F401 - the preset table is part of what this file offers the panel
    DEFAULT_EPOCHS,
    DEFAULT_GROUPS,
    DEFAULT_MINUTES,
    PRESET_LABELS,
    PRESET_MINUTES,
    PRESET_NAMES,
    PRESET_PREPARE,
    PRESET_STARTER,
    PRESET_TRAIN_CONTEXT,
    check_context,
    check_preset,
    finite_number,
    given,
    preset_minutes,
    preset_value,
    whole_number,
)

#: ``lesionseg train --curriculum``: the schedule by which difficulty groups enter training.
CURRICULA: tuple[str, ...] = ("vanilla", "anti", "spl", "none")
CURRICULUM_LABELS: dict[str, str] = {
    "vanilla": "Easy to hard (groups added over the epochs)",
    "anti": "Hard to easy (anti-curriculum)",
    "spl": "Self-paced (by the model's own loss)",
    "none": "No curriculum (all slices from the start)",
}
#: ``lesionseg prepare --brain-extraction`` (``lesionseg.preprocess.brain.METHODS``); the learned ones need the
#: optional ``[brain]`` packages (``Resources/requirements-brain.txt``), which the panel offers to install.
BRAIN_EXTRACTION_METHODS: tuple[str, ...] = ("auto", "classical", "deepbet", "hdbet")
LEARNED_BRAIN_METHODS: tuple[str, ...] = ("deepbet", "hdbet")
BRAIN_EXTRACTION_LABELS: dict[str, str] = {
    "auto": "Automatic (classical; a learned extractor where its mask looks wrong)",
    "classical": "Classical (thresholds and morphology; MRI and CT)",
    "deepbet": "deepbet (learned, MRI; installs about 10 MB)",
    "hdbet": "HD-BET, one model (learned, MRI, slow on a CPU; installs about 300 MB)",
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
NETWORKS: tuple[str, ...] = ("unet2d", "monai_unet", "basic_unet", "res_unet", "unet3d", "unet2plus1d",
                             "detect_segment")
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
    return not str(text if text is not None else "").strip()


def _text(value: Any) -> str:
    return str(value).strip() if given(value) else ""


@dataclass
class PrepareParameters:
    """``lesionseg prepare DATASET OUT``: slices, brain extraction, registration, normalisation.

    Attributes:
        dataset: the dataset folder (or CSV manifest).
        output: the prepared dataset folder to write.
        preset: the recipe for what is not given (see :data:`PRESET_NAMES`); train with the same one.
        size: side of the prepared slices in pixels (None: the preset's, see :data:`PRESET_PREPARE`).
        negatives: fraction of each case's lesion-free brain slices to keep, 0..1 (None: the preset's).
        context: neighbouring slices stored on each side of every slice for 2.5D training, 0..4 (None: the
            preset's).
        channels: channel names to use, in order ([] = all of the first case).
        workers: cases prepared in parallel.
        brain_extraction: one of :data:`BRAIN_EXTRACTION_METHODS` (``auto``: the CLI's default, not passed).
    """

    dataset: str = ""
    output: str = ""
    preset: str = "auto"
    size: int | None = None
    negatives: float | None = None
    context: int | None = None
    channels: list[str] = field(default_factory=list)
    workers: int = 1
    brain_extraction: str = "auto"

    @property
    def needs_brain_extra(self) -> bool:
        """Whether the chosen brain extraction needs the optional learned-extractor packages."""
        return self.brain_extraction in LEARNED_BRAIN_METHODS

    def validate(self) -> Check:
        if _blank(self.dataset):
            return False, "Choose a dataset folder (or a CSV manifest)."
        if not _folder(self.dataset).exists():
            return False, f"The dataset folder '{_folder(self.dataset)}' does not exist; choose an existing one."
        if _blank(self.output):
            return False, "Choose the folder where the prepared slices will be written."
        if _folder(self.output).resolve() == _folder(self.dataset).resolve():
            return False, "The prepared folder must not be the dataset folder; choose another, e.g. an empty one."
        ok, reason = check_preset(self.preset)
        if not ok:
            return ok, reason
        if given(self.size) and not 16 <= (whole_number(self.size) or 0) <= 1024:
            return False, f"The slice size {self.size!r} must be between 16 and 1024 pixels (the paper's is 192)."
        negatives = finite_number(self.negatives)
        if given(self.negatives) and (negatives is None or not 0.0 <= negatives <= 1.0):
            return False, f"The fraction of lesion-free slices {self.negatives!r} must be between 0 and 1."
        ok, reason = check_context(self.context, self.preset)
        if not ok:
            return ok, reason
        if (whole_number(self.workers) or 0) < 1:
            return False, f"The number of workers {self.workers!r} must be 1 or more."
        if self.brain_extraction not in BRAIN_EXTRACTION_METHODS:
            return False, (f"The brain extraction {self.brain_extraction!r} must be one of "
                           f"{', '.join(BRAIN_EXTRACTION_METHODS)}.")
        return True, ""

    def arguments(self) -> list[str]:
        arguments = [str(_folder(self.dataset)), str(_folder(self.output)), "--preset", str(self.preset)]
        if given(self.size):
            arguments += ["--size", str(whole_number(self.size))]
        if given(self.negatives):
            arguments += ["--negatives", f"{finite_number(self.negatives):g}"]
        if given(self.context):
            arguments += ["--context", str(whole_number(self.context))]
        arguments += ["--workers", str(whole_number(self.workers))]
        if self.channels:
            arguments += ["--channels", ",".join(self.channels)]
        if self.brain_extraction != "auto":
            arguments += ["--brain-extraction", self.brain_extraction]
        return arguments


def _prepared_check(prepared: str) -> Check:
    if _blank(prepared):
        return False, "Choose a prepared dataset folder (click Prepare first, or pick one prepared before)."
    folder = _folder(prepared)
    if not (folder / "slices.csv").is_file():
        return False, f"The folder '{folder}' holds no prepared dataset (no slices.csv); click Prepare first."
    return True, ""


def prepared_context(prepared: str) -> int | None:
    """The neighbouring slices a prepared dataset holds on each side (``prepare.json``), None when unknown."""
    try:
        info = json.loads((_folder(prepared) / "prepare.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    config = info.get("config") if isinstance(info, dict) else None
    if not isinstance(config, dict):
        return None
    return whole_number(config.get("context_slices", 0) or 0)


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

    A field left at None (or blank text) is the preset's: its option is not passed and the CLI's preset
    decides (see the module's docstring).

    Attributes:
        prepared: the prepared dataset folder.
        run: the run folder (the bundle is written to ``RUN/model.lsb``).
        preset: the recipe for what is not given (see :data:`PRESET_NAMES`), always passed.
        minutes: the training time of the whole run (every fold), the main control: the trainer measures its
            pace and plans the epochs. 0, None or blank: train ``epochs`` epochs instead.
        epochs: the advanced knob, used only when ``minutes`` is 0 (``--epochs``; the paper's 200).
        starter: fine-tune from the shipped starter model when the preset does so and it fits the run (the
            cpu preset, and ``auto`` without a GPU); unticked passes ``--from-scratch``. The paper preset
            trains from scratch as published: ``--from-scratch`` is passed with it whatever this says, and
            :meth:`notes` tells the user. Ignored when ``finetune`` names a bundle.
        network, network_kwargs, loss: by name (see :data:`NETWORKS`, :data:`LOSSES`); None/blank and {}:
            the preset's.
        curriculum: the schedule (see :data:`CURRICULA`; None: the preset's, "none" for a 3D network).
        metrics: difficulty metrics, combined by mean rank (see :data:`TRAIN_METRICS`).
        groups: number of difficulty groups; batch_size: slices per batch; folds: K-fold cross-validation by
            patient (K models): None = the preset's (cpu and gpu train one fold of 5, paper all 5).
        all_data: one model on every case instead of folds.
        context: 2.5D input: neighbouring slices on each side, 0..4 (None: the preset's; the dataset must be
            prepared with at least as many).
        size_curriculum: early epochs on crops growing to the whole slice, "0.5,0.75,1", or "off" ("": the
            preset's).
        finetune: a bundle to start from ("starter" for the shipped one; "": none, see ``starter``).
        channel_map: with a fine-tuned bundle (or the starter): "NEW=OLD,..." channel replacements.
        device: "auto", "cpu", "cuda" or "mps".
        patch_size: 3D networks only: the training patch and inference window "Z,Y,X" in voxels, each a
            multiple of 16 ("" = :data:`DEFAULT_PATCH_SIZE`); ignored for 2D networks.
        difficulty_csv: a table from the difficulty step ("" = computed by the run).
        resume: continue a stopped run from its checkpoints (with its saved settings).
        extra: further ``lesionseg train`` options, as command-line words (e.g. ``["--threads", "1"]``).
    """

    prepared: str = ""
    run: str = ""
    preset: str = "auto"
    minutes: float | None = DEFAULT_MINUTES
    epochs: int = DEFAULT_EPOCHS
    starter: bool = True
    network: str | None = None
    network_kwargs: dict[str, Any] = field(default_factory=dict)
    loss: str | None = None
    curriculum: str | None = None
    metrics: list[str] = field(default_factory=lambda: ["contrast"])
    groups: int | None = None
    batch_size: int | None = None
    folds: int | None = None
    all_data: bool = False
    context: int | None = None
    size_curriculum: str = ""
    finetune: str = ""
    channel_map: str = ""
    device: str = "auto"
    patch_size: str = ""
    difficulty_csv: str = ""
    resume: bool = False
    extra: list[str] = field(default_factory=list)

    @property
    def bundle_path(self) -> Path:
        """Where the run writes its bundle."""
        return _folder(self.run) / "model.lsb"

    @property
    def volume_network(self) -> bool:
        """True for a 3D network (the presets' networks are 2D)."""
        return _text(self.network) in VOLUME_NETWORKS

    def minutes_value(self) -> float | None:
        """The training time in minutes, or None when the run trains ``epochs`` epochs (0, None or blank)."""
        if not given(self.minutes):
            return None
        number = finite_number(self.minutes)
        return None if number == 0 else number

    def apply_preset(self, preset: str) -> None:
        """Choose a preset and show its training time (0 for the paper's epochs), keeping the user's overrides."""
        self.preset = preset
        self.minutes = preset_minutes(preset)
        if self.minutes == 0:
            self.epochs = DEFAULT_EPOCHS

    def _effective_curriculum(self) -> str:
        if given(self.curriculum):
            return _text(self.curriculum)
        return "none" if self.volume_network else "vanilla"  # every preset's 2D schedule is vanilla

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
        if self.device not in DEVICES:
            return False, f"The device {self.device!r} is not one of {', '.join(DEVICES)}; choose one of those."
        if self.resume:  # the run's saved settings are used
            return True, ""
        for check in (self._check_choices, self._check_time, self._check_sizes, self._check_input,
                      self._check_finetune):
            ok, reason = check()
            if not ok:
                return ok, reason
        if not _blank(self.difficulty_csv) and not _folder(self.difficulty_csv).is_file():
            return False, f"The difficulty table '{_folder(self.difficulty_csv)}' does not exist; compute it first."
        return True, ""

    def _check_choices(self) -> Check:
        ok, reason = check_preset(self.preset)
        if not ok:
            return ok, reason
        for name, value, known in (("network", self.network, NETWORKS), ("loss", self.loss, LOSSES),
                                   ("schedule", self.curriculum, CURRICULA)):
            if given(value) and _text(value) not in known:
                return False, f"The {name} {value!r} is not one of {', '.join(known)}; choose one of those."
        curriculum = self._effective_curriculum()
        if self.volume_network:
            if curriculum != "none":
                return False, (f"The 3D network {self.network} trains on patches without a curriculum; choose "
                               "'No curriculum', or a 2D network for a curriculum.")
            if self.patch_dimensions() is None:
                return False, (f"The patch size {self.patch_size!r} must be three whole numbers Z,Y,X, each a "
                               f"positive multiple of 16, not all 16 (e.g. {','.join(map(str, DEFAULT_PATCH_SIZE))}).")
        unknown = [metric for metric in self.metrics if metric not in TRAIN_METRICS]
        if curriculum != "none" and (not self.metrics or unknown):
            return False, f"Choose the difficulty metric among {', '.join(TRAIN_METRICS)}."
        return True, ""

    def _check_time(self) -> Check:
        if given(self.minutes):
            number = finite_number(self.minutes)
            if number is None or number < 0:
                return False, (f"The training time {self.minutes!r} must be a positive number of minutes, or 0 to "
                               "train a number of epochs instead.")
        if self.minutes_value() is not None:
            return True, ""  # the trainer plans the epochs (at least one per curriculum group)
        epochs = whole_number(self.epochs)
        if epochs is None or epochs < 1:
            return False, f"The number of epochs {self.epochs!r} must be 1 or more (the paper trains 200)."
        groups = whole_number(self.groups) if given(self.groups) else DEFAULT_GROUPS
        if self._effective_curriculum() in ("vanilla", "anti") and groups is not None and groups > epochs:
            return False, (f"{groups} groups cannot each enter within {epochs} epochs; use fewer groups, more "
                           "epochs, or a training time.")
        return True, ""

    def _check_sizes(self) -> Check:
        for value, what in ((self.groups, "number of groups {} must be 1 or more (the paper uses 6)"),
                            (self.batch_size, "batch size {} must be 1 or more (the paper uses 12)")):
            if given(value) and (whole_number(value) or 0) < 1:
                return False, "The " + what.format(repr(value)) + "."
        if not self.all_data and given(self.folds) and (whole_number(self.folds) or 0) < 2:
            return False, f"Cross-validation needs 2 folds or more, not {self.folds!r}; or tick 'All data'."
        return True, ""

    def _context_used(self) -> int | None:
        """The neighbouring slices the run gives the network (None when the device decides)."""
        if self.volume_network:
            return 0
        if given(self.context):
            return whole_number(self.context)
        return preset_value(PRESET_TRAIN_CONTEXT, self.preset)

    def _check_input(self) -> Check:
        ok, reason = check_context(self.context, self.preset)
        if not ok:
            return ok, reason
        crops = _text(self.size_curriculum)
        if crops and crops.lower() != "off":
            fractions = [finite_number(part) for part in crops.replace(" ", "").split(",")]
            if any(f is None or not 0.25 <= f <= 1.0 for f in fractions) or fractions[-1] != 1.0 \
                    or any(b < a for a, b in zip(fractions, fractions[1:])):
                return False, (f"The size curriculum {self.size_curriculum!r} must be increasing fractions of the "
                               "slice between 0.25 and 1 ending at 1, such as 0.5,0.75,1, or off.")
        if self.volume_network and ((whole_number(self.context) or 0) or (crops and crops.lower() != "off")):
            return False, (f"Neighbouring slices and a size curriculum are for 2D networks; the 3D network "
                           f"{self.network} sees its neighbours in its patches: leave them at the preset's.")
        used, held = self._context_used(), prepared_context(self.prepared)
        if used is not None and held is not None and used > held:
            source = f"the {self.preset} preset's" if not given(self.context) else "the chosen"
            return False, (f"The prepared dataset '{_folder(self.prepared)}' holds {held} neighbouring slice(s) on "
                           f"each side but {source} 2.5D input uses {used}; prepare it again with the same preset, "
                           f"or set the neighbouring slices to {held}.")
        return True, ""

    def _check_finetune(self) -> Check:
        bundle = _text(self.finetune)
        if bundle and bundle != "starter" and not _folder(bundle).is_file():
            return False, f"The model bundle '{_folder(bundle)}' to fine-tune does not exist; choose an .lsb file."
        mapping = _text(self.channel_map)
        if mapping:
            pairs = [part.partition("=") for part in mapping.split(",")]
            if any(not new.strip() or not sep or not old.strip() for new, sep, old in pairs):
                return False, (f"The channel map {self.channel_map!r} must be NEW=OLD pairs separated by commas, "
                               "such as ct=flair.")
        return True, ""

    def notes(self) -> list[str]:
        """Sentences for the user about what the preset does with these settings (not refusals)."""
        if self.resume:
            return ["The run continues with the settings it was started with."]
        notes = []
        minutes = self.minutes_value()
        if self.preset == "paper" and minutes is not None:
            notes.append(f"The paper preset's {DEFAULT_EPOCHS} epochs are replaced by a training time of "
                         f"{minutes:g} minutes; set the time to 0 to train a number of epochs.")
        if self.starter and not given(self.finetune) and PRESET_STARTER.get(self.preset) is False:
            notes.append(f"The {self.preset} preset trains from scratch"
                         + (", as published" if self.preset == "paper" else "")
                         + "; the starter model is used by the cpu preset.")
        return notes

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
        arguments += ["--preset", str(self.preset)]
        minutes = self.minutes_value()
        if minutes is None:
            arguments += ["--epochs", str(whole_number(self.epochs))]
        else:
            arguments += ["--minutes", format(minutes, ".10g")]
        for option, value in (("--model", self.network), ("--loss", self.loss), ("--curriculum", self.curriculum)):
            if given(value):
                arguments += [option, _text(value)]
        if self.network_kwargs:
            arguments += ["--network-kwargs", json.dumps(self.network_kwargs)]
        for option, value in (("--groups", self.groups), ("--batch-size", self.batch_size),
                              ("--context", self.context)):
            if given(value):
                arguments += [option, str(whole_number(value))]
        if given(self.size_curriculum):
            arguments += ["--size-curriculum", _text(self.size_curriculum).replace(" ", "").lower()]
        arguments += ["--device", self.device]
        if self.volume_network:
            arguments += ["--patch-size", ",".join(map(str, self.patch_dimensions() or DEFAULT_PATCH_SIZE))]
        if self.metrics:
            arguments += ["--metric", ",".join(self.metrics)]
        if self.all_data:
            arguments += ["--all-data"]
        elif given(self.folds):
            arguments += ["--folds", str(whole_number(self.folds))]
        if not _blank(self.difficulty_csv):
            arguments += ["--difficulty", str(_folder(self.difficulty_csv))]
        if given(self.finetune):
            bundle = _text(self.finetune)
            arguments += ["--finetune", bundle if bundle == "starter" else str(_folder(bundle))]
        elif not self.starter or self.preset == "paper":
            arguments += ["--from-scratch"]
        if given(self.channel_map):
            arguments += ["--channel-map", _text(self.channel_map).replace(" ", "")]
        return arguments + list(self.extra)
