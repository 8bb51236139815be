"""How long loading the Dagster code location takes, and what `import dagster` alone costs of it.

Run: ``uv run python bench/code_location_load.py [--repeats 5]``. Each measurement is a fresh interpreter
(``python -c``), as the webserver, daemon and ``dagster definitions validate`` each start one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = (
    "import time, json, sys\n"
    "t0 = time.perf_counter()\n"
    "import dagster\n"
    "t1 = time.perf_counter()\n"
    "from spine_assets.definitions import defs\n"
    "defs()\n"
    "t2 = time.perf_counter()\n"
    "print(json.dumps({'import_dagster': t1 - t0, 'load': t2 - t0, 'torch': 'torch' in sys.modules}))\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    loads, imports, validates, walls = [], [], [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=REPO)
        walls.append(time.perf_counter() - start)
        probe = json.loads(out.stdout.strip().splitlines()[-1])
        assert not probe["torch"], "torch imported while loading the code location"
        loads.append(probe["load"])
        imports.append(probe["import_dagster"])
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
                       capture_output=True, check=True, cwd=REPO)
        validates.append(time.perf_counter() - start)
    print(f"median of {args.repeats} fresh interpreters")
    print(f"import dagster alone:                         {statistics.median(imports):.2f} s")
    print(f"code location load (import + build defs):     {statistics.median(loads):.2f} s")
    print(f"python -c process wall (interpreter + load):  {statistics.median(walls):.2f} s")
    print(f"dagster definitions validate -w (whole CLI):  {statistics.median(validates):.2f} s")


if __name__ == "__main__":
    main()
