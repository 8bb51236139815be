"""The demo's progress as its runs execute, read from each run's event stream.

:class:`RunProgress` runs a job in process with an event listener on the instance (registered under the run's id
before the run starts) and writes one JSON line on stdout per asset step started and ended and per asset check
evaluated, counting asset steps over the whole graph the demo plans; ``spine-vision demo`` prints them as they
come (:func:`spine_assets.demo.command.progress_line`). What the runs compute does not change.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import dagster as dg

from spine_assets.demo import PROGRESS_KEY, DemoStep


def print_line(line: str) -> None:
    print(line, flush=True)


class RunProgress:
    """Counts the demo's asset steps (``total`` planned) and reports each as it starts and ends."""

    def __init__(self, total: int, write: Callable[[str], None] = print_line) -> None:
        self.total = total
        self.done = 0
        self.write = write

    def emit(self, event: Literal["started", "done", "failed", "skipped", "check"], asset: str, *,
             seconds: float = 0.0, detail: str = "", passed: bool = True) -> None:
        step = DemoStep(event, asset, self.done, self.total, seconds=seconds, detail=detail, passed=passed)
        self.write(json.dumps({PROGRESS_KEY: step.as_json()}))

    def skip(self, asset: str, detail: str) -> None:
        """An asset of the plan that needs no run (a model trained on the current dataset version)."""
        self.done += 1
        self.emit("skipped", asset, detail=detail)

    def execute(
        self,
        job: dg.JobDefinition,
        instance: dg.DagsterInstance,
        *,
        detail: str = "",
        asset_selection: Sequence[dg.AssetKey] | None = None,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        raise_on_error: bool = True,
    ) -> dg.ExecuteInProcessResult:
        """``job.execute_in_process`` on ``instance``, reporting its asset steps (``detail``: shown with each)."""
        keys = asset_selection if asset_selection is not None else job.asset_layer.executable_asset_keys
        assets = {key.to_python_identifier(): key.to_user_string() for key in keys}
        started: dict[str, float] = {}

        def listen(entry: dg.EventLogEntry) -> None:
            event = entry.dagster_event
            if event is None:
                return
            if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                check = event.asset_check_evaluation_data
                self.emit("check", check.asset_key.to_user_string(), detail=check.check_name, passed=check.passed)
                return
            asset = assets.get(entry.step_key or "")
            if asset is None:  # a check's own step, or an event of the run as a whole
                return
            if event.is_step_start:
                started[asset] = entry.timestamp
                self.emit("started", asset, detail=detail)
            elif event.is_step_success or event.is_step_failure or event.is_step_skipped:
                self.done += 1
                outcome: Literal["done", "failed", "skipped"] = (
                    "done" if event.is_step_success else "failed" if event.is_step_failure else "skipped")
                seconds = entry.timestamp - started.get(asset, entry.timestamp)
                self.emit(outcome, asset, seconds=round(seconds, 1), detail=detail)

        run_id = str(uuid.uuid4())
        instance.add_event_listener(run_id, listen)
        return job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=raise_on_error,
                                      asset_selection=asset_selection, run_id=run_id, tags=tags)
