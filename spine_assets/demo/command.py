"""``spine-vision demo``: the command the code location adds to the ``spine-vision`` CLI.

Registered under the ``spine_vision.commands`` entry-point group (see ``pyproject.toml``); the library's CLI
finds it there, so spine_lib never imports spine_assets.
"""

from __future__ import annotations

from spine_assets.demo import DemoConfig, DemoResult, DemoStep, run_demo
from spine_lib.core.layout import DataLayout

BAR_WIDTH = 20


def clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on)."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(step: DemoStep) -> str:
    """One line of the demo's progress: steps ended over the plan, a bar, the demo's elapsed time, the step.

    Example:
        >>> print(progress_line(DemoStep("done", "spider_nnunet_dataset", 3, 14, seconds=12.3, elapsed=41)))
        [ 3/14] ####................ 0:41 spider_nnunet_dataset done in 12.3 s
    """
    width = len(str(step.total))
    filled = BAR_WIDTH * step.done // step.total if step.total else BAR_WIDTH
    head = f"[{step.done:>{width}}/{step.total}] {'#' * filled}{'.' * (BAR_WIDTH - filled)} {clock(step.elapsed)}"
    detail = f" ({step.detail})" if step.detail else ""
    if step.event == "check":
        return f"{' ' * len(head)}   check {step.asset}:{step.detail} {'passed' if step.passed else 'FAILED'}"
    if step.event in ("done", "failed"):
        outcome = "done in" if step.event == "done" else "FAILED after"
        return f"{head} {step.asset} {outcome} {step.seconds:.1f} s{detail}"
    return f"{head} {step.asset} {step.event}{detail}"


def demo(config: DemoConfig) -> None:
    """Run the demo, printing each asset step as it starts and ends, then where everything is."""
    result: DemoResult = run_demo(config, on_progress=lambda step: print(progress_line(step), flush=True))
    print(f"Data root:        {result.data_root}")
    print(f"Dagster instance: {result.dagster_home} (run {result.run_id})")
    if result.synthesized:
        print("Synthetic data:   written (SPIDER, RSNA, Phenikaa layouts; truth/ holds the ground truth)")
    print(f"Materialized:     {', '.join(result.materialized) or 'nothing'}")
    if result.up_to_date:
        print(f"Up to date:       {', '.join(result.up_to_date)} (trained on the current dataset version)")
    print(f"Weights:          {result.weights} (segmentation/, localization/latest.json)")
    print(f"IVD crops:        {DataLayout(root=result.data_root).classification} (annotations.csv, contact_sheet.png)")
    failed = [name for name, passed in result.checks.items() if not passed]
    print(f"Asset checks:     {len(result.checks) - len(failed)}/{len(result.checks)} passed"
          + (f" (failed: {', '.join(failed)})" if failed else ""))
    print(f"Elapsed:          {clock(result.elapsed)}")
    print(f"Open the UI:      {result.ui_command}")


#: (config model, handler) of the command, as the ``spine_vision.commands`` entry point names it.
COMMAND = (DemoConfig, demo)
