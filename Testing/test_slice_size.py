"""A 2D bundle's reading sizes (lesionseg.bundle.slice_size): recorded by the trainer from the inference scale,
read by the predictor over the same physical square with finer pixels and combined by the larger probability,
overridable, refused when unusable."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from conftest import SMALL_PHANTOM, TINY_NETWORK, run_cli
from lesionseg.errors import BundleError, ParameterError
from lesionseg.infer.postprocess import lesion_mask

SIZE = 64


@pytest.mark.parametrize(("size", "scale", "multiple", "expected"), [
    (128, 1.25, 16, 160),  # the cpu preset: 160 = 128 * 1.25, already a multiple of 16
    (128, 1.0, 16, 128),
    (192, 1.25, 32, 256),  # 240 / 32 = 7.5 rounds half to even, to 8: 256
    (100, 1.0, 16, 96),  # 6.25 multiples round to 6
    (64, 0.5, 64, 64),  # never below one multiple
])
def test_the_reading_size_is_the_scaled_size_rounded_to_the_networks_multiple(size, scale, multiple, expected):
    from lesionseg.bundle.slice_size import scaled_slice_size

    assert scaled_slice_size(size, scale, multiple) == expected


@pytest.mark.parametrize(("size", "scale", "multiple", "expected"), [
    (128, "auto", 16, [128, 160, 192]),  # 1.25 and 1.5 times 128, both multiples of 16
    (64, "auto", 16, [64, 80, 96]),
    (64, 1.1, 16, [64]),  # 70.4 rounds back to 64: no repeat
    (128, 0.75, 32, [128, 96]),
])
def test_the_reading_sizes_start_at_the_training_size_and_hold_no_repeat(size, scale, multiple, expected):
    from lesionseg.bundle.slice_size import scaled_reading_sizes

    assert scaled_reading_sizes(size, scale, multiple) == expected


@pytest.mark.parametrize("scale", [0.3, 2.5, True, "1.25", float("nan")])
def test_an_inference_scale_outside_half_to_double_is_refused_naming_the_option(scale):
    from lesionseg.train import TrainConfig

    with pytest.raises(ParameterError, match="--inference-scale must be auto or a number from 0.5 to 2"):
        TrainConfig(inference_scale=scale)


def test_the_trainer_records_the_scaled_size_for_2d_networks_only():
    from lesionseg.train import TrainConfig
    from lesionseg.train.presets import PRESETS
    from lesionseg.train.run import reading_sizes_of as reading_size_of

    mri = SimpleNamespace(size=SIZE, channels=["flair"], config=None)
    ct = SimpleNamespace(size=SIZE, channels=["CT"], config=None)
    assert reading_size_of(TrainConfig(**TINY_NETWORK, inference_scale=1.25), mri) == [SIZE, 80]  # 64 * 1.25
    assert reading_size_of(TrainConfig(**TINY_NETWORK), mri) is None  # the training size: nothing recorded
    assert reading_size_of(TrainConfig(network="unet3d", inference_scale=1.25), mri) is None
    # auto: 1.25 and 1.5 times (64 -> 80 and 96, multiples of 16), MRI and CT alike (CT with its own agreement)
    assert reading_size_of(TrainConfig(**TINY_NETWORK, inference_scale="auto"), mri) == [SIZE, 80, 96]
    assert reading_size_of(TrainConfig(**TINY_NETWORK, inference_scale="auto"), ct) == [SIZE, 80, 96]
    # a scale rounding back to the training size adds no reading (48 * 1.25 = 60 -> 64; 48 * 1.5 = 72 -> 64)
    small = SimpleNamespace(size=48, channels=["flair"], config=None)
    assert reading_size_of(TrainConfig(**TINY_NETWORK, inference_scale="auto"), small) == [48, 64]
    assert reading_size_of(TrainConfig(**TINY_NETWORK, inference_scale=1.1), small) is None
    assert reading_size_of(TrainConfig(**TINY_NETWORK, inference_scale=1.0), ct) is None  # a number is taken as given
    assert PRESETS["cpu"].train_values()["inference_scale"] == "auto"
    assert PRESETS["gpu"].train_values().get("inference_scale", 1.0) == 1.0  # 192 px are already about 1 mm


def test_the_bundle_records_the_reading_agreement_of_its_modality_and_the_predictor_uses_it(tiny_prepared, tmp_path):
    import torch

    from lesionseg.bundle import format_model_card, read_manifest
    from lesionseg.bundle.slice_size import CT_READING_AGREEMENT, READING_AGREEMENT, reading_agreement_for
    from lesionseg.infer import Predictor
    from lesionseg.models import build_network
    from lesionseg.preprocess import PreparedDataset
    from lesionseg.train import TrainConfig
    from lesionseg.train.run import write_bundle

    assert (READING_AGREEMENT, CT_READING_AGREEMENT) == (0.9, 1.0)  # the levels measured (slice_size's docstring)
    assert reading_agreement_for(["CT"]) == 1.0 and reading_agreement_for(["flair"]) == 0.9
    assert reading_agreement_for(["flair", "ct"]) == 0.9  # only an all-CT bundle reads as CT
    # the trainer writes the modality's agreement beside the readings, and nothing without a second reading
    prepared = PreparedDataset(tiny_prepared)
    for scale, expected in (("auto", READING_AGREEMENT), (1.0, None)):
        config = TrainConfig(**TINY_NETWORK, inference_scale=scale)
        network = build_network(config.network, 2 * config.context_slices + 1, 2, **config.network_kwargs)
        result = SimpleNamespace(fold=None, validation={}, state_dict=network.state_dict())
        manifest = read_manifest(write_bundle(tmp_path / f"run-{scale}", config, prepared, [result]))
        assert manifest.get("reading_agreement") == expected
    # the predictor takes the bundle's agreement unless it is given one; the card says it
    torch.manual_seed(0)
    ct_like = _bundle(tmp_path / "ct", [SIZE, 80], reading_agreement=CT_READING_AGREEMENT)
    assert Predictor(ct_like, device="cpu", backend="torch").reading_agreement == 1.0
    assert Predictor(ct_like, device="cpu", backend="torch", reading_agreement=0.5).reading_agreement == 0.5
    assert Predictor(_bundle(tmp_path, [SIZE, 80]), device="cpu", backend="torch").reading_agreement == 0.9
    assert "reads at 64 and 80 (agreement 1)" in format_model_card(read_manifest(ct_like))
    assert "reads at 64, 80 and 96 (agreement 0.9)" in format_model_card(read_manifest(
        _bundle(tmp_path / "three", [SIZE, 80, 96], reading_agreement=0.9)))


def test_a_reading_agreement_outside_zero_to_one_is_refused_in_the_manifest():
    from lesionseg.bundle import make_manifest
    from lesionseg.preprocess import PrepareConfig

    for agreement in (0.0, 1.5, "high"):
        with pytest.raises(BundleError, match=f"reading_agreement must be a number in \\(0, 1\\], not {agreement!r}"):
            make_manifest(network_config={"name": "monai_unet", "kwargs": {"channels": [4, 8], "strides": [2]}},
                          channels=["ct"], reference_channel="ct", expected_spacing_mm=[1, 1, 5],
                          preprocessing=PrepareConfig(size=SIZE).to_dict(), members=[{}],
                          provenance={"data_fingerprint": "0" * 64}, reading_sizes=[64, 80],
                          reading_agreement=agreement)


def test_the_train_command_takes_auto_or_a_number_and_refuses_words_in_one_sentence(tiny_prepared, tmp_path):
    finished = run_cli("train", str(tiny_prepared), str(tmp_path / "run"), "--inference-scale", "big", "--epochs", "1")
    assert finished.returncode == 2
    assert "--inference-scale must be auto or a number such as 1.25, not 'big'" in finished.stderr
    assert "Traceback" not in finished.stderr


def _bundle(folder: Path, reading_sizes: list[int] | None, reading_agreement: float | None = None) -> Path:
    """An untrained (seeded) 2D bundle trained at 64 px, reading at ``reading_sizes`` (with ``reading_agreement``)."""
    import torch

    from lesionseg.bundle import make_manifest, save_bundle
    from lesionseg.models import build_network, network_config
    from lesionseg.preprocess import PrepareConfig

    torch.manual_seed(5)
    kwargs = {"channels": [4, 8, 16], "strides": [2, 2], "norm": "batch"}
    network = build_network("monai_unet", 1, 2, **kwargs)
    manifest = make_manifest(
        network_config=network_config("monai_unet", 1, 2, **kwargs), channels=["flair"], reference_channel="flair",
        expected_spacing_mm=list(SMALL_PHANTOM["spacing_mm"]),
        preprocessing=PrepareConfig(size=SIZE, channels=["flair"]).to_dict(),
        members=[{"fold": None, "validation": {}}],
        provenance={"train_config": {}, "curriculum": {}, "data_fingerprint": "0" * 64,
                    "training_data": {"cases": 0}, "fold_metrics": []},
        name="reading", reading_sizes=reading_sizes, reading_agreement=reading_agreement)
    folder.mkdir(parents=True, exist_ok=True)
    name = "-".join(map(str, reading_sizes or [SIZE]))
    return save_bundle(folder / f"reading-{name}.lsb", manifest, [network.state_dict()])


def _confirmed_by_mean(prediction, threshold: float, mean: np.ndarray, level: float) -> tuple[np.ndarray, int, int]:
    """The lesions of ``prediction``'s combined probability (thresholded, in its brain, 26-connected) in which the
    readings' ``mean`` reaches ``level`` at one voxel at least, recomputed with SciPy: (mask, candidates, kept)."""
    found = sitk.GetArrayFromImage(lesion_mask(prediction.probabilities, threshold=threshold,
                                               brain=prediction.brain_mask)) > 0
    labels, count = ndimage.label(found, np.ones((3, 3, 3)))
    kept = [label for label in range(1, count + 1) if mean[labels == label].max() >= level - 1e-6]
    return np.isin(labels, kept), count, len(kept)


