"""Intensity normalisation to 8 bits."""

from __future__ import annotations

import numpy as np
import pytest

from spine_lib.io import normalize_to_uint8


def test_min_max_maps_range_linearly() -> None:
    out = normalize_to_uint8(np.array([-100.0, 0.0, 100.0, 155.0]))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [0, 100, 200, 255])


def test_percentile_window_clips_outliers() -> None:
    values = np.concatenate([np.linspace(0, 100, 999), [1e6]])
    plain = normalize_to_uint8(values)
    robust = normalize_to_uint8(values, percentiles=(0, 99))
    assert plain[:999].max() == 0  # one hot voxel squashes everything else to black
    assert robust[-1] == 255
    assert robust[:999].max() == 255
    high = np.percentile(values, 99)
    assert int(robust[500]) == round(values[500] / high * 255)


def test_constant_and_nan_inputs() -> None:
    np.testing.assert_array_equal(normalize_to_uint8(np.full((2, 3), 7.0)), np.zeros((2, 3)))
    out = normalize_to_uint8(np.array([np.nan, 0.0, 10.0]))
    np.testing.assert_array_equal(out, [0, 0, 255])
    np.testing.assert_array_equal(normalize_to_uint8(np.array([np.nan, np.inf])), [0, 0])


def test_bad_percentiles() -> None:
    with pytest.raises(ValueError, match="percentiles"):
        normalize_to_uint8(np.arange(5), percentiles=(50, 10))
