"""Time the import and the journey build of one touchpoint file, each run in a fresh process.

Usage::

    python benchmarks/build_timing.py benchmarks/data/journeys_1000000.parquet --rounds 3
    python benchmarks/build_timing.py FILE --rounds 3 --compare /path/to/other/checkout/src

Each run imports the file into a new in-memory store and builds journeys with the default
configuration. It reports wall seconds, CPU seconds (user and system time of all threads,
which other processes on a shared machine disturb less than wall time) and the peak
resident memory of the process in MB. With ``--compare``, runs of that source folder
(placed first on ``PYTHONPATH``) alternate with runs of this checkout, so that both see the
same load. The medians of each come last.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OWN_SOURCE = HERE.parent / "src"
MEASURES = ("import_s", "import_cpu_s", "build_s", "build_cpu_s", "peak_mb")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(path: str) -> dict[str, float]:
    """Import ``path`` into a new in-memory store, build journeys, and return the figures."""
    from journeymap import api
    from journeymap.store.store import Store

    store = Store.open()
    cpu, wall = _cpu_seconds(), time.perf_counter()
    api.import_file(store, path, input_format="touchpoints")
    imported_cpu, imported_wall = _cpu_seconds(), time.perf_counter()
    api.build(store)
    built_cpu, built_wall = _cpu_seconds(), time.perf_counter()
    return {
        "import_s": round(imported_wall - wall, 2),
        "import_cpu_s": round(imported_cpu - cpu, 2),
        "build_s": round(built_wall - imported_wall, 2),
        "build_cpu_s": round(built_cpu - imported_cpu, 2),
        # ru_maxrss is in KiB on Linux.
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def run_child(path: str, source: Path) -> dict[str, float]:
    """Run :func:`measure` in a fresh interpreter that imports journeymap from ``source``."""
    environment = dict(os.environ, PYTHONPATH=str(source))
    output = subprocess.run(
        [sys.executable, __file__, path, "--child"],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return figures


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="touchpoint file (CSV or Parquet)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each source folder")
    parser.add_argument("--compare", type=Path, help="source folder of another version")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.file)))
        return

    sources = {"this": OWN_SOURCE}
    if args.compare is not None:
        sources = {"compare": args.compare.resolve(), **sources}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sources}
    for _ in range(args.rounds):
        for name, source in sources.items():
            load = _load()
            figures = run_child(args.file, source)
            runs[name].append(figures)
            print(f"{name:8} load {load:>4}  {json.dumps(figures)}", flush=True)
    for name, figures_list in runs.items():
        medians = {key: statistics.median(f[key] for f in figures_list) for key in MEASURES}
        print(f"{name:8} median  {json.dumps(medians)}")


if __name__ == "__main__":
    main()