@pytest.fixture(scope="module")
def case_image(tmp_path_factory) -> Path:
    from lesionseg.data import discover
    from lesionseg.synth import write_cohort

    root = tmp_path_factory.mktemp("reading")
    write_cohort(root, 1, modalities=("flair",), seed=23, **SMALL_PHANTOM)
    return discover(root)[0].channels["flair"]


def test_the_predictor_reads_the_same_square_at_each_size_and_keeps_the_larger_probability(tmp_path, case_image):
    from lesionseg.bundle import format_model_card, read_manifest
    from lesionseg.infer import Predictor

    coarse_model = Predictor(_bundle(tmp_path, None), device="cpu", backend="torch")
    fine_model = Predictor(_bundle(tmp_path, [80]), device="cpu", backend="torch")
    both_model = Predictor(_bundle(tmp_path, [SIZE, 80]), device="cpu", backend="torch")
    assert (coarse_model.slice_sizes, fine_model.slice_sizes, both_model.slice_sizes) == ([SIZE], [80], [SIZE, 80])
    assert Predictor(_bundle(tmp_path, [SIZE, 80]), device="cpu", backend="torch",
                     slice_sizes=[80]).slice_sizes == [80]
    # an untrained network: lower the threshold so that the masks hold voxels to compare
    for model in (coarse_model, fine_model, both_model):
        model.threshold = 0.3
    coarse = coarse_model.predict({"flair": case_image}, side="left")
    fine = fine_model.predict({"flair": case_image}, side="left")
    both = both_model.predict({"flair": case_image}, side="left")
    # the same physical square (the brain's extent plus its margin), cut into 80 pixels instead of 64
    assert fine.record.grid.size == 80 and coarse.record.grid.size == SIZE
    assert fine.record.grid.pixel_mm * 80 == pytest.approx(coarse.record.grid.pixel_mm * SIZE, rel=1e-9)
    assert np.allclose(fine.record.grid.geometry.direction, coarse.record.grid.geometry.direction)
    # both readings: each voxel's probability is the larger of the single readings' (same weights, same grid)
    native = sitk.ReadImage(str(case_image))
    arrays = [sitk.GetArrayFromImage(p.probabilities) for p in (coarse, fine, both)]
    assert all(p.probabilities.GetSize() == native.GetSize() for p in (coarse, fine, both))
    assert np.abs(np.maximum(arrays[0], arrays[1]) - arrays[2]).max() < 1e-6
    assert arrays[0].max() > 0 and not np.array_equal(arrays[0], arrays[1])  # the readings differ
    # its lesions: those of the maximum (thresholded, in the brain) in which the readings' mean reaches 0.9 x 0.3
    mean = (arrays[0] + arrays[1]) / 2.0
    confirmed, count, kept_count = _confirmed_by_mean(both, 0.3, mean, 0.27)
    assert count > 0 and kept_count > 0
    np.testing.assert_array_equal(sitk.GetArrayFromImage(both.labelmap) > 0, confirmed)
    # three readings (auto's 1, 1.25 and 1.5 times): the largest of the three, its lesions confirmed by their mean
    finest_model, three_model = (Predictor(_bundle(tmp_path, sizes), device="cpu", backend="torch")
                                 for sizes in ([96], [SIZE, 80, 96]))
    for model in (finest_model, three_model):
        model.threshold = 0.3
    finest = sitk.GetArrayFromImage(finest_model.predict({"flair": case_image}, side="left").probabilities)
    three = three_model.predict({"flair": case_image}, side="left")
    assert np.abs(np.maximum(arrays[2], finest) - sitk.GetArrayFromImage(three.probabilities)).max() < 1e-6
    confirmed3, _, _ = _confirmed_by_mean(three, 0.3, (arrays[0] + arrays[1] + finest) / 3.0, 0.27)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(three.labelmap) > 0, confirmed3)
    # the command line's --reading-agreement: at a threshold between the readings' mean and their maximum (both
    # at their peak in the brain), agreement 1 drops lesions the default (0.9) keeps
    brain = sitk.GetArrayFromImage(both.brain_mask) > 0
    threshold = float(mean[brain].max() + arrays[2][brain].max()) / 2.0

    def kept(agreement: float) -> np.ndarray:
        return _confirmed_by_mean(both, threshold, mean, agreement * threshold)[0]

    assert not np.array_equal(kept(1.0), kept(0.9))
    out = tmp_path / "agree.nii.gz"
    finished = run_cli("segment", str(_bundle(tmp_path, [SIZE, 80])), str(case_image), "-o", str(out), "--side", "left",
                       "--threshold", str(threshold), "--reading-agreement", "1", "--device", "cpu",
                       "--backend", "torch", "--progress", "none")
    assert finished.returncode == 0, finished.stderr
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out))) > 0, kept(1.0))
    card = format_model_card(read_manifest(_bundle(tmp_path, [SIZE, 80])))
    assert "trained on 64-pixel slices, reads at 64 and 80" in card
    assert "reads at" not in format_model_card(read_manifest(_bundle(tmp_path, None)))


