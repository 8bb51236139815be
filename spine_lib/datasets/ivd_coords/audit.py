"""Reading a built dataset back: what its checks look at, and its fingerprint (the asset's data version)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from spine_lib.datasets.ivd_coords.read import parse_float
from spine_lib.formats.ivd_coords import (
    read_annotation_rows,
    read_rejects,
)


@dataclass
class DatasetAudit:
    """What the dataset's checks look at, read back from annotations.csv."""

    annotations: int = 0
    missing_images: list[str] = field(default_factory=list)
    points_outside: list[str] = field(default_factory=list)  # "image_path level" of points not in [0, 1)
    rows_read: int = 0
    rejected: int = 0

    @property
    def reject_rate(self) -> float:
        """Rejected rows per coordinate row considered (annotations + rejects)."""
        total = self.annotations + self.rejected
        return self.rejected / total if total else 0.0


def audit_dataset(output_path: Path) -> DatasetAudit:
    """Every annotation's image exists and its point lies in ``[0, 1)``; rejected rows are counted."""
    output_path = Path(output_path)
    audit = DatasetAudit()
    exists: dict[str, bool] = {}
    for row in read_annotation_rows(output_path):
        audit.annotations += 1
        image = row["image_path"]
        if image not in exists:
            exists[image] = (output_path / image).is_file()
            if not exists[image]:
                audit.missing_images.append(image)
        x, y = parse_float(row["relative_x"]), parse_float(row["relative_y"])
        if x is None or y is None or not (0.0 <= x < 1.0 and 0.0 <= y < 1.0):
            audit.points_outside.append(f"{image} {row['level']}")
    audit.rejected = len(read_rejects(output_path))
    return audit
