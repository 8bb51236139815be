"""What runs on its own: the automation-condition sensor, RUNNING in every new instance.

Dagster's default automation sensor starts STOPPED; this one replaces it for the whole graph, so the eager
conditions act with no click: a report read -> ``phenikaa_report_table`` -> ``phenikaa_patients`` ->
``ivd_crops`` (when a localization model exists). Models are never trained on their own: ``training_job`` or a
click does that.
"""

import dagster as dg

AUTOMATION_SENSOR = "spine_automation_sensor"
AUTOMATION_INTERVAL_SECONDS = 30  # the inbox runs match on their own; this serves clicks, crops and the rest

automation_sensor = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR,
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=AUTOMATION_INTERVAL_SECONDS,
    description="Evaluates the assets' automation conditions (eager: report table, patients, crops).",
)