def test_unusable_reading_sizes_are_refused_in_one_sentence(tmp_path, case_image):
    from lesionseg.bundle import make_manifest
    from lesionseg.infer import Predictor
    from lesionseg.preprocess import PrepareConfig

    bundle = _bundle(tmp_path, None)
    with pytest.raises(ParameterError, match="--slice-size 200 is too far from the 64 pixels"):
        Predictor(bundle, device="cpu", backend="torch", slice_sizes=[64, 200])
    with pytest.raises(ParameterError, match="--slice-size must be whole numbers of pixels, each at least 16"):
        Predictor(bundle, device="cpu", backend="torch", slice_sizes=[8])
    with pytest.raises(ParameterError, match="--slice-size must name one or more different slice sizes"):
        Predictor(bundle, device="cpu", backend="torch", slice_sizes=[64, 64])
    with pytest.raises(ParameterError, match=r"reading_agreement must lie in \(0, 1\], not 1.5"):
        Predictor(bundle, device="cpu", backend="torch", slice_sizes=[64, 80], reading_agreement=1.5)
    with pytest.raises(BundleError, match="reading_sizes must be a list of whole numbers of pixels"):
        make_manifest(network_config={"name": "monai_unet", "kwargs": {"channels": [4, 8], "strides": [2]}},
                      channels=["flair"], reference_channel="flair", expected_spacing_mm=[1, 1, 3],
                      preprocessing=PrepareConfig(size=SIZE).to_dict(), members=[{}],
                      provenance={"data_fingerprint": "0" * 64}, reading_sizes=[64, 4])
    finished = run_cli("segment", str(bundle), str(case_image), "-o", str(tmp_path / "out.nii.gz"),
                       "--slice-size", "64,big", "--device", "cpu")
    assert finished.returncode == 2
    assert "--slice-size must be whole numbers of pixels such as 160 or 128,160, not '64,big'" in finished.stderr
    assert "Traceback" not in finished.stderr
    finished = run_cli("segment", str(bundle), str(case_image), "-o", str(tmp_path / "out.nii.gz"),
                       "--reading-agreement", "0", "--device", "cpu")
    assert finished.returncode == 2
    assert "--reading-agreement must lie in (0, 1] (a fraction of the threshold), not 0.0" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_onnx_exports_one_graph_per_reading_size_and_gives_torchs_probabilities(tmp_path, case_image):
    pytest.importorskip("onnxruntime")
    from lesionseg.infer import Predictor

    bundle = _bundle(tmp_path, [SIZE, 80])
    on_torch = Predictor(bundle, device="cpu", backend="torch").predict({"flair": case_image}, side="left")
    onnx = Predictor(bundle, device="cpu", backend="onnx", cache_dir=tmp_path / "cache")
    assert [runner.name for runner in onnx.runners.values()] == ["onnx", "onnx"]
    assert len(list((tmp_path / "cache").rglob("*.onnx"))) == 2  # a graph is exported for one slice size
    on_onnx = onnx.predict({"flair": case_image}, side="left")
    difference = np.abs(sitk.GetArrayFromImage(on_torch.probabilities) - sitk.GetArrayFromImage(on_onnx.probabilities))
    assert difference.max() < 1e-4  # the export's checked tolerance


