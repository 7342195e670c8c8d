"""The Gaussian naive Bayes baseline: its features, its fit, its bundle through the predictor, its CLI.

Sources of truth: SciPy's Gaussian filter and log-density, scikit-learn's ``GaussianNB``, the synthetic
phantom's lesion masks.
"""

from __future__ import annotations

import json
import time
import zipfile

import numpy as np
import pytest
import torch
from scipy import ndimage, stats

from conftest import SMALL_PHANTOM
from lesionseg.models import build_network_from_config, network_config
from lesionseg.models.gnb import GaussianNaiveBayes, feature_names, local_mean
from lesionseg.train.gnb import best_threshold, fit_gaussian_nb


@pytest.mark.parametrize("sigma", [0.8, 1.7, 3.2])
def test_local_mean_is_scipy_gaussian_filter(sigma):
    rng = np.random.default_rng(0)
    slices = rng.normal(size=(2, 3, 40, 33)).astype(np.float32)
    ours = local_mean(torch.from_numpy(slices), sigma).numpy()
    for b in range(2):
        for c in range(3):
            theirs = ndimage.gaussian_filter(slices[b, c].astype(np.float64), sigma, mode="nearest", truncate=4.0)
            np.testing.assert_allclose(ours[b, c], theirs, atol=2e-6)  # float32 sums of ~30 terms


def test_fit_matches_scikit_learn_gaussian_nb():
    sklearn_nb = pytest.importorskip("sklearn.naive_bayes")
    rng = np.random.default_rng(1)
    features = np.concatenate([rng.normal(0.0, 1.0, (900, 4)), rng.normal([2.0, 1.0, -1.0, 0.5], 0.7, (100, 4))])
    labels = np.repeat([0, 1], [900, 100])
    weights = rng.uniform(0.5, 3.0, len(labels))
    means, variances, priors = fit_gaussian_nb(features, labels, weights)
    reference = sklearn_nb.GaussianNB().fit(features, labels, sample_weight=weights)
    np.testing.assert_allclose(means, reference.theta_, rtol=1e-10)
    np.testing.assert_allclose(variances, reference.var_, rtol=1e-9)
    np.testing.assert_allclose(priors, reference.class_prior_, rtol=1e-10)
    # the module's posterior of a voxel equals GaussianNB's
    model = GaussianNaiveBayes(4, 2, means=means, variances=variances, priors=priors, sigmas_px=[])
    logits = model(torch.from_numpy(features.T[None, :, :, None].astype(np.float32)))
    posterior = torch.softmax(logits, dim=1)[0, 1, :, 0].numpy()
    np.testing.assert_allclose(posterior, reference.predict_proba(features)[:, 1], atol=1e-4)


def test_log_posterior_is_the_sum_of_gaussian_log_densities():
    means = [[0.0, 1.0, -1.0], [2.0, 0.0, 1.0]]
    variances = [[1.0, 4.0, 0.5], [0.25, 1.0, 2.0]]
    model = GaussianNaiveBayes(1, 2, means=means, variances=variances, priors=[0.9, 0.1], sigmas_px=[1.0, 2.0])
    slices = torch.from_numpy(np.random.default_rng(2).normal(size=(1, 1, 12, 12)).astype(np.float32))
    features = model.features(slices)[0].numpy()  # (3, 12, 12)
    logits = model(slices)[0].numpy()
    for k, prior in enumerate([0.9, 0.1]):
        expected = np.log(prior) + sum(stats.norm.logpdf(features[f], means[k][f], np.sqrt(variances[k][f]))
                                       for f in range(3))
        np.testing.assert_allclose(logits[k], expected, atol=1e-4)
    assert feature_names(["flair", "flair-mirror"], [3, 9]) == [
        "flair", "flair-mirror", "flair mean 3 mm", "flair-mirror mean 3 mm", "flair mean 9 mm",
        "flair-mirror mean 9 mm"]


def test_best_threshold_maximises_weighted_dice():
    posteriors = np.array([0.97, 0.9, 0.6, 0.3, 0.2, 0.1])
    labels = np.array([1, 1, 1, 0, 0, 0])
    assert 0.3 < best_threshold(posteriors, labels, np.ones(6)) <= 0.6
    # the background voxel at 0.6-like posteriors weighs a lot: the threshold rises above it
    labels = np.array([1, 1, 0, 0, 0, 0])
    weights = np.array([1, 1, 50, 1, 1, 1])
    assert 0.6 < best_threshold(posteriors, labels, weights) <= 0.9
    # per case: a large bright lesion (case 0) no longer outweighs a small faint one (case 1)
    posteriors = np.array([0.99, 0.99, 0.99, 0.99, 0.3, 0.2, 0.1])
    labels = np.array([1, 1, 1, 1, 1, 0, 0])
    cases = np.array([0, 0, 0, 0, 1, 1, 1])
    weights = np.array([1, 1, 1, 1, 1, 1, 1])
    assert best_threshold(posteriors, labels, weights, cases) <= 0.3  # finds case 1's lesion too



def test_network_config_round_trip_and_bad_shapes():
    from lesionseg.errors import ParameterError

    kwargs = {"means": [[0.0, 0.0], [1.0, 1.0]], "variances": [[1.0, 1.0], [1.0, 1.0]], "priors": [0.99, 0.01],
              "sigmas_px": [1.5]}
    config = json.loads(json.dumps(network_config("gnb", 1, 2, **kwargs)))
    model = build_network_from_config(config)
    assert model(torch.zeros(2, 1, 16, 20)).shape == (2, 2, 16, 20)
    with pytest.raises(ParameterError, match="classes x features"):
        build_network_from_config(network_config("gnb", 2, 2, **kwargs))  # 2 channels need 4 features


