"""``spine-vision demo``: the command the code location adds to the ``spine-vision`` CLI.

Registered under the ``spine_vision.commands`` entry-point group (see ``pyproject.toml``); the library's CLI
finds it there, so spine_lib never imports spine_assets.
"""

from __future__ import annotations

from spine_assets.demo import DemoConfig, DemoResult, run_demo
from spine_lib.core.layout import DataLayout


def demo(config: DemoConfig) -> None:
    """Run the demo and print where everything is."""
    result: DemoResult = run_demo(config)
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
    print(f"Open the UI:      {result.ui_command}")


#: (config model, handler) of the command, as the ``spine_vision.commands`` entry point names it.
COMMAND = (DemoConfig, demo)