def test_preparing_at_several_sizes_runs_the_native_steps_once_and_matches_one_size_at_a_time(case_image,
                                                                                            monkeypatch):
    """prepare_images_at_sizes gives, per size, what prepare_images gives at that size alone (arrays to the bit,
    the same record), while brain extraction and the mid-sagittal plane run once for all sizes."""
    from dataclasses import replace

    import lesionseg.preprocess.brain as brain_module
    import lesionseg.preprocess.pipeline as pipeline
    from lesionseg.preprocess import PrepareConfig, prepare_images, prepare_images_at_sizes

    image = sitk.ReadImage(str(case_image), sitk.sitkFloat32)
    config = PrepareConfig(size=SIZE, registration=[], brain_margin_mm=10.0)
    alone = [prepare_images({"flair": image}, replace(config, size=size), case_id="c", side="left")
             for size in (SIZE, 80)]
    calls = {"brain": 0, "midplane": 0}

    def counted(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(brain_module, "run_brain_extraction", counted("brain", brain_module.run_brain_extraction))
    monkeypatch.setattr(pipeline, "estimate_midplane", counted("midplane", pipeline.estimate_midplane))
    together = prepare_images_at_sizes({"flair": image}, config, [SIZE, 80], case_id="c", side="left")
    assert calls == {"brain": 1, "midplane": 1}
    assert [p.images.shape[-1] for p in together] == [SIZE, 80]
    for one, shared in zip(alone, together):
        assert np.array_equal(one.images, shared.images) and np.array_equal(one.brains, shared.brains)
        assert one.record.slice_indices == shared.record.slice_indices and one.record.flipped == shared.record.flipped
        assert one.record.grid.size == shared.record.grid.size
        assert np.allclose(one.record.grid.geometry.origin, shared.record.grid.geometry.origin, atol=1e-9)
        assert one.record.steps["normalisation"] == shared.record.steps["normalisation"]
    assert together[0].native_brain is together[1].native_brain
    with pytest.raises(Exception, match="no slice size"):
        prepare_images_at_sizes({"flair": image}, config, [], case_id="c")
