"""Phenikaa reports, one dynamic partition per report file, and the patients they identify.

A sensor watches the reports inbox, gives every new or changed file a partition and launches one run per range
of them that reads them, then rewrites the report table and the patient matching; reports read another way (a
click in the UI) update both through their eager automation conditions, and a nightly schedule re-matches
everything (new image folders may have arrived). Files of the inbox that are not reports get no partition;
the matching lists them in rejects.csv. What the matcher refuses waits in the interim folder's review.csv for a
reviewer, whose decisions (overrides.csv) the next matching applies. Metadata carries counts and initials, never
full names.
"""

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import dagster as dg

from spine_assets.defs.raw_sources import phenikaa_raw
from spine_assets.defs.resources import DataRoot, PhenikaaSettings

REPORTS_PARTITION = "phenikaa_reports"
reports_partitions = dg.DynamicPartitionsDefinition(name=REPORTS_PARTITION)
SENSOR_CHUNK = 500  # partitions added per tick: a 10,000-file inbox never times out a tick
RUN_SIZE = SENSOR_CHUNK  # reports per run: a tick's new reports are one run, read by the settings' workers
#: The daemon's sensor loop wakes every 5 s and evaluates a sensor whose interval has passed since its last tick
#: began; an interval of 5 s is then just short at every other wake-up (a tick every 10 s), so ask for less: the
#: sensor runs at every wake-up and a new report waits at most one loop (a tick with no new file costs a folder
#: listing).
SENSOR_INTERVAL_SECONDS = 2
REPORTS_TABLE_ROWS = 50  # rows of a run's reports table in the metadata
#: Dagster's run tags of a partition range (one run over many partitions of a single-run asset).
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
MIN_FIELD_COMPLETENESS = 0.9
MIN_MATCH_RATE = 0.9


@dg.asset(
    partitions_def=reports_partitions,
    group_name="phenikaa",
    deps=[phenikaa_raw],
    kinds={"ocr"},
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def phenikaa_report(
    context: dg.AssetExecutionContext, paths: DataRoot, phenikaa: PhenikaaSettings
) -> dg.MaterializeResult:
    """Reports read by OCR (or their PDF text layer): patient ID, name, birthday, exam date; one partition each.

    A run may cover many partitions (the sensor asks for one run per chunk of new reports; a backfill is one
    run): they are read in parallel by the settings' workers. A report whose stored record is current (same file
    version) is not read again.
    """
    from spine_lib.core.markdown import markdown_table
    from spine_lib.datasets.phenikaa import masked_name, read_new_reports, reports_by_key

    config = phenikaa.preprocess_config(paths)
    keys = list(context.partition_keys)
    inbox = reports_by_key(config.reports_path)
    present = [key for key in keys if key in inbox]
    outcomes = dict(zip(present, read_new_reports(config, [inbox[key] for key in present]), strict=True))
    rows = []
    for key in keys:
        outcome = outcomes.get(key)
        if outcome is None:  # the file left the inbox; its old record (if any) no longer counts
            rows.append([key, "missing", "", "", "", "report file is no longer in the inbox"])
            continue
        fields = outcome.fields
        rows.append([key, fields.status, "read" if outcome.read else "unchanged", fields.patient_id or "",
                     masked_name(fields.patient_name), fields.reason])
    statuses = [row[1] for row in rows]
    metadata: dict[str, Any] = {
        "reports": len(keys),
        "read": sum(o.read for o in outcomes.values()),
        "unchanged": sum(not o.read for o in outcomes.values()),
        "ok": statuses.count("ok"),
        "rejected": statuses.count("rejected"),
        "missing": statuses.count("missing"),
        "ocr_seconds": round(sum(o.fields.ocr_seconds for o in outcomes.values() if o.read), 3),
        "reports_table": dg.MetadataValue.md(markdown_table(
            ["report", "status", "this run", "patient_id", "initials", "reason"], rows[:REPORTS_TABLE_ROWS])),
    }
    if len(keys) == 1 and keys[0] in outcomes:  # one report: its own fields, as a partition's page shows them
        fields = outcomes[keys[0]].fields
        metadata.update({
            "status": fields.status,
            "reason": fields.reason,
            "report_format": fields.report_format,
            "patient_id": fields.patient_id or "",
            "name_initials": masked_name(fields.patient_name),
            "has_birthday": fields.birthday is not None,
            "has_birth_year": fields.birth_year is not None,
            "name_cleaned": fields.name_cleaned,
        })
    elif len(keys) == 1:
        metadata.update({"status": "missing", "reason": "report file is no longer in the inbox"})
    context.log.info(f"{len(keys)} reports: {metadata['read']} read, {metadata['unchanged']} unchanged, "
                     f"{metadata['missing']} missing")
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name="phenikaa", deps=[phenikaa_report], automation_condition=dg.AutomationCondition.eager())
def phenikaa_report_table(paths: DataRoot, phenikaa: PhenikaaSettings) -> dg.MaterializeResult:
    """All reports read so far, one row each (report_fields.csv in the interim folder, PHI stays there)."""
    from spine_lib.datasets.phenikaa import report_table_preview, rewrite_report_table

    records = rewrite_report_table(phenikaa.preprocess_config(paths))
    ok = sum(r.status == "ok" for r in records)
    return dg.MaterializeResult(metadata={
        "reports": len(records),
        "complete": ok,
        "field_completeness": round(ok / len(records), 4) if records else 0.0,
        "year_only_birthdays": sum(r.birthday is None and r.birth_year is not None for r in records),
        "names_cleaned": sum(r.name_cleaned for r in records),
        "preview": dg.MetadataValue.md(report_table_preview(records)),
    })


