"""The training configuration, saved as ``train_config.json`` with every run and inside its bundle."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from lesionseg.errors import ParameterError

OPTIMISERS = ("rmsprop", "adam", "sgd")
LR_SCHEDULES = ("constant", "cosine", "step", "plateau")
CURRICULA = ("vanilla", "anti", "spl", "none")
DIFFICULTY_METRICS = ("area", "contrast", "gradient", "human")
GROUPINGS = ("quantile", "step")
#: the default 3D training patch (z, y, x) in voxels
DEFAULT_PATCH_SIZE = (16, 64, 64)


def check_adversarial_weight(weight: Any) -> float:
    """The weight of the adversarial critic's term as a float; ParameterError when it is not a number >= 0."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
        raise ParameterError(f"--adversarial must be a weight of 0 or more (e.g. 0.1; 0 = no critic), not {weight!r}.")
    return float(weight)


def _patch_size(value: Any) -> tuple[int, int, int]:
    """Three positive integers (z, y, x), from a tuple, a list (JSON) or ``"16,64,64"``."""
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 3 or min(sizes) < 1:
        raise ParameterError(f"--patch-size must be three positive integers Z,Y,X such as 16,64,64, not {text!r}.")
    return sizes  # type: ignore[return-value]


@dataclass
class TrainConfig:
    """Everything a training run depends on (paths are strings so that the JSON is portable).

    Attributes:
        network, network_kwargs: the network by name (``lesionseg.models``) and its keyword arguments.
        loss, loss_kwargs: the loss by name (``lesionseg.losses``) and its keyword arguments.
        optimiser: "rmsprop" (the paper's), "adam" or "sgd"; lr, weight_decay, momentum.
        lr_schedule: "constant", "cosine" (to 1 % of lr), "step" (x0.1 at 2/3 of training) or "plateau".
        batch_size: slices per batch (the paper's 12), or patches per batch for a 3D network; epochs: total
            epochs (the paper's 200).
        curriculum: "vanilla", "anti", "spl" (self-paced) or "none" (default: "vanilla" for a 2D network,
            "none" for a 3D one); metrics: difficulty metrics combined by rank average; difficulty_csv: a table
            from ``lesionseg difficulty`` (computed when absent); groups, grouping: K groups by "quantile" or
            "step". The curricula order 2D slices by difficulty; a 3D network trains on patches of whole cases
            and supports "none" only (other values are refused).
        spl_growth: per-epoch growth of the self-paced threshold.
        folds: number of cross-validation folds; fold: train only this fold (0-based); all_data: one model on
            every case, no validation.
        hold_out_min_cases: with fewer eligible cases than this, one model is trained on every case (as
            ``all_data``; the final weights are kept) instead of the folds asked for; 0: never. Holding two
            of ten cases out for validation costs the model a fifth of its few examples, which the choice of a
            checkpoint does not win back (:data:`lesionseg.train.presets.HOLD_OUT_MIN_CASES`).
        min_lesion_ml: drop training cases whose lesion is smaller (the transfer paper's 2.5 mL).
        augmentation: keyword arguments of ``lesionseg.train.augment.AugmentConfig`` ({} = defaults;
            {"enabled": false} turns it off).
        precision: "fp32", "bf16" or "fp16"; device: "auto", "cpu", "cuda" or "mps".
        seed, deterministic: reproducibility (deterministic mode makes a resumed run end with the same
            weights as an uninterrupted one).
        val_every: validate every N epochs; early_stopping: stop after this many validations without a
            better Dice (0 = never).
        checkpoint_every: write the resumable checkpoint every N epochs (and at the end).
        finetune_from: a bundle whose weights start the training (fine-tuning); freeze_encoder: keep its
            encoder's weights fixed.
        num_threads: CPU threads for torch (0 = torch's default).
        log_iterations: emit an iteration progress event every N iterations (0 = none).
        patch_size: 3D networks only: the training patch (z, y, x) in voxels (z along the prepared slices,
            y rows, x columns); every size a multiple of the network's :func:`lesionseg.models.size_multiple`
            (16 for ``unet3d`` and ``unet2plus1d``). It is also the sliding window at validation and
            inference. Ignored by 2D networks.
        patches_per_volume: 3D only: patches drawn from each training case every epoch.
        min_lesion_patch_fraction: 3D only: at least this share of a case's patches contain lesion
            (rejection sampling, :func:`lesionseg.train.patches.sample_patches`; 0.4 as published).
            3D training needs whole volumes: prepare with ``--negatives 1`` (see :mod:`lesionseg.train.volumes`).
        preset: the preset the run started from (:mod:`lesionseg.train.presets`; recorded, None: none).
        minutes: a time budget for the whole run (every fold) in minutes: the trainer measures its pace and
            plans the epochs, the validations and the schedules to end within it (:mod:`lesionseg.train.budget`);
            ``epochs`` is then planned, not read. None: train ``epochs`` epochs.
        context_slices: 2D networks: neighbouring slices on each side given as extra input channels (2.5D
            input; 0 = the slice alone). The prepared dataset must hold at least as many.
        size_curriculum: 2D networks: crop sizes as fractions of the slice, one per equal share of the
            epochs (e.g. [0.5, 0.75, 1.0]: the first third trains on half-size crops); [] = full slices.
        starter_if_fits: fine-tune from the shipped starter model when it fits the run (its channels after
            ``channel_map``, network, input depth and normalisation), else train from scratch and say why.
        channel_map: with ``finetune_from``: the run's channel -> the bundle's channel, e.g. {"ct": "flair"}.
        finetune_lr: the learning rate of a run that starts from a bundle (``finetune_from`` or the starter);
            None: ``lr``. A lower rate keeps more of what the bundle learned from many cases when the run has
            few (measured: 3e-4 against 1e-3 after 5 minutes on 8 cases, held-out Dice 0.614 against 0.601; 1e-4
            against 3e-4 after 15 minutes on 7 real-anatomy cases, 0.816 against 0.796 over two seeds).
        adversarial: the weight of the adversarial critic's term (:mod:`lesionseg.train.adversarial`); 0 = no
            critic. 2D networks in one process only.
        rehearsal: synthetic cases of the starter's own recipe trained on beside the run's cases when it fine-tunes
            a shipped starter (:mod:`lesionseg.train.rehearsal`): "auto" (as many as the run's own training
            cases, at most 16, and none when it does not start from a starter; the cpu and gpu presets' value), a
            number, or 0 (none; the default without a preset).
        inference_scale: 2D networks: the bundle reads new scans at the training slice size and also at this
            many times it (rounded to the network's size multiple), keeping the larger probability per voxel;
            recorded as the manifest's ``reading_sizes``, e.g. 1.25: 128-pixel training slices, read at 128 and
            160 (:mod:`lesionseg.bundle.slice_size`; the bundle also records the readings' agreement, 1 when every
            channel is CT, else 0.9). "auto" (the cpu preset's): 1.25 and 1.5 (128-pixel slices read at 128, 160
            and 192). 1: read at the training size alone.
    """

    network: str = "unet2d"
    network_kwargs: dict[str, Any] = field(default_factory=dict)
    loss: str = "ce_dice"
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    optimiser: str = "rmsprop"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.9
    lr_schedule: str = "constant"
    batch_size: int = 12
    epochs: int = 200
    curriculum: str | None = None  # None: "vanilla" for a 2D network, "none" for a 3D one
    metrics: list[str] = field(default_factory=lambda: ["contrast"])
    difficulty_csv: str | None = None
    groups: int = 6
    grouping: str = "quantile"
    spl_growth: float = 1.1
    folds: int = 5
    fold: int | None = None
    all_data: bool = False
    hold_out_min_cases: int = 0
    min_lesion_ml: float = 0.0
    augmentation: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    val_every: int = 5
    early_stopping: int = 0
    checkpoint_every: int = 1
    finetune_from: str | None = None
    freeze_encoder: bool = False
    num_threads: int = 0
    log_iterations: int = 0
    patch_size: tuple[int, int, int] = DEFAULT_PATCH_SIZE
    patches_per_volume: int = 8
    min_lesion_patch_fraction: float = 0.4
    preset: str | None = None
    minutes: float | None = None
    context_slices: int = 0
    size_curriculum: list[float] = field(default_factory=list)
    starter_if_fits: bool = False
    channel_map: dict[str, str] = field(default_factory=dict)
    finetune_lr: float | None = None
    adversarial: float = 0.0
    rehearsal: int | str = 0
    inference_scale: float | str = 1.0

    def __post_init__(self) -> None:
        self.patch_size = _patch_size(self.patch_size)
        if self.curriculum is None:
            self.curriculum = "none" if self.is_3d else "vanilla"
        self.validate()

    @property
    def is_3d(self) -> bool:
        """Whether the network is 3D (trained on patches); False for an unknown name (refused by validate)."""
        from lesionseg.models import NETWORKS, spatial_dims

        if self.network not in NETWORKS:
            return False
        return spatial_dims(self.network, **self.network_kwargs) == 3

    def validate(self) -> None:
        """Raise :class:`ParameterError` (naming the option) for a value that cannot be used."""
        from lesionseg.losses import LOSSES
        from lesionseg.models import FITTED_NETWORKS, NETWORKS

        if self.network not in NETWORKS and self.network not in FITTED_NETWORKS:
            raise ParameterError(f"--model {self.network!r} is not a known network; choose among {', '.join(NETWORKS)}.")
        if self.loss not in LOSSES:
            raise ParameterError(f"--loss {self.loss!r} is not a known loss; choose among {', '.join(LOSSES)}.")
        self._choice("optimiser", OPTIMISERS)
        self._choice("lr_schedule", LR_SCHEDULES)
        self._choice("curriculum", CURRICULA)
        self._choice("grouping", GROUPINGS)
        unknown = [m for m in self.metrics if m not in DIFFICULTY_METRICS]
        if unknown or not self.metrics:
            raise ParameterError(f"--metric must name one or more of {', '.join(DIFFICULTY_METRICS)}, "
                                 f"not {','.join(self.metrics) or 'nothing'}.")
        for name in ("batch_size", "epochs", "groups", "folds", "val_every", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParameterError(f"--{name.replace('_', '-')} must be a positive integer, not {value!r}.")
        value = self.hold_out_min_cases
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ParameterError(f"hold_out_min_cases must be zero or a positive integer, not {value!r}.")
        if self.folds < 2 and self.fold is None and not self.all_data:
            raise ParameterError("--folds must be at least 2 (or use --all-data for one model on every case).")
        if self.fold is not None and not 0 <= self.fold < self.folds:
            raise ParameterError(f"--fold must be between 0 and {self.folds - 1}, not {self.fold}.")
        if not self.lr > 0:
            raise ParameterError(f"--lr must be positive, not {self.lr!r}.")
        if self.finetune_lr is not None and not self.finetune_lr > 0:
            raise ParameterError(f"--finetune-lr must be positive, not {self.finetune_lr!r}.")
        if self.min_lesion_ml < 0:
            raise ParameterError(f"--min-lesion-ml must be zero or positive, not {self.min_lesion_ml!r}.")
        if self.early_stopping < 0:
            raise ParameterError(f"--early-stopping must be zero or positive, not {self.early_stopping!r}.")
        if not self.spl_growth > 1:
            raise ParameterError(f"--spl-growth must be above 1, not {self.spl_growth!r}.")
        value = self.patches_per_volume
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"--patches-per-volume must be a positive integer, not {value!r}.")
        if not 0.0 <= float(self.min_lesion_patch_fraction) <= 1.0:
            raise ParameterError(f"min_lesion_patch_fraction must be between 0 and 1, "
                                 f"not {self.min_lesion_patch_fraction!r}.")
        self._validate_budget_and_input()
        if self.is_3d:
            self._validate_3d()

    def _validate_budget_and_input(self) -> None:
        """The time budget, the 2.5D input, the size curriculum and the channel map."""
        if self.minutes is not None:
            if isinstance(self.minutes, bool) or not isinstance(self.minutes, (int, float)) \
                    or not math.isfinite(self.minutes) or self.minutes <= 0:
                raise ParameterError(f"--minutes must be a positive number of minutes, not {self.minutes!r}.")
        value = self.context_slices
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 4:
            raise ParameterError(f"--context must be a whole number of neighbouring slices from 0 to 4, not {value!r}.")
        fractions = list(self.size_curriculum or [])
        if any(isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.25 <= f <= 1.0 for f in fractions) \
                or any(b < a for a, b in zip(fractions, fractions[1:])) or (fractions and fractions[-1] != 1.0):
            raise ParameterError(f"--size-curriculum must be increasing fractions of the slice between 0.25 and 1 "
                                 f"ending at 1, such as 0.5,0.75,1, not {self.size_curriculum!r}.")
        self.size_curriculum = [float(f) for f in fractions]
        if not isinstance(self.channel_map, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and k and v for k, v in self.channel_map.items()):
            raise ParameterError(f"--channel-map must map channel names to channel names, such as ct=flair, "
                                 f"not {self.channel_map!r}.")
        check_adversarial_weight(self.adversarial)
        from lesionseg.bundle.slice_size import check_scale

        check_scale(self.inference_scale)
        if self.inference_scale != "auto":
            self.inference_scale = float(self.inference_scale)
        value = self.rehearsal
        if value != "auto" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ParameterError(f"--rehearsal must be auto or a whole number of cases (0 = none), not {value!r}.")
        if self.adversarial and self.network == "detect_segment":
            raise ParameterError("--adversarial judges the masks a network predicts while it trains, but "
                                 "--model detect_segment trains on boxes and box masks with losses of its own: "
                                 "leave --adversarial at 0.")
        if self.adversarial and self.is_3d:
            raise ParameterError(f"--adversarial trains a 2D critic on slices; the 3D network {self.network} "
                                 "trains on patches: leave it at 0.")
        if self.is_3d and (self.context_slices or self.size_curriculum):
            raise ParameterError(f"--context and --size-curriculum are for 2D networks; the 3D network "
                                 f"{self.network} sees its neighbours in its patches: leave them at 0 and off.")

    def _validate_3d(self) -> None:
        """The options a 3D network constrains: the curriculum and the patch size."""
        from lesionseg.models import size_multiple

        if self.curriculum != "none":
            raise ParameterError(f"--curriculum {self.curriculum} orders 2D slices by difficulty, but the 3D network "
                                 f"{self.network} trains on patches of whole cases: use --curriculum none.")
        multiple = size_multiple(self.network, **self.network_kwargs)
        deepest = [size // multiple for size in self.patch_size]
        if any(size % multiple for size in self.patch_size) or min(deepest) < 1 or math.prod(deepest) < 2:
            fitting = [max(multiple, -(-size // multiple) * multiple) for size in self.patch_size]
            if math.prod(s // multiple for s in fitting) < 2:
                fitting[-1] *= 2
            raise ParameterError(
                f"--patch-size {','.join(map(str, self.patch_size))} does not fit the network {self.network}: each "
                f"size must be a multiple of {multiple} (its downsampling factor) and not all equal to it, "
                f"e.g. {','.join(map(str, fitting))}.")

    def _choice(self, name: str, choices: tuple[str, ...]) -> None:
        if getattr(self, name) not in choices:
            raise ParameterError(f"--{name.replace('_', '-')} must be one of {', '.join(choices)}, "
                                 f"not {getattr(self, name)!r}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"unknown training option(s): {', '.join(unknown)}.")
        return cls(**data)

    def save(self, path: str | os.PathLike) -> None:
        from lesionseg.io import write_json_atomic

        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainConfig":
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ParameterError(f"{path} does not exist.") from None
        except json.JSONDecodeError as error:
            raise ParameterError(f"{path} is not valid JSON ({error}).") from error
