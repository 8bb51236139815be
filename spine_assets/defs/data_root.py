"""The data root itself: its folders exist and what each raw source holds is visible in the UI."""

from __future__ import annotations

import dagster as dg

from spine_assets.defs.resources import DataRoot


@dg.asset(group_name="raw", kinds={"filesystem"})
def data_root(paths: DataRoot) -> dg.MaterializeResult:
    """Creates the data-root layout (idempotent) and counts the files each raw source holds."""
    layout = paths.layout
    created = layout.ensure()
    from spine_lib.sources import inventory

    counts = inventory(layout)
    metadata: dict[str, dg.RawMetadataValue] = {
        "root": dg.MetadataValue.path(str(layout.root.resolve())),
        "weights": dg.MetadataValue.path(str(layout.weights.resolve())),
        "folders_created": len(created),
        **{name: value for name, value in counts.items()},
    }
    return dg.MaterializeResult(metadata=metadata)
