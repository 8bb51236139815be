"""Volume formats: round-trips keep voxels and geometry; writes are atomic; bad files give clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from spine_lib.errors import InputPathError, MedicalImageError, UnsupportedFormatError
from spine_lib.io import read_medical_image, write_medical_image
from spine_lib.io.formats import image_suffix, strip_image_suffix
from tests.conftest import assert_same_geometry, make_volume

FORMATS = [".nii.gz", ".nii", ".mha", ".mhd", ".nrrd"]


@pytest.mark.parametrize("suffix", FORMATS)
def test_roundtrip_keeps_voxels_and_geometry(tmp_path: Path, volume: sitk.Image, suffix: str) -> None:
    path = write_medical_image(volume, tmp_path / f"case{suffix}")
    back = read_medical_image(path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(volume))
    assert back.GetPixelID() == volume.GetPixelID()
    assert_same_geometry(back, volume)


@pytest.mark.parametrize("suffix", FORMATS)
def test_write_leaves_no_temporary_files(tmp_path: Path, volume: sitk.Image, suffix: str) -> None:
    write_medical_image(volume, tmp_path / f"case{suffix}")
    names = sorted(p.name for p in tmp_path.iterdir())
    expected = ["case.mhd", "case.zraw"] if suffix == ".mhd" else [f"case{suffix}"]
    assert names == expected


def test_mhd_header_names_its_data_file(tmp_path: Path, volume: sitk.Image) -> None:
    write_medical_image(volume, tmp_path / "case.mhd", compress=False)
    header = (tmp_path / "case.mhd").read_text()
    assert "ElementDataFile = case.raw" in header
    assert (tmp_path / "case.raw").stat().st_size == volume.GetNumberOfPixels() * 2


def test_compression_shrinks_metaimage(tmp_path: Path) -> None:
    smooth = sitk.GetImageFromArray(np.zeros((8, 64, 64), dtype=np.int16))
    write_medical_image(smooth, tmp_path / "packed.mha", compress=True)
    write_medical_image(smooth, tmp_path / "plain.mha", compress=False)
    assert (tmp_path / "packed.mha").stat().st_size * 10 < (tmp_path / "plain.mha").stat().st_size


def test_failed_write_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "case.nii.gz"
    first = make_volume(seed=1)
    write_medical_image(first, target)
    before = target.read_bytes()

    def broken_write(image: sitk.Image, name: str, useCompression: bool = True) -> None:  # noqa: N803
        Path(name).write_bytes(b"half a file")
        raise RuntimeError("ITK ERROR: disk full")

    monkeypatch.setattr(sitk, "WriteImage", broken_write)
    with pytest.raises(MedicalImageError, match="disk full") as info:
        write_medical_image(make_volume(seed=2), target)
    assert str(target) in str(info.value)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["case.nii.gz"]


def test_overwrite_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "case.mha"
    write_medical_image(make_volume(seed=1), target)
    second = make_volume(seed=2)
    write_medical_image(second, target)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_medical_image(target)), sitk.GetArrayFromImage(second))


def test_missing_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.nii.gz"
    with pytest.raises(InputPathError, match="does not exist") as info:
        read_medical_image(missing)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("name", ["scan.png", "notes.txt", "volume"])
def test_unsupported_extension_is_rejected(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x89PNG not really")
    with pytest.raises(UnsupportedFormatError, match="unsupported extension") as info:
        read_medical_image(path)
    assert str(path) in str(info.value)


def test_unsupported_extension_on_write(tmp_path: Path, volume: sitk.Image) -> None:
    with pytest.raises(UnsupportedFormatError, match=r"'\.png'"):
        write_medical_image(volume, tmp_path / "case.png")


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha", ".nrrd"])
def test_corrupt_file_is_named(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(MedicalImageError, match="cannot read") as info:
        read_medical_image(path)
    assert str(path) in str(info.value)


def test_empty_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "empty.nii.gz"
    path.touch()
    with pytest.raises(MedicalImageError, match="file is empty"):
        read_medical_image(path)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".mha", ".nrrd"])
def test_truncated_file_is_an_error(tmp_path: Path, volume: sitk.Image, suffix: str) -> None:
    # ITK reads a truncated NIfTI without complaint, zero-filling the missing voxels: we must not.
    path = write_medical_image(volume, tmp_path / f"case{suffix}", compress=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 300])
    with pytest.raises(MedicalImageError) as info:
        read_medical_image(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("name", "suffix", "stem"),
    [("a_0000.nii.gz", ".nii.gz", "a_0000"), ("B.NII.GZ", ".nii.gz", "B"), ("x.mha", ".mha", "x"), ("d", "", "d")],
)
def test_suffix_conventions(name: str, suffix: str, stem: str) -> None:
    assert image_suffix(Path(name)) == suffix
    assert strip_image_suffix(Path(name)) == stem
