"""The inference backend (lesionseg.infer.backend): ONNX Runtime gives PyTorch's probabilities, the export is
cached per bundle, every failure falls back to PyTorch with one sentence, and --backend refuses bad names."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import SMALL_PHANTOM, run_cli
from lesionseg.errors import ParameterError
from lesionseg.infer import backend as backends

SIZE = 64
CONTEXT = 1


@pytest.fixture(scope="module")
def random_bundle(tmp_path_factory) -> Path:
    """An untrained (seeded) bundle of the default architecture's kind, narrowed: MONAI U-Net with batch norm
    whose running statistics are not the identity (so that folding them into the export is tested), 2.5D
    (3 input channels), 64 px slices."""
    import torch

    from lesionseg.bundle import make_manifest, save_bundle
    from lesionseg.models import build_network, network_config
    from lesionseg.preprocess import PrepareConfig

    torch.manual_seed(3)
    kwargs = {"channels": [4, 8, 16, 32], "strides": [2, 2, 2], "norm": "batch"}
    network = build_network("monai_unet", 2 * CONTEXT + 1, 2, **kwargs)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    manifest = make_manifest(
        network_config=network_config("monai_unet", 2 * CONTEXT + 1, 2, **kwargs), channels=["flair"],
        reference_channel="flair", expected_spacing_mm=[1.75, 1.75, 5.0],
        preprocessing=PrepareConfig(size=SIZE, channels=["flair"], context_slices=CONTEXT).to_dict(),
        members=[{"fold": None, "validation": {}}],
        provenance={"train_config": {}, "curriculum": {}, "data_fingerprint": "0" * 64,
                    "training_data": {"cases": 0}, "fold_metrics": []},
        name="random", description="untrained, for backend tests")
    return save_bundle(tmp_path_factory.mktemp("backend") / "random.lsb", manifest, [network.state_dict()])


def _choose(predictor, name: str, cache: Path):
    return backends.choose_backend(name, predictor.bundle.networks, bundle_path=predictor.path,
                                   device=predictor.device, spatial_dims=2, channels=2 * CONTEXT + 1, size=SIZE,
                                   multiple=predictor.multiple, minimum=predictor.minimum, cache_dir=cache)


@pytest.fixture(scope="module")
def exported(random_bundle, tmp_path_factory):
    """The random bundle exported once (the export takes seconds): (predictor on torch, ONNX runner, warnings,
    cache folder)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from lesionseg.infer import Predictor

    cache = tmp_path_factory.mktemp("onnx_cache")
    predictor = Predictor(random_bundle, device="cpu", backend="torch")
    runner, warnings = _choose(predictor, "onnx", cache)
    return predictor, runner, warnings, cache


@pytest.mark.slow  # the export takes seconds (tens on a busy core)
def test_onnx_runtime_gives_torchs_probabilities_and_the_export_is_cached(exported):
    predictor, runner, warnings, cache = exported
    assert warnings == [] and runner.name == "onnx"
    exported_files = list(cache.glob("*.onnx"))
    assert len(exported_files) == 1
    stamp = exported_files[0].stat().st_mtime_ns
    rng = np.random.default_rng(5)
    for count in (1, 7):  # the batch axis is dynamic
        slices = rng.normal(0.0, 1.0, (count, 2 * CONTEXT + 1, SIZE, SIZE)).astype(np.float32)
        expected = backends.TorchSlices(predictor.bundle.networks, predictor.device, predictor.multiple,
                                        predictor.minimum)(slices)
        assert expected.shape == (count, SIZE, SIZE)
        assert np.abs(runner(slices) - expected).max() <= 1e-4
    # auto takes the cached graph when it ran faster than PyTorch here, as timed once and recorded beside it
    again, warnings = _choose(predictor, "auto", cache)
    pace = json.loads(backends.pace_path(exported_files[0]).read_text())
    pays = pace["onnx_s"] <= (1 - backends.ONNX_MIN_GAIN) * pace["torch_s"]
    assert again.name == ("onnx" if pays else "torch") and warnings == []
    assert exported_files[0].stat().st_mtime_ns == stamp
    assert sorted(path.name for path in cache.iterdir()) == sorted([exported_files[0].name,
                                                                    backends.pace_path(exported_files[0]).name])


