"""RSNA series descriptions: the mapping, the series types, the conditions."""

from __future__ import annotations

from pathlib import Path

import pytest

from spine_lib.datasets import get_series_type, load_series_mapping
from spine_lib.errors import InputPathError, TabularDataError
from spine_lib.sources.rsna import condition_kind, series_type_of
from tests.ivd_coords_support import rsna_truth, write_csv

TRUTH_KIND = {"sag_t1": "sag_t1", "sag_t2": "sag_t2", "axial_t2": "ax_t2"}


def test_series_mapping_of_the_synthetic_root(synthetic_root: Path) -> None:
    mapping = load_series_mapping(synthetic_root / "raw/RSNA/train_series_descriptions.csv")
    studies = rsna_truth(synthetic_root)["studies"]
    assert len(mapping) == sum(len(s["series"]) for s in studies) == 9
    for study in studies:
        for series in study["series"]:
            assert mapping[(study["study_id"], series["series_id"])] == series["description"]
            expected = TRUTH_KIND[series["kind"]]
            assert get_series_type(series["series_id"], study["study_id"], mapping) == expected
            assert get_series_type(str(series["series_id"]), str(study["study_id"]), mapping) == expected


def test_unknown_series_and_study_have_no_type(synthetic_root: Path) -> None:
    mapping = load_series_mapping(synthetic_root / "raw/RSNA/train_series_descriptions.csv")
    (study_id, series_id) = next(iter(mapping))
    assert get_series_type(series_id + 1, study_id, mapping) is None
    assert get_series_type(series_id, study_id + 1, mapping) is None  # a series id belongs to its study
    assert get_series_type("not-a-number", study_id, mapping) is None


@pytest.mark.parametrize(
    ("description", "kind"),
    [("Sagittal T1", "sag_t1"), ("Sagittal T2/STIR", "sag_t2"), ("SAGITTAL  T2/STIR ", "sag_t2"),
     ("Axial T2", "ax_t2"), ("Coronal T2", None), ("", None)],
)
def test_series_type_of_descriptions(description: str, kind: str | None) -> None:
    assert series_type_of(description) == kind


def test_conditions_name_series_type_point_and_side() -> None:
    assert condition_kind("Spinal Canal Stenosis") == ("sag_t2", "canal", "")
    assert condition_kind(" left neural foraminal narrowing") == ("sag_t1", "foramen", "left")
    assert condition_kind("Right Subarticular Stenosis") == ("ax_t2", "subarticular", "right")
    assert condition_kind("Spinal Stenosis") is None


def test_description_file_problems_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputPathError, match="does not exist"):
        load_series_mapping(tmp_path / "absent.csv")
    bad = tmp_path / "descriptions.csv"
    write_csv(bad, [{"study_id": 1, "series_id": 2}])
    with pytest.raises(TabularDataError, match="series_description"):
        load_series_mapping(bad)
    ragged = tmp_path / "ragged.csv"
    write_csv(ragged, [{"study_id": "x", "series_id": 2, "series_description": "Axial T2"},
                       {"study_id": 3, "series_id": 4, "series_description": "Sagittal T1"}])
    assert load_series_mapping(ragged) == {(3, 4): "Sagittal T1"}
