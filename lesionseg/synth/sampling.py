"""Sampling the continuous phantom (anatomy and lesions) on an image grid for one acquisition.

The phantom lives in head-frame millimetres; an acquisition sees it through the head pose and, when it is
misaligned, through its rigid transform (see :mod:`lesionseg.synth.geometry`). This module evaluates the
implicit surfaces at the grid's voxel centres, turns them into partial-volume tissue maps, rasterises the
lesions in small boxes around each, and for the reference acquisition also decides the label images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lesionseg.synth.distractors import DistractorMaps, DistractorSpec, sample_distractors
from lesionseg.synth.geometry import Affine, Grid, HeadPose, content_to_head
from lesionseg.synth.lesions import LesionSpec, TerritoryParams, lesion_phi, territory_label_array
from lesionseg.synth.phantom import (
    BRAIN_BOX_MM, DEEP_BOX_MM, Anatomy, TissueMaps, evaluate_structures, fraction, ramp_width,
    tissue_label_array, tissue_maps,
)

LESION_TEXTURE = 0.10  # amplitude of the smooth texture inside a lesion, relative to its contrast


@dataclass
class Content:
    """The phantom as one acquisition sees it on the grid; arrays are (z, y, x).

    Attributes:
        maps: Partial-volume tissue maps.
        lesion_fraction: Fraction of each voxel that is lesion, float32 in [0, 1].
        lesion_contrast: Per-voxel factor on the case's lesion contrast (lesion factor x texture).
        labels: Tissue labels at voxel centres (uint8), only for the reference acquisition.
        instances: Lesion instance labels at voxel centres (uint8), reference only.
        territories: Territory labels over the brain (uint8), reference only.
        distractors: The lesion look-alikes on the grid, or None when the case has none.
        skull_depth_mm: Distance inside the skull's inner surface (mm, positive inside), only when asked for.
    """

    maps: TissueMaps
    lesion_fraction: np.ndarray
    lesion_contrast: np.ndarray
    labels: np.ndarray | None = None
    instances: np.ndarray | None = None
    territories: np.ndarray | None = None
    distractors: DistractorMaps | None = None
    skull_depth_mm: np.ndarray | None = None


def sample_content(grid: Grid, pose: HeadPose, anatomy: Anatomy, territories: TerritoryParams,
                   lesions: list[LesionSpec], misalignment=None, with_labels: bool = False,
                   distractors: list[DistractorSpec] | None = None, with_depth: bool = False,
                   hidden: frozenset[int] = frozenset()) -> Content:
    """Sample the phantom on ``grid`` as seen by an acquisition.

    Args:
        grid: The reference grid.
        pose: The head pose.
        anatomy: The drawn head.
        territories: The drawn territory boundaries.
        lesions: The drawn lesions.
        misalignment: The acquisition's rigid transform (see geometry), or None when aligned.
        with_labels: Also decide tissue, lesion-instance and territory labels at voxel centres.
        distractors: The drawn lesion look-alikes, or None (or empty) for none.
        with_depth: Also keep the depth inside the skull's inner surface (for CT beam hardening).
        hidden: Numbers (1-based, in ``lesions`` order) of lesions that go into ``instances`` but not into
            ``lesion_fraction``: regions that the structural scans do not show (a perfusion case's
            hypoperfused tissue; see :mod:`lesionseg.synth.perfusion`).

    Returns:
        The :class:`Content`.
    """
    physical_to_head = content_to_head(pose, misalignment)
    head_to_physical = physical_to_head.inverse()
    index_to_head = physical_to_head @ grid.index_to_physical()
    qx, qy, qz = grid.coordinates(index_to_head)
    fields = {name: field.sample_grid(grid, physical_to_head) for name, field in anatomy.lattices().items()}
    deep_box = head_box(grid, head_to_physical, DEEP_BOX_MM)
    structures = evaluate_structures(anatomy, qx, qy, qz, fields, deep_box)
    tissue = structures.tissue
    lesion_fraction = np.zeros(grid.shape_zyx, np.float32)
    lesion_contrast = np.ones(grid.shape_zyx, np.float32)
    instances = np.zeros(grid.shape_zyx, np.uint8)
    for number, spec in enumerate(lesions, start=1):
        box = grid.index_box(head_to_physical.apply(spec.head_box()))
        if box is None:
            continue
        bx, by, bz = grid.coordinates(index_to_head, box)
        deep = np.minimum(structures.white[box], -structures.ventricles[box]) if spec.kind == "lacunar" else None
        phi = lesion_phi(spec, territories, bx, by, bz, structures.xd[box], structures.yd[box],
                         structures.zd[box], tissue[box], deep)
        frac = fraction(phi, ramp_width(phi, 0.25 * min(grid.spacing_mm)))
        contrast = spec.contrast_factor * (1.0 + LESION_TEXTURE * spec.texture.sample_points(bx, by, bz))
        stronger = (frac > lesion_fraction[box]) & (number not in hidden)
        lesion_fraction[box] = np.where(stronger, frac, lesion_fraction[box])
        lesion_contrast[box] = np.where(stronger, contrast, lesion_contrast[box])
        instances[box] = np.where(phi > 0, np.uint8(number), instances[box])
    content = Content(tissue_maps(structures, grid.spacing_mm), lesion_fraction, lesion_contrast)
    if with_depth:
        content.skull_depth_mm = structures.skull_inner
    if distractors:
        content.distractors = sample_distractors(grid, index_to_head, head_to_physical, structures, distractors,
                                                 territories, lesion_fraction, instances)
    if with_labels:
        content.labels = tissue_label_array(structures)
        content.instances = instances
        content.territories = np.zeros(grid.shape_zyx, np.uint8)
        box = head_box(grid, head_to_physical, BRAIN_BOX_MM)
        content.territories[box] = territory_label_array(
            territories, qx[box], structures.xd[box], structures.yd[box], structures.zd[box],
            content.labels[box] >= 3,
        )
    return content


def head_box(grid: Grid, head_to_physical: Affine, corners_mm):
    """The grid's voxel box (z, y, x slices) holding a head-frame box; an empty box when outside."""
    (x0, y0, z0), (x1, y1, z1) = corners_mm
    corners = np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)])
    box = grid.index_box(head_to_physical.apply(corners))
    return box if box is not None else (slice(0, 0),) * 3
