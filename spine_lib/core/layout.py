"""The data-root layout: where each source and each product lives. The one place these paths are spelt.

```
<root>/raw/Phenikaa/{reports/, images/, tables/}     reports arrive in reports/ (the inbox)
<root>/raw/SPIDER/{images/, masks/, overview.csv, radiological_gradings.csv}
<root>/raw/RSNA/{train_images/, train.csv, train_label_coordinates.csv, train_series_descriptions.csv}
<root>/raw/Lumbar Coords/{coords_pretrain.csv, coords_rsna_improved.csv, data/}   optional
<root>/interim/                                     per-report OCR results, match tables, rejects
<root>/processed/SPIDER/Dataset501_Spider           nnU-Net v2 raw dataset
<root>/processed/ivd_coords                         localization dataset
<root>/processed/classification                     IVD crops
<weights>/<task>/<run_id>/                          trained models (outside the data root by default)
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

NNUNET_DATASET_NAME = "Dataset501_Spider"


@dataclass(frozen=True)
class DataLayout:
    """Paths of one data root. Nothing is created until :meth:`ensure` is called."""

    root: Path = Path("data")
    weights: Path = field(default=Path("weights"))

    # raw sources
    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def phenikaa(self) -> Path:
        return self.raw / "Phenikaa"

    @property
    def phenikaa_reports(self) -> Path:
        return self.phenikaa / "reports"

    @property
    def phenikaa_images(self) -> Path:
        return self.phenikaa / "images"

    @property
    def phenikaa_tables(self) -> Path:
        return self.phenikaa / "tables"

    @property
    def spider(self) -> Path:
        return self.raw / "SPIDER"

    @property
    def rsna(self) -> Path:
        return self.raw / "RSNA"

    @property
    def lumbar_coords(self) -> Path:
        """The public Lumbar Coords set (coords_pretrain.csv, coords_rsna_improved.csv, data/), when present."""
        return self.raw / "Lumbar Coords"

    # products
    @property
    def interim(self) -> Path:
        return self.root / "interim"

    @property
    def processed(self) -> Path:
        return self.root / "processed"

    @property
    def nnunet_dataset(self) -> Path:
        return self.processed / "SPIDER" / NNUNET_DATASET_NAME

    @property
    def ivd_coords(self) -> Path:
        return self.processed / "ivd_coords"

    @property
    def classification(self) -> Path:
        return self.processed / "classification"

    def weights_for(self, task: str) -> Path:
        """Folder of one task's training runs: ``<weights>/<task>``."""
        return self.weights / task

    def folders(self) -> dict[str, Path]:
        """Every folder of the layout, by name."""
        return {
            "phenikaa_reports": self.phenikaa_reports,
            "phenikaa_images": self.phenikaa_images,
            "phenikaa_tables": self.phenikaa_tables,
            "spider": self.spider,
            "rsna": self.rsna,
            "interim": self.interim,
            "processed": self.processed,
            "weights": self.weights,
        }

    def ensure(self) -> list[Path]:
        """Create the layout's folders; return those that did not exist before (idempotent)."""
        created: list[Path] = []
        for folder in self.folders().values():
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                created.append(folder)
        return created

    def inventory(self) -> dict[str, int]:
        """Count the files each raw source holds (what a user checks first when a run finds nothing)."""

        def count(folder: Path, pattern: str = "*") -> int:
            return sum(1 for p in folder.rglob(pattern) if p.is_file()) if folder.is_dir() else 0

        def count_dirs(folder: Path) -> int:
            return sum(1 for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else 0

        return {
            "phenikaa_reports": count(self.phenikaa_reports),
            "phenikaa_image_folders": count_dirs(self.phenikaa_images),
            "phenikaa_tables": count(self.phenikaa_tables),
            "spider_images": count(self.spider / "images", "*.mha"),
            "spider_masks": count(self.spider / "masks", "*.mha"),
            "rsna_studies": count_dirs(self.rsna / "train_images"),
            "rsna_dicom_files": count(self.rsna / "train_images", "*.dcm"),
        }
