"""Shared fixtures: small images with non-trivial geometry, built in code."""

from __future__ import annotations

import os

# No network at run time: model hubs and experiment tracking stay offline in every test.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk


def sagittal_direction(tilt_degrees: float = 7.0) -> tuple[float, ...]:
    """A right-handed sagittal orientation (rows posterior, columns inferior), tilted about the LR axis."""
    t = np.deg2rad(tilt_degrees)
    row = np.array([0.0, np.cos(t), np.sin(t)])
    col = np.array([0.0, np.sin(t), -np.cos(t)])
    normal = np.cross(row, col)
    return tuple(np.column_stack([row, col, normal]).ravel())


def make_volume(
    shape_zyx: tuple[int, int, int] = (6, 20, 16),
    spacing: tuple[float, float, float] = (0.6, 0.7, 3.5),
    origin: tuple[float, float, float] = (-12.5, 30.25, 101.0),
    direction: tuple[float, ...] | None = None,
    seed: int = 0,
) -> sitk.Image:
    """An int16 volume of random values with the given geometry (every voxel distinct in practice)."""
    rng = np.random.default_rng(seed)
    array = rng.integers(-1000, 3000, size=shape_zyx, dtype=np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction or sagittal_direction())
    return image


def assert_same_geometry(a: sitk.Image, b: sitk.Image, tol: float = 1e-4) -> None:
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=tol)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=tol)


@pytest.fixture
def volume() -> sitk.Image:
    return make_volume()


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small synthetic data root for the whole suite (4 SPIDER, 3 RSNA, 6 Phenikaa patients)."""
    from spine_lib.synthetic.generate import SynthConfig, make_synthetic_root

    root = tmp_path_factory.mktemp("synthetic") / "data"
    make_synthetic_root(
        SynthConfig(out=root, spider_patients=4, rsna_studies=3, phenikaa_patients=6, size=128, slices=12, seed=7)
    )
    return root
