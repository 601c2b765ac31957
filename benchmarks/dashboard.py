"""Time every dashboard page and API endpoint on a demo world of about 100,000 journeys.

Usage::

    python benchmarks/dashboard.py --people 26100 --repeat 7

The script generates the demo world with ``journeymap demo --people N`` into
``benchmarks/data/dashboard/``, unless its store is there already. With the demo of
2026-12-05, 26,100 people gave 100,189 journeys: about 3.8 per person, one per conversion
kind and person, converting or not. It starts ``journeymap serve`` on a free loopback port
with a dashboard password in the environment, signs in, and requests each page and endpoint
``--repeat`` times in a row. The first request of each computes the view (cold); the others
read the cache (warm). It prints a Markdown table of the cold time and the warm median and
p95 per path (milliseconds) and writes the numbers to
``benchmarks/data/dashboard/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
PASSWORD = "benchmark"
PATHS = [
    "/",
    "/attribution",
    "/attribution?grain=campaign",
    "/attribution?grain=ad",
    "/attribution?kind=lead&start=2026-03-01&end=2026-06-30",
    "/funnel",
    "/velocity",
    "/paths",
    "/blind-spots",
    "/icp",
    "/timeline",
    "/recommendations",
    "/compare",
    "/sync",
    "/api/status",
    "/api/map",
    "/api/attribution",
    "/api/funnel",
    "/api/velocity",
    "/api/paths",
    "/api/blind-spots",
    "/api/icp",
    "/api/entities",
    "/api/recommendations",
    "/api/compare",
    "/api/sync",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def ensure_world(folder: Path, people: int) -> Path:
    store = folder / "journeymap.duckdb"
    if not store.exists():
        command = [sys.executable, "-m", "journeymap", "demo", "--people", str(people)]
        subprocess.run([*command, "--out", str(folder)], check=True, stdout=subprocess.DEVNULL)
    return store


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=26_100, help="People in the demo world.")
    parser.add_argument("--repeat", type=int, default=7, help="Requests per path.")
    args = parser.parse_args()

    folder = HERE / "data" / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    store = ensure_world(folder, args.people)
    port = free_port()
    env = os.environ | {"JOURNEYMAP_DASHBOARD_PASSWORD": PASSWORD}
    command = [sys.executable, "-m", "journeymap", "serve", "--store", str(store)]
    command += ["--port", str(port), "--journal", str(folder / "journal")]
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    results = {}
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            for _ in range(300):
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            client.post("/login", data={"password": PASSWORD})
            journeys = client.get("/api/status").json()["rows"]["journeys"]
            person = client.get("/api/entities").json()["data"]["people"][0]["id"]
            paths = [*PATHS, f"/timeline/person/{person}", f"/api/timeline/person/{person}"]
            for path in paths:
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    response = client.get(path)
                    times.append((time.perf_counter() - started) * 1000)
                    if response.status_code != 200:
                        print(f"{path}: status {response.status_code}", file=sys.stderr)
                warm = times[1:]
                results[path] = {
                    "cold_ms": times[0],
                    "median_ms": statistics.median(warm),
                    "p95_ms": percentile(warm, 0.95),
                }
    finally:
        server.terminate()
        server.wait(timeout=60)

    print(f"{journeys:,} journeys; {os.cpu_count()} cores; Python {platform.python_version()}")
    print("| path | cold (ms) | warm median (ms) | warm p95 (ms) |")
    print("|---|---:|---:|---:|")
    for path, row in results.items():
        print(
            f"| `{path}` | {row['cold_ms']:,.0f} | {row['median_ms']:,.0f} | {row['p95_ms']:,.0f} |"
        )
    (folder / "results.json").write_text(
        json.dumps({"journeys": journeys, "results": results}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
