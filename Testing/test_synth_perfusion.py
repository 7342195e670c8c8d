"""Synthetic perfusion cases (:mod:`lesionseg.synth.perfusion`) and the threshold rule on them
(:mod:`lesionseg.infer.perfusion_threshold`): maps consistent with the drawn tissue fate, with overlap, and a
rule that is sensible but not exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.errors import ParameterError
from lesionseg.infer.perfusion_threshold import threshold_perfusion
from lesionseg.preprocess.midplane import Midplane
from lesionseg.synth import make_case, write_case

SMALL = dict(size_xyz=(96, 112, 24), spacing_mm=(2.0, 2.0, 6.0))  # half resolution: about 1 s per case
MAPS = ("tmax", "cbf", "cbv", "mtt")


@pytest.fixture(scope="module")
def case():
    return make_case(2, seed=11, modalities=("dwi",) + MAPS, **SMALL)


def _arrays(case):
    maps = {name: sitk.GetArrayFromImage(case.channels[name]).astype(float) for name in MAPS}
    fate = sitk.GetArrayFromImage(case.lesion_mask)
    tissue = np.isin(sitk.GetArrayFromImage(case.tissue_labels), (4, 5, 7))  # grey, white, deep grey
    return maps, fate, tissue


def test_the_mask_holds_core_inside_a_larger_hypoperfused_region(case):
    maps, fate, tissue = _arrays(case)
    core, penumbra = fate == 1, fate == 2
    assert set(np.unique(fate)) == {0, 1, 2}
    assert 0.05 < core.sum() / (core.sum() + penumbra.sum()) < 0.8  # drawn 10-60 % of the region
    assert tissue[core | penumbra].mean() > 0.99  # fate is drawn in tissue, never in CSF
    # the core sits inside the region: most of its surface touches penumbra, not healthy tissue
    grown = sitk.GetArrayFromImage(sitk.BinaryDilate(sitk.GetImageFromArray(core.astype(np.uint8)), [1, 1, 1]))
    rim = (grown > 0) & ~core & tissue
    assert penumbra[rim].mean() > 0.5
    assert case.parameters["variety"]["lesion_pattern"] == "perfusion"
    assert [lesion.territory for lesion in case.lesions][0] == case.lesions[1].territory


def test_maps_follow_the_fate_with_the_overlap_of_real_perfusion(case):
    maps, fate, tissue = _arrays(case)
    core, penumbra = fate == 1, fate == 2
    healthy = tissue & (fate == 0)
    tmax, cbf, cbv = maps["tmax"], maps["cbf"], maps["cbv"]
    assert tmax[core].mean() > tmax[penumbra].mean() > 6.0 > 2.0 > tmax[healthy].mean()
    # relative CBF against healthy tissue of the same kind (white matter: label 5)
    white = sitk.GetArrayFromImage(case.tissue_labels) == 5
    reference = np.median(cbf[healthy & white])
    assert np.median(cbf[core & white]) / reference < 0.3 < np.median(cbf[penumbra & white]) / reference < 1.0
    assert cbv[core].mean() < cbv[penumbra].mean()  # CBV falls in the core, is kept in the penumbra
    # overlap: the rule's thresholds do not separate the fates exactly
    assert 0.02 < np.mean(tmax[penumbra] <= 6.0) < 0.5
    assert np.count_nonzero(healthy & (tmax > 6.0)) > 0  # oligaemia over 6 s
    mtt = maps["mtt"]
    inside = tissue & (cbf > 5)
    np.testing.assert_allclose(mtt[inside], 60 * cbv[inside] / cbf[inside], rtol=1e-4)  # central volume theorem
    assert all(maps[name][sitk.GetArrayFromImage(case.brain_mask) == 0].max() == 0 for name in MAPS)


def test_structural_channels_show_the_core_not_the_penumbra(case):
    maps, fate, tissue = _arrays(case)
    dwi = sitk.GetArrayFromImage(case.channels["dwi"]).astype(float)
    white = sitk.GetArrayFromImage(case.tissue_labels) == 5
    healthy = np.median(dwi[white & (fate == 0)])
    assert np.median(dwi[white & (fate == 1)]) > 1.5 * healthy
    assert abs(np.median(dwi[white & (fate == 2)]) / healthy - 1.0) < 0.1


def test_the_threshold_rule_is_sensible_but_not_exact(case):
    result = threshold_perfusion(case.channels["tmax"], case.channels["cbf"], case.channels["cbv"], case.brain_mask,
                                 Midplane(case.midplane_point_mm, case.midplane_normal))
    predicted = sitk.GetArrayFromImage(result.labels)
    fate = sitk.GetArrayFromImage(case.lesion_mask)
    assert result.affected_side == case.lesions[0].side

    def dice(label: int) -> float:
        a, b = predicted == label, fate == label
        return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))

    # Lower bound: the deep core is drawn at relative CBF 0.12-0.2 and the deep penumbra at Tmax ~ 10 s, far
    # from the thresholds, so a working rule finds most of both. Upper bound: the core's rim is drawn at
    # relative CBF ~ 0.28 +- 0.06 with 12 % noise and the penumbra's rim at Tmax ~ 6.5 +- 1.2 s, so a good
    # part of each rim falls on the wrong side: Dice near 1 would mean the truth was made by the rule.
    assert 0.5 < dice(1) < 0.98
    assert 0.5 < dice(2) < 0.98


def test_writer_puts_units_beside_the_maps_and_names_beside_the_mask(tmp_path, case):
    from lesionseg.data import discover
    from lesionseg.data.label_table import find_label_table
    from lesionseg.data.sidecar import map_units

    files = write_case(case, tmp_path)
    units = {name: map_units(files.channels[name], name) for name in MAPS}
    assert units == {"tmax": "s", "cbf": "mL/100g/min", "cbv": "mL/100g", "mtt": "s"}
    found = discover(tmp_path, validate=False)[0]
    assert set(found.channels) == {"dwi", *MAPS}
    table = find_label_table(found.mask, tmp_path)
    assert table.names() == {1: "core", 2: "penumbra"}
    assert json.loads(files.truth.read_text())["parameters"]["perfusion"]["cbf"]["4"] > 40  # grey matter


def test_perfusion_maps_refuse_another_lesion_pattern():
    with pytest.raises(ParameterError, match="draws its own tissue fate"):
        make_case(1, modalities=("tmax",), lesion_pattern="embolic", **SMALL)
