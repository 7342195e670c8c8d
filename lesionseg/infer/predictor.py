"""The predictor: a patient's native volumes in, a lesion labelmap and probabilities on the reference grid out.

Steps: check the inputs against the bundle (channel names; a spacing far from the training data's gives a
warning), prepare every brain slice with the bundle's preprocessing (the same code as training), run the
network(s) over the slices in batches under ``torch.inference_mode`` (an ensemble averages its members;
test-time augmentation averages anterior-posterior flips), map the probabilities back through the
recorded inverse, threshold and clean up.

3D bundles (``spatial_dims`` 3 in the manifest): the prepared slices are put back at their slice
positions as one ``(C, Z, S, S)`` volume (grid slices between them that were not kept, e.g. without brain,
are each channel's background, as in 3D training), and the network(s) run over it as a sliding window of
the bundle's training patch size, half-overlapping, blended with Gaussian weights
(:func:`lesionseg.models.sliding.sliding_window_probabilities`). The kept slices' probabilities then
take the same way back to the native grid as a 2D model's.

Hemisphere: the models are trained on slices whose lesion was flipped into one hemisphere. With
``side="left"``/``"right"`` the user says where the lesion is, and slices are flipped to the training side
when needed; with ``side="auto"`` the network sees both orientations and each slice keeps the one that
shows more lesion (:mod:`lesionseg.infer.sides`); a 2D bundle reads the mirrored orientation only on the
slices that can change the result (:func:`lesionseg.infer.sides.read_both_sides`).

Backend: a 2D bundle's networks run on ONNX Runtime when it is installed (exported once per bundle and
cached), else on PyTorch (:mod:`lesionseg.infer.backend`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from lesionseg.data import PERFUSION_CHANNELS
from lesionseg.errors import ParameterError
from lesionseg.infer.sides import SAMPLE_STRIDE
from lesionseg.labels import SegmentLabel
from lesionseg.progress import CancelFlag, ProgressCallback, ignore_progress

LOG = logging.getLogger(__name__)
SIDES = ("auto", "left", "right")
#: a reference spacing further than this factor from the training data's draws a warning
SPACING_WARNING_FACTOR = 1.5


@dataclass
class Prediction:
    """The result of one case.

    Attributes:
        case_id: the case.
        labelmap: uint8 lesion mask on the reference channel's native grid: 0/1, or for a bundle of several
            lesion classes each class's value from the bundle's labels (e.g. 1 core, 2 penumbra).
        probabilities: float32 lesion probabilities on the same grid (any class against the background).
        brain_mask: the brain mask used (same grid).
        lesion_volume_ml: total lesion volume.
        lesions: one row per connected lesion (see :func:`lesionseg.infer.lesions.lesion_table`).
        record: the preparation record (how the slices were made).
        timings: seconds spent in ``preprocess``, ``network``, ``postprocess`` (and ``read`` when files).
        warnings: things the user should know (spacing far from the training data, CPU fallback...).
        tta_variance: with test-time augmentation, the per-voxel variance of the augmented passes.
        device: where the network ran.
        class_volumes_ml: for a bundle of several lesion classes, each class's volume by name; else empty.
    """

    case_id: str
    labelmap: sitk.Image
    probabilities: sitk.Image
    brain_mask: sitk.Image
    lesion_volume_ml: float
    lesions: list[dict[str, Any]]
    record: Any
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    tta_variance: sitk.Image | None = None
    device: str = "cpu"
    class_volumes_ml: dict[str, float] = field(default_factory=dict)


class Predictor:
    """Loads a bundle once and segments cases.

    Args:
        bundle: path of a ``.lsb`` bundle.
        device: "auto" (CUDA, then MPS, then CPU), "cpu", "cuda" or "mps".
        tta: average anterior-posterior flips (test-time augmentation).
        batch_size: slices per network call (sliding windows per call for a 3D bundle).
        threshold: probability threshold (default: the bundle's).
        min_lesion_mm3: lesions smaller than this are removed.
        fill_holes: fill holes enclosed in lesions.
        progress, cancel: progress events and the cancel flag.
        backend: how a 2D bundle's networks run: "auto" (ONNX Runtime when installed, on the CPU), "torch" or
            "onnx" (:mod:`lesionseg.infer.backend`); a fallback to PyTorch is said in :attr:`backend_warnings`
            and in every prediction's warnings.
        cache_dir: where the ONNX export is cached (default: the user's cache folder).
        slice_sizes: 2D bundles: the sides in pixels of the slices the scan is read as, the larger probability
            of the readings kept per voxel; None: the bundle's ``reading_sizes``, else its training size
            (:mod:`lesionseg.bundle.slice_size`).
        reading_agreement: several readings: a lesion of their maximum is kept when their mean reaches this
            fraction of the threshold at one of its voxels (default: the bundle's ``reading_agreement``, else
            :data:`~lesionseg.bundle.slice_size.READING_AGREEMENT`); in (0, 1].
    """

    def __init__(self, bundle: str | os.PathLike, *, device: str = "auto", tta: bool = False, batch_size: int = 16,
                 threshold: float | None = None, min_lesion_mm3: float | None = None, fill_holes: bool = True,
                 progress: ProgressCallback = ignore_progress, cancel: CancelFlag | None = None,
                 backend: str = "auto", cache_dir: str | os.PathLike | None = None,
                 slice_sizes: Sequence[int] | None = None, reading_agreement: float | None = None) -> None:
        from lesionseg.bundle import load_bundle
        from lesionseg.bundle.slice_size import READING_AGREEMENT, reading_sizes
        from lesionseg.device import resolve_device
        from lesionseg.infer.backend import check_backend
        from lesionseg.infer.postprocess import DEFAULT_MIN_LESION_MM3
        from lesionseg.models import min_size, size_multiple, spatial_dims
        from lesionseg.preprocess import PrepareConfig

        if batch_size < 1:
            raise ParameterError(f"--batch-size must be at least 1, not {batch_size}.")
        check_backend(backend)
        self.path = Path(bundle)
        self.bundle = load_bundle(self.path)
        self.manifest = self.bundle.manifest
        self.device = resolve_device(device)
        for network in self.bundle.networks:
            network.to(self.device).eval()
        network_config = self.manifest["network"]
        self.network_name = network_config["name"]
        keywords = dict(network_config.get("kwargs", {}))
        self.spatial_dims = spatial_dims(self.network_name, **keywords)
        self.patch_size: tuple[int, ...] | None = None
        if self.spatial_dims == 3:
            from lesionseg.train.config import DEFAULT_PATCH_SIZE

            self.patch_size = tuple(int(s) for s in self.manifest.get("patch_size") or DEFAULT_PATCH_SIZE)
        self.multiple = size_multiple(self.network_name, **keywords)
        self.minimum = min_size(self.network_name, **keywords)
        settings = dict(self.manifest["preprocessing"])
        settings.update(channels=list(self.manifest["channels"]), reference=self.manifest["reference_channel"])
        self.requested_slice_sizes = None if slice_sizes is None else [int(size) for size in slice_sizes]
        #: 2D: the slice sizes the scan is read at (lesionseg.bundle.slice_size), the first one in :attr:`config`;
        #: a 3D bundle reads its grid once
        self.slice_sizes = [int(settings["size"])]
        if self.spatial_dims == 2:
            self.slice_sizes = reading_sizes(self.manifest, self.requested_slice_sizes, self.minimum, str(self.path))
            settings["size"] = self.slice_sizes[0]
        self.config = PrepareConfig.from_dict(settings)
        self.tta = bool(tta)
        self.batch_size = int(batch_size)
        self.threshold = float(self.manifest.get("threshold", 0.5) if threshold is None else threshold)
        if not 0.0 < self.threshold < 1.0:
            raise ParameterError(f"--threshold must lie strictly between 0 and 1, not {self.threshold}.")
        if reading_agreement is None:
            reading_agreement = self.manifest.get("reading_agreement", READING_AGREEMENT)
        self.reading_agreement = float(reading_agreement)
        if not 0.0 < self.reading_agreement <= 1.0:
            raise ParameterError(f"reading_agreement must lie in (0, 1], not {self.reading_agreement}.")
        self.min_lesion_mm3 = DEFAULT_MIN_LESION_MM3 if min_lesion_mm3 is None else float(min_lesion_mm3)
        self.fill_holes = fill_holes
        self.progress = progress
        self.cancel = cancel
        self.network_seconds = 0.0
        #: side="auto": every this many slices is read in both orientations (1: every slice, two full passes);
        #: see :func:`lesionseg.infer.sides.read_both_sides`
        self.mirror_stride = SAMPLE_STRIDE
        #: side="auto": how many slices the last case read as they are and mirrored
        self.slices_read = (0, 0)
        self.requested_backend = backend
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        #: one slice runner per reading size (an ONNX graph is exported for one slice size)
        self.runners: dict[int, Any] = {}
        self.backend_warnings: list[str] = []
        for size in self.slice_sizes:
            self.runners[size], warnings = self._choose_runner(backend, size)
            self.backend_warnings += [warning for warning in warnings if warning not in self.backend_warnings]
        self.runner = self.runners[self.slice_sizes[0]]
        for warning in self.backend_warnings:
            LOG.warning("%s", warning)

    @property
    def backend(self) -> str:
        """The backend the networks run on: "torch" or "onnx"."""
        return self.runner.name

    def _choose_runner(self, backend: str, size: int) -> tuple[Any, list[str]]:
        from lesionseg.infer.backend import choose_backend

        channels = len(self.config.input_planes(list(self.channels))) * (2 * int(self.config.context_slices) + 1)
        return choose_backend(backend, self.bundle.networks, bundle_path=self.path, device=self.device,
                              spatial_dims=self.spatial_dims, channels=channels, size=int(size),
                              multiple=self.multiple, minimum=self.minimum, cache_dir=self.cache_dir)

    @property
    def channels(self) -> list[str]:
        return list(self.manifest["channels"])

    # ---- inputs -------------------------------------------------------------------------------------
    @property
    def segment_labels(self) -> list[SegmentLabel]:
        """The bundle's lesion classes (background left out), in output order: name, value, colour, terminology."""
        from lesionseg.bundle import segment_labels_of

        return segment_labels_of(self.manifest["labels"])

    def match_channels(self, images: Mapping[str, Any], source: str) -> dict[str, Any]:
        """The inputs renamed and ordered as the bundle expects (BundleError when one is missing)."""
        from lesionseg.bundle import check_channels

        names = check_channels(self.manifest, list(images), str(self.path), source)
        return {needed: images[given] for needed, given in zip(self.channels, names)}

    def spacing_warning(self, reference: sitk.Image) -> str | None:
        expected = self.manifest.get("expected_spacing_mm")
        if not expected:
            return None
        ratios = np.array(reference.GetSpacing()) / np.array(expected, dtype=float)
        if np.any(ratios > SPACING_WARNING_FACTOR) or np.any(ratios < 1 / SPACING_WARNING_FACTOR):
            given = "x".join(f"{v:g}" for v in reference.GetSpacing())
            trained = "x".join(f"{v:g}" for v in expected)
            return (f"the voxel size {given} mm is far from the training data's {trained} mm; "
                    "check the result carefully.")
        return None

    # ---- the network ----------------------------------------------------------------------------------
    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """Mean lesion probability of the members for (B, C, S, S) slices -> (B, S, S), on the chosen backend."""
        return self.runner(batch)

    def _run_batches(self, slices: np.ndarray, warnings: list[str]) -> np.ndarray:
        """Probabilities for all slices, halving the batch on GPU out-of-memory errors, then using the CPU."""
        import torch

        outputs = []
        start = 0
        batch_size = self.batch_size
        while start < len(slices):
            if self.cancel:
                self.cancel.raise_if_cancelled()
            try:
                began = time.perf_counter()
                outputs.append(self._forward(slices[start:start + batch_size]))
                self.network_seconds += time.perf_counter() - began
                start += batch_size
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if batch_size > 1:
                    batch_size = max(1, batch_size // 2)
                    warnings.append(f"the GPU ran out of memory; the batch was halved to {batch_size} slices.")
                else:
                    self.device = torch.device("cpu")
                    for network in self.bundle.networks:
                        network.to(self.device)
                    self.runner, _ = self._choose_runner("torch")
                    warnings.append("the GPU ran out of memory even for one slice; continuing on the CPU.")
        return np.concatenate(outputs) if outputs else np.zeros((0,) + slices.shape[2:], np.float32)

    def _run_volume(self, slices: np.ndarray, slice_indices: Any, warnings: list[str]) -> np.ndarray:
        """3D: probabilities (N, S, S) of slices (N, C, S, S) at grid positions ``slice_indices`` (None:
        consecutive), from a sliding window over the volume they form; on a GPU out-of-memory error the
        networks move to the CPU."""
        import torch

        from lesionseg.models.sliding import sliding_window_probabilities
        from lesionseg.preprocess.volume import channel_background, slices_to_volume

        indices = np.arange(len(slices)) if slice_indices is None else np.asarray(slice_indices, dtype=np.int64)
        stack, first = slices_to_volume(slices, indices, fill=channel_background(slices))
        volume = np.ascontiguousarray(stack.transpose(1, 0, 2, 3))  # (C, Z, S, S): axes (z, y, x)
        check = self.cancel.raise_if_cancelled if self.cancel else None
        began = time.perf_counter()
        try:
            probabilities = sliding_window_probabilities(self.bundle.networks, volume, self.patch_size,
                                                         device=self.device, batch_size=self.batch_size,
                                                         before_window=check)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            self.device = torch.device("cpu")
            for network in self.bundle.networks:
                network.to(self.device)
            warnings.append("the GPU ran out of memory for the 3D sliding window; continuing on the CPU.")
            probabilities = sliding_window_probabilities(self.bundle.networks, volume, self.patch_size,
                                                         device=self.device, batch_size=self.batch_size,
                                                         before_window=check)
        self.network_seconds += time.perf_counter() - began
        return probabilities[indices - first]

    def slice_probabilities(self, slices: np.ndarray, warnings: list[str] | None = None,
                            slice_indices: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Lesion probabilities of prepared slices (N, C, S, S) -> (N, S, S), with test-time augmentation when
        on (mean of the slices and their anterior-posterior flips; the variance is returned too).

        ``slice_indices`` (3D bundles only): each slice's index along the prepared grid's slice axis
        (``record.slice_indices``), so that the volume has its gaps where slices were not kept; None means
        consecutive slices. 2D bundles ignore it.
        """
        warnings = [] if warnings is None else warnings
        if self.spatial_dims == 3:
            def run(stack: np.ndarray) -> np.ndarray:
                return self._run_volume(stack, slice_indices, warnings)
        else:
            def run(stack: np.ndarray) -> np.ndarray:
                return self._run_batches(stack, warnings)
        plain = run(slices)
        if not self.tta:
            return plain, None
        flipped = run(slices[..., ::-1, :])[..., ::-1, :]
        passes = np.stack([plain, flipped])
        return passes.mean(axis=0), passes.var(axis=0)

    def _both_sides(self, inputs: np.ndarray, warnings: list[str],
                    indices: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """``side="auto"``: the probabilities ``(N, S, S)`` (and variance) of slices ``(N, C, S, S)`` read in both
        orientations, each slice keeping the one that shows more lesion (:mod:`lesionseg.infer.sides`).

        A 2D bundle reads each slice only in the orientations that can change the result
        (:func:`lesionseg.infer.sides.read_both_sides`, sampling every :attr:`mirror_stride`-th slice); a 3D
        bundle's sliding window reads the whole volume in both.
        """
        from lesionseg.infer.sides import AS_IS, choose_orientation, read_both_sides

        if self.spatial_dims == 3:
            probabilities, variance = self.slice_probabilities(inputs, warnings, indices)
            mirrored, mirrored_variance = self.slice_probabilities(inputs[..., ::-1].copy(), warnings, indices)
            combined, use_mirrored = choose_orientation(probabilities, mirrored[..., ::-1], self.threshold)
            if variance is not None:
                variance = np.where(use_mirrored[:, None, None], mirrored_variance[..., ::-1], variance)
            self.slices_read = (len(inputs), len(inputs))
            return combined, variance

        def run(orientation: int, which: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            if orientation == AS_IS:
                return self.slice_probabilities(inputs[which], warnings)
            found, spread = self.slice_probabilities(np.ascontiguousarray(inputs[which][..., ::-1]), warnings)
            return found[..., ::-1], None if spread is None else spread[..., ::-1]

        combined, _, variance, read = read_both_sides(len(inputs), run, self.threshold, stride=self.mirror_stride)
        self.slices_read = (int(read[0].sum()), int(read[1].sum()))
        return combined, variance

    def class_shares(self, inputs: np.ndarray, both_sides: bool) -> np.ndarray:
        """For a bundle of K lesion classes: each class's share of the lesion probability, (N, K, S, S), of
        prepared slices (N, C, S, S) (PyTorch, members averaged). ``both_sides``: the slices are read as they
        are and mirrored, and each class's probabilities of both readings are summed before the shares are
        taken, so that the reading that sees more lesion weighs more (as ``side="auto"`` does for the mask). With
        test-time augmentation each reading adds its anterior-posterior flip, as :meth:`slice_probabilities` does."""
        from lesionseg.train.validate import predict_probabilities

        def softmax(stack: np.ndarray) -> np.ndarray:  # the lesion classes' softmax, members averaged
            return np.mean([predict_probabilities(network, stack, device=self.device, batch_size=self.batch_size,
                                                  multiple=self.multiple, minimum=self.minimum,
                                                  all_classes=True)[:, 1:]
                            for network in self.bundle.networks], axis=0)

        def reading(stack: np.ndarray) -> np.ndarray:  # with TTA: plus the anterior-posterior flip (rows reversed)
            found = softmax(stack)
            if self.tta:
                found = found + softmax(np.ascontiguousarray(stack[..., ::-1, :]))[..., ::-1, :]
            return found

        began = time.perf_counter()
        lesion_classes = reading(inputs)
        if both_sides:
            lesion_classes = lesion_classes + reading(np.ascontiguousarray(inputs[..., ::-1]))[..., ::-1]
        self.network_seconds += time.perf_counter() - began
        return (lesion_classes / np.maximum(lesion_classes.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def _class_labelmap(self, labelmap: sitk.Image, shares: np.ndarray, record: Any, box: Any) -> sitk.Image:
        """The lesion mask (0/1, on ``box`` of the native grid) with each voxel given the value of its most
        probable class (shares carried to the native grid as probabilities are)."""
        from lesionseg.preprocess import invert

        native_shares = np.stack([sitk.GetArrayFromImage(invert(np.ascontiguousarray(shares[:, k]), record,
                                                                kind="probability", box=box))
                                  for k in range(shares.shape[1])])
        lesion = sitk.GetArrayViewFromImage(labelmap) > 0
        values = np.asarray([label.value for label in self.segment_labels], np.uint8)
        classes = np.where(lesion, values[np.argmax(native_shares, axis=0)], 0).astype(np.uint8)
        result = sitk.GetImageFromArray(classes)
        result.CopyInformation(labelmap)
        return result

    def postprocess(self, probabilities: np.ndarray, variance: np.ndarray | None, prepared: Any,
                    *, crop: bool = True, shares: np.ndarray | None = None,
                    others: Sequence[tuple[np.ndarray, Any]] = ()
                    ) -> tuple[sitk.Image, sitk.Image, list[dict[str, Any]], sitk.Image | None]:
        """From slice probabilities to the native mask, probabilities, lesion table and TTA variance.

        Args:
            probabilities: (N, S, S) lesion probabilities of the prepared slices, in record order.
            variance: (N, S, S) TTA variance, or None.
            prepared: the case as :func:`lesionseg.preprocess.prepare_images` gave it (record, native brain).
            crop: work on the box of the native grid that the prepared grid covers (zeros elsewhere; a
                512 x 512 x 300 CT is mostly air, neck and skull around a brain box of a fraction of its
                voxels), then paste; False works on the whole grid (the same result, slower).
            shares: for a bundle of several lesion classes, :meth:`class_shares` of the same slices: the
                labelmap then holds each lesion voxel's class value. The lesion mask itself (what is lesion)
                does not depend on them.
            others: the same case read at other slice sizes (:meth:`_other_readings`): each voxel's probability
                is the largest of the readings' on the native grid, and a lesion is kept when the readings' mean
                reaches :attr:`reading_agreement` times the threshold in it (:mod:`lesionseg.bundle.slice_size`).

        Returns:
            ``(labelmap, probabilities, lesions, tta_variance)`` on the reference channel's native grid.
        """
        from lesionseg.infer.lesions import lesion_table
        from lesionseg.infer.postprocess import keep_confirmed_lesions, lesion_mask
        from lesionseg.preprocess import invert
        from lesionseg.io.geometry import crop_to_box, paste_into
        from lesionseg.preprocess.invert import footprint_box

        record, brain = prepared.record, prepared.native_brain
        box = footprint_box(record) if crop else None
        box_probabilities = invert(probabilities, record, kind="probability", box=box)
        readings_sum = box_probabilities
        for found, other_record in others:  # on the same native grid and box
            other = invert(found, other_record, kind="probability", box=box)
            box_probabilities = sitk.Maximum(box_probabilities, other)
            readings_sum = readings_sum + other
        box_brain = brain if box is None else crop_to_box(brain, box)
        box_labelmap = lesion_mask(box_probabilities, threshold=self.threshold, min_lesion_mm3=self.min_lesion_mm3,
                                   fill_holes=self.fill_holes, brain=box_brain)
        if others:
            box_labelmap = keep_confirmed_lesions(box_labelmap, readings_sum / (len(others) + 1.0),
                                                  self.reading_agreement * self.threshold)
        lesions = lesion_table(box_labelmap, record.midplane, box_probabilities)
        if shares is not None:
            box_labelmap = self._class_labelmap(box_labelmap, shares, record, box)
        tta_variance = None
        if variance is not None:
            tta_variance = paste_into(invert(variance, record, kind="probability", box=box), record.native, box)
        return (paste_into(box_labelmap, record.native, box), paste_into(box_probabilities, record.native, box),
                lesions, tta_variance)

    def _read(self, inputs: np.ndarray, side: str, warnings: list[str],
              indices: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """The probabilities (and TTA variance) ``(N, S, S)`` of prepared slices ``(N, C, S, S)`` for ``side``."""
        if side == "auto":  # both orientations; each slice keeps the one with more lesion
            return self._both_sides(inputs, warnings, indices)
        return self.slice_probabilities(inputs, warnings, indices)

    def _other_readings(self, others: list[Any], side: str,
                        warnings: list[str]) -> list[tuple[np.ndarray, Any]]:
        """The case read again at each of :attr:`slice_sizes` after the first (``others``: the case prepared at
        those sizes, same brain mask and mid-plane, so the same square of the head in finer pixels):
        ``[(probabilities (N', S', S'), record)]`` for :meth:`postprocess`."""
        readings = []
        for size, other in zip(self.slice_sizes[1:], others):
            self.runner = self.runners[size]
            try:
                found, _ = self._read(other.network_input(self.config.context_slices), side, warnings,
                                      other.record.slice_indices)
            finally:
                self.runner = self.runners[self.slice_sizes[0]]
            readings.append((found, other.record))
        return readings

    # ---- one case -------------------------------------------------------------------------------------
    def predict(self, images: Mapping[str, Any], *, side: str = "auto", brain_mask: sitk.Image | None = None,
                case_id: str = "case") -> Prediction:
        """Segment one case.

        Args:
            images: channel name -> native volume (``SimpleITK.Image`` or a path), names as the bundle's
                channels (any order, case-insensitive).
            side: "auto", "left" or "right" (see the module docstring).
            brain_mask: a brain mask on the reference channel's grid, used instead of brain extraction.
            case_id: named in messages and the record.

        Returns:
            The :class:`Prediction`.

        Raises:
            LesionSegError: inputs that do not fit the bundle or cannot be prepared.
        """
        from lesionseg.data.validation import lesion_volume_ml
        from lesionseg.io import read_image, read_mask
        from lesionseg.preprocess import prepare_images_at_sizes
        from lesionseg.preprocess.normalise import check_finite

        if side not in SIDES:
            raise ParameterError(f"--side must be one of {', '.join(SIDES)}, not {side!r}.")
        timings: dict[str, float] = {}
        warnings: list[str] = list(self.backend_warnings)
        began = time.perf_counter()
        ordered = self.match_channels(images, case_id)
        volumes: dict[str, sitk.Image] = {}
        for name, value in ordered.items():
            image = value if isinstance(value, sitk.Image) else read_image(value)
            image = sitk.Cast(image, sitk.sitkFloat32) if image.GetPixelID() != sitk.sitkFloat32 else image
            if not isinstance(value, sitk.Image) and name in PERFUSION_CHANNELS:  # a map's units: its sidecar
                from lesionseg.data.sidecar import map_units
                from lesionseg.preprocess.perfusion import UNITS_METADATA_KEY

                image.SetMetaData(UNITS_METADATA_KEY, map_units(value, name))
            volumes[name], _ = check_finite(image, case_id=case_id, channel=name, replace=self.config.replace_nonfinite)
        reference = volumes[self.config.reference]
        if brain_mask is not None and not isinstance(brain_mask, sitk.Image):
            brain_mask = read_mask(brain_mask, reference=reference)
        timings["read"] = time.perf_counter() - began
        warning = self.spacing_warning(reference)
        if warning:
            warnings.append(warning)

        began = time.perf_counter()
        chosen_side = None if side == "auto" else side
        prepared, *others = prepare_images_at_sizes(volumes, self.config, self.slice_sizes, case_id=case_id,
                                                    user_brain=brain_mask, training=False, side=chosen_side)
        timings["preprocess"] = time.perf_counter() - began
        brain_warning = prepared.record.steps.get("brain_extraction", {}).get("warning")
        if brain_warning:  # an atypical brain volume is kept, and said
            warnings.append(f"{brain_warning}.")

        self.network_seconds = 0.0
        indices = prepared.record.slice_indices
        inputs = prepared.network_input(self.config.context_slices)  # (N, C (2k + 1), S, S)
        probabilities, variance = self._read(inputs, side, warnings, indices)
        finer = self._other_readings(others, side, warnings)
        shares, classes = None, self.segment_labels
        if len(classes) > 1:  # several lesion classes: which class each lesion voxel is
            shares = self.class_shares(inputs, both_sides=side == "auto")
        timings["network"] = self.network_seconds
        self.progress({"event": "progress", "stage": "network", "done": 1, "total": 1, "message": case_id})

        began = time.perf_counter()
        record = prepared.record
        brain = prepared.native_brain
        labelmap, native_probabilities, lesions, tta_variance = self.postprocess(probabilities, variance, prepared,
                                                                                 shares=shares, others=finer)
        timings["postprocess"] = time.perf_counter() - began
        class_volumes = {} if shares is None else {
            label.name: lesion_volume_ml(labelmap == label.value) for label in classes}
        return Prediction(
            case_id=case_id, labelmap=labelmap, probabilities=native_probabilities, brain_mask=brain,
            lesion_volume_ml=float(sum(row["volume_ml"] for row in lesions)), lesions=lesions, record=record,
            timings=timings, warnings=warnings, tta_variance=tta_variance, device=self.device.type,
            class_volumes_ml=class_volumes,
        )
