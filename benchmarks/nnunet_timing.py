"""nnU-Net v2's 2D predictor timed on one case, run with the python of nnU-Net's own virtual environment.

Called by ``benchmarks/bench_segment.py`` (its ``nnunet`` row); it imports nothing from lesionseg. It writes a
model folder for the case: ``dataset.json``, a ``plans.json`` whose 2D configuration is what nnU-Net's default
planner gives an image of this size and spacing (patch = the slice, PlainConvUNet with 32..512 features,
one stage per 2x pooling while the side is even and its half at least 4, instance norm, z-score normalisation) and
``fold_0/checkpoint_final.pth`` with untrained (seeded) weights. Then it loads the predictor once and runs
``predict_from_files_sequential`` (reading, preprocessing, sliding window, export: no worker processes)
``--repeats`` times; the first run is a warm-up. Prints one JSON line: per-case median, all times, versions.

Usage: ``nnunet-python benchmarks/nnunet_timing.py CASE.nii.gz WORK_DIR [--repeats 3] [--threads 1]
[--mirroring]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def stages_for(size: int, limit: int = 4, max_stages: int = 7) -> int:
    """Stages of nnU-Net's default 2D plan along one axis: poolings until the side would drop below ``limit``."""
    stages = 1
    while size % 2 == 0 and size // 2 >= limit and stages < max_stages:
        size //= 2
        stages += 1
    return stages


def write_model(case: Path, folder: Path, seed: int = 0) -> dict:
    import numpy as np
    import SimpleITK as sitk
    import torch

    image = sitk.ReadImage(str(case))
    array = sitk.GetArrayFromImage(image).astype(np.float32)  # (z, y, x)
    spacing_zyx = list(reversed(image.GetSpacing()))
    patch = [int(array.shape[1]), int(array.shape[2])]
    stages = min(stages_for(patch[0]), stages_for(patch[1]))
    features = [min(32 * 2 ** i, 512) for i in range(stages)]
    foreground = array[array > np.percentile(array, 50)]
    plans = {
        "dataset_name": "Dataset900_LesionSegBench", "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": spacing_zyx,
        "original_median_shape_after_transp": list(array.shape),
        "image_reader_writer": "SimpleITKIO", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "configurations": {"2d": {
            "data_identifier": "nnUNetPlans_2d", "preprocessor_name": "DefaultPreprocessor", "batch_size": 12,
            "patch_size": patch, "median_image_size_in_voxels": patch, "spacing": spacing_zyx[1:],
            "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [False],
            "resampling_fn_data": "resample_data_or_seg_to_shape",
            "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
            "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                                   "force_separate_z": None},
            "architecture": {
                "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                "arch_kwargs": {
                    "n_stages": stages, "features_per_stage": features,
                    "conv_op": "torch.nn.modules.conv.Conv2d", "kernel_sizes": [[3, 3]] * stages,
                    "strides": [[1, 1]] + [[2, 2]] * (stages - 1), "n_conv_per_stage": [2] * stages,
                    "n_conv_per_stage_decoder": [2] * (stages - 1), "conv_bias": True,
                    "norm_op": "torch.nn.modules.instancenorm.InstanceNorm2d",
                    "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
                    "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}},
                "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]},
            "batch_dice": True}},
        "experiment_planner_used": "ExperimentPlanner", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {
            "max": float(foreground.max()), "mean": float(foreground.mean()), "median": float(np.median(foreground)),
            "min": float(foreground.min()), "percentile_00_5": float(np.percentile(foreground, 0.5)),
            "percentile_99_5": float(np.percentile(foreground, 99.5)), "std": float(foreground.std())}},
    }
    dataset = {"channel_names": {"0": "FLAIR"}, "labels": {"background": 0, "lesion": 1}, "numTraining": 1,
               "file_ending": ".nii.gz"}
    (folder / "fold_0").mkdir(parents=True, exist_ok=True)
    (folder / "plans.json").write_text(json.dumps(plans, indent=1))
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=1))
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    torch.manual_seed(seed)
    manager = PlansManager(plans)
    network = nnUNetTrainer.build_network_architecture(manager, manager.get_configuration("2d"), 1, 2,
                                                       enable_deep_supervision=False)
    torch.save({"network_weights": network.state_dict(), "init_args": {"configuration": "2d"},
                "trainer_name": "nnUNetTrainer", "inference_allowed_mirroring_axes": (0, 1)},
               folder / "fold_0" / "checkpoint_final.pth")
    return {"patch": patch, "stages": stages, "features": features}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mirroring", action="store_true", help="nnU-Net's default test-time mirroring")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from importlib import metadata

    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    model = args.work / "model"
    plan = write_model(args.case, model)
    # nnU-Net wants images named CASE_0000.nii.gz
    source = args.work / "input" / "case_0000.nii.gz"
    source.parent.mkdir(parents=True, exist_ok=True)
    if not source.exists():
        source.symlink_to(args.case.resolve())
    out = args.work / "output"
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=args.mirroring,
                                perform_everything_on_device=False, device=torch.device("cpu"), verbose=False,
                                allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(model), use_folds=(0,), checkpoint_name="checkpoint_final.pth")
    load = time.perf_counter() - began
    times = []
    for _ in range(args.repeats):
        began = time.perf_counter()
        predictor.predict_from_files_sequential([[str(source)]], [str(out / "case")], save_probabilities=False,
                                                overwrite=True)
        times.append(time.perf_counter() - began)
    print(json.dumps({"per_case": statistics.median(times[1:] or times), "times": times, "load": load,
                      "version": metadata.version("nnunetv2"), "torch": torch.__version__,
                      "plan": f"2d, patch {plan['patch'][0]}x{plan['patch'][1]}, {plan['stages']} stages, "
                              f"features {plan['features'][0]}-{plan['features'][-1]}",
                      "mirroring": args.mirroring}))


if __name__ == "__main__":
    main()
