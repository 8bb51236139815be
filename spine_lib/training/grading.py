"""The grading tasks of the multi-task classifier: six heads, 13 outputs, and the targets they learn from.

```
head               kind        outputs (crops annotation columns)          values
pfirrmann          multiclass  pfirrmann_grade                             grade 1..5 -> class 0..4
modic              multiclass  modic                                       type 0..3  -> class 0..3
herniation         binary x2   disc_herniation, disc_bulging               0/1
endplate           binary x2   up_endplate, low_endplate                   0/1
spondylolisthesis  binary      spondylolisthesis                           0/1
narrowing          binary      disc_narrowing                              0/1
```

The one place head names, sizes and the grade-to-class conversion are spelt: the dataset builds
:class:`MTLTargets` from crop rows with :func:`targets_of_row`, the model sizes its heads from :data:`GRADING_HEADS`,
the metrics and the CSV rows read them back. Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

HeadKind = Literal["multiclass", "binary"]


@dataclass(frozen=True)
class GradingHead:
    """One head of the classifier: its name, kind, the annotation columns it predicts, its output count."""

    name: str
    kind: HeadKind
    columns: tuple[str, ...]
    classes: int  # multiclass: number of classes; binary: number of independent 0/1 outputs
    first_grade: int = 0  # multiclass: the grade of class 0 (Pfirrmann grades start at 1)

    @property
    def outputs(self) -> int:
        """Logits the head produces."""
        return self.classes

    def class_of(self, value: int) -> int:
        """The class index of a grade (multiclass heads): Pfirrmann 1..5 -> 0..4."""
        index = int(value) - self.first_grade
        if not 0 <= index < self.classes:
            raise ValueError(f"{self.columns[0]}={value} outside {self.first_grade}..{self.first_grade + self.classes - 1}")
        return index

    def grade_of(self, index: int) -> int:
        """The grade of a class index (the inverse of :meth:`class_of`)."""
        return int(index) + self.first_grade


GRADING_HEADS: tuple[GradingHead, ...] = (
    GradingHead("pfirrmann", "multiclass", ("pfirrmann_grade",), 5, first_grade=1),
    GradingHead("modic", "multiclass", ("modic",), 4),
    GradingHead("herniation", "binary", ("disc_herniation", "disc_bulging"), 2),
    GradingHead("endplate", "binary", ("up_endplate", "low_endplate"), 2),
    GradingHead("spondylolisthesis", "binary", ("spondylolisthesis",), 1),
    GradingHead("narrowing", "binary", ("disc_narrowing",), 1),
)
HEADS: dict[str, GradingHead] = {head.name: head for head in GRADING_HEADS}
#: Logits of all heads, in head order: 5 + 4 + 2 + 2 + 1 + 1 = 15 (eight clinical labels: :data:`LABELS`).
TOTAL_LOGITS = sum(h.outputs for h in GRADING_HEADS)
LABELS: tuple[str, ...] = tuple(c for h in GRADING_HEADS for c in h.columns)


def targets_of_row(row: Mapping[str, Any]) -> dict[str, list[float] | int]:
    """One crop row's targets per head: a class index for multiclass heads, 0/1 values for binary ones.

    Example:
        >>> row = {"pfirrmann_grade": "4", "modic": "2", "disc_herniation": "1", "disc_bulging": "0",
        ...        "up_endplate": "0", "low_endplate": "1", "spondylolisthesis": "0", "disc_narrowing": "1"}
        >>> targets_of_row(row)
        {'pfirrmann': 3, 'modic': 2, 'herniation': [1.0, 0.0], 'endplate': [0.0, 1.0], 'spondylolisthesis': [0.0], 'narrowing': [1.0]}
    """
    out: dict[str, list[float] | int] = {}
    for head in GRADING_HEADS:
        if head.kind == "multiclass":
            out[head.name] = head.class_of(int(float(row[head.columns[0]])))
        else:
            values = [float(int(float(row[c]))) for c in head.columns]
            if any(v not in (0.0, 1.0) for v in values):
                raise ValueError(f"{head.columns} must be 0 or 1, got {values}")
            out[head.name] = values
    return out


@dataclass
class MTLTargets:
    """A batch of targets, one tensor per head: ``(B,)`` class indices (int64) for multiclass heads, ``(B, k)``
    0/1 floats for binary heads."""

    pfirrmann: torch.Tensor
    modic: torch.Tensor
    herniation: torch.Tensor
    endplate: torch.Tensor
    spondylolisthesis: torch.Tensor
    narrowing: torch.Tensor

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> MTLTargets:
        """The targets of crop rows (see :func:`targets_of_row`)."""
        return cls.stack([targets_of_row(row) for row in rows])

    @classmethod
    def stack(cls, items: Sequence[Mapping[str, Any]]) -> MTLTargets:
        """Stack per-item targets (dicts of class indices / 0-1 lists, or of tensors) into a batch."""
        import torch

        values: dict[str, torch.Tensor] = {}
        for head in GRADING_HEADS:
            column = [item[head.name] for item in items]
            dtype = torch.int64 if head.kind == "multiclass" else torch.float32
            values[head.name] = torch.stack([torch.as_tensor(v, dtype=dtype) for v in column]) if column else (
                torch.zeros((0,) if head.kind == "multiclass" else (0, head.outputs), dtype=dtype))
        return cls(**values)

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {head.name: getattr(self, head.name) for head in GRADING_HEADS}

    def to(self, device: Any) -> MTLTargets:
        return MTLTargets(**{k: v.to(device) for k, v in self.as_dict().items()})

    def __len__(self) -> int:
        return int(self.pfirrmann.shape[0])