@dg.asset(
    group_name="phenikaa",
    deps=[phenikaa_report_table, phenikaa_raw],
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"csv"},
)
def phenikaa_patients(paths: DataRoot, phenikaa: PhenikaaSettings) -> dg.MaterializeResult:
    """Reports matched to image folders and label tables: images/<patient_id>/ and radiological_labels.csv.

    A reviewer's decisions (overrides.csv) first; ``waiting_for_review`` counts the refused reports of review.csv.
    """
    from spine_lib.datasets.phenikaa import REVIEW_FILE, match_patients

    config = phenikaa.preprocess_config(paths)
    report = match_patients(config)
    review = {"review_table": dg.MetadataValue.path(str(config.interim_path / REVIEW_FILE))}
    return dg.MaterializeResult(metadata={
        **report.as_metadata(),
        "dataset": dg.MetadataValue.path(str(paths.layout.phenikaa_export)),
        **(review if report.waiting_for_review else {}),
    })


@dg.asset_check(asset=phenikaa_report_table, description=f"At least {MIN_FIELD_COMPLETENESS:.0%} of reports give ID, name and birthday.")
def phenikaa_field_completeness(paths: DataRoot, phenikaa: PhenikaaSettings) -> dg.AssetCheckResult:
    from spine_lib.datasets.phenikaa import load_report_fields

    config = phenikaa.preprocess_config(paths)
    records = load_report_fields(config.interim_path, config.reports_path)
    rate = sum(r.status == "ok" for r in records) / len(records) if records else 0.0
    return dg.AssetCheckResult(passed=rate >= MIN_FIELD_COMPLETENESS, metadata={"rate": round(rate, 4), "reports": len(records)})


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec("phenikaa_match_rate", asset=phenikaa_patients,
                          description=f"At least {MIN_MATCH_RATE:.0%} of complete reports are matched."),
        dg.AssetCheckSpec("phenikaa_one_folder_per_patient", asset=phenikaa_patients,
                          description="No patient ID matched to two folders, no folder to two patients."),
        dg.AssetCheckSpec("phenikaa_labels_for_matched", asset=phenikaa_patients,
                          description="Every matched patient has label rows."),
        dg.AssetCheckSpec("phenikaa_review_queue", asset=phenikaa_patients,
                          description="No report waits for a reviewer's decision (review.csv) and every "
                          "decision of overrides.csv applies (warning only)."),
    ]
)
def phenikaa_patient_checks(paths: DataRoot, phenikaa: PhenikaaSettings) -> Iterator[dg.AssetCheckResult]:
    from spine_lib.datasets.phenikaa import matching_quality

    config = phenikaa.preprocess_config(paths)
    quality = matching_quality(config)
    yield dg.AssetCheckResult(check_name="phenikaa_match_rate", passed=quality.match_rate >= MIN_MATCH_RATE,
                              metadata={"match_rate": round(quality.match_rate, 4), "matched": quality.matched})
    yield dg.AssetCheckResult(check_name="phenikaa_one_folder_per_patient", passed=not quality.duplicated,
                              metadata={"duplicates": len(quality.duplicated)})
    yield dg.AssetCheckResult(check_name="phenikaa_labels_for_matched", passed=not quality.without_labels,
                              metadata={"matched_without_labels": len(quality.without_labels)})
    yield dg.AssetCheckResult(
        check_name="phenikaa_review_queue",
        passed=quality.waiting_for_review == 0 and quality.stale_overrides == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"waiting_for_review": quality.waiting_for_review, "stale_overrides": quality.stale_overrides},
    )


