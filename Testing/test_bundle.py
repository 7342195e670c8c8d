"""Tests of lesionseg.bundle: round trip, refusal of pickled code, damaged/foreign/newer files, channels, card."""

from __future__ import annotations

import io
import json
import os
import pickle
import platform
import zipfile
from datetime import datetime, timezone

import monai
import pytest
import torch

import lesionseg

from lesionseg.bundle import (
    BUNDLE_FORMAT_VERSION,
    check_channels,
    find_identifiers,
    format_model_card,
    load_bundle,
    load_state_dicts,
    make_manifest,
    model_card,
    read_manifest,
    redact_paths,
    save_bundle,
)
from lesionseg.errors import BundleError
from lesionseg.labels import STROKE_LESION
from lesionseg.models import build_network_from_config, network_config

TINY = [4, 4, 8, 8, 16]


def tiny_config(in_channels: int = 1, features=TINY) -> dict:
    return network_config("unet2d", in_channels, features=list(features))


def manifest_for(config: dict, channels=("flair",), members: int = 1, **overrides) -> dict:
    arguments = dict(
        network_config=config, channels=list(channels), reference_channel=channels[0],
        expected_spacing_mm=[0.9, 0.9, 3.0], preprocessing={"size": 192, "lesion_side": "left"},
        members=[{"fold": i, "validation": {"dice": 0.6 + 0.1 * i}} for i in range(members)],
        provenance={"train_config": {"lr": 1e-4, "batch_size": 12}, "curriculum": {"kind": "vanilla"},
                    "data_fingerprint": "0" * 64,
                    "training_data": {"cases": 4, "slices": 40, "lesion_slices": 30,
                                      "lesion_volume_ml": {"median": 5.0, "min": 2.5, "max": 9.0}},
                    "fold_metrics": [{"fold": i, "dice": 0.6 + 0.1 * i} for i in range(members)]},
        name="tiny", description="a test model")
    arguments.update(overrides)
    return make_manifest(**arguments)


def write_zip(path, entries: dict[str, bytes]) -> None:
    """A zip written by hand (independently of save_bundle)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def weights_bytes(state) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


@pytest.fixture()
def saved(tmp_path):
    """A two-member bundle of a tiny U-Net: (path, manifest, networks)."""
    torch.manual_seed(0)
    config = tiny_config()
    networks = [build_network_from_config(config).eval() for _ in range(2)]
    manifest = manifest_for(config, members=2)
    path = save_bundle(tmp_path / "model.lsb", manifest, [n.state_dict() for n in networks])
    return path, manifest, networks


def test_round_trip_gives_the_same_outputs(saved):
    path, manifest, networks = saved
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["manifest.json", "weights/fold_0.pt", "weights/fold_1.pt"]
        assert json.loads(archive.read("manifest.json")) == manifest
    assert read_manifest(path) == manifest
    bundle = load_bundle(path)
    assert len(bundle.networks) == 2 and all(not n.training for n in bundle.networks)
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        originals = [n(x) for n in networks]
        reloaded = [n(x) for n in bundle.networks]
    assert not torch.equal(originals[0], originals[1])  # two different members
    for original, again in zip(originals, reloaded):
        assert torch.equal(original, again)
    expected = (torch.softmax(originals[0], 1) + torch.softmax(originals[1], 1)) / 2
    assert torch.allclose(bundle.probabilities(x), expected, atol=1e-7)
    for state, network in zip(load_state_dicts(path), networks):
        assert state.keys() == network.state_dict().keys()


def test_manifest_fills_format_labels_and_versions(saved):
    _, manifest, _ = saved
    assert manifest["format"] == "lesionseg-bundle" and manifest["format_version"] == BUNDLE_FORMAT_VERSION == 1
    assert manifest["spatial_dims"] == 2 and manifest["network"]["in_channels"] == 1
    lesion = manifest["labels"][1]
    assert manifest["labels"][0] == {"name": "background", "value": 0}
    assert (lesion["name"], lesion["value"]) == (STROKE_LESION.name, STROKE_LESION.value)
    assert lesion["color"] == pytest.approx(list(STROKE_LESION.color))
    assert lesion["terminology"] == STROKE_LESION.terminology
    assert [m["file"] for m in manifest["members"]] == ["weights/fold_0.pt", "weights/fold_1.pt"]
    versions = manifest["provenance"]["library_versions"]
    assert torch.__version__.startswith(versions["torch"]) and versions["monai"] == monai.__version__
    assert versions["python"] == platform.python_version()
    created = datetime.strptime(manifest["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 600


class _Payload:
    """Unpickling this object calls os.mkdir(marker): a visible side effect if any code runs."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("kind", ["torch_zip_dict", "torch_zip_object", "raw_pickle"])
