"""The ivd_coords_dataset asset and its checks, materialized in-process on the synthetic RSNA root."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import cast

import dagster as dg

from spine_assets.defs.ivd_coords import ivd_coords_checks, ivd_coords_dataset
from spine_assets.defs.resources import DataRoot
from tests.ivd_coords_support import make_rsna_root, read_csv, sagittal_rows, write_csv


def materialize(root: Path, **settings: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [ivd_coords_dataset, ivd_coords_checks],
        resources={"paths": DataRoot(root=str(root), weights=str(root.parent / "weights"))},
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"ivd_coords_dataset": {"config": {"workers": 1, **settings}}}},
    )


def test_asset_materializes_with_counts_and_passing_checks(tmp_path: Path, synthetic_root: Path) -> None:
    root = make_rsna_root(synthetic_root, tmp_path / "data")
    result = materialize(root)
    assert result.success
    rows = sagittal_rows(root)
    meta = result.asset_materializations_for_node("ivd_coords_dataset")[0].metadata
    canal = sum(r["condition"] == "Spinal Canal Stenosis" for r in rows)
    # the canal points are placed on the Sagittal T1 series too (one per study)
    total = len(rows) + canal
    assert meta["annotations"].value == total == len(read_csv(root / "processed/ivd_coords/annotations.csv"))
    assert meta["series_sag_t2"].value == canal and meta["series_sag_t1"].value == len(rows)
    assert meta["source_rsna"].value == total
    assert meta["studies"].value == len({r["study_id"] for r in rows})
    assert all(meta[f"level_{level}"].value == total // 5 for level in ("L1/L2", "L5/S1"))
    assert meta["rejected"].value == 0
    assert meta["dataset"].value == str(root / "processed/ivd_coords")
    table = str(meta["counts"].value).splitlines()
    assert table[0].startswith("| series type | L1/L2") and len(table) == 4  # header, rule, sag_t1, sag_t2
    assert table[3] == f"| sag_t2 | {' | '.join([str(canal // 5)] * 5)} | {canal} |"
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"ivd_coords_images_exist", "ivd_coords_points_inside", "ivd_coords_reject_rate"}
    assert all(e.passed for e in checks.values())


def test_run_config_and_bad_rows_show_in_metadata_and_checks(tmp_path: Path, synthetic_root: Path) -> None:
    root = make_rsna_root(synthetic_root, tmp_path / "data")
    path = root / "raw/RSNA/train_label_coordinates.csv"
    rows = read_csv(path)
    canal = [r for r in rows if r["condition"] == "Spinal Canal Stenosis"]
    for row in canal[:2]:
        row["instance_number"] = "999"
    write_csv(path, rows)
    result = materialize(root, include_neural_foraminal=False)
    assert result.success
    meta = result.asset_materializations_for_node("ivd_coords_dataset")[0].metadata
    assert meta["annotations"].value == 2 * (len(canal) - 2)  # on T2, and placed on T1
    assert meta["skipped_missing_dicom"].value == 2
    assert meta["excluded_neural_foraminal_excluded"].value == len(sagittal_rows(root)) - len(canal)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["ivd_coords_images_exist"].passed and checks["ivd_coords_points_inside"].passed
    assert not checks["ivd_coords_reject_rate"].passed  # 2 of 15 canal rows: above the 5% warning level
    assert checks["ivd_coords_reject_rate"].severity == dg.AssetCheckSeverity.WARN


def test_images_exist_check_fails_when_an_image_is_gone(tmp_path: Path, synthetic_root: Path) -> None:
    root = make_rsna_root(synthetic_root, tmp_path / "data")
    assert materialize(root).success
    annotations = read_csv(root / "processed/ivd_coords/annotations.csv")
    (root / "processed/ivd_coords" / annotations[0]["image_path"]).unlink()
    results = ivd_coords_checks(paths=DataRoot(root=str(root), weights=str(tmp_path)))
    evaluations = {e.check_name: e for e in cast("Iterable[dg.AssetCheckResult]", results)}
    assert not evaluations["ivd_coords_images_exist"].passed
    assert evaluations["ivd_coords_images_exist"].metadata["missing"].value == 1
    assert evaluations["ivd_coords_points_inside"].passed