phenikaa_report_job = dg.define_asset_job("phenikaa_report_job", selection=[phenikaa_report])
#: What the inbox sensor launches: the new reports read, then the report table and the matching in the same run
#: (no second sensor tick and run launch before the patients are updated). The table and the matchings of
#: concurrent runs take turns on the data root's lock (spine_lib.datasets.phenikaa.match.MATCHING_LOCK).
phenikaa_inbox_job = dg.define_asset_job(
    "phenikaa_inbox_job", selection=[phenikaa_report, phenikaa_report_table, phenikaa_patients],
    description="New reports read, the report table rewritten and the patients matched, in one run.",
)
phenikaa_rematch_job = dg.define_asset_job("phenikaa_rematch_job", selection=[phenikaa_report_table, phenikaa_patients])
phenikaa_nightly = dg.ScheduleDefinition(
    name="phenikaa_nightly_rematch",
    job=phenikaa_rematch_job,
    cron_schedule="0 2 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


def contiguous_runs(order: list[str], keys: list[str], size: int) -> list[list[str]]:
    """``keys`` cut into runs of neighbours in the partitions' ``order``, each at most ``size`` long: each run is
    one partition range, so one Dagster run.

    Example:
        >>> contiguous_runs(["a", "b", "c", "d", "e"], ["e", "a", "b", "d"], size=2)
        [['a', 'b'], ['d', 'e']]
    """
    position = {key: i for i, key in enumerate(order)}
    runs: list[list[str]] = []
    for key in sorted(keys, key=position.__getitem__):
        if runs and position[runs[-1][-1]] == position[key] - 1 and len(runs[-1]) < size:
            runs[-1].append(key)
        else:
            runs.append([key])
    return runs


@dg.sensor(job=phenikaa_inbox_job, minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
           default_status=dg.DefaultSensorStatus.RUNNING)
def phenikaa_reports_sensor(context: dg.SensorEvaluationContext, paths: DataRoot) -> dg.SensorResult:
    """New or changed files in the reports inbox -> a partition each and one run per range of at most
    :data:`RUN_SIZE` of them, which reads them and updates the report table and the patients; files whose stored
    record is current (read by the CLI or the demo) get their partition but no run."""
    from spine_lib.datasets.phenikaa import current_record, inbox_changes, report_partition_key

    reports = paths.layout.phenikaa_reports
    if not reports.is_dir():
        return dg.SensorResult(skip_reason=f"no reports inbox at {reports}")
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}  # partition key -> signature
    chunk, waiting = inbox_changes(reports, seen, SENSOR_CHUNK, key=report_partition_key)
    if not chunk:
        return dg.SensorResult(skip_reason="no new or changed reports")
    interim = paths.layout.phenikaa_interim
    keyed = {report_partition_key(name): signature for name, signature in chunk}  # no patient names in Dagster
    todo = [report_partition_key(name) for name, _ in chunk if current_record(interim, reports / name) is None]
    known = list(context.instance.get_dynamic_partitions(REPORTS_PARTITION))
    known_set = set(known)
    new_keys = [key for key in keyed if key not in known_set]
    seen.update(keyed)  # the cursor lives in the instance: keyed by pseudonyms, never by patient names
    requests = []
    for run in contiguous_runs(known + new_keys, todo, RUN_SIZE):
        version = hashlib.sha256("|".join(f"{k}:{keyed[k]}" for k in run).encode()).hexdigest()[:16]
        tags = {ASSET_PARTITION_RANGE_START_TAG: run[0], ASSET_PARTITION_RANGE_END_TAG: run[-1]}
        requests.append(dg.RunRequest(run_key=f"{run[0]}..{run[-1]}:{version}", tags=tags))
    context.log.info(f"{len(chunk)} new or changed reports ({len(chunk) - len(todo)} already read) in "
                     f"{len(requests)} runs, {waiting} waiting for the next tick")
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[reports_partitions.build_add_request(new_keys)] if new_keys else [],
        cursor=json.dumps(seen, sort_keys=True),
    )


everything_but_reports = dg.define_asset_job(
    "everything_but_reports", selection=dg.AssetSelection.all() - dg.AssetSelection.assets(phenikaa_report)
)