class _SleepyRunner:
    """A stand-in slice runner that takes ``seconds`` per call and counts its calls."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name, self.seconds, self.calls = name, seconds, 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        time.sleep(self.seconds)
        return np.zeros((batch.shape[0], *batch.shape[2:]), np.float32)


def test_auto_runs_the_graph_only_where_it_was_timed_faster_and_records_the_timing(tmp_path, monkeypatch):
    import torch

    graph = tmp_path / "bundle.onnx"
    fast, slow = _SleepyRunner("torch", 0.002), _SleepyRunner("onnx", 0.03)  # 15 times apart: beyond any jitter
    assert not backends.onnx_pays(fast, slow, graph, channels=1, size=16)
    calls = 1 + backends.PACE_REPEATS  # a warm-up, then one call per round
    assert (fast.calls, slow.calls) == (calls, calls)
    record = json.loads(backends.pace_path(graph).read_text())
    assert record["threads"] == torch.get_num_threads() and record["onnx_s"] > 10 * record["torch_s"]
    # read back, not timed again: same answer without a call
    assert not backends.onnx_pays(fast, slow, graph, channels=1, size=16) and fast.calls == calls
    # another thread count times again, and now the graph is the faster one
    monkeypatch.setattr(torch, "get_num_threads", lambda: record["threads"] + 1)
    assert backends.onnx_pays(_SleepyRunner("torch", 0.03), _SleepyRunner("onnx", 0.002), graph, channels=1, size=16)
    assert json.loads(backends.pace_path(graph).read_text())["threads"] == record["threads"] + 1


@pytest.mark.slow
def test_predictor_on_onnx_gives_the_same_probabilities_on_the_native_grid(random_bundle, exported):
    from lesionseg.infer import Predictor
    from lesionseg.synth import make_case

    cache = exported[3]
    flair = make_case(2, seed=31, **SMALL_PHANTOM).channels["flair"]
    results = {}
    for name in ("torch", "onnx"):
        predictor = Predictor(random_bundle, device="cpu", backend=name, cache_dir=cache)
        assert predictor.backend == name and predictor.backend_warnings == []
        results[name] = predictor.predict({"flair": flair}, side="left")
    torch_p, onnx_p = (sitk.GetArrayFromImage(results[name].probabilities) for name in ("torch", "onnx"))
    assert np.abs(torch_p - onnx_p).max() <= 1e-4
    assert np.array_equal(sitk.GetArrayFromImage(results["torch"].labelmap),
                          sitk.GetArrayFromImage(results["onnx"].labelmap))


def test_missing_runtime_means_torch_silently_for_auto_and_with_one_sentence_for_onnx(random_bundle, tmp_path,
                                                                                      monkeypatch):
    from lesionseg.infer import Predictor

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    auto = Predictor(random_bundle, device="cpu", backend="auto", cache_dir=tmp_path)
    assert auto.backend == "torch" and auto.backend_warnings == []
    asked = Predictor(random_bundle, device="cpu", backend="onnx", cache_dir=tmp_path)
    assert asked.backend == "torch"
    assert len(asked.backend_warnings) == 1 and "pip install 'lesionseg[onnx]'" in asked.backend_warnings[0]
    assert not list(tmp_path.glob("*.onnx"))


def test_a_failed_export_falls_back_to_torch_with_a_warning_not_a_traceback(random_bundle, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from lesionseg.infer import Predictor

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::mystery\nlong exporter report")

    monkeypatch.setattr(backends, "export_onnx", broken)
    predictor = Predictor(random_bundle, device="cpu", backend="auto", cache_dir=tmp_path)
    assert predictor.backend == "torch"
    assert predictor.backend_warnings == [
        "the ONNX export of random.lsb failed (unsupported operator aten::mystery); running with PyTorch."]


def test_3d_bundles_and_explicit_torch_stay_on_torch(random_bundle, tmp_path):
    from lesionseg.infer import Predictor

    predictor = Predictor(random_bundle, device="cpu", backend="torch", cache_dir=tmp_path)
    runner, warnings = backends.choose_backend(
        "onnx", predictor.bundle.networks, bundle_path=predictor.path, device=predictor.device, spatial_dims=3,
        channels=3, size=SIZE, multiple=predictor.multiple, minimum=predictor.minimum, cache_dir=tmp_path)
    assert runner.name == "torch" and warnings == ["--backend onnx runs 2D bundles on the CPU only; a 3D bundle "
                                                   "runs with PyTorch."]
    assert predictor.backend == "torch" and not list(tmp_path.glob("*.onnx"))


def test_unknown_backend_is_refused_in_one_sentence():
    with pytest.raises(ParameterError, match=r"^--backend must be one of auto, torch, onnx, not 'fast'\.$"):
        backends.check_backend("fast")


def test_segment_refuses_an_unknown_backend_with_exit_2_before_reading_anything(tmp_path):
    result = run_cli("segment", tmp_path / "missing.lsb", tmp_path / "missing.nii.gz", "-o", tmp_path / "m.nii.gz",
                     "--backend", "fast", "--progress", "none")
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "--backend must be one of auto, torch, onnx, not 'fast'" in lines[0]


def test_channels_last_on_the_cpu_gives_the_default_layouts_probabilities(random_bundle):
    import copy

    from lesionseg.bundle import load_bundle

    networks = load_bundle(random_bundle).networks
    plain = [copy.deepcopy(network) for network in networks]  # the default memory layout
    slices = np.random.default_rng(2).normal(0.0, 1.0, (5, 2 * CONTEXT + 1, SIZE, SIZE)).astype(np.float32)
    import torch

    cpu = torch.device("cpu")
    expected = backends.TorchSlices(plain, cpu, 16, 32)(slices)
    runner, warnings = backends.choose_backend("torch", networks, bundle_path=random_bundle, device=cpu,
                                               spatial_dims=2, channels=3, size=SIZE, multiple=16, minimum=32)
    assert runner.channels_last and warnings == []
    assert np.abs(runner(slices) - expected).max() <= 1e-4
