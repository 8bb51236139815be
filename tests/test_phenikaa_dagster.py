"""Phenikaa in Dagster: the inbox sensor across ticks, partitioned report reads, matching, checks, no PHI."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from spine_assets.defs.phenikaa import (
    REPORTS_PARTITION,
    PhenikaaSettings,
    phenikaa_patient_checks,
    phenikaa_patients,
    phenikaa_report,
    phenikaa_report_table,
    phenikaa_reports_sensor,
)
from spine_assets.defs.resources import DataRoot
from spine_lib.datasets.phenikaa import ReportFields, report_partition_key, save_report_fields
from spine_lib.synthetic.truth import read_truth
from tests.test_phenikaa_pipeline import phi_strings


@pytest.fixture
def data_root(synthetic_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(synthetic_root / "raw/Phenikaa", root / "raw/Phenikaa")
    return root


def tick(instance: dg.DagsterInstance, paths: DataRoot, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"paths": paths})
    result = phenikaa_reports_sensor(context)
    assert isinstance(result, dg.SensorResult)
    for request in result.dynamic_partitions_requests or []:  # what the daemon would apply
        assert isinstance(request, dg.AddDynamicPartitionsRequest)
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_sensor_follows_the_inbox_across_ticks(data_root: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    paths = DataRoot(root=str(data_root))
    names = sorted(p.name for p in (data_root / "raw/Phenikaa/reports").iterdir())
    reports = sorted(report_partition_key(n) for n in names)

    first = tick(instance, paths, None)
    assert sorted(str(r.partition_key) for r in first.run_requests or []) == reports
    assert sorted(instance.get_dynamic_partitions(REPORTS_PARTITION)) == reports

    quiet = tick(instance, paths, first.cursor)
    assert not quiet.run_requests and quiet.skip_reason is not None

    changed = data_root / "raw/Phenikaa/reports" / names[0]
    changed.write_bytes(changed.read_bytes() + b"\0")
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    shutil.copyfile(changed, data_root / "raw/Phenikaa/reports/250012345.png")
    third = tick(instance, paths, quiet.cursor or first.cursor)
    keys = sorted(str(r.partition_key) for r in third.run_requests or [])
    assert keys == sorted([report_partition_key(names[0]), "250012345.png"])
    run_keys = {r.run_key for r in third.run_requests or []}
    assert all(k and k.split(":")[0] in keys for k in run_keys)
    assert len(instance.get_dynamic_partitions(REPORTS_PARTITION)) == len(reports) + 1


def test_sensor_chunks_a_big_inbox(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("spine_assets.defs.phenikaa.SENSOR_CHUNK", 4)
    instance = dg.DagsterInstance.ephemeral()
    paths = DataRoot(root=str(data_root))
    first = tick(instance, paths, None)
    second = tick(instance, paths, first.cursor)
    assert len(first.run_requests or []) == 4 and len(second.run_requests or []) == 2
    assert len(json.loads(second.cursor or "{}")) == 6


def test_partitions_then_matching_materialize_without_phi(data_root: Path, synthetic_root: Path) -> None:
    truth = read_truth(synthetic_root, "phenikaa")
    instance = dg.DagsterInstance.ephemeral()
    resources = {
        "paths": DataRoot(root=str(data_root), weights=str(data_root.parent / "weights")),
        "phenikaa": PhenikaaSettings.model_validate({"corrupted_ids": truth["corrupted_ids"]}),
    }
    keys = sorted(report_partition_key(p.name) for p in (data_root / "raw/Phenikaa/reports").iterdir())
    instance.add_dynamic_partitions(REPORTS_PARTITION, keys)
    for key in keys:
        result = dg.materialize([phenikaa_report], partition_key=key, resources=resources, instance=instance,
                                selection=[phenikaa_report])
        assert result.success
        meta = result.asset_materializations_for_node("phenikaa_report")[0].metadata
        assert meta["status"].value == "ok"
        assert meta["has_birth_year"].value is True and meta["name_cleaned"].value is False
    rest = dg.materialize([phenikaa_report_table, phenikaa_patients, phenikaa_patient_checks],
                          resources=resources, instance=instance)
    assert rest.success
    patients = rest.asset_materializations_for_node("phenikaa_patients")[0].metadata
    assert patients["matched"].value == 6 and patients["label_rows"].value == 29
    assert patients["waiting_for_review"].value == 0 and "review_table" not in patients
    assert all(e.passed for e in rest.get_asset_check_evaluations())

    # A report that reads well but has no folder: it waits for a reviewer, counted, never named.
    stranger = data_root / "raw/Phenikaa/reports/250055555.png"
    stranger.write_bytes(b"scan")
    stat = stranger.stat()
    save_report_fields(
        ReportFields(report_file=stranger.name, report_format="png", patient_id="250055555",
                     patient_name="HOÀNG THỊ XUÂN MAI", birthday="1949-09-30", birth_year=1949,
                     source_mtime_ns=stat.st_mtime_ns, source_size=stat.st_size),
        data_root / "interim/Phenikaa",
    )
    again = dg.materialize([phenikaa_patients, phenikaa_patient_checks], resources=resources, instance=instance)
    assert again.success
    patients = again.asset_materializations_for_node("phenikaa_patients")[0].metadata
    assert patients["waiting_for_review"].value == 1 and patients["matched"].value == 6
    assert str(patients["review_table"].value).endswith("interim/Phenikaa/review.csv")
    queue = next(e for e in again.get_asset_check_evaluations() if e.check_name == "phenikaa_review_queue")
    assert not queue.passed and queue.severity == dg.AssetCheckSeverity.WARN
    assert queue.metadata["waiting_for_review"].value == 1
    rate = next(e for e in again.get_asset_check_evaluations() if e.check_name == "phenikaa_match_rate")
    assert rate.metadata["match_rate"].value == round(6 / 7, 4)  # the refused report counts as unmatched
    # PHI: nothing in the event log (metadata, logs) names a patient or a birthday
    needles = [*phi_strings(truth), "HOÀNG THỊ XUÂN MAI", "HOANG THI XUAN MAI", "1949-09-30", "30/09/1949"]
    runs = instance.get_runs()
    logs = [str(e) for run in runs for e in instance.all_logs(run.run_id)]
    text = json.dumps([*logs, *(str(r.tags) for r in runs), *instance.get_dynamic_partitions(REPORTS_PARTITION)],
                      ensure_ascii=False)
    assert [n for n in needles if n in text] == []
