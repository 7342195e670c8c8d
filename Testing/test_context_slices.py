"""2.5D input: neighbouring slices stored at preparation (flipped with their slice), stacked for the network,
and an older prepared folder refused with what to do."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SMALL_PHANTOM, TINY_NETWORK, run_cli
from lesionseg.errors import DatasetError
from lesionseg.preprocess.context import gather_context, neighbour_offsets, network_input


def test_neighbours_are_gathered_in_offset_order_with_edges_repeated():
    stack = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 2, 3, 3), np.float32)
    stack[:, 1] += 100  # second channel
    context = gather_context(stack, np.array([0, 2, 4]), 2)
    assert context.shape == (3, 2, 4, 3, 3) and neighbour_offsets(2) == [-2, -1, 1, 2]
    # slice 0: offsets -2, -1 repeat slice 0, +1 and +2 are slices 1 and 2
    assert context[0, 0, :, 0, 0].tolist() == [0, 0, 1, 2]
    assert context[1, 0, :, 0, 0].tolist() == [0, 1, 3, 4]
    assert context[2, 1, :, 0, 0].tolist() == [102, 103, 104, 104]


def test_the_network_input_orders_each_channel_by_offset_with_the_centre_in_the_middle():
    stack = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 2, 3, 3), np.float32)
    stack[:, 1] += 100
    kept = np.array([2])
    images = stack[kept]
    inputs = network_input(images, gather_context(stack, kept, 2), 1)  # stored 2, network takes 1
    assert inputs.shape == (1, 6, 3, 3)
    assert inputs[0, :, 0, 0].tolist() == [1, 2, 3, 101, 102, 103]
    assert network_input(images, None, 0) is images
    with pytest.raises(DatasetError, match="prepare the data again with --context 3"):
        network_input(images, gather_context(stack, kept, 2), 3)


@pytest.fixture(scope="module")
def one_case(tmp_path_factory):
    from lesionseg.data import discover
    from lesionseg.synth import write_cohort

    root = tmp_path_factory.mktemp("context")
    write_cohort(root / "data", 1, modalities=("flair",), seed=21, **SMALL_PHANTOM)
    return discover(root / "data")[0]


def test_training_neighbours_are_the_grid_neighbours_flipped_with_their_slice(one_case):
    from lesionseg.preprocess import PrepareConfig
    from lesionseg.preprocess.pipeline import prepare_case

    config = PrepareConfig(size=64, negatives=0.5, context_slices=1, lesion_side="right")
    training = prepare_case(one_case, config, training=True)
    every = prepare_case(one_case, config, training=False)  # every brain slice, unflipped
    position_of = {index: position for position, index in enumerate(every.record.slice_indices)}
    checked = flipped = 0
    for position, (index, flip) in enumerate(zip(training.record.slice_indices, training.record.flipped)):
        for column, offset in enumerate((-1, 1)):
            neighbour = index + offset
            if neighbour not in position_of:
                continue
            expected = every.images[position_of[neighbour]]
            expected = expected[..., ::-1] if flip else expected
            np.testing.assert_array_equal(training.context[position, :, column], expected)
            checked += 1
        flipped += flip
    assert checked >= 10 and flipped >= 1  # the lesion lies left: the training slices with it are flipped
    assert training.network_input().shape[1] == 3


def test_an_older_prepared_folder_is_refused_with_what_to_do(tiny_prepared, tmp_path):
    # tiny_prepared holds one neighbour; a 2-neighbour training is refused before any work
    result = run_cli("train", tiny_prepared, tmp_path / "run", "--context", "2", "--epochs", "1", "--model", "unet2d",
                     "--network-kwargs", '{"features": [8, 16, 32, 64, 128]}', "--progress", "none")
    assert result.returncode == 2
    message = result.stderr.strip()
    assert "holds 1 neighbouring slice(s) on each side" in message and "prepare the dataset again" in message
    assert len(message.splitlines()) == 1


def test_a_2p5d_model_segments_on_the_native_grid(tiny_prepared, tmp_path, synthetic_dataset):
    """A model trained with one neighbour on each side segments a case end to end (input depth from the bundle)."""
    import SimpleITK as sitk

    from lesionseg.bundle import read_manifest
    from lesionseg.data import discover
    from lesionseg.infer import Predictor
    from lesionseg.train import TrainConfig, train_run

    config = TrainConfig(**TINY_NETWORK, epochs=1, all_data=True, batch_size=8, device="cpu", num_threads=1,
                         curriculum="none", context_slices=1, augmentation={"enabled": False})
    bundle = train_run(tiny_prepared, tmp_path / "run", config).bundle
    manifest = read_manifest(bundle)
    assert manifest["network"]["in_channels"] == 3 and manifest["preprocessing"]["context_slices"] == 1
    case = discover(synthetic_dataset)[0]
    prediction = Predictor(bundle, device="cpu").predict({"flair": case.channels["flair"]}, case_id=case.case_id)
    reference = sitk.ReadImage(str(case.channels["flair"]))
    assert prediction.probabilities.GetSize() == reference.GetSize()
