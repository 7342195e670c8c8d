"""Detect-then-segment: find lesion boxes on a slice, then segment inside each box (Mask R-CNN's two stages).

The curriculum paper trains a Mask R-CNN beside its U-Net. torchvision's Mask R-CNN cannot run here (its PyPI
build fails to import next to this torch) and MONAI's RetinaNet detector imports torchvision too, so this is a
small network of the same design built on MONAI's box utilities, which do not: the anchor generator, the box
coder, the ATSS matcher, the box selector (score threshold, top-k, NMS), GIoU and the focal loss.

Input ``(B, C, H, W)``: the prepared slices with their channels (and neighbouring slices, 2.5D) as channels,
axes batch, channel, row, column; ``H`` and ``W`` multiples of ``2 ** levels`` (16 by default; callers pad,
:func:`lesionseg.models.size_multiple`). Boxes are ``(row0, col0, row1, col1)`` in pixels of the slice
(:mod:`lesionseg.models.boxes`).

- **Backbone**: a U-Net of MONAI ``basic_unet`` blocks, ``features`` = level widths (default 16, 32, 64, 128,
  3 to 5 levels) at strides 2, 4, 8, 16: a strided 3x3 convolution, then per level 2x2 max-pooling and two 3x3
  convolutions (batch normalisation by default, LeakyReLU 0.1); the decoder (transposed convolutions, skips by
  concatenation, two 3x3 convolutions) comes back up to stride 4 only. Nothing runs at full or half resolution,
  where a U-Net spends most of its CPU time (one thread, 12 slices of 128 x 128, both cores otherwise busy: about
  0.45 s per training step against 0.9 s with full-resolution levels, the cpu preset's U-Net 0.2 s); the mask
  head sees the slice itself.
- **Detection** on two levels, strides 4 and 8 (decoder levels; the deepest level when there are 3), each
  through a 1x1 convolution to the head's width (``features[1]``), then one head shared by both levels (two 3x3
  convolutions with ReLU, then per anchor a lesion logit and 4 box deltas: RetinaNet's head, its lesion logits
  starting at a 1 % prior). Anchors (MONAI ``AnchorGenerator``): square, of sides ``anchor_sizes`` pixels per
  level (default 4, 8 and 16 px at stride 4; 32, 64 and 128 px at stride 8), for lesions of about 3 to 150 px.
- **Matching** (training): the boxes of the 8-connected lesion components of each slice's mask are the ground
  truth; MONAI's ``ATSSMatcher`` (4 candidates per level and anchor shape, anchor centres not required inside
  the box, as MONAI advises for small objects) marks the positive anchors.
- **Detection losses**, per slice: sigmoid focal loss (alpha 0.25, gamma 2; MONAI ``FocalLoss``) over every
  anchor, summed and divided by the number of positives (at least 1), and 1 - GIoU between the decoded and the
  true boxes of the positives (mean; scale-free, so 3-pixel and 100-pixel lesions count alike). No hard-negative
  sampling: the focal loss already lets the many easy background anchors fade.
- **Mask head** (the "segment inside each box" stage): each box is grown by ``margin`` of its size on every side
  (at least 2 px) and RoI-aligned onto a ``mask_size`` x ``mask_size`` grid (default 28, Mask R-CNN's) from the
  stride-4 features (one bilinear sample per cell) and the input slice (2 x 2 samples per cell); three 3x3
  convolutions (32 channels, ReLU) and a 1x1 convolution give a mask logit per cell. Trained on the true boxes
  jittered (up to 10 % shift, exp(±0.15) scale) plus one random box per slice (sides 8 px to half the slice, so
  that it also learns to answer "nothing here"), against the slice's whole lesion mask resampled into the region
  (soft targets; a box that holds part of a neighbouring lesion segments it too, as the output is one lesion
  map): binary cross-entropy + soft Dice per region, averaged.
- **Per-slice loss**: focal + (1 - GIoU) + mask loss, unweighted; the step's loss is its batch mean.
- **Output**: detections are the anchors' decoded boxes with a lesion score (sigmoid) above
  ``score_threshold``, the best 100 per level, non-maximum suppression at IoU ``nms_threshold``, at most
  ``max_detections`` per slice (MONAI ``BoxSelector``). Each detection's mask is pasted back over its grown box
  (bilinear; the largest logit where boxes overlap). The forward pass returns ``(B, 2, H, W)`` logits: 0 for the
  background and the pasted mask logit for lesion (so the softmax's lesion probability is the mask's sigmoid),
  :data:`~lesionseg.models.boxes.OUTSIDE_LOGIT` (-20) where no detection reaches. One lesion class only.

Training: :meth:`DetectSegment.training_losses` is the step's loss; the trainer (:mod:`lesionseg.train.loop`)
calls it instead of its configured loss for a network that has it. The box selection (data-dependent NMS) makes
the network unsuitable for ONNX export (:attr:`DetectSegment.onnx_exportable`); it runs with PyTorch.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as functional
from torch import nn

from lesionseg.errors import ParameterError
from lesionseg.models.boxes import OUTSIDE_LOGIT, boxes_from_mask, grow_boxes, jitter_boxes, paste_masks, roi_align

NAME = "detect_segment"
KEYWORDS = ("features", "anchor_sizes", "score_threshold", "nms_threshold", "max_detections", "mask_size", "margin",
            "norm")
DEFAULTS: dict[str, Any] = {"features": [16, 32, 64, 128], "anchor_sizes": [[4, 8, 16], [32, 64, 128]],
                            "score_threshold": 0.3, "nms_threshold": 0.3, "max_detections": 20, "mask_size": 28,
                            "margin": 0.25, "norm": "batch"}
#: width of the mask head's convolutions
MASK_WIDTH = 32
#: candidate boxes kept per detection level before NMS
TOP_PER_LEVEL = 100
#: the focal loss's settings (RetinaNet's) and the lesion prior its classification bias starts from
FOCAL_ALPHA, FOCAL_GAMMA, PRIOR = 0.25, 2.0, 0.01
#: random boxes per slice the mask head trains on besides the true ones
RANDOM_BOXES = 1


def resolve_keywords(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords with their defaults filled in, each checked.

    Raises:
        ParameterError: a value that cannot be used, in one sentence naming the keyword.
    """
    resolved = {**DEFAULTS, **kwargs}

    def bad(keyword: str, wanted: str) -> ParameterError:
        return ParameterError(f"{name}: {keyword} must be {wanted}, not {resolved[keyword]!r}.")

    try:
        features = [int(v) for v in resolved["features"]]
        if len(features) < 3 or any(w < 1 or w != v for w, v in zip(features, resolved["features"])):
            raise ValueError
    except (TypeError, ValueError):
        raise bad("features", "3 to 5 positive integer level widths such as [16, 32, 64, 128]") from None
    if len(features) > 5:
        raise bad("features", "3 to 5 positive integer level widths such as [16, 32, 64, 128]")
    try:
        sizes = [[float(s) for s in level] for level in resolved["anchor_sizes"]]
        if len(sizes) != 2 or not sizes[0] or len(sizes[0]) != len(sizes[1]) or min(min(level) for level in sizes) <= 0:
            raise ValueError
    except (TypeError, ValueError):
        raise bad("anchor_sizes", "two lists of as many positive anchor sides in pixels (the finer level first), "
                                  "such as [[4, 8, 16], [32, 64, 128]]") from None
    for keyword, low, high in (("score_threshold", 0.0, 1.0), ("nms_threshold", 0.0, 1.0), ("margin", 0.0, 1.0)):
        value = resolved[keyword]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high \
                or (keyword != "margin" and value in (low, high)):
            interval = f"between {low:g} and {high:g}" if keyword == "margin" else f"strictly between {low:g} and {high:g}"
            raise bad(keyword, f"a number {interval}")
    for keyword, low, high in (("max_detections", 1, 1000), ("mask_size", 8, 128)):
        value = resolved[keyword]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise bad(keyword, f"a whole number from {low} to {high}")
    if resolved["norm"] not in ("batch", "instance"):
        raise bad("norm", "batch or instance")
    return {**resolved, "features": features, "anchor_sizes": [[s for s in level] for level in sizes],
            "score_threshold": float(resolved["score_threshold"]), "nms_threshold": float(resolved["nms_threshold"]),
            "margin": float(resolved["margin"])}


