"""Logging setup on loguru, shared by every CLI command (``-v/--verbose``, ``--enable-file-log``).

Library code logs through ``loguru.logger`` and never writes patient names or birthdays into a log line:
patient IDs only. As a second guard, every record's message passes :func:`spine_lib.core.phi.redact` before
any sink sees it (:func:`redact_log_records`, installed when ``spine_lib`` is imported): a path of a
patient-named file that reaches a message through a library's error text is shown by its pseudonym.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

CONSOLE_FORMAT = "<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> <level>{message}</level>"
FILE_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {name}:{function}:{line} | {message}"


def _redact_record(record: Record) -> None:
    from spine_lib.core.phi import redact

    record["message"] = redact(record["message"])


def redact_log_records() -> None:
    """Pass every log record's message through :func:`~spine_lib.core.phi.redact` (whatever the sinks are)."""
    logger.configure(patcher=_redact_record)


def setup_logger(
    verbose: bool = False,
    enable_file_log: bool = False,
    log_path: Path = Path("logs"),
    log_name: str = "spine_vision",
) -> Path | None:
    """Route loguru to stderr (DEBUG when ``verbose``, else INFO) and optionally to a timestamped file.

    Calling it again replaces the previous sinks, so commands and tests can reconfigure freely.
    Returns the log file's path when file logging is on.
    """
    logger.remove()
    level = "DEBUG" if verbose else "INFO"
    logger.add(sys.stderr, level=level, format=CONSOLE_FORMAT, colorize=None)
    if not enable_file_log:
        return None
    log_path.mkdir(parents=True, exist_ok=True)
    log_file = log_path / f"{log_name}_{datetime.now():%Y%m%d_%H%M%S}.log"
    # The file always gets DEBUG: it is what one reads after a run went wrong.
    logger.add(log_file, level="DEBUG", format=FILE_FORMAT, encoding="utf-8", enqueue=False)
    logger.debug("file log at {}", log_file)
    return log_file
