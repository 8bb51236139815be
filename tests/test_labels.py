"""Label schemas: every SPIDER value lands on its nnU-Net target; unknown values and bad schemas fail loudly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from spine_lib.errors import InputPathError, LabelSchemaError
from spine_lib.labels import builtin_schemas, load_label_schema, remap_labels

VERTEBRAE = range(1, 26)
CANAL = 100
PARTIAL = range(101, 126)
DISCS = range(201, 226)
ALL_SPIDER_VALUES = [0, *VERTEBRAE, CANAL, *PARTIAL, *DISCS]


def expected_spider_target(value: int, ignore_partial: bool = False) -> int:
    """The documented policy, written independently of the YAML: consecutive targets 0..51 (52 = ignore)."""
    if value == 0:
        return 0
    if value in VERTEBRAE:
        return value
    if value == CANAL:
        return 26
    if value in PARTIAL:
        return 52 if ignore_partial else value - 100
    return 26 + (value - 200)


def test_builtin_schemas_are_listed() -> None:
    assert {"spider", "spider_ignore_partial", "spider_groups"} <= set(builtin_schemas())


def test_group_schema_merges_levels_into_three_structures() -> None:
    schema = load_label_schema("spider_groups")
    values = np.array(ALL_SPIDER_VALUES, dtype=np.uint16)
    out = remap_labels(values, schema)
    expected = [0 if v == 0 else 2 if v == 100 else 3 if v > 200 else 1 for v in ALL_SPIDER_VALUES]
    np.testing.assert_array_equal(out, expected)
    assert schema.num_classes == 4 and schema.target_name(3) == "disc"


def test_spider_schema_covers_every_spider_value() -> None:
    schema = load_label_schema("spider")
    assert sorted(schema.source_labels.values()) == ALL_SPIDER_VALUES
    assert schema.num_classes == 52
    assert schema.target_name(26) == "spinal_canal"
    assert schema.target_name(27) == "disc_1"
    assert schema.source_name(201) == "disc_1"


@pytest.mark.parametrize("name", ["spider", "spider_ignore_partial"])
def test_remap_of_every_spider_value(name: str) -> None:
    schema = load_label_schema(name)
    values = np.array(ALL_SPIDER_VALUES, dtype=np.uint8 if max(ALL_SPIDER_VALUES) < 256 else np.uint16)
    mask = np.broadcast_to(values, (3, 4, len(values))).copy()
    out = remap_labels(mask, schema)
    expected = [expected_spider_target(v, ignore_partial=name.endswith("ignore_partial")) for v in ALL_SPIDER_VALUES]
    assert out.shape == mask.shape
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[1, 2], expected)


def test_ignore_variant_puts_ignore_last() -> None:
    schema = load_label_schema("spider_ignore_partial")
    assert schema.target_labels["ignore"] == max(schema.target_labels.values()) == 52
    assert schema.metadata["partial_vertebrae_policy"] == "ignore"


@pytest.mark.parametrize("unknown", [99, 126, 150, 200, 226, 255])
def test_remap_rejects_unknown_label(unknown: int) -> None:
    mask = np.array([[0, 1, 201], [100, unknown, 5]], dtype=np.int16)
    with pytest.raises(LabelSchemaError, match=rf"not in the schema's mapping: {unknown}\b") as info:
        remap_labels(mask, load_label_schema("spider"), source="masks/7_t2.mha")
    assert "masks/7_t2.mha" in str(info.value)


def test_remap_rejects_negative_and_fractional_values() -> None:
    schema = load_label_schema("spider")
    with pytest.raises(LabelSchemaError, match="-1"):
        remap_labels(np.array([0, -1, 3], dtype=np.int16), schema)
    with pytest.raises(LabelSchemaError, match="non-integer"):
        remap_labels(np.array([0.0, 1.5]), schema)


def test_remap_sitk_image_keeps_geometry() -> None:
    array = np.zeros((4, 6, 5), dtype=np.uint16)
    array[1:3, 2:4, 1:3] = 203  # disc_3
    array[0, 0, 0] = 100
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 0.6, 3.3))
    image.SetOrigin((1.0, -2.0, 30.0))
    out = remap_labels(image, load_label_schema("spider"))
    assert isinstance(out, sitk.Image)
    assert out.GetSpacing() == image.GetSpacing() and out.GetOrigin() == image.GetOrigin()
    result = sitk.GetArrayFromImage(out)
    assert set(np.unique(result)) == {0, 26, 29}
    assert (result == 29).sum() == 8


def test_plain_dict_mapping() -> None:
    out = remap_labels(np.array([[0, 5], [5, 9]]), {0: 0, 5: 1, 9: 2})
    np.testing.assert_array_equal(out, [[0, 1], [1, 2]])


def write_schema(tmp_path: Path, **changes: object) -> Path:
    data: dict[str, object] = {
        "name": "toy",
        "source_labels": {"background": 0, "bone": 10, "disc": 20},
        "target_labels": {"background": 0, "bone": 1, "disc": 2},
        "mapping": {0: 0, 10: 1, 20: 2},
        "metadata": {"description": "toy"},
    }
    data.update(changes)
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_custom_schema_from_path(tmp_path: Path) -> None:
    schema = load_label_schema(write_schema(tmp_path))
    np.testing.assert_array_equal(remap_labels(np.array([20, 10, 0]), schema), [2, 1, 0])


@pytest.mark.parametrize(
    ("changes", "cause"),
    [
        ({"mapping": {0: 0, 10: 1}}, "source values without a mapping: [20]"),
        ({"mapping": {0: 0, 10: 1, 20: 2, 30: 1}}, "mapping keys that are not source values: [30]"),
        ({"mapping": {0: 0, 10: 1, 20: 5}}, "mapping to values that are not target values: [5]"),
        ({"target_labels": {"background": 0, "bone": 1, "disc": 3}, "mapping": {0: 0, 10: 1, 20: 3}},
         "consecutive from 0"),
        ({"target_labels": {"background": 1, "bone": 0, "disc": 2}}, "'background' to 0"),
        ({"target_labels": {"background": 0, "ignore": 1, "disc": 2}}, "'ignore' target must be the highest"),
        ({"source_labels": {"background": 0, "bone": 10, "disc": 10}}, "more than one name: [10]"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_malformed_schema_is_rejected(tmp_path: Path, changes: dict[str, object], cause: str) -> None:
    path = write_schema(tmp_path, **changes)
    with pytest.raises(LabelSchemaError, match="malformed label schema") as info:
        load_label_schema(path)
    assert cause in str(info.value)
    assert str(path) in str(info.value)


def test_schema_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputPathError, match="does not exist"):
        load_label_schema(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(LabelSchemaError, match="invalid YAML"):
        load_label_schema(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(LabelSchemaError, match="must be a YAML mapping"):
        load_label_schema(listy)
    with pytest.raises(LabelSchemaError, match="neither a built-in schema"):
        load_label_schema("spyder")
