"""Spine Vision's pure library: imaging I/O, labels, datasets, models, training and inference.

It never imports Dagster; the asset layer (``spine_assets``) and the CLI (``spine_lib.cli``) sit on top of it.
"""

__version__ = "0.1.0"

from spine_lib.core.logging import redact_log_records

redact_log_records()  # patient-like names in log messages are shown by pseudonym, whoever configures the sinks
