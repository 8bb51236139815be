"""The result type of every data-quality check: what was looked at, and what is wrong with which item."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CheckOutcome:
    """How many items a check looked at and one line per problem found (file or item first, then the cause).

    Args:
        checked: number of items the check looked at.
        problems: one human-readable line per problem; empty when the check passed.

    Example:
        >>> outcome = CheckOutcome()
        >>> outcome.checked += 2
        >>> outcome.passed
        True
        >>> outcome.problems.append("1_t2.mha: no image with this name")
        >>> outcome.passed, outcome.checked
        (False, 2)
    """

    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no problem was found."""
        return not self.problems