def test_pickled_object_is_refused_without_running(tmp_path, kind):
    # The payload is live: a plain unpickler runs it.
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_Payload(str(proof))))
    assert proof.is_dir()

    marker = tmp_path / "marker"
    config = tiny_config()
    manifest = manifest_for(config)
    state = build_network_from_config(config).state_dict()
    if kind == "torch_zip_dict":
        weights = weights_bytes({**state, "extra": _Payload(str(marker))})
    elif kind == "torch_zip_object":
        weights = weights_bytes(_Payload(str(marker)))
    else:
        weights = pickle.dumps(_Payload(str(marker)), protocol=2)
    path = tmp_path / "evil.lsb"
    write_zip(path, {"manifest.json": json.dumps(manifest).encode(), "weights/fold_0.pt": weights})
    assert read_manifest(path)["name"] == "tiny"  # the manifest alone is fine
    for loader in (load_state_dicts, load_bundle):
        with pytest.raises(BundleError, match="pickled Python object") as caught:
            loader(path)
        assert str(path) in str(caught.value)
    assert not marker.exists()


def test_weights_that_are_not_a_state_dict_are_refused(tmp_path):
    manifest = manifest_for(tiny_config())
    path = tmp_path / "list.lsb"
    write_zip(path, {"manifest.json": json.dumps(manifest).encode(),
                     "weights/fold_0.pt": weights_bytes([torch.zeros(2)])})
    with pytest.raises(BundleError, match="plain weights"):
        load_state_dicts(path)


