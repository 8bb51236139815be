"""Child processes that end with their parent: a hard kill of a job (``kill -9``) leaves no worker behind; and
the cheapest safe way to start a pool of them.

A worker process calls :func:`die_with_parent` first thing (a process pool's initializer, a ``python -m``
child's ``main``). On Linux the kernel then sends it ``SIGKILL`` when its parent ends
(``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread watches the parent's pid and ends the process when
the parent is gone.

:func:`worker_context` picks how a pool starts its workers: a fork of a process with one thread (free), or, in
a process with threads (a Dagster run: its event and heartbeat threads), a fork of a clean server process that
imported the workers' modules once. Python's own default would be a fork whatever the threads (unsafe), or in
a process that was itself spawned (a run the code server started) a spawn: each worker importing the parent's
main module and the workers' modules again, ~1 s apiece.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import Any

__all__ = ["die_with_parent", "die_with_process", "worker_context", "worker_pool"]

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


def worker_context(preload: Sequence[str] = ()) -> BaseContext:
    """The ``multiprocessing`` context for a pool of workers running functions of the modules ``preload``.

    ``fork`` where this process has a single thread; else ``forkserver``, whose server process imports this
    process's main module and ``preload`` once before it forks each worker (set before the server's first start;
    a server already running keeps what it has).
    """
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", *preload])
    return context


def die_with_process(pid: int) -> None:
    """End this process as soon as process ``pid`` (any process, not only the parent) ends: a daemon thread waits
    on the process's pidfd (Linux), or looks at the pid every :data:`WATCH_INTERVAL` elsewhere. When ``pid`` is
    already gone the process ends at once."""
    try:
        fd = os.pidfd_open(pid)  # pyright: ignore[reportAttributeAccessIssue]  # Linux only
    except ProcessLookupError:
        os._exit(1)
    except (OSError, AttributeError):
        threading.Thread(target=_poll_process, args=(pid,), name="owner-watch", daemon=True).start()
        return
    threading.Thread(target=_wait_for_exit, args=(fd,), name="owner-watch", daemon=True).start()


def _wait_for_exit(pidfd: int) -> None:
    select.select([pidfd], [], [])  # readable once the process has ended
    os._exit(1)


def _poll_process(pid: int) -> None:
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            pass  # alive, someone else's
        time.sleep(WATCH_INTERVAL)


def _start_worker(owner: int, owner_is_parent: bool, initializer: Callable[..., object] | None,
                  initargs: tuple[Any, ...]) -> None:
    if owner_is_parent:
        die_with_parent(owner)
    else:  # a fork server's worker: the server ends only once its workers have, so watch the pool's owner
        die_with_parent()
        die_with_process(owner)
    if initializer is not None:
        initializer(*initargs)


def worker_pool(max_workers: int, modules: Sequence[str] = (), initializer: Callable[..., object] | None = None,
                initargs: tuple[Any, ...] = ()) -> ProcessPoolExecutor:
    """A process pool for functions of ``modules``, started by :func:`worker_context`, whose workers end with this
    process (a hard kill of the job leaves none behind), then run ``initializer(*initargs)``.

    A fork server's worker watches this process itself: the server, its parent, outlives this process while any
    worker it forked is alive.
    """
    context = worker_context(modules)
    owner_is_parent = context.get_start_method() != "forkserver"
    return ProcessPoolExecutor(max_workers=max_workers, mp_context=context, initializer=_start_worker,
                               initargs=(os.getpid(), owner_is_parent, initializer, initargs))
