"""The trainer: the curriculum through the sampler, exact resume, the gradient difficulty, DDP, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, TINY_NETWORK, run_cli
from resume_check import assert_same_run, stop_after_epoch_1_and_resume
from lesionseg.preprocess import PreparedDataset
from lesionseg.train import FoldTrainer, TrainConfig
from lesionseg.train.curriculum_setup import build_schedule
from lesionseg.train.run import difficulty_for
from lesionseg.train.slices import load_slices


def tiny_config(**options) -> TrainConfig:
    settings = {**TINY_NETWORK, "batch_size": 4, "lr": 1e-3, "device": "cpu", "all_data": True, "val_every": 2,
                "num_threads": 1}  # one thread: fastest for these tiny batches, also on a busy machine
    settings.update(options)
    return TrainConfig(**settings)


@pytest.mark.slow
def test_a_curriculum_run_visits_exactly_the_scheduled_slices(tiny_prepared, tmp_path):
    prepared = PreparedDataset(tiny_prepared)
    config = tiny_config(epochs=8, curriculum="vanilla", metrics=["area"], augmentation={"enabled": False})
    table = difficulty_for(config, prepared, None, lambda event: None)
    rows = list(prepared.slices)
    result = FoldTrainer(config, prepared, rows, [], table, tmp_path / "run", record_visits=True).run()
    schedule = build_schedule(rows, table, config)  # the same schedule, rebuilt independently of the run
    assert len(result.visits) == 8
    for epoch, visited in enumerate(result.visits):
        assert sorted(visited) == sorted(schedule.active_indices(epoch).tolist()), epoch  # each active slice once
    # vanilla over 8 epochs: groups enter at floor([0, 25, 50, 85, 120, 160] * 8 / 200) = [0, 1, 2, 3, 4, 6]
    counts = [len(v) for v in result.visits]
    assert counts[0] < counts[1] < counts[2] < counts[3] < counts[4] == counts[5] < counts[6] == counts[7] == len(rows)
    # easy first: the lesion slices trained at epoch 0 have larger lesions than those that enter later
    area = {i: row["lesion_area_mm2"] for i, row in enumerate(rows) if row["has_lesion"]}
    first = [area[i] for i in result.visits[0] if i in area]
    later = [area[i] for i in set(result.visits[-1]) - set(result.visits[0]) if i in area]
    assert min(first) >= max(later)
    assert result.iterations == sum(-(-n // 4) for n in counts)


@pytest.mark.slow
def test_resume_after_a_stop_ends_with_the_same_weights(tiny_prepared, tmp_path):
    prepared = PreparedDataset(tiny_prepared)
    config = tiny_config(epochs=4, curriculum="vanilla", metrics=["contrast"], deterministic=True, seed=3,
                         all_data=False, folds=3, fold=1)  # augmentation on, validation and best-model tracking
    table = difficulty_for(config, prepared, None, lambda event: None)
    from lesionseg.train.run import plan_folds
    from lesionseg.train.slices import select_rows

    _, training, validation = plan_folds(config, prepared)[0]
    train_rows, val_rows = select_rows(prepared, training), select_rows(prepared, validation)

    def trainer(folder, **options):
        return FoldTrainer(config, prepared, train_rows, val_rows, table, folder, fold=1, **options)

    straight = trainer(tmp_path / "straight").run()
    resumed = stop_after_epoch_1_and_resume(trainer, tmp_path / "stopped")
    assert_same_run(straight, resumed)
    assert [r["epoch"] for r in json.loads((tmp_path / "stopped" / "log.json").read_text(encoding="utf-8"))] == [0, 1, 2, 3]


def test_one_recorded_loss_decrease_equals_a_hand_run_optimiser_step(tiny_prepared):
    from lesionseg.losses import build_loss
    from lesionseg.models import build_network
    from lesionseg.train.gradient import gradient_difficulty

    prepared = PreparedDataset(tiny_prepared)
    arrays = load_slices(prepared, [row for row in prepared.slices if row["has_lesion"]][:6])
    torch.manual_seed(0)
    network = build_network("unet2d", 1, 2, features=[4, 8, 16, 32, 64])
    start = {key: value.clone() for key, value in network.state_dict().items()}
    result = gradient_difficulty(arrays, network, start, lr=1e-3, epochs=1, repeats=1, batch_size=1, seed=5,
                                 record_steps=True)
    first = result.steps[0]
    # by hand: the same start, the same slice, one RMSprop step
    by_hand = build_network("unet2d", 1, 2, features=[4, 8, 16, 32, 64])
    by_hand.load_state_dict(start)
    loss = build_loss("ce_dice")
    image = torch.as_tensor(arrays.images[[first["row"]]])
    mask = torch.as_tensor(arrays.masks[[first["row"]]][:, None].astype(np.int64))
    optimiser = torch.optim.RMSprop(by_hand.parameters(), lr=1e-3)
    by_hand.eval()
    with torch.no_grad():
        before = float(loss(by_hand(image), mask))
    by_hand.train()
    optimiser.zero_grad()
    loss(by_hand(image), mask).backward()
    optimiser.step()
    by_hand.eval()
    with torch.no_grad():
        after = float(loss(by_hand(image), mask))
    assert first["before"] == pytest.approx(before, abs=1e-6)
    assert first["after"] == pytest.approx(after, abs=1e-6)
    assert before - after != 0
    assert len(result.score) == 6 and result.score.min() == 0.0 and result.score.max() == 1.0


def test_unknown_network_and_loss_names_list_the_valid_ones(tiny_prepared, tmp_path):
    result = run_cli("train", tiny_prepared, tmp_path / "run", "--model", "vnet")
    assert result.returncode == 2 and "vnet" in result.stderr and "unet2d" in result.stderr and "res_unet" in result.stderr
    result = run_cli("train", tiny_prepared, tmp_path / "run", "--loss", "focal")
    assert result.returncode == 2 and "focal" in result.stderr and "ce_dice" in result.stderr and "lovasz" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_prepared_folder_without_lesion_slices_is_refused(tiny_prepared, tmp_path):
    empty = tmp_path / "no_lesions"
    shutil.copytree(tiny_prepared, empty)
    lines = (empty / "slices.csv").read_text(encoding="utf-8").splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if line.endswith(",0")]
    (empty / "slices.csv").write_text("\n".join(kept) + "\n")
    result = run_cli("train", empty, tmp_path / "run", "--epochs", "1")
    assert result.returncode == 2 and "no lesion slices" in result.stderr and str(empty) in result.stderr


def test_a_truncated_bundle_to_finetune_from_is_refused(tiny_prepared, tmp_path):
    bundle = tmp_path / "cut.lsb"
    bundle.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    result = run_cli("train", tiny_prepared, tmp_path / "run", "--finetune", bundle, "--all-data", "--epochs", "1",
                     *("--network-kwargs", json.dumps(TINY_NETWORK["network_kwargs"])))
    assert result.returncode == 2 and str(bundle) in result.stderr and "Traceback" not in result.stderr


def subset_with_multiple_of(source: Path, target: Path, multiple: int) -> PreparedDataset:
    """A copy of a prepared dataset keeping whole cases so that the slice count is a multiple of ``multiple``."""
    from itertools import combinations

    prepared = PreparedDataset(source)
    counts = {case_id: len(prepared.case_slices(case_id)) for case_id in prepared.case_ids}
    chosen = next(subset for size in range(len(counts), 0, -1) for subset in combinations(counts, size)
                  if sum(counts[c] for c in subset) % multiple == 0)
    shutil.copytree(source, target)
    lines = (target / "slices.csv").read_text(encoding="utf-8").splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if line.split(",")[0] in chosen]
    (target / "slices.csv").write_text("\n".join(kept) + "\n")
    subset = PreparedDataset(target)
    assert len(subset.slices) % multiple == 0 and len(subset.case_ids) >= 3
    return subset


@pytest.mark.slow
def test_two_ranks_under_torchrun_visit_each_active_slice_once_and_match_one_process(tiny_prepared, tmp_path):
    """gloo on the CPU: the ranks share each epoch's active slices exactly, and the bundle they write predicts
    like the single-process run with the same effective batch (2 ranks x 2 slices = 1 process x 4)."""
    from lesionseg.bundle import load_bundle

    prepared = subset_with_multiple_of(tiny_prepared, tmp_path / "prepared", 4)
    tiny_prepared = prepared.root
    # SGD: RMSprop and Adam divide by the running gradient size, which turns float summation-order noise in
    # tiny gradient components into steps of the full learning rate, so two correct runs would drift apart
    common = ["--curriculum", "none", "--all-data", "--epochs", "2", "--no-augment", "--optimiser", "sgd",
              "--lr", "1e-2", "--seed", "4", "--threads", "1", "--model", "unet2d", "--context", "0",
              "--network-kwargs", json.dumps(TINY_NETWORK["network_kwargs"]), "--progress", "none",
              "--deterministic", "--record-visits"]
    environment = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517"]
    distributed = subprocess.run([*torchrun, "-m", "lesionseg", "train", str(tiny_prepared), str(tmp_path / "ddp"),
                                  "--batch-size", "2", *common], capture_output=True, text=True, encoding="utf-8", errors="replace", env=environment,
                                 timeout=600)
    assert distributed.returncode == 0, distributed.stderr[-2000:]
    single = run_cli("train", tiny_prepared, tmp_path / "single", "--batch-size", "4", *common)
    assert single.returncode == 0, single.stderr
    n = len(prepared.slices)
    ranks = [json.loads((tmp_path / "ddp" / "all_data" / f"visits_rank{r}.json").read_text(encoding="utf-8")) for r in (0, 1)]
    for epoch in range(2):
        together = ranks[0][epoch] + ranks[1][epoch]
        assert sorted(together) == list(range(n))  # every slice once, on one rank
        assert abs(len(ranks[0][epoch]) - len(ranks[1][epoch])) <= 1
    images = torch.as_tensor(prepared.arrays(prepared.case_ids[0]).images)
    with torch.no_grad():
        ddp_probabilities = load_bundle(tmp_path / "ddp" / "model.lsb").probabilities(images)
        single_probabilities = load_bundle(tmp_path / "single" / "model.lsb").probabilities(images)
    # identical batches in both runs (n is a multiple of 4): the same weights up to float summation order
    difference = (ddp_probabilities - single_probabilities).abs()
    assert float(difference.max()) < 1e-3
    agreement = ((ddp_probabilities > 0.5) == (single_probabilities > 0.5)).float().mean()
    assert agreement > 0.99


def test_difficulty_gradient_from_a_bundle_adds_a_normalised_column(tiny_prepared, tiny_bundle, tmp_path):
    from lesionseg.difficulty import read_difficulty

    out = tmp_path / "gradient.csv"
    result = run_cli("difficulty", tiny_prepared, "--metric", "area,gradient", "--bundle", tiny_bundle,
                     "--repeats", "1", "--gradient-epochs", "1", "--device", "cpu", "--out", out, "--progress", "none")
    assert result.returncode == 0, result.stderr
    table = read_difficulty(out)
    lesion_rows = [row for row in PreparedDataset(tiny_prepared).slices if row["has_lesion"]]
    assert table.keys == [(row["case_id"], row["slice_index"]) for row in lesion_rows]
    assert set(table.metric_names) == {"area_mm2", "gradient"}
    scores = table.metrics["gradient"]
    assert scores.min() == 0.0 and scores.max() == 1.0  # min-max normalised, high = easy
    # --gradient-measure step reaches the library: the same column as a direct call with measure="step"
    from lesionseg.train.gradient import gradient_for_prepared

    step_out = tmp_path / "gradient_step.csv"
    result = run_cli("difficulty", tiny_prepared, "--metric", "gradient", "--bundle", tiny_bundle, "--repeats", "1",
                     "--gradient-epochs", "1", "--gradient-measure", "step", "--device", "cpu", "--out", step_out,
                     "--progress", "none")
    assert result.returncode == 0, result.stderr
    direct = gradient_for_prepared(PreparedDataset(tiny_prepared), tiny_bundle, measure="step", epochs=1, repeats=1,
                                   device="cpu", record_steps=True)
    from_cli = read_difficulty(step_out)
    # deterministic: the same slices in the same order, and the normalisation's ends exactly 0 and 1
    assert from_cli.keys == [(row["case_id"], row["slice_index"]) for row in direct.rows]
    assert from_cli.metrics["gradient"].min() == 0.0 and from_cli.metrics["gradient"].max() == 1.0
    # not deterministic: the CLI's process and this one sum float32 convolutions in another thread order, which
    # moves each per-slice loss by a few units in the last place (ulp). A score is (d - min d) / (max d - min d)
    # of decreases d = before - after, so a change of delta in the losses moves it by at most 4 delta / range(d).
    # delta: 16 ulp of the largest loss (a one-epoch run of one repeat differed by 1 ulp, 1.2e-7, here).
    delta = 16 * np.finfo(np.float32).eps * max(abs(step["before"]) for step in direct.steps)
    tolerance = 4 * delta / np.ptp(direct.mean_decrease)
    np.testing.assert_allclose(from_cli.metrics["gradient"], direct.score, rtol=0, atol=tolerance)
    assert np.abs(direct.score - scores).max() > 10 * tolerance  # the two readings differ, well beyond rounding
    result = run_cli("difficulty", tiny_prepared, "--metric", "gradient", "--bundle", tiny_bundle,
                     "--gradient-measure", "steep", "--out", tmp_path / "x.csv", "--progress", "none")
    assert result.returncode == 2 and "--gradient-measure" in result.stderr and "retraining, step" in result.stderr


def test_few_cases_train_one_model_on_all_of_them_and_asked_folds_are_kept(tiny_prepared, tmp_path):
    """The fast presets' hold-out rule: below ``hold_out_min_cases`` eligible cases (tiny_prepared has 6), one
    model on every case, said in the log; at the line, or with --fold/--folds given, the folds as asked."""
    from lesionseg.cli.cmd_train import build_config
    from lesionseg.cli import build_parser
    from lesionseg.train import train_run
    from lesionseg.train.run import apply_hold_out_rule

    prepared = PreparedDataset(tiny_prepared)
    assert len(prepared.case_ids) == 6
    at_line, note = apply_hold_out_rule(tiny_config(all_data=False, folds=3, fold=0, hold_out_min_cases=6), prepared)
    assert (at_line.all_data, at_line.fold, note) == (False, 0, None)
    below, note = apply_hold_out_rule(tiny_config(all_data=False, folds=3, fold=0, hold_out_min_cases=7), prepared)
    assert (below.all_data, below.fold) == (True, None) and "6 training cases, fewer than 7" in note

    messages = []
    summary = train_run(tiny_prepared, tmp_path / "run", tiny_config(all_data=False, folds=3, fold=0, epochs=1,
                                                                     hold_out_min_cases=7, curriculum="none"),
                        progress=lambda event: messages.append(event.get("message", "")))
    assert (tmp_path / "run" / "all_data").is_dir() and not (tmp_path / "run" / "fold_0").exists()
    assert [result.fold for result in summary.results] == [None] and not summary.results[0].validation
    assert len(summary.results[0].train_rows) == len(prepared.slices)  # every case's slices trained on
    assert any("without a validation hold-out" in message for message in messages)

    def config_of(*options):
        return build_config(build_parser().parse_args(["train", str(tiny_prepared), str(tmp_path / "r"), *options]))

    assert config_of("--device", "cpu").hold_out_min_cases == 20  # the cpu preset's line
    assert config_of("--device", "cpu", "--fold", "0").hold_out_min_cases == 0
    assert config_of("--device", "cpu", "--folds", "3").hold_out_min_cases == 0
    assert config_of("--preset", "paper").hold_out_min_cases == 0


def test_another_loss_on_the_command_line_drops_the_presets_options_for_its_own_loss(tiny_prepared, tmp_path):
    """The cpu preset's loss is ce_dice with batch_dice; --loss boundary_nll alone used to keep batch_dice and be
    refused ("does not take batch_dice"); options given with --loss-kwargs are kept."""
    from lesionseg.cli import build_parser
    from lesionseg.cli.cmd_train import build_config

    def config_of(*options):
        return build_config(build_parser().parse_args(["train", str(tiny_prepared), str(tmp_path / "r"),
                                                       "--device", "cpu", *options]))

    assert (config_of().loss, config_of().loss_kwargs) == ("ce_dice", {"batch_dice": True})
    assert (config_of("--loss", "boundary_nll").loss, config_of("--loss", "boundary_nll").loss_kwargs) == (
        "boundary_nll", {})
    assert config_of("--loss", "boundary_nll", "--loss-kwargs", '{"band_weight": 5}').loss_kwargs == {"band_weight": 5}
    assert config_of("--loss", "ce_dice").loss_kwargs == {"batch_dice": True}  # the preset's own loss keeps them
