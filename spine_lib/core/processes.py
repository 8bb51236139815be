"""Child processes that end with their parent: a hard kill of a job (``kill -9``) leaves no worker behind.

A worker process calls :func:`die_with_parent` first thing (a process pool's initializer, a ``python -m``
child's ``main``). On Linux the kernel then sends it ``SIGKILL`` when its parent ends
(``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread watches the parent's pid and ends the process when
the parent is gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["die_with_parent"]

#: ``PR_SET_PDEATHSIG`` of ``<linux/prctl.h>``
PR_SET_PDEATHSIG = 1
#: seconds between two looks at the parent's pid where the kernel cannot be asked to watch it
WATCH_INTERVAL = 0.5


def _kernel_watches_parent() -> bool:
    """Ask Linux to kill this process when its parent ends; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols, libc's prctl among them
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_INTERVAL)
    os._exit(1)


def die_with_parent(parent_pid: int | None = None) -> None:
    """End this process as soon as its parent ``parent_pid`` (default: the current parent) ends.

    When the parent is already gone (it died between starting this process and this call), the process ends
    at once.
    """
    expected = os.getppid() if parent_pid is None else parent_pid
    watched = _kernel_watches_parent()
    if os.getppid() != expected:  # the parent ended before the kernel was told to watch it
        os._exit(1)
    if not watched:
        threading.Thread(target=_watch_parent, args=(expected,), name="parent-watch", daemon=True).start()
