"""Phenikaa in Dagster: the inbox sensor across ticks, partitioned report reads, matching, checks, no PHI."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from spine_assets.defs.phenikaa import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    REPORTS_PARTITION,
    PhenikaaSettings,
    phenikaa_inbox_job,
    phenikaa_patient_checks,
    phenikaa_patients,
    phenikaa_report,
    phenikaa_report_table,
    phenikaa_reports_sensor,
)
from spine_assets.defs.raw_sources import phenikaa_raw
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


def requested_keys(instance: dg.DagsterInstance, request: dg.RunRequest) -> list[str]:
    """The partitions one run request covers: its partition range, in the instance's partition order."""
    order = instance.get_dynamic_partitions(REPORTS_PARTITION)
    first, last = request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG]
    return list(order[order.index(first):order.index(last) + 1])


def all_requested(instance: dg.DagsterInstance, result: dg.SensorResult) -> list[str]:
    return sorted(key for request in result.run_requests or [] for key in requested_keys(instance, request))


def test_sensor_follows_the_inbox_across_ticks(data_root: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    paths = DataRoot(root=str(data_root))
    names = sorted(p.name for p in (data_root / "raw/Phenikaa/reports").iterdir())
    reports = sorted(report_partition_key(n) for n in names)

    first = tick(instance, paths, None)
    assert len(first.run_requests or []) == 1  # six new reports, one run over their partition range
    assert all_requested(instance, first) == reports
    assert sorted(instance.get_dynamic_partitions(REPORTS_PARTITION)) == reports

    quiet = tick(instance, paths, first.cursor)
    assert not quiet.run_requests and quiet.skip_reason is not None

    changed = data_root / "raw/Phenikaa/reports" / names[0]
    changed.write_bytes(changed.read_bytes() + b"\0")
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    shutil.copyfile(changed, data_root / "raw/Phenikaa/reports/250012345.png")
    third = tick(instance, paths, quiet.cursor or first.cursor)
    assert all_requested(instance, third) == sorted([report_partition_key(names[0]), "250012345.png"])
    run_keys = [r.run_key for r in third.run_requests or []]
    assert len(set(run_keys)) == len(run_keys) and all(run_keys)
    assert len(instance.get_dynamic_partitions(REPORTS_PARTITION)) == len(reports) + 1


def test_sensor_chunks_a_big_inbox_into_few_runs(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("spine_assets.defs.phenikaa.SENSOR_CHUNK", 4)
    monkeypatch.setattr("spine_assets.defs.phenikaa.RUN_SIZE", 3)
    instance = dg.DagsterInstance.ephemeral()
    paths = DataRoot(root=str(data_root))
    first = tick(instance, paths, None)
    second = tick(instance, paths, first.cursor)
    assert [len(requested_keys(instance, r)) for r in first.run_requests or []] == [3, 1]
    assert [len(requested_keys(instance, r)) for r in second.run_requests or []] == [2]
    assert len(all_requested(instance, first) + all_requested(instance, second)) == 6
    assert len(json.loads(second.cursor or "{}")) == 6


def test_sensor_skips_reports_already_read(data_root: Path) -> None:
    """Reports the CLI (or the demo) has read get their partitions but no run: nothing is read twice."""
    reports = sorted((data_root / "raw/Phenikaa/reports").iterdir())
    for path in reports[:4]:
        stat = path.stat()
        save_report_fields(ReportFields(report_file=path.name, report_format=path.suffix[1:],
                                        source_mtime_ns=stat.st_mtime_ns, source_size=stat.st_size),
                           data_root / "interim/Phenikaa")
    stale = reports[4]  # a record of an older version of the file: read again
    save_report_fields(ReportFields(report_file=stale.name, report_format=stale.suffix[1:],
                                    source_mtime_ns=1, source_size=stale.stat().st_size), data_root / "interim/Phenikaa")
    instance = dg.DagsterInstance.ephemeral()
    result = tick(instance, DataRoot(root=str(data_root)), None)
    assert all_requested(instance, result) == sorted(report_partition_key(p.name) for p in reports[4:])
    assert len(instance.get_dynamic_partitions(REPORTS_PARTITION)) == len(reports)


def test_one_run_reads_a_range_matches_and_a_rerun_reads_nothing(data_root: Path, synthetic_root: Path) -> None:
    """The sensor's run: the range of new reports read, then the table and the matching, in one run and one
    process; the automation sensor then has nothing left to do for them."""
    truth = read_truth(synthetic_root, "phenikaa")
    instance = dg.DagsterInstance.ephemeral()
    resources = {"paths": DataRoot(root=str(data_root), weights=str(data_root.parent / "weights")),
                 "phenikaa": PhenikaaSettings.model_validate({"corrupted_ids": truth["corrupted_ids"], "workers": 2})}
    first = tick(instance, resources["paths"], None)
    (request,) = first.run_requests or []
    assert phenikaa_reports_sensor.job_name == "phenikaa_inbox_job"
    keys = requested_keys(instance, request)
    definitions = dg.Definitions(assets=[phenikaa_raw, phenikaa_report, phenikaa_report_table, phenikaa_patients],
                                 jobs=[phenikaa_inbox_job], resources=resources)
    job = definitions.resolve_job_def("phenikaa_inbox_job")
    run = job.execute_in_process(instance=instance, tags=request.tags)
    assert run.success
    (event,) = run.asset_materializations_for_node("phenikaa_report")[:1]
    assert instance.get_materialized_partitions(dg.AssetKey("phenikaa_report")) == set(keys)
    meta = event.metadata
    assert (meta["reports"].value, meta["read"].value, meta["ok"].value) == (6, 6, 6)
    patients = run.asset_materializations_for_node("phenikaa_patients")[0].metadata
    assert patients["matched"].value == 6 and patients["label_rows"].value == 29
    assert run.asset_materializations_for_node("phenikaa_report_table")[0].metadata["complete"].value == 6
    steps = {e.step_key for e in run.all_events if e.is_step_start}
    assert steps == {"phenikaa_report", "phenikaa_report_table", "phenikaa_patients"}
    automation = dg.evaluate_automation_conditions(defs=definitions, instance=instance)
    assert [r.key for r in automation.results if r.true_subset.size] == []  # matched already: no second run
    again = job.execute_in_process(instance=instance, tags=request.tags)
    meta = again.asset_materializations_for_node("phenikaa_report")[0].metadata
    assert (meta["read"].value, meta["unchanged"].value, meta["ocr_seconds"].value) == (0, 6, 0)
    text = json.dumps([str(e) for r in instance.get_runs() for e in instance.all_logs(r.run_id)], ensure_ascii=False)
    assert [n for n in phi_strings(truth) if n in text] == []


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
