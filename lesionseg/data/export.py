"""Writing a case list out as an nnU-Net v2 raw dataset or as a CSV manifest."""

from __future__ import annotations

import csv
import io as text_io
import os
import shutil
from pathlib import Path

from lesionseg.data.case import Case
from lesionseg.errors import DatasetError
from lesionseg.io import atomic_path, image_extension, read_image, write_image, write_json_atomic, write_text_atomic


def _copy_as_nifti(source: Path, destination: Path) -> None:
    """Copy a ``.nii.gz`` as is; convert any other format (keeping its geometry)."""
    if image_extension(source) == ".nii.gz":
        with atomic_path(destination) as temporary:
            shutil.copyfile(source, temporary)
    else:
        write_image(read_image(source), destination)


def export_nnunet(cases: list[Case], out_dir: str | os.PathLike, *, dataset_name: str = "LesionSeg",
                  dataset_id: int = 501) -> Path:
    """Write the cases as an nnU-Net v2 raw dataset ``Dataset{id}_{name}``.

    Cases with a mask go to ``imagesTr``/``labelsTr``, the others to ``imagesTs``. Channels are numbered
    in the first case's channel order; every case must have the same channels. Masks are written 0/1
    uint8. ``dataset.json`` names the channels (``CT`` for CT, so nnU-Net picks CT normalisation).

    Returns:
        The dataset folder.
    """
    if not cases:
        raise DatasetError("there are no cases to export.")
    channel_names = cases[0].channel_names
    for case in cases:
        if case.channel_names != channel_names:
            raise DatasetError(
                f"case {case.case_id} has channels {case.channel_names}, unlike {channel_names}; "
                "nnU-Net needs the same channels in every case."
            )
    folder = Path(out_dir) / f"Dataset{dataset_id:03d}_{dataset_name}"
    training = 0
    for case in cases:
        split = "Tr" if case.mask else "Ts"
        for index, name in enumerate(channel_names):
            _copy_as_nifti(case.channels[name], folder / f"images{split}" / f"{case.case_id}_{index:04d}.nii.gz")
        if case.mask:
            write_image(case.read_mask(reference=read_image(case.channels[channel_names[0]])),
                        folder / "labelsTr" / f"{case.case_id}.nii.gz")
            training += 1
    write_json_atomic(folder / "dataset.json", {
        "channel_names": {str(i): ("CT" if n == "ct" else n.upper() if n in ("flair", "dwi", "adc") else n)
                          for i, n in enumerate(channel_names)},
        "labels": {"background": 0, "lesion": 1},
        "numTraining": training,
        "file_ending": ".nii.gz",
        "name": dataset_name,
        "description": "exported by LesionSeg",
    })
    return folder


def export_manifest(cases: list[Case], csv_path: str | os.PathLike, *, relative: bool = True) -> Path:
    """Write the cases as a CSV manifest (case_id, patient_id, one column per channel, mask).

    Args:
        relative: write paths relative to the CSV file's folder when possible.
    """
    csv_path = Path(csv_path)
    channel_names: list[str] = []
    for case in cases:
        channel_names += [n for n in case.channel_names if n not in channel_names]
    base = csv_path.parent.resolve()

    def shown(path: Path | None) -> str:
        if path is None:
            return ""
        resolved = Path(path).resolve()
        if relative:
            try:
                return os.path.relpath(resolved, base)
            except ValueError:  # another drive on Windows
                return str(resolved)
        return str(resolved)

    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["case_id", "patient_id", *channel_names, "mask"])
    for case in cases:
        writer.writerow([case.case_id, case.patient_id, *(shown(case.channels.get(n)) for n in channel_names),
                         shown(case.mask)])
    write_text_atomic(csv_path, buffer.getvalue())
    return csv_path

