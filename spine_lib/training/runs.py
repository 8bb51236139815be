"""A training run's folder and what it produced: the one place the run files are named.

```
<weights>/<task>/<run_id>/best_model.pt      the best epoch's weights (by the task's checkpoint metric)
<weights>/<task>/<run_id>/last.pt            the last epoch, to resume from
<weights>/<task>/<run_id>/checkpoint_epoch_N.pt
<weights>/<task>/<run_id>/config.yaml        the resolved config
<weights>/<task>/<run_id>/logs/              curves and prediction plots
<weights>/<task>/<run_id>/rejects.csv        dataset items left out of training (unreadable images), when any
<weights>/<task>/latest.json                 points at the most recent finished, validated run's best checkpoint
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spine_lib.errors import ConfigError

BEST_MODEL = "best_model.pt"


LAST_CHECKPOINT = "last.pt"


CONFIG_FILE = "config.yaml"


LATEST_RUN = "latest.json"


REJECTS_FILE = "rejects.csv"
#: columns of a run's ``rejects.csv``
REJECT_COLUMNS = ("split", "image_path", "reason")


def epoch_checkpoint_name(epoch: int) -> str:
    """``checkpoint_epoch_<N>.pt`` of a 1-based epoch number."""
    return f"checkpoint_epoch_{epoch}.pt"


def latest_run(weights_path: Path, task: str) -> Path | None:
    """The best checkpoint of the task's most recent finished run (``<weights>/<task>/latest.json``), or None."""
    pointer = Path(weights_path) / task / LATEST_RUN
    if not pointer.is_file():
        return None
    try:
        data = json.loads(pointer.read_text(encoding="utf-8"))
        path = pointer.parent / str(data["run_id"]) / str(data.get("best_model", BEST_MODEL))
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(pointer, f"not a run pointer ({type(error).__name__}: {error}); delete it or train "
                                   "again") from None
    return path if path.is_file() else None


@dataclass
class TrainingResult:
    """What a training run produced."""

    run_id: str
    output_path: Path
    best_model_path: Path
    best_epoch: int
    best_score: float
    epochs_run: int
    stopped_early: bool
    final_metrics: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    train_images_per_second: float = 0.0
    plots: dict[str, Path] = field(default_factory=dict)
    #: whether a validation split scored the epochs (else the best model is the lowest training loss)
    validated: bool = True
    #: whether ``<weights>/<task>/latest.json`` now points at this run
    published: bool = False
    #: dataset items left out (unreadable images): ``(split, image_path, reason)``
    rejects: list[tuple[str, str, str]] = field(default_factory=list)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "validation": "split" if self.validated else "none: best model chosen on training loss",
            "latest_json_updated": self.published,
            "rejected_items": len(self.rejects),
            "run_id": self.run_id,
            "best_epoch": self.best_epoch + 1,
            "best_score": round(self.best_score, 6),
            "epochs_run": self.epochs_run,
            "stopped_early": self.stopped_early,
            "train_seconds": round(self.seconds, 1),
            "train_images_per_second": round(self.train_images_per_second, 1),
            **{k: round(v, 6) for k, v in self.final_metrics.items()},
        }