def test_truncated_bundle(saved, tmp_path):
    path, _, _ = saved
    data = path.read_bytes()
    cut = tmp_path / "cut.lsb"
    cut.write_bytes(data[: len(data) // 2])
    for loader in (read_manifest, load_bundle):
        with pytest.raises(BundleError, match="truncated or damaged") as caught:
            loader(cut)
        assert str(cut) in str(caught.value)


def test_damaged_weights_fail_their_checksum(saved, tmp_path):
    path, _, _ = saved
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("weights/fold_1.pt")
    # local header: 30 bytes + file name + extra field, then the (stored, uncompressed) data
    name_length = int.from_bytes(data[info.header_offset + 26: info.header_offset + 28], "little")
    extra_length = int.from_bytes(data[info.header_offset + 28: info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_length + extra_length
    data[start + info.compress_size // 2] ^= 0xFF
    damaged = tmp_path / "damaged.lsb"
    damaged.write_bytes(bytes(data))
    assert read_manifest(damaged)["name"] == "tiny"
    with pytest.raises(BundleError, match="damaged") as caught:
        load_state_dicts(damaged)
    assert "weights/fold_1.pt" in str(caught.value)


def test_foreign_and_plain_text_files(tmp_path):
    text = tmp_path / "notes.lsb"
    text.write_text("this is not a model\n")
    with pytest.raises(BundleError, match="not a LesionSeg model bundle .it is not a zip file") as caught:
        read_manifest(text)
    assert str(text) in str(caught.value)
    no_manifest = tmp_path / "other.lsb"
    write_zip(no_manifest, {"readme.txt": b"hello"})
    with pytest.raises(BundleError, match="not a LesionSeg model bundle .it has no manifest.json"):
        read_manifest(no_manifest)
    other_format = tmp_path / "monai.lsb"
    write_zip(other_format, {"manifest.json": json.dumps({"format": "monai-bundle", "version": 3}).encode()})
    with pytest.raises(BundleError, match="not a LesionSeg model bundle"):
        load_bundle(other_format)
    not_json = tmp_path / "broken.lsb"
    write_zip(not_json, {"manifest.json": b"{not json"})
    with pytest.raises(BundleError, match="not JSON"):
        read_manifest(not_json)
    with pytest.raises(BundleError, match="does not exist"):
        read_manifest(tmp_path / "missing.lsb")


def test_newer_format_version(saved, tmp_path):
    path, manifest, _ = saved
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries["manifest.json"] = json.dumps({**manifest, "format_version": 2}).encode()
    newer = tmp_path / "newer.lsb"
    write_zip(newer, entries)
    with pytest.raises(BundleError) as caught:
        read_manifest(newer)
    message = str(caught.value)
    assert str(newer) in message and "newer LesionSeg (format 2)" in message and "reads up to 1" in message
    assert "update LesionSeg" in message


def test_member_count_mismatch_and_missing_member(tmp_path):
    config = tiny_config()
    manifest = manifest_for(config, members=2)
    state = build_network_from_config(config).state_dict()
    target = tmp_path / "model.lsb"
    with pytest.raises(BundleError, match="2 members but 1 sets of weights"):
        save_bundle(target, manifest, [state])
    assert not target.exists() and list(tmp_path.iterdir()) == []
    missing = tmp_path / "missing_member.lsb"
    write_zip(missing, {"manifest.json": json.dumps(manifest).encode(), "weights/fold_0.pt": weights_bytes(state)})
    with pytest.raises(BundleError, match="missing its weights file weights/fold_1.pt"):
        load_state_dicts(missing)


def test_weights_that_do_not_fit_the_network(tmp_path):
    small, large = tiny_config(), tiny_config(features=[4, 4, 8, 8, 32])
    manifest = manifest_for(small)
    other = build_network_from_config(large).state_dict()
    wrong_shape = tmp_path / "shape.lsb"
    write_zip(wrong_shape, {"manifest.json": json.dumps(manifest).encode(),
                            "weights/fold_0.pt": weights_bytes(other)})
    with pytest.raises(BundleError, match="do not fit the network 'unet2d'") as caught:
        load_bundle(wrong_shape)
    assert str(wrong_shape) in str(caught.value) and "\n" not in str(caught.value)
    state = build_network_from_config(small).state_dict()
    state.pop(next(iter(state)))
    missing_key = tmp_path / "missing_key.lsb"
    write_zip(missing_key, {"manifest.json": json.dumps(manifest).encode(),
                            "weights/fold_0.pt": weights_bytes(state)})
    with pytest.raises(BundleError, match="do not fit"):
        load_bundle(missing_key)


def test_channel_check_and_reorder():
    manifest = manifest_for(tiny_config(3), channels=("tmax", "ttp", "dwi"))
    with pytest.raises(BundleError) as caught:
        check_channels(manifest, ["flair"], "perfusion.lsb")
    assert str(caught.value).startswith(
        "bundle perfusion.lsb needs 3 channels (tmax, ttp, dwi) but the input has 1 (flair)")
    assert check_channels(manifest, ["DWI", "adc", "tmax", "TTP"], "perfusion.lsb") == ["tmax", "TTP", "DWI"]
    with pytest.raises(BundleError, match="missing ttp"):
        check_channels(manifest, ["tmax", "dwi"], "perfusion.lsb")


def test_manifest_schema_is_checked():
    with pytest.raises(BundleError, match="takes 1 channels but 2 are listed"):
        manifest_for(tiny_config(1), channels=("flair", "dwi"))
    with pytest.raises(BundleError, match="reference_channel"):
        manifest_for(tiny_config(), reference_channel="dwi")
    with pytest.raises(BundleError, match="threshold"):
        manifest_for(tiny_config(), threshold=1.5)
    with pytest.raises(BundleError, match="expected_spacing_mm"):
        manifest_for(tiny_config(), expected_spacing_mm=[1.0, 0.0, 3.0])
    with pytest.raises(BundleError, match="data_fingerprint"):
        manifest_for(tiny_config(), provenance={"data_fingerprint": "sub-01 sub-02"})
    with pytest.raises(BundleError, match=r"training_data.cases\[0\] must hold only numbers"):
        manifest_for(tiny_config(), provenance={"training_data": {"cases": ["sub-strokecase0001"]}})


@pytest.mark.parametrize("train_config, finding", [
    ({"data": "/home/doctor/isles/sub-strokecase0001"}, "is a path"),
    ({"data": "C:\\data\\isles"}, "is a path"),
    ({"case": "rawdata/sub-strokecase0001/flair.nii.gz"}, "names an image file"),
    ({"validation": ["sub-r001s001"]}, "names a subject"),
    ({"PatientName": "DOE^JOHN"}, "names an identifier"),
    ({"series": "1.2.840.113619.2.55.3.604688119"}, "DICOM UID"),
])
def test_patient_identifiers_are_refused(tmp_path, train_config, finding):
    config = tiny_config()
    manifest = manifest_for(config, provenance={"train_config": train_config, "data_fingerprint": "f" * 64})
    target = tmp_path / "model.lsb"
    with pytest.raises(BundleError, match=finding):
        save_bundle(target, manifest, [build_network_from_config(config).state_dict()])
    assert not target.exists()


def test_case_ids_paths_and_clean_manifest(tmp_path):
    config = tiny_config()
    state = build_network_from_config(config).state_dict()
    manifest = manifest_for(config, description="trained on case hospitalA-0042 and others")
    assert find_identifiers(manifest) == []
    with pytest.raises(BundleError, match="contains the case id 'hospitalA-0042'"):
        save_bundle(tmp_path / "a.lsb", manifest, [state], case_ids=["hospitalA-0042", "hospitalA-0043"])
    paths = {"data": "/data/isles", "out": "/tmp/run", "lr": 0.001, "channels": ["flair"]}
    redacted = redact_paths(paths)
    assert redacted == {"data": "<path>", "out": "<path>", "lr": 0.001, "channels": ["flair"]}
    clean = manifest_for(config, provenance={"train_config": redacted, "data_fingerprint": "sha256:" + "a" * 64})
    assert read_manifest(save_bundle(tmp_path / "b.lsb", clean, [state]))["provenance"]["train_config"] == redacted


def test_model_card_summarises_members():
    manifest = manifest_for(tiny_config(), members=3)
    for member, dice, hd in zip(manifest["members"], (0.7, 0.6, 0.8), (4.0, None, 6.0)):
        member["validation"] = {"dice": dice, "hd95_mm": hd}
    card = model_card(manifest)
    # hand-computed: mean 0.7, sample sd sqrt(((0)^2 + 0.1^2 + 0.1^2) / 2) = 0.1
    assert card["validation"]["dice"]["mean"] == pytest.approx(0.7)
    assert card["validation"]["dice"]["sd"] == pytest.approx(0.1)
    assert card["validation"]["hd95_mm"] == pytest.approx({"mean": 5.0, "sd": 2 ** 0.5, "n": 2})
    assert card["channels"] == ["flair"] and card["members"] == 3 and card["folds"] == [0, 1, 2]
    text = format_model_card(manifest)
    assert "dice 0.7 ± 0.1" in text and "0.9 x 0.9 x 3 mm" in text and "4 cases" in text
    assert f"LesionSeg {lesionseg.__version__}" in text
