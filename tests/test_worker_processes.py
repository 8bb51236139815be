"""How worker pools start: a fork without threads, a preloaded fork server with them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

#: a standard-library module nothing here imports: in a worker only when the fork server preloaded it
PRELOADED = "wave"


def _worker_facts(_: int) -> tuple[int, bool]:
    return os.getppid(), PRELOADED in sys.modules


def test_a_process_without_threads_forks_its_workers() -> None:
    # a fresh interpreter: the test process may hold threads of other tests
    code = ("from spine_lib.core.processes import worker_context; "
            "print(worker_context(['wave']).get_start_method())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "fork"


def test_a_process_with_threads_gets_workers_from_a_preloaded_fork_server() -> None:
    # a fresh interpreter: a fork server already running in the test process keeps the preload it started with
    code = f"""
import json, os, sys, threading
from concurrent.futures import ProcessPoolExecutor
from spine_lib.core.processes import worker_context
from tests.test_worker_processes import _worker_facts
stop = threading.Event()
threading.Thread(target=stop.wait, daemon=True).start()
context = worker_context([{PRELOADED!r}])
with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
    facts = list(pool.map(_worker_facts, range(4)))
stop.set()
print(json.dumps({{"method": context.get_start_method(), "pid": os.getpid(), "facts": facts,
                  "here": {PRELOADED!r} in sys.modules}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         cwd=Path(__file__).parents[1])
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["method"] == "forkserver"
    assert answer["pid"] not in {parent for parent, _ in answer["facts"]}  # forked by the server
    assert all(preloaded for _, preloaded in answer["facts"])  # the server imported it before forking
    assert not answer["here"]  # ... and only the server


def _pid(_: int) -> int:
    return os.getpid()


def test_workers_of_either_start_end_when_their_owner_is_killed(tmp_path: Path) -> None:
    """A hard kill of the process that owns a pool (``kill -9`` of a job) leaves no worker: forked workers and a
    fork server's workers alike."""
    for threads in (False, True):
        pids = tmp_path / f"pids_{threads}.txt"
        code = f"""
import os, sys, threading, time
from spine_lib.core.processes import worker_pool
from tests.test_worker_processes import _pid
if {threads}:
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
pool = worker_pool(2, ["tests.test_worker_processes"])
workers = set(pool.map(_pid, range(8)))
open({str(pids)!r}, "w").write(" ".join(map(str, workers)))
time.sleep(600)
"""
        owner = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[1],
                                 start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while not pids.exists() or not pids.read_text():
                assert owner.poll() is None, "the pool's owner ended early"
                assert time.monotonic() < deadline, "no workers started"
                time.sleep(0.1)
            workers = [int(pid) for pid in pids.read_text().split()]
            assert workers and owner.pid not in workers
            assert all(_alive(pid) for pid in workers)
            owner.kill()
            owner.wait(timeout=10)
            deadline = time.monotonic() + 10
            while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not [pid for pid in workers if _alive(pid)], f"workers left after a kill (threads: {threads})"
        finally:
            if owner.poll() is None:
                os.killpg(owner.pid, signal.SIGKILL)
                owner.wait()


def _alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
