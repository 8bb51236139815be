"""The base every job configuration extends (one pydantic model per job, defined once in spine_lib)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import tyro
from pydantic import BaseModel, ConfigDict


class BaseConfig(BaseModel):
    """Options every job shares: console verbosity and an optional log file.

    Subclasses add the job's own fields; the CLI builds them from flags, Dagster assets from resources.
    Unknown fields are errors, so a misspelt option fails fast instead of being ignored.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    verbose: Annotated[bool, tyro.conf.arg(aliases=("-v",), help="Debug logging.")] = False
    enable_file_log: Annotated[bool, tyro.conf.arg(help="Also write the log to a file under --log-path.")] = False
    log_path: Annotated[Path, tyro.conf.arg(help="Folder of the log files.")] = Path("logs")
