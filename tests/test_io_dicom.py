"""DICOM: series written with pydicom read back with the right geometry, slice order and series choice."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from spine_lib.errors import DicomSeriesError, InputPathError, MedicalImageError
from spine_lib.io import DicomSeriesInfo, list_dicom_series, read_medical_image, write_dicom_series
from tests.conftest import assert_same_geometry, make_volume


def test_series_roundtrip_keeps_geometry_and_voxels(tmp_path: Path, volume: sitk.Image) -> None:
    files = write_dicom_series(volume, tmp_path / "series", DicomSeriesInfo(series_description="Sagittal T2/STIR"))
    assert [f.name for f in files] == [f"{k}.dcm" for k in range(1, volume.GetSize()[2] + 1)]
    back = read_medical_image(tmp_path / "series")
    assert_same_geometry(back, volume)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(volume))


def test_slice_order_follows_position_not_file_names(tmp_path: Path, volume: sitk.Image) -> None:
    folder = tmp_path / "series"
    files = write_dicom_series(volume, folder)
    # Rename so that the lexical order of file names is the reverse of the anatomical order.
    for i, f in enumerate(files):
        f.rename(folder / f"IM{len(files) - i:04d}")
    back = read_medical_image(folder)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(volume))
    assert_same_geometry(back, volume)


def test_tags_describe_the_slices(tmp_path: Path, volume: sitk.Image) -> None:
    info = DicomSeriesInfo(series_description="Sagittal T1", series_number=3, patient_id="250010139",
                           study_date=date(2025, 7, 18))
    files = write_dicom_series(volume, tmp_path / "s", info)
    third = pydicom.dcmread(files[2])
    assert third.InstanceNumber == 3
    assert third.SeriesDescription == "Sagittal T1"
    assert third.StudyDate == "20250718"
    assert third.PatientID == "250010139"
    np.testing.assert_allclose([float(v) for v in third.ImagePositionPatient],
                               volume.TransformIndexToPhysicalPoint((0, 0, 2)), atol=1e-5)
    sx, sy, sz = volume.GetSpacing()
    np.testing.assert_allclose([float(v) for v in third.PixelSpacing], [sy, sx], atol=1e-6)
    assert float(third.SliceThickness) == pytest.approx(sz)
    assert (third.Rows, third.Columns) == (volume.GetSize()[1], volume.GetSize()[0])
    np.testing.assert_array_equal(third.pixel_array, sitk.GetArrayFromImage(volume)[2])


def test_same_inputs_give_same_bytes(tmp_path: Path, volume: sitk.Image) -> None:
    a = write_dicom_series(volume, tmp_path / "a")
    b = write_dicom_series(volume, tmp_path / "b")
    assert [f.read_bytes() for f in a] == [f.read_bytes() for f in b]


def test_left_handed_volume_keeps_physical_geometry(tmp_path: Path) -> None:
    volume = make_volume(direction=(1, 0, 0, 0, 1, 0, 0, 0, -1))
    write_dicom_series(volume, tmp_path / "s")
    back = read_medical_image(tmp_path / "s")
    original = sitk.GetArrayFromImage(volume)
    # Same voxel at the same physical point, with the slice axis stored in the opposite order.
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), original[::-1])
    last = volume.TransformIndexToPhysicalPoint((0, 0, volume.GetSize()[2] - 1))
    np.testing.assert_allclose(back.GetOrigin(), last, atol=1e-4)
    np.testing.assert_allclose(np.array(back.GetDirection()).reshape(3, 3)[:, 2], [0, 0, 1], atol=1e-6)


def test_single_dicom_file(tmp_path: Path, volume: sitk.Image) -> None:
    files = write_dicom_series(volume, tmp_path / "s")
    image = read_medical_image(files[4])
    assert image.GetSize() == (volume.GetSize()[0], volume.GetSize()[1], 1)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image)[0], sitk.GetArrayFromImage(volume)[4])
    np.testing.assert_allclose(image.GetOrigin(), volume.TransformIndexToPhysicalPoint((0, 0, 4)), atol=1e-4)


@pytest.fixture
def two_series(tmp_path: Path) -> tuple[Path, str, str]:
    """A study folder with a 4-slice T1 and a 7-slice T2 series in sub-folders (as hospital exports nest)."""
    study = tmp_path / "NGUYEN_VAN_SON_20250718"
    t1 = write_dicom_series(make_volume((4, 12, 10), seed=1), study / "SE1",
                            DicomSeriesInfo(series_description="Sagittal T1", series_number=1))
    t2 = write_dicom_series(make_volume((7, 12, 10), seed=2), study / "SE2",
                            DicomSeriesInfo(series_description="Sagittal T2", series_number=2))
    return study, pydicom.dcmread(t1[0]).SeriesInstanceUID, pydicom.dcmread(t2[0]).SeriesInstanceUID


def test_folder_picks_series_with_most_slices(two_series: tuple[Path, str, str]) -> None:
    study, _, t2_uid = two_series
    found = {s.uid: s.num_slices for s in list_dicom_series(study)}
    assert found == {two_series[1]: 4, t2_uid: 7}
    assert read_medical_image(study).GetSize()[2] == 7


def test_folder_reads_requested_series(two_series: tuple[Path, str, str]) -> None:
    study, t1_uid, _ = two_series
    image = read_medical_image(study, series_uid=t1_uid)
    expected = sitk.GetArrayFromImage(make_volume((4, 12, 10), seed=1))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), expected)


def test_unknown_series_uid_lists_present_ones(two_series: tuple[Path, str, str]) -> None:
    study, t1_uid, t2_uid = two_series
    with pytest.raises(DicomSeriesError, match=r"1\.2\.3\.4 not found") as info:
        read_medical_image(study, series_uid="1.2.3.4")
    assert t1_uid in str(info.value) and t2_uid in str(info.value) and str(study) in str(info.value)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DicomSeriesError, match="no DICOM series found") as info:
        read_medical_image(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(info.value)


def test_folder_without_dicom_files_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("not an image")
    with pytest.raises(DicomSeriesError, match="no DICOM series found"):
        read_medical_image(folder)


def test_corrupt_dicom_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 300)
    with pytest.raises(MedicalImageError, match="cannot read DICOM file") as info:
        read_medical_image(path)
    assert str(path) in str(info.value)


def test_list_series_needs_a_folder(tmp_path: Path) -> None:
    with pytest.raises(InputPathError, match="not a folder"):
        list_dicom_series(tmp_path / "missing")


def test_float_volume_is_refused(tmp_path: Path) -> None:
    image = sitk.GetImageFromArray(np.zeros((3, 4, 4), dtype=np.float32))
    with pytest.raises(MedicalImageError, match="integer pixels"):
        write_dicom_series(image, tmp_path / "s")