class DetectSegment(nn.Module):
    """The detect-then-segment network (see the module docstring); keywords as :data:`DEFAULTS`."""

    #: the box selection's shapes depend on the data: the ONNX backend is not tried (lesionseg.infer.backend)
    onnx_exportable = False

    def __init__(self, in_channels: int, out_channels: int = 2, **kwargs: Any) -> None:
        super().__init__()
        from monai.apps.detection.utils.anchor_utils import AnchorGenerator
        from monai.apps.detection.utils.ATSS_matcher import ATSSMatcher
        from monai.apps.detection.utils.box_coder import BoxCoder
        from monai.apps.detection.utils.box_selector import BoxSelector
        from monai.losses import FocalLoss
        from monai.networks.blocks import Convolution
        from monai.networks.nets.basic_unet import Down, UpCat

        if out_channels != 2:
            raise ParameterError(f"{NAME} finds boxes of one lesion class (2 outputs: background, lesion), "
                                 f"not {out_channels - 1} classes.")
        options = resolve_keywords(NAME, kwargs)
        self.in_channels, self.out_channels = int(in_channels), 2
        self.options = options
        widths = options["features"]
        act = ("LeakyReLU", {"negative_slope": 0.1, "inplace": True})
        norm = (options["norm"], {"affine": True}) if options["norm"] == "instance" else "batch"
        # a strided first convolution and a decoder that stops at stride 4: no 3x3 convolution runs at full or
        # half resolution (there they cost a U-Net on a CPU most of its time); the mask head takes the slice
        # itself at full resolution instead
        self.stem = Convolution(2, in_channels, widths[0], strides=2, kernel_size=3, act=act, norm=norm)
        self.encoder = nn.ModuleList([Down(2, widths[i - 1], widths[i], act, norm, True, 0.0)
                                      for i in range(1, len(widths))])
        self.decoder = nn.ModuleList(
            [UpCat(2, widths[i], widths[i - 1], widths[i - 1], act, norm, True, 0.0)
             for i in range(len(widths) - 1, 1, -1)])  # deepest first, down to stride 4
        head_width = widths[1]
        anchors = len(options["anchor_sizes"][0])
        self.laterals = nn.ModuleList([nn.Conv2d(widths[1], head_width, 1), nn.Conv2d(widths[2], head_width, 1)])
        self.head = nn.Sequential(nn.Conv2d(head_width, head_width, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(head_width, head_width, 3, padding=1), nn.ReLU(inplace=True))
        self.classify = nn.Conv2d(head_width, anchors, 3, padding=1)
        self.regress = nn.Conv2d(head_width, 4 * anchors, 3, padding=1)
        nn.init.normal_(self.classify.weight, std=0.01)
        nn.init.constant_(self.classify.bias, -math.log((1 - PRIOR) / PRIOR))  # RetinaNet: every anchor starts at 1 %
        nn.init.normal_(self.regress.weight, std=0.01)
        nn.init.zeros_(self.regress.bias)
        mask_in = widths[1] + in_channels
        self.mask_head = nn.Sequential(
            nn.Conv2d(mask_in, MASK_WIDTH, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(MASK_WIDTH, MASK_WIDTH, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(MASK_WIDTH, MASK_WIDTH, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(MASK_WIDTH, 1, 1))
        self.anchor_generator = AnchorGenerator(sizes=tuple(tuple(level) for level in options["anchor_sizes"]),
                                                aspect_ratios=((1.0,), (1.0,)), indexing="ij")
        self.box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.matcher = ATSSMatcher(num_candidates=4, center_in_gt=False)
        self.selector = BoxSelector(apply_sigmoid=True, score_thresh=options["score_threshold"],
                                    topk_candidates_per_level=TOP_PER_LEVEL, nms_thresh=options["nms_threshold"],
                                    detections_per_img=options["max_detections"])
        self.focal = FocalLoss(gamma=FOCAL_GAMMA, alpha=FOCAL_ALPHA, reduction="none")
        self.multiple = 2 ** len(widths)
        self._anchor_cache: dict[tuple, torch.Tensor] = {}

    # ---- shared parts ------------------------------------------------------------------------------------
    def _features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's features at strides 4 and 8: ``(B, features[1], H/4, W/4)`` and ``(B, features[2], H/8,
        W/8)`` (the deepest encoder level itself when there are three levels)."""
        x = self.stem(images)
        skips = [x]
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        by_level = {len(skips) - 1: x}
        for number, block in enumerate(self.decoder):
            level = len(skips) - 2 - number
            x = block(x, skips[level])
            by_level[level] = x
        return by_level[1], by_level[2]

    def _detect(self, fine: torch.Tensor, coarse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Lesion logits ``(B, N)`` and box deltas ``(B, N, 4)`` of the N anchors (level by level, then row, column
        and anchor shape: MONAI's anchor order), and the locations per level."""
        scores, deltas, locations = [], [], []
        for lateral, level in zip(self.laterals, (fine, coarse)):
            hidden = self.head(lateral(level))
            batch, _, height, width = hidden.shape
            scores.append(self.classify(hidden).permute(0, 2, 3, 1).reshape(batch, -1))
            delta = self.regress(hidden).reshape(batch, -1, 4, height, width)  # (B, A, 4, h, w)
            deltas.append(delta.permute(0, 3, 4, 1, 2).reshape(batch, -1, 4))
            locations.append(height * width)
        return torch.cat(scores, dim=1), torch.cat(deltas, dim=1), locations

    def anchors(self, images: torch.Tensor, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        """The anchors ``(N, 4)`` (boxes in pixels) of slices of this size, cached per size."""
        key = (tuple(images.shape[-2:]), tuple(fine.shape[-2:]), tuple(coarse.shape[-2:]), images.device)
        if key not in self._anchor_cache:
            with torch.no_grad():
                self._anchor_cache[key] = self.anchor_generator(images[:1].float(), [fine[:1], coarse[:1]])[0].float()
        return self._anchor_cache[key]

    def _mask_logits(self, images: torch.Tensor, fine: torch.Tensor, regions: list[torch.Tensor]) -> torch.Tensor:
        """Mask logits ``(sum N_b, M, M)`` of the regions ``regions[b]`` ``(N_b, 4)`` of each slice b."""
        size = self.options["mask_size"]
        image_size = tuple(images.shape[-2:])
        crops = []
        for number, boxes in enumerate(regions):
            if boxes.shape[0]:
                # the stride-4 features: one bilinear sample per cell (their cells are already coarse); the slice:
                # 2 x 2 samples per cell
                crops.append(torch.cat([roi_align(fine[number:number + 1].float(), boxes, image_size, size, 1),
                                        roi_align(images[number:number + 1].float(), boxes, image_size, size)], dim=1))
        if not crops:
            return images.new_zeros((0, size, size))
        return self.mask_head(torch.cat(crops).to(fine.dtype))[:, 0].float()

    # ---- inference ---------------------------------------------------------------------------------------
    def detect(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], tuple]:
        """Detections of each slice: boxes ``(N_b, 4)`` in pixels and scores ``(N_b,)``, and the features."""
        fine, coarse = self._features(images)
        scores, deltas, locations = self._detect(fine, coarse)
        anchors = self.anchors(images, fine, coarse)
        per_level = [n * self.anchor_generator.num_anchors_per_location()[0] for n in locations]
        boxes_out, scores_out = [], []
        for number in range(images.shape[0]):
            boxes = self.box_coder.decode_single(deltas[number].float(), anchors)
            selected, selected_scores, _ = self.selector.select_boxes_per_image(
                list(boxes.split(per_level)), [s[:, None] for s in scores[number].float().split(per_level)],
                tuple(images.shape[-2:]))
            boxes_out.append(selected)
            scores_out.append(selected_scores)
        return boxes_out, scores_out, fine

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 2, H, W)``: 0 (background) and the pasted lesion mask logit (see the module docstring)."""
        boxes, _, fine = self.detect(images)
        image_size = tuple(images.shape[-2:])
        regions = [grow_boxes(b, self.options["margin"]) for b in boxes]
        masks = self._mask_logits(images, fine, regions).split([len(r) for r in regions])
        lesion = torch.stack([paste_masks(m, r, image_size) for m, r in zip(masks, regions)])
        return torch.stack([torch.zeros_like(lesion), lesion], dim=1).to(images.dtype)

    # ---- training ----------------------------------------------------------------------------------------
    def _pad(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad to the size multiple and at least twice it (images with their minimum, masks with background), as
        :func:`lesionseg.models.padding.forward_padded` does."""
        sizes = images.shape[-2:]
        targets = [max(2 * self.multiple, -(-n // self.multiple) * self.multiple) for n in sizes]
        if list(sizes) == targets:
            return images, masks
        pads: list[int] = []
        for n, target in zip(reversed(sizes), reversed(targets)):
            pads += [(target - n) // 2, target - n - (target - n) // 2]
        return (functional.pad(images, pads, value=float(images.min())), functional.pad(masks, pads, value=0))

    def training_losses(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's loss and each slice's loss.

        Args:
            images: ``(B, C, H, W)`` slices.
            masks: ``(B, 1, H, W)`` (or ``(B, H, W)``) lesion masks, 0/1.

        Returns:
            ``(loss, per_sample)``: the batch mean of ``per_sample`` and ``(B,)`` = focal + (1 - GIoU) + mask loss
            of each slice (see the module docstring). In eval mode the mask head sees the true boxes as they are
            (no jitter, no random box), so the per-slice losses are repeatable.
        """
        from monai.data.box_utils import box_pair_giou

        if masks.dim() == 3:
            masks = masks[:, None]
        images, masks = self._pad(images, masks)
        fine, coarse = self._features(images)
        scores, deltas, locations = self._detect(fine, coarse)
        anchors = self.anchors(images, fine, coarse)
        per_location = self.anchor_generator.num_anchors_per_location()[0]
        truth = [torch.as_tensor(boxes_from_mask(m), device=images.device)
                 for m in masks[:, 0].detach().cpu().numpy()]
        detection = []
        for number, boxes in enumerate(truth):
            _, matches = self.matcher(boxes, anchors, locations, per_location)
            matches = matches.to(scores.device)  # MONAI answers an empty slice on the CPU
            positive = matches >= 0
            count = int(positive.sum())
            labels = positive.to(scores.dtype)
            focal = self.focal(scores[number][None, None].float(), labels[None, None].float()).sum() / max(count, 1)
            if count:
                decoded = self.box_coder.decode_single(deltas[number][positive].float(), anchors[positive])
                giou = box_pair_giou(decoded, boxes[matches[positive]])
                focal = focal + (1.0 - giou).mean()
            detection.append(focal)
        mask_loss = self._mask_losses(images, masks, fine, truth)
        per_sample = torch.stack(detection) + mask_loss
        return per_sample.mean(), per_sample

    def _training_regions(self, truth: list[torch.Tensor], image_size: tuple[int, int]) -> list[torch.Tensor]:
        """The regions the mask head trains on: the true boxes (jittered in training mode) and, in training mode,
        :data:`RANDOM_BOXES` random boxes per slice (sides log-uniform from 8 px to half the slice), all grown."""
        height, width = image_size
        regions = []
        for boxes in truth:
            if self.training:
                boxes = jitter_boxes(boxes) if boxes.shape[0] else boxes
                draws = torch.rand(RANDOM_BOXES, 4).to(boxes)
                sides = torch.exp(math.log(8.0) + draws[:, 2:] * (math.log(max(min(height, width) / 2, 9.0))
                                                                   - math.log(8.0)))
                centres = draws[:, :2] * torch.tensor([height, width]).to(boxes)
                boxes = torch.cat([boxes, torch.cat([centres - sides / 2, centres + sides / 2], dim=1)])
            regions.append(grow_boxes(boxes, self.options["margin"]))
        return regions

    def _mask_losses(self, images: torch.Tensor, masks: torch.Tensor, fine: torch.Tensor,
                     truth: list[torch.Tensor]) -> torch.Tensor:
        """Each slice's mask loss ``(B,)``: binary cross-entropy + soft Dice per region, the mean over its regions
        (0 for a slice without regions)."""
        image_size = tuple(images.shape[-2:])
        regions = self._training_regions(truth, image_size)
        logits = self._mask_logits(images, fine, regions)
        size = self.options["mask_size"]
        targets = torch.cat([roi_align(masks[n:n + 1].float(), r, image_size, size)[:, 0]
                             for n, r in enumerate(regions)]) if logits.shape[0] else logits
        bce = functional.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=(1, 2))
        probability = torch.sigmoid(logits)
        overlap = (probability * targets).sum(dim=(1, 2))
        dice = 1.0 - (2.0 * overlap + 1.0) / (probability.sum(dim=(1, 2)) + targets.sum(dim=(1, 2)) + 1.0)
        per_region = bce + dice
        out = []
        for values in per_region.split([len(r) for r in regions]):
            out.append(values.mean() if values.numel() else per_region.new_zeros(()))
        return torch.stack(out)


def build_detect_segment(in_channels: int, out_channels: int, **kwargs: Any) -> DetectSegment:
    """The network of :func:`lesionseg.models.build_network` ``("detect_segment", ...)``."""
    return DetectSegment(in_channels, out_channels, **kwargs)