@pytest.fixture(scope="module")
def mirror_cohort(tmp_path_factory):
    """Five small synthetic FLAIR cases (subacute lesions, visible on FLAIR) prepared at 64 x 64 with the mirrored
    difference (every slice)."""
    from lesionseg.preprocess import PrepareConfig, prepare_dataset
    from lesionseg.synth import write_cohort

    root = tmp_path_factory.mktemp("gnb")
    write_cohort(root / "data", 5, modalities=("flair",), seed=5, lesion_age=(0.7, 1.0), **SMALL_PHANTOM)
    prepare_dataset(root / "data", root / "prepared", PrepareConfig(size=64, negatives=1.0, mirror_difference=True))
    return root


@pytest.mark.slow
def test_train_gnb_writes_a_bundle_that_segments_like_any_other(mirror_cohort, tmp_path):
    from lesionseg.data import discover
    from lesionseg.infer.predictor import Predictor
    from lesionseg.io import read_image
    from lesionseg.metrics import dice

    from lesionseg.cli import main

    run = tmp_path / "run"
    began = time.perf_counter()
    assert main(["train", str(mirror_cohort / "prepared"), str(run), "--model", "gnb", "--folds", "2",
                 "--progress", "none"]) == 0
    assert time.perf_counter() - began < 60  # the bound for fitting (here two folds and validation)
    with zipfile.ZipFile(run / "model.lsb") as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert sorted(archive.namelist()) == ["manifest.json", "weights/fold_0.pt", "weights/fold_1.pt"]
    network = manifest["network"]
    assert network["name"] == "gnb" and network["in_channels"] == 2 and manifest["channels"] == ["flair"]
    assert manifest["preprocessing"]["mirror_difference"] is True
    assert len(network["kwargs"]["means"]) == 2 and len(network["kwargs"]["means"][0]) == 6
    assert network["kwargs"]["features"][1] == "flair-mirror"
    folds = (run / "folds.csv").read_text().splitlines()
    assert len(folds) == 3 and "val_dice" in folds[0]
    # the predictor computes the mirrored difference for a new scan and segments it
    case = discover(mirror_cohort / "data")[1]  # its lesion is the largest of the cohort's (1.5 k voxels)
    predictor = Predictor(run / "model.lsb", device="cpu")
    prediction = predictor.predict(dict(case.channels), side="auto", case_id=case.case_id)
    truth = read_image(case.mask)
    assert prediction.labelmap.GetSize() == truth.GetSize()
    import SimpleITK as sitk

    score = dice(sitk.GetArrayFromImage(prediction.labelmap) > 0, sitk.GetArrayFromImage(truth) > 0)
    assert score > 0.5, score  # a case one of the two members was fitted on: the baseline finds its lesion


def test_gnb_refuses_network_options_with_exit_code_2(tmp_path, capsys):
    from lesionseg.cli import main

    for option in (["--patch-size", "16,64,64"], ["--size-curriculum", "0.5,1"], ["--context", "1"]):
        assert main(["train", str(tmp_path / "prepared"), str(tmp_path / "run"), "--model", "gnb", *option]) == 2
        message = capsys.readouterr().err.strip().splitlines()
        assert len(message) == 1 and option[0] in message[0] and "--model gnb" in message[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_train_run_fits_gnb_through_the_python_api(mirror_cohort, tmp_path):
    from lesionseg.bundle import load_bundle
    from lesionseg.models import NETWORKS
    from lesionseg.train import TrainConfig, train_run

    assert "gnb" not in NETWORKS  # not among the trainer's networks (panels and presets list those)
    summary = train_run(mirror_cohort / "prepared", tmp_path / "run",
                        TrainConfig(network="gnb", all_data=True, curriculum="none"))
    bundle = load_bundle(summary.bundle)
    member = bundle.networks[0]
    kwargs = bundle.manifest["network"]["kwargs"]
    # the weights file and the manifest's JSON hold the same numbers
    np.testing.assert_allclose(member.means.numpy(), np.array(kwargs["means"]), rtol=1e-6)
    np.testing.assert_allclose(member.variances.numpy(), np.array(kwargs["variances"]), rtol=1e-6)
    assert 0.0 < bundle.threshold < 1.0 and len(bundle.networks) == 1


@pytest.mark.slow
def test_report_shows_the_gnb_run_beside_a_unet_run(tiny_prepared, tiny_run, tmp_path):
    """The same 3 folds as the U-Net run (same cases, same seed), so the report compares them case by case."""
    import csv

    from lesionseg.cli import main

    gnb_run = tmp_path / "gnb_run"
    assert main(["train", str(tiny_prepared), str(gnb_run), "--model", "gnb", "--folds", "3",
                 "--progress", "none"]) == 0
    out = tmp_path / "report"
    assert main(["report", str(gnb_run), "--prepared", str(tiny_prepared), "--compare", str(tiny_run),
                 "--out", str(out), "--progress", "none"]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "overlays.png" in page and '<td class="text">gnb</td>' in page  # gnb members' overlays; its settings

    def case_dice(run):
        values = {}
        for folder in sorted(run.glob("fold_*")):
            with (folder / "val_cases.csv").open(encoding="utf-8") as handle:
                values.update({row["case_id"]: float(row["dice"]) for row in csv.DictReader(handle)})
        return values

    gnb, unet = case_dice(gnb_run), case_dice(tiny_run)
    assert sorted(gnb) == sorted(unet) and len(gnb) == 6  # the same folds: every case validated by both runs
    assert f"{np.mean(list(gnb.values())):.3f}" in page  # the per-case comparison's mean A
