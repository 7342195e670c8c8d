"""How a 2D bundle's networks run on prepared slices: PyTorch, or ONNX Runtime when it is installed.

A *slice runner* maps prepared slices ``(B, C, S, S)`` (float32, axes batch, channel, row, column) to the
members' mean lesion probability ``(B, S, S)``, padding the slices to the network's size multiple as
:func:`lesionseg.models.padding.forward_padded` does. Two runners give the same probabilities (to about
1e-5 in float32):

- :class:`TorchSlices`: the networks eagerly, under ``torch.inference_mode``, in float32 (on the CPU in the
  ``channels_last`` memory format).
- :class:`OnnxSlices`: the same networks (the members' mean softmax, one graph) exported once per bundle to
  ONNX with PyTorch's exporter, run by ONNX Runtime on the CPU. The export is cached in the user's cache
  folder (``$XDG_CACHE_HOME/lesionseg/onnx``, else ``~/.cache/lesionseg/onnx``), keyed by the bundle file's
  SHA-256, the slice size and the PyTorch version; it is written atomically, so concurrent processes can
  share the folder.

:func:`choose_backend` picks one: ``"auto"`` uses ONNX Runtime when it is importable, the device is the
CPU, the bundle is 2D, its networks export (a network whose ``onnx_exportable`` is False, ``detect_segment``
with its data-dependent box selection, is not tried) and the exported graph ran a probe batch at least
:data:`ONNX_MIN_GAIN` faster than PyTorch on this machine with this many threads (timed once, next to the
cached graph in ``<graph>.pace.json``; timed again when the thread count changes), else PyTorch; ``"onnx"``
asks for it. When the runtime is missing (for
``"onnx"``), the export fails or the exported graph disagrees with PyTorch on a probe batch, the
networks run on PyTorch and a one-sentence warning says why. ``pip install 'lesionseg[onnx]'`` adds the
runtime and what the exporter needs (``onnx``, ``onnxscript``).

Measured in ``benchmarks/bench_segment.py`` (``benchmarks/results/segment-speed.txt``) on this project's 2-core
CPUs: ``channels_last`` x0.91-0.93 of the default layout (kept, on the CPU); ONNX Runtime x0.92-1.05 of eager
PyTorch on one CPU and x1.14-1.29 (slower) on another, for an export of 3-30 s on first use:
hence the timed choice, and the extra is optional; bfloat16 autocast x6 slower on a CPU without native bf16
instructions and x0.38 of fp32 on one with them (``avx512_bf16``), with masks at Dice 0.9993 of fp32's (bf16
weights too: 0.9983, below the 0.999 asked for); it stays off, as the network is under a tenth of a case's time
there (0.09 of 0.97 s), so the masks stay those of fp32; an option of :class:`TorchSlices` for the benchmark.
Batch sizes 8-35 within noise of 16.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from lesionseg.errors import ParameterError

LOG = logging.getLogger(__name__)
BACKENDS = ("auto", "torch", "onnx")
#: bumped when the exported graph changes (part of the cache key)
EXPORT_VERSION = 1
#: ONNX opset of the export
OPSET = 18
#: largest difference in probability between the exported graph and PyTorch on the probe batch
PROBE_TOLERANCE = 1e-4
ONNX_EXTRA = "pip install 'lesionseg[onnx]'"
#: "auto" runs the exported graph only when it took at most (1 - this) of PyTorch's time on the pace batch
ONNX_MIN_GAIN = 0.05
#: the pace batch: this many random slices, each runner timed this many times (interleaved, after a warm-up)
PACE_SLICES, PACE_REPEATS = 16, 3


class SliceRunner(Protocol):
    """Prepared slices ``(B, C, S, S)`` float32 -> the members' mean lesion probability ``(B, S, S)``."""

    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


def check_backend(name: str) -> str:
    """``name`` when it is one of :data:`BACKENDS`.

    Raises:
        ParameterError: any other name, listing the choices.
    """
    if name not in BACKENDS:
        raise ParameterError(f"--backend must be one of {', '.join(BACKENDS)}, not {name!r}.")
    return name


