"""A synthetic RSNA source of any size and the localization dataset built from it, for benchmarks and quality
runs that need more studies than a test fixture (the source is written once per settings and reused)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from spine_lib.core.layout import DataLayout
from spine_lib.datasets.ivd_coords import IVDDatasetConfig, IVDDatasetReport, build_ivd_coords
from spine_lib.errors import ConfigError
from spine_lib.io.atomic import atomic_write_text
from spine_lib.synthetic.rsna import write_rsna
from spine_lib.synthetic.spider import RenderSize
from spine_lib.synthetic.truth import TRUTH_FOLDER, write_truth

SYNTHETIC_SETTINGS = "rsna_settings.json"


def build_synthetic_ivd_coords(root: Path, studies: int = 48, size: int = 256, slices: int = 14, seed: int = 0,
                               workers: int = 1) -> IVDDatasetReport:
    """A synthetic RSNA source of ``studies`` studies under ``root`` (with ``truth/rsna.json``), and the
    localization dataset built from it at ``<root>/processed/ivd_coords``.

    For benchmarks and quality runs that need more studies than the test fixture: the RSNA source is written
    once per (studies, size, slices, seed) and reused on the next call. A root holding other RSNA data is refused.
    """
    root = Path(root)
    layout = DataLayout(root=root)
    settings = {"studies": studies, "size": size, "slices": slices, "seed": seed}
    marker = root / TRUTH_FOLDER / SYNTHETIC_SETTINGS
    written = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else None
    if written != settings:
        if layout.rsna.is_dir() and any(layout.rsna.iterdir()):
            if written is None:
                raise ConfigError(layout.rsna, "holds RSNA data not written by build_synthetic_ivd_coords; "
                                               "choose another root")
            shutil.rmtree(layout.rsna)
        layout.rsna.mkdir(parents=True, exist_ok=True)
        truth = write_rsna(layout, studies, seed, RenderSize(rows=size, columns=size, slices=slices))
        write_truth(root, "rsna", truth)
        atomic_write_text(marker, json.dumps(settings, sort_keys=True) + "\n")
    return build_ivd_coords(IVDDatasetConfig(base_path=root, workers=workers))
