"""Metadata the Dagster UI shows: check results from the library's check outcomes, lists and tables in markdown.

One home for these, so every asset and check reads the same way in the UI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import dagster as dg

from spine_lib.core.markdown import markdown_list, markdown_table

if TYPE_CHECKING:
    from spine_lib.core.checks import CheckOutcome

#: Problems (or missing items) listed in a check's metadata; the rest are counted.
MAX_LISTED = 20


def listed(items: Sequence[str]) -> dg.MetadataValue:
    """The first :data:`MAX_LISTED` items as a markdown list (``none`` when there are none)."""
    return dg.MetadataValue.md(markdown_list(items, MAX_LISTED))


def problems_metadata(checked: int, problems: Sequence[str]) -> dict[str, dg.RawMetadataValue]:
    """``checked``, ``problems`` and, when there are any, the first of them as a list."""
    metadata: dict[str, dg.RawMetadataValue] = {"checked": checked, "problems": len(problems)}
    if problems:
        metadata["first_problems"] = listed(list(problems))
    return metadata


def check_result(outcome: CheckOutcome, extra: Mapping[str, dg.RawMetadataValue] | None = None,
                 check_name: str | None = None) -> dg.AssetCheckResult:
    """The asset-check result of a library check outcome (passed when it found no problem)."""
    metadata = {**problems_metadata(outcome.checked, outcome.problems), **(extra or {})}
    return dg.AssetCheckResult(passed=outcome.passed, metadata=metadata, check_name=check_name)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> dg.MetadataValue:
    """A markdown table for the UI."""
    return dg.MetadataValue.md(markdown_table(header, rows))