def mean_probability_module(networks: Sequence[Any]) -> Any:
    """One module whose output is the mean over ``networks`` of the lesion probability (the softmax summed over
    channels 1..): ``(B, 1, H, W)``, the same arithmetic as :meth:`TorchSlices.__call__` (float32 softmax per
    member, then the mean)."""
    import torch

    class _Mean(torch.nn.Module):
        def __init__(self, members: Sequence[Any]) -> None:
            super().__init__()
            self.members = torch.nn.ModuleList(members)

        def forward(self, slices: torch.Tensor) -> torch.Tensor:
            total = None
            for member in self.members:
                probability = torch.softmax(member(slices).float(), dim=1)[:, 1:].sum(dim=1, keepdim=True)
                total = probability if total is None else total + probability
            return total / len(self.members)

    return _Mean(networks).eval()


class TorchSlices:
    """The networks in PyTorch (eager).

    Args:
        networks: the bundle's members, in eval mode, on ``device``.
        device: a ``torch.device``.
        multiple, minimum: the network's size multiple and smallest size (slices are padded to them).
        bf16: run under ``torch.autocast`` in bfloat16 (CPU: oneDNN's bf16 kernels).
        bf16_weights: also cast the weights and the inputs to bfloat16.
        channels_last: networks and inputs in the ``channels_last`` memory format.

    With ``bf16_weights`` the networks are copied first (the bundle's stay as they are).
    """

    name = "torch"

    def __init__(self, networks: Sequence[Any], device: Any, multiple: int, minimum: int, *, bf16: bool = False,
                 bf16_weights: bool = False, channels_last: bool = False) -> None:
        import copy

        import torch

        self.networks = list(networks)
        self.device = device
        self.multiple, self.minimum = int(multiple), int(minimum)
        self.bf16, self.bf16_weights, self.channels_last = bool(bf16), bool(bf16_weights), bool(channels_last)
        if self.channels_last:  # in place: the weights' layout, not their values (any input layout still works)
            self.networks = [network.to(memory_format=torch.channels_last) for network in self.networks]
        if self.bf16_weights:
            self.networks = [copy.deepcopy(network).to(torch.bfloat16) for network in self.networks]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        from lesionseg.models.padding import forward_padded

        tensor = torch.as_tensor(np.ascontiguousarray(batch), dtype=torch.float32, device=self.device)
        if self.channels_last:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        if self.bf16_weights:
            tensor = tensor.to(torch.bfloat16)
        total = None
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            for network in self.networks:
                logits = forward_padded(network, tensor, self.multiple, self.minimum)
                probability = torch.softmax(logits.float(), dim=1)[:, 1:].sum(dim=1)
                total = probability if total is None else total + probability
        return (total / len(self.networks)).cpu().numpy()


class OnnxSlices:
    """The exported graph in ONNX Runtime (CPU).

    Args:
        model_path: the ``.onnx`` file (input ``slices`` ``(B, C, P, P)``, output ``probability`` ``(B, 1, P, P)``
            with ``P`` the padded slice size).
        size: the padded slice size ``P`` the graph was exported for.
        multiple, minimum: the network's size multiple and smallest size.
        threads: ONNX Runtime's intra-op threads (default: PyTorch's thread count, which follows
            ``OMP_NUM_THREADS`` and ``torch.set_num_threads``).
    """

    name = "onnx"

    def __init__(self, model_path: Path, size: int, multiple: int, minimum: int, threads: int | None = None) -> None:
        import onnxruntime
        import torch

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.size, self.multiple, self.minimum = int(size), int(multiple), int(minimum)

    def _run(self, padded: Any) -> Any:
        import torch

        output = self.session.run(None, {self.input_name: np.ascontiguousarray(padded.numpy(), dtype=np.float32)})
        return torch.from_numpy(output[0])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        from lesionseg.models.padding import forward_padded

        tensor = torch.as_tensor(np.ascontiguousarray(batch), dtype=torch.float32)
        return forward_padded(self._run, tensor, self.multiple, self.minimum)[:, 0].numpy()


