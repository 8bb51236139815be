"""The data-root layout: where each source and each product lives. The one place these paths are spelt.

```
<root>/raw/Phenikaa/{reports/, images/, tables/}     reports arrive in reports/ (the inbox)
<root>/raw/SPIDER/{images/, masks/, overview.csv, radiological_gradings.csv}
<root>/raw/RSNA/{train_images/, train.csv, train_label_coordinates.csv, train_series_descriptions.csv}
<root>/raw/Lumbar Coords/{coords_pretrain.csv, coords_rsna_improved.csv, data/}   optional
<root>/interim/Phenikaa/                            per-report OCR results, match tables, rejects (PHI)
<root>/interim/nnUNet_preprocessed/                 nnU-Net's plans and preprocessed arrays
<root>/processed/SPIDER/Dataset501_Spider           nnU-Net v2 raw dataset (its parent is nnUNet_raw)
<root>/processed/ivd_coords                         localization dataset
<root>/processed/phenikaa                           the hospital export: radiological_labels.csv, images/<patient_id>/
<root>/processed/classification                     IVD crops of SPIDER and Phenikaa patients
<weights>/<task>/<run_id>/                          trained models (outside the data root by default)
<weights>/ocr/{det/, vgg_transformer.pth}           local models of the deep-learning OCR engine
```

Every job config builds its paths from a layout (``Config.for_layout(layout)``); its defaults are those of
:data:`DEFAULT_LAYOUT` (``./data`` and ``./weights``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

NNUNET_DATASET_NAME = "Dataset501_Spider"
#: Folders of the hospital export: the reports inbox, the study folders, the label tables.
PHENIKAA_REPORTS = "reports"
PHENIKAA_IMAGES = "images"
PHENIKAA_TABLES = "tables"
INTERIM_PHENIKAA = "Phenikaa"
NNUNET_PREPROCESSED = "nnUNet_preprocessed"


@dataclass(frozen=True)
class DataLayout:
    """Paths of one data root. Nothing is created until :meth:`ensure` is called.

    Args:
        root: the data root (``raw/``, ``interim/``, ``processed/``).
        weights: the folder of trained models, one sub-folder per task.

    Example:
        >>> layout = DataLayout(root=Path("/srv/spine/data"), weights=Path("/srv/spine/weights"))
        >>> layout.spider.as_posix(), layout.phenikaa_tables.as_posix()
        ('/srv/spine/data/raw/SPIDER', '/srv/spine/data/raw/Phenikaa/tables')
        >>> layout.nnunet_dataset.as_posix(), layout.nnunet_raw.as_posix()
        ('/srv/spine/data/processed/SPIDER/Dataset501_Spider', '/srv/spine/data/processed/SPIDER')
        >>> layout.weights_for("localization").as_posix()
        '/srv/spine/weights/localization'

        :meth:`ensure` creates the folders that are missing and says which:

        >>> import tempfile
        >>> base = Path(tempfile.mkdtemp())
        >>> layout = DataLayout(root=base / "data", weights=base / "weights")
        >>> layout.raw.exists()
        False
        >>> [p.relative_to(base).as_posix() for p in layout.ensure()]  # doctest: +NORMALIZE_WHITESPACE
        ['data/raw/Phenikaa/reports', 'data/raw/Phenikaa/images', 'data/raw/Phenikaa/tables',
         'data/raw/SPIDER', 'data/raw/RSNA', 'data/interim', 'data/processed', 'weights']
        >>> layout.ensure()
        []
    """

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
        return self.phenikaa / PHENIKAA_REPORTS

    @property
    def phenikaa_images(self) -> Path:
        return self.phenikaa / PHENIKAA_IMAGES

    @property
    def phenikaa_tables(self) -> Path:
        return self.phenikaa / PHENIKAA_TABLES

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
    def phenikaa_interim(self) -> Path:
        """Per-report fields, match tables and rejects: the only product folder holding names and birthdays."""
        return self.interim / INTERIM_PHENIKAA

    @property
    def nnunet_raw(self) -> Path:
        """nnU-Net's ``nnUNet_raw``: the parent of the converted dataset."""
        return self.nnunet_dataset.parent

    @property
    def nnunet_preprocessed(self) -> Path:
        """nnU-Net's ``nnUNet_preprocessed``."""
        return self.interim / NNUNET_PREPROCESSED

    @property
    def ocr_detection_model(self) -> Path:
        """PaddleOCR detection model folder of the deep-learning OCR engine."""
        return self.weights_for("ocr") / "det"

    @property
    def ocr_recognition_weights(self) -> Path:
        """VietOCR recognition weights of the deep-learning OCR engine."""
        return self.weights_for("ocr") / "vgg_transformer.pth"

    @property
    def ivd_coords(self) -> Path:
        return self.processed / "ivd_coords"

    @property
    def phenikaa_export(self) -> Path:
        """The hospital export of matched patients (labels by patient ID and level, DICOM by patient ID; no PHI)."""
        return self.processed / "phenikaa"

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


#: The layout of ``./data`` and ``./weights``: where every job config's defaults point.
DEFAULT_LAYOUT = DataLayout()
