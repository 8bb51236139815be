"""The Dagster code location: loads fast and light, validates, and its assets materialize for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from spine_assets.definitions import defs
from spine_assets.defs.data_root import data_root
from spine_assets.defs.resources import DataRoot
from spine_assets.environment import DATA_ROOT_ENV, INSTANCE_TEMPLATE

REPO = Path(__file__).resolve().parents[1]
HEAVY = (
    "torch", "timm", "nnunetv2", "paddle", "paddleocr", "vietocr", "pytesseract", "accelerate", "wandb", "SimpleITK",
    "pandas", "pydicom", "numpy",
)


def test_definitions_hold_assets_and_resources() -> None:
    definitions = defs()
    keys = {k.to_user_string() for k in definitions.resolve_all_asset_keys()}
    assert keys == {"data_root", "spider_raw", "rsna_raw", "phenikaa_raw", "phenikaa_report", "phenikaa_report_table",
                    "phenikaa_patients", "ivd_coords_dataset", "spider_nnunet_dataset", "nnunet_model",
                    "localization_model", "ivd_crops", "classifier_model"}
    assert isinstance(definitions.resources["paths"], DataRoot)  # type: ignore[index]
    assert {j.name for j in definitions.resolve_all_job_defs()} >= {"phenikaa_report_job", "phenikaa_inbox_job",
                                                                     "phenikaa_rematch_job"}
    assert {j.name for j in definitions.resolve_all_job_defs()} >= {"training_job", "everything_but_reports"}
    checks = {c.name for c in definitions.resolve_asset_graph().asset_check_keys}
    assert {"phenikaa_field_completeness", "phenikaa_match_rate", "phenikaa_one_folder_per_patient",
            "phenikaa_labels_for_matched", "spider_mask_values", "localization_val_pck"} <= checks
    assert {"ivd_coords_images_exist", "ivd_coords_points_inside", "ivd_coords_reject_rate"} <= checks
    assert {"nnunet_labels_consecutive", "nnunet_images_have_labels", "nnunet_validation_dice"} <= checks
    assert {"ivd_crops_complete", "ivd_crops_on_their_discs"} <= checks
    graph = definitions.resolve_asset_graph()
    crops = graph.get(dg.AssetKey("ivd_crops"))
    assert {k.to_user_string() for k in crops.parent_keys} == {"phenikaa_patients", "spider_raw", "localization_model"}


def test_loading_imports_no_heavy_library() -> None:
    code = (
        "import json, sys\n"
        "from spine_assets.definitions import defs\n"
        "defs()\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_data_root_resource_follows_environment(tmp_path: Path) -> None:
    code = "from spine_assets.definitions import defs; print(defs().resources['paths'].root)"
    env = {**os.environ, DATA_ROOT_ENV: str(tmp_path / "elsewhere")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip().splitlines()[-1] == str(tmp_path / "elsewhere")


def test_dagster_validates_the_workspace() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        capture_output=True, text=True, cwd=REPO, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "All code locations passed validation" in result.stderr + result.stdout


def test_data_root_asset_creates_layout_and_counts(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "raw/Phenikaa/reports").mkdir(parents=True)
    (root / "raw/Phenikaa/reports/250010139.png").write_bytes(b"x")
    (root / "raw/Phenikaa/tables").mkdir(parents=True)
    (root / "raw/Phenikaa/tables/labels.xlsx").write_bytes(b"x")
    paths = DataRoot(root=str(root), weights=str(tmp_path / "weights"))
    instance = dg.DagsterInstance.ephemeral()

    first = dg.materialize([data_root], resources={"paths": paths}, instance=instance)
    assert first.success
    assert (root / "processed").is_dir() and (root / "raw/RSNA").is_dir() and (tmp_path / "weights").is_dir()
    meta = first.asset_materializations_for_node("data_root")[0].metadata
    assert meta["phenikaa_reports"].value == 1
    assert meta["phenikaa_tables"].value == 1
    assert meta["spider_images"].value == 0
    assert meta["folders_created"].value == 6  # reports and tables existed already

    second = dg.materialize([data_root], resources={"paths": paths}, instance=instance)
    assert second.asset_materializations_for_node("data_root")[0].metadata["folders_created"].value == 0


def test_instance_settings_from_dagster_yaml(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text(INSTANCE_TEMPLATE.read_text())
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_settings("telemetry")["enabled"] is False
        assert instance.get_settings("nux")["enabled"] is False
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1
        assert pools.pool_granularity is not None
        assert str(pools.pool_granularity.value).lower() == "op"


def test_raw_source_assets_describe_the_synthetic_root(synthetic_root: Path) -> None:
    from spine_assets.definitions import defs as load_defs
    from spine_assets.defs.raw_sources import phenikaa_raw, rsna_raw, spider_raw

    paths = DataRoot(root=str(synthetic_root), weights=str(synthetic_root.parent / "weights"))
    raw_checks = {"spider_mask_values", "rsna_coordinates_resolve", "phenikaa_label_tables_parse"}
    checks = [c for c in load_defs().resolve_asset_graph().asset_check_keys if c.name in raw_checks]
    assert len(checks) == 3
    definitions = load_defs()
    job = dg.Definitions(
        assets=[spider_raw, rsna_raw, phenikaa_raw, data_root],
        asset_checks=[definitions.get_asset_checks_def(c) for c in checks],
        resources={"paths": paths},
    ).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()
            if e.asset_key is not None}
    assert meta["spider_raw"]["patients"].value == 4
    assert meta["spider_raw"]["t2_space_series"].value == 1
    assert meta["spider_raw"]["grading_rows"].value == 20
    assert meta["rsna_raw"]["studies"].value == 3 and meta["rsna_raw"]["coordinate_rows"].value == 75
    assert meta["phenikaa_raw"]["reports"].value == 6 and meta["phenikaa_raw"]["image_folders"].value == 7
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert all(e.passed for e in evaluations.values()) and len(evaluations) == 3
    tables = evaluations["phenikaa_label_tables_parse"].metadata
    assert tables["duplicate row"].value == 1 and tables["missing value"].value == 1


def test_every_sensor_and_schedule_runs_in_a_new_instance() -> None:
    """Nothing to switch on in the UI: the inbox sensor, the automation sensor and the nightly schedule."""
    definitions = defs()
    sensors = {s.name: s.default_status for s in definitions.sensors or []}
    schedules = {s.name: s.default_status for s in definitions.schedules or []}
    assert sensors == {"phenikaa_reports_sensor": dg.DefaultSensorStatus.RUNNING,
                       "spine_automation_sensor": dg.DefaultSensorStatus.RUNNING}
    assert schedules == {"phenikaa_nightly_rematch": dg.DefaultScheduleStatus.RUNNING}
    automation = definitions.resolve_sensor_def("spine_automation_sensor")
    assert isinstance(automation, dg.AutomationConditionSensorDefinition)


def test_every_job_runs_its_steps_in_the_run_process() -> None:
    """No Python start-up and code-location import per step: the code location's default executor is in-process,
    for the named jobs and the jobs that sensors and clicks build alike."""
    definitions = defs()
    jobs = definitions.resolve_all_job_defs()
    assert {j.name for j in jobs} >= {"phenikaa_inbox_job", "training_job", "__ASSET_JOB"}
    assert {j.name: j.executor_def.name for j in jobs} == {j.name: "in_process_or_multiprocess" for j in jobs}
    executor = jobs[0].executor_def.config_schema.as_field()
    assert executor.default_value == {"in_process": {}} and set(executor.config_type.fields) == {  # type: ignore[attr-defined]
        "in_process", "multiprocess"}  # a run may still ask for a process per step
    assert definitions.resolve_sensor_def("phenikaa_reports_sensor").job_name == "phenikaa_inbox_job"


def test_a_read_report_carries_the_eager_chain_down_to_the_patients() -> None:
    """Automation conditions as the sensor evaluates them: report read -> table -> patients; the crops wait for a
    localization model; models never start on their own."""
    definitions = defs()
    instance = dg.DagsterInstance.ephemeral()

    def requested(cursor: object) -> tuple[set[str], object]:
        result = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=cursor)  # type: ignore[arg-type]
        return {r.key.to_user_string() for r in result.results if r.true_subset.size}, result.cursor

    wanted, cursor = requested(None)
    assert wanted == set()
    instance.add_dynamic_partitions("phenikaa_reports", ["250010139.png"])
    for key, partition in [("phenikaa_raw", None), ("phenikaa_report", "250010139.png")]:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))
    wanted, cursor = requested(cursor)
    assert wanted == {"phenikaa_report_table", "phenikaa_patients"}  # one tick, one run for both
    for key in ["phenikaa_report_table", "phenikaa_patients", "spider_raw"]:
        instance.report_runless_asset_event(dg.AssetMaterialization(key))
    wanted, cursor = requested(cursor)
    assert wanted == set()  # no localization model yet: no crops, and no model trains on its own
    instance.report_runless_asset_event(dg.AssetMaterialization("localization_model"))
    wanted, cursor = requested(cursor)
    assert wanted == {"ivd_crops"}
    instance.report_runless_asset_event(dg.AssetMaterialization("ivd_crops"))
    wanted, _ = requested(cursor)
    assert wanted == set()  # the classifier is trained on a click or by training_job only


def test_examples_of_the_code_location_helpers_hold() -> None:
    """The docstring examples of the sensor's range cutting, the training job's tags (with a bad JSON value) and
    the classifier check's verdict (a head with one class in validation named, not judged)."""
    import doctest

    import spine_assets.defs.grading
    import spine_assets.defs.phenikaa
    import spine_assets.defs.training_runs

    for module in (spine_assets.defs.phenikaa, spine_assets.defs.training_runs, spine_assets.defs.grading):
        outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert outcome.attempted > 0 and outcome.failed == 0, module.__name__
