"""``spine-vision synth``: a whole synthetic data root (SPIDER, RSNA, Phenikaa) and its ground truth."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from loguru import logger

from spine_lib.core.layout import DataLayout
from spine_lib.errors import ConfigError
from spine_lib.io.atomic import atomic_write_text
from spine_lib.synthetic.config import SynthConfig
from spine_lib.synthetic.phenikaa import write_phenikaa
from spine_lib.synthetic.rsna import write_rsna
from spine_lib.synthetic.spider import RenderSize, write_spider
from spine_lib.synthetic.truth import TRUTH_FOLDER, write_truth

MARKER = "synthetic.json"


@dataclass
class SynthReport:
    """What was written: counts per source, where, and how long it took."""

    root: Path
    counts: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, object]:
        return {"root": str(self.root), **{f"{k}_count": v for k, v in self.counts.items()},
                **{f"{k}_seconds": round(v, 2) for k, v in self.seconds.items()}}


def raw_has_files(layout: DataLayout) -> bool:
    return any(p.is_file() for folder in (layout.spider, layout.rsna, layout.phenikaa, layout.lumbar_coords)
               if folder.is_dir() for p in folder.rglob("*"))


def make_synthetic_root(config: SynthConfig) -> SynthReport:
    """Write the three raw sources and ``truth/`` under ``config.out``.

    A root already written by this function is cleared and rewritten (same seed, same bytes); a root holding
    any other raw data is refused, so real data is never overwritten.
    """
    counts = config.counts()
    if any(n < 1 for n in counts.values()):
        raise ConfigError(config.out, f"each source needs at least one patient, got {counts}")
    if config.lumbar_coords_pictures < 0:
        raise ConfigError(config.out, f"--lumbar-coords-pictures must be 0 or more, got {config.lumbar_coords_pictures}")
    if config.size < 64 or config.slices < 6:
        raise ConfigError(config.out, f"series too small to hold a spine: size {config.size}, slices {config.slices}")
    layout = DataLayout(root=config.out)
    marker = config.out / TRUTH_FOLDER / MARKER
    if raw_has_files(layout):
        if not marker.is_file():
            raise ConfigError(config.out, "raw/ holds data that was not written by `spine-vision synth`; refusing "
                                          "to overwrite it (choose another --out)")
        for folder in (layout.spider, layout.rsna, layout.phenikaa, layout.lumbar_coords, config.out / TRUTH_FOLDER):
            shutil.rmtree(folder, ignore_errors=True)
    layout.ensure()
    size = RenderSize(rows=config.size, columns=config.size, slices=config.slices)
    report = SynthReport(root=config.out, counts=dict(counts))
    writers = (("spider", write_spider), ("rsna", partial(write_rsna, varied_looks=config.rsna_looks == "varied")),
               ("phenikaa", write_phenikaa))
    for name, writer in writers:
        start = time.perf_counter()
        truth = writer(layout, counts[name], config.seed, size)
        write_truth(config.out, name, truth)
        report.seconds[name] = time.perf_counter() - start
        logger.info("{}: {} subjects in {:.1f} s", name, counts[name], report.seconds[name])
    if config.lumbar_coords_pictures:
        from spine_lib.synthetic.lumbar_coords import write_lumbar_coords

        start = time.perf_counter()
        pictures = write_lumbar_coords(layout.lumbar_coords, config.lumbar_coords_pictures, config.seed, config.size)
        write_truth(config.out, "lumbar_coords", pictures)
        report.counts["lumbar_coords"] = len(pictures)
        report.seconds["lumbar_coords"] = time.perf_counter() - start
    settings = {"seed": config.seed, "counts": counts, "size": config.size, "slices": config.slices,
                "lumbar_coords_pictures": config.lumbar_coords_pictures, "rsna_looks": config.rsna_looks}
    atomic_write_text(marker, json.dumps(settings, indent=1, sort_keys=True) + "\n")
    return report
