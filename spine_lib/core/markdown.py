"""Markdown for people: the tables and lists that the CLI prints and the Dagster UI renders."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A pipe table: one header row, a rule, then one line per row (cells as ``str``).

    Args:
        header: the column titles.
        rows: the rows, each a sequence of cells in header order.

    Example:
        >>> print(markdown_table(["label", "cases"], [["disc", 3], ["canal", 4]]))
        | label | cases |
        |---|---|
        | disc | 3 |
        | canal | 4 |
    """
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_list(items: Iterable[object], limit: int = 20, empty: str = "none") -> str:
    """The first ``limit`` items as a bullet list, with a last line counting the rest; ``empty`` if none.

    Args:
        items: the lines to list (as ``str``).
        limit: how many items are shown.
        empty: the text returned when there are no items.

    Example:
        >>> print(markdown_list(["a.mha: unreadable", "b.mha: no image", "c.mha: no image"], limit=2))
        - a.mha: unreadable
        - b.mha: no image
        - ... and 1 more
        >>> markdown_list([], empty="no problems")
        'no problems'
    """
    items = list(items)
    if not items:
        return empty
    lines = [f"- {item}" for item in items[:limit]]
    if len(items) > limit:
        lines.append(f"- ... and {len(items) - limit} more")
    return "\n".join(lines)