def padded_size(size: int, multiple: int, minimum: int) -> int:
    """The slice size the network sees: ``size`` rounded up to ``multiple``, at least ``minimum``."""
    return max(int(minimum), -(-int(size) // int(multiple)) * int(multiple))


def cache_folder() -> Path:
    """Where exported graphs are kept: ``$XDG_CACHE_HOME/lesionseg/onnx`` (default ``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "lesionseg" / "onnx"


def bundle_digest(path: Path) -> str:
    """SHA-256 of the bundle file (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_path(bundle_path: Path, size: int, channels: int, cache_dir: Path | None = None) -> Path:
    """The cached graph's file for this bundle file, padded slice size and channel count."""
    import torch

    version = torch.__version__.split("+")[0]
    key = f"{bundle_digest(bundle_path)[:32]}-{channels}x{size}-torch{version}-v{EXPORT_VERSION}"
    return Path(cache_dir or cache_folder()) / f"{key}.onnx"


def export_onnx(networks: Sequence[Any], channels: int, size: int, target: Path) -> Path:
    """Export the members' mean probability (:func:`mean_probability_module`) to ``target``, with a dynamic batch
    axis and a fixed ``size`` x ``size`` slice (the caller writes it to a temporary name and renames it once
    checked).

    Raises:
        whatever the exporter raises (the caller falls back to PyTorch).
    """
    import torch

    # the exporter warns that torchvision (which it never needs here) is missing: not the user's concern
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    module = mean_probability_module([network.cpu() for network in networks])
    example = torch.zeros(2, channels, size, size)
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(module, (example,), str(target), input_names=["slices"], output_names=["probability"],
                          dynamic_shapes={"slices": {0: torch.export.Dim("batch", min=1, max=4096)}},
                          opset_version=OPSET, dynamo=True, external_data=False, verbose=False)
    return target


def _probe(torch_runner: TorchSlices, onnx_runner: OnnxSlices, channels: int, size: int) -> float:
    """Largest probability difference between the two runners on a fixed random batch of 3 slices."""
    rng = np.random.default_rng(0)
    batch = rng.normal(0.0, 1.0, size=(3, channels, size, size)).astype(np.float32)
    return float(np.abs(torch_runner(batch) - onnx_runner(batch)).max())


def measure_pace(runners: dict[str, SliceRunner], batch: np.ndarray, repeats: int = PACE_REPEATS) -> dict[str, float]:
    """Median seconds per call of each runner on ``batch`` ``(B, C, S, S)``: one warm-up call each, then
    ``repeats`` rounds in which every runner is called once in turn (so a change of the machine's load
    reaches all of them alike)."""
    for runner in runners.values():
        runner(batch)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, runner in runners.items():
            began = time.perf_counter()
            runner(batch)
            times[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in times.items()}


def pace_path(graph: Path) -> Path:
    """The file beside a cached graph recording how fast it ran against PyTorch."""
    return graph.with_suffix(".pace.json")


def onnx_pays(torch_runner: SliceRunner, onnx_runner: SliceRunner, graph: Path, channels: int, size: int) -> bool:
    """Whether ONNX Runtime runs the bundle at least :data:`ONNX_MIN_GAIN` faster than PyTorch here: read from
    :func:`pace_path` when it was timed with the current thread count, else timed now on
    :data:`PACE_SLICES` random slices (about a second) and recorded."""
    import torch

    from lesionseg.io import write_json_atomic

    threads = torch.get_num_threads()
    record_path = pace_path(graph)
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if record["threads"] == threads:
            return float(record["onnx_s"]) <= (1.0 - ONNX_MIN_GAIN) * float(record["torch_s"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    batch = np.random.default_rng(0).normal(0.0, 1.0, (PACE_SLICES, channels, size, size)).astype(np.float32)
    pace = measure_pace({"torch": torch_runner, "onnx": onnx_runner}, batch)
    try:
        write_json_atomic(record_path, {"threads": threads, "slices": PACE_SLICES, "torch_s": pace["torch"],
                                        "onnx_s": pace["onnx"]})
    except OSError:  # a read-only cache: timed again next time
        pass
    LOG.info("ONNX Runtime %.3f s, PyTorch %.3f s on %d slices", pace["onnx"], pace["torch"], PACE_SLICES)
    return pace["onnx"] <= (1.0 - ONNX_MIN_GAIN) * pace["torch"]


def choose_backend(name: str, networks: Sequence[Any], *, bundle_path: Path, device: Any, spatial_dims: int,
                   channels: int, size: int, multiple: int, minimum: int,
                   cache_dir: Path | None = None) -> tuple[SliceRunner, list[str]]:
    """The slice runner for a bundle, and the warnings to show the user.

    Args:
        name: ``"auto"``, ``"torch"`` or ``"onnx"`` (see the module docstring).
        networks: the bundle's members (eval mode, on ``device``).
        bundle_path: the bundle file (its SHA-256 keys the cache).
        device: the ``torch.device`` the networks are on.
        spatial_dims: 2 or 3; 3D bundles always run on PyTorch (their sliding window).
        channels: the network's input channels (``C`` of the slices).
        size: the prepared slice size ``S``.
        multiple, minimum: the network's size multiple and smallest size.
        cache_dir: where exported graphs are kept (default :func:`cache_folder`).

    Returns:
        ``(runner, warnings)``; the warnings are sentences (empty when the choice went as asked).

    Raises:
        ParameterError: an unknown ``name``.
    """
    check_backend(name)
    # channels_last: x0.91-0.93 of the default layout on this project's 2-core CPU, probabilities within 4e-6;
    # a 2D layout (rank-4 tensors): 3D networks keep the default one
    torch_runner = TorchSlices(networks, device, multiple, minimum,
                               channels_last=device.type == "cpu" and spatial_dims == 2)
    if name == "torch":
        return torch_runner, []
    if not all(getattr(network, "onnx_exportable", True) for network in networks):
        if name == "onnx":  # e.g. detect_segment: its box selection (NMS) has shapes that depend on the data
            return torch_runner, [f"--backend onnx cannot run {bundle_path.name}: its network's box selection "
                                  "depends on the data and does not export to ONNX; running with PyTorch."]
        return torch_runner, []
    if spatial_dims != 2 or device.type != "cpu":
        if name == "onnx":
            where = "a 3D bundle" if spatial_dims != 2 else f"the {device.type} device"
            return torch_runner, [f"--backend onnx runs 2D bundles on the CPU only; {where} runs with PyTorch."]
        return torch_runner, []
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        if name == "onnx":
            return torch_runner, [f"ONNX Runtime is not installed ({ONNX_EXTRA} adds it); running with PyTorch."]
        return torch_runner, []
    full = padded_size(size, multiple, minimum)
    try:
        target = export_path(bundle_path, full, channels, cache_dir)
        if target.is_file():  # checked when it was written
            runner = OnnxSlices(target, full, multiple, minimum)
            if name == "auto" and not onnx_pays(torch_runner, runner, target, channels, size):
                return torch_runner, []
            return runner, []
        LOG.info("exporting %s to ONNX (once per bundle): %s", bundle_path, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(suffix=".part.onnx", dir=target.parent)
        os.close(handle)
        try:
            export_onnx(networks, channels, full, Path(temporary))
            runner = OnnxSlices(Path(temporary), full, multiple, minimum)
            difference = _probe(torch_runner, runner, channels, size)
            if difference <= PROBE_TOLERANCE:
                os.replace(temporary, target)  # atomic: other processes see a whole, checked graph or none
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    except Exception as error:  # noqa: BLE001 - any exporter or runtime failure means: use PyTorch
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        return torch_runner, [f"the ONNX export of {bundle_path.name} failed ({reason.rstrip('.')}); "
                              "running with PyTorch."]
    if not difference <= PROBE_TOLERANCE:
        return torch_runner, [f"the ONNX export of {bundle_path.name} differs from PyTorch by {difference:.2g} in "
                              "probability; running with PyTorch."]
    if name == "auto" and not onnx_pays(torch_runner, runner, target, channels, size):
        return torch_runner, []
    return runner, []
