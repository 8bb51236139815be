"""Configuration of ``spine-vision synth`` (kept apart from the writers so the CLI starts fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import tyro

from spine_lib.core.config import BaseConfig
from spine_lib.core.layout import DEFAULT_LAYOUT


class SynthConfig(BaseConfig):
    """Write a synthetic data root in the exact layouts of SPIDER, RSNA 2024 and the Phenikaa export.

    Example:
        >>> SynthConfig(patients=8, rsna_studies=20).counts()  # per source; unset sources take --patients
        {'spider': 8, 'rsna': 20, 'phenikaa': 8}
    """

    out: Annotated[Path, tyro.conf.arg(help="Data root to write (raw/SPIDER, raw/RSNA, raw/Phenikaa, truth/).")] = (
        DEFAULT_LAYOUT.root
    )
    patients: Annotated[int, tyro.conf.arg(help="Patients per source (unless set per source).")] = 8
    spider_patients: Annotated[int | None, tyro.conf.arg(help="SPIDER patients.")] = None
    rsna_studies: Annotated[int | None, tyro.conf.arg(help="RSNA studies.")] = None
    phenikaa_patients: Annotated[int | None, tyro.conf.arg(help="Phenikaa patients.")] = None
    lumbar_coords_pictures: Annotated[int, tyro.conf.arg(
        help="Lumbar Coords pretraining pictures (raw/Lumbar Coords: other datasets' looks, T2, T1 and CT; "
             "0: none).")] = 0
    rsna_looks: Annotated[Literal["plain", "varied"], tyro.conf.arg(help=(
        "How the RSNA studies' tissues look: plain (the phantom's signal table, as SPIDER and Phenikaa) or varied "
        "(per study: the contrast between tissues, cortex, nucleus, a smooth canal with cord, roots and epidural "
        "fat; geometry and points unchanged)."))] = "plain"
    seed: Annotated[int, tyro.conf.arg(help="Random seed: same seed, same bytes.")] = 0
    size: Annotated[int, tyro.conf.arg(help="In-plane size (rows = columns) of sagittal series.")] = 256
    slices: Annotated[int, tyro.conf.arg(help="Slices per sagittal series.")] = 14

    def counts(self) -> dict[str, int]:
        return {
            "spider": self.patients if self.spider_patients is None else self.spider_patients,
            "rsna": self.patients if self.rsna_studies is None else self.rsna_studies,
            "phenikaa": self.patients if self.phenikaa_patients is None else self.phenikaa_patients,
        }
