"""Time every dashboard page and API endpoint on a demo world of about 100,000 journeys.

Usage::

    python benchmarks/dashboard.py --people 26100 --repeat 7

The script generates the demo world with ``journeymap demo --people N`` into
``benchmarks/data/dashboard/``, unless its store is there already. With the demo of
2026-12-05, 26,100 people gave 100,189 journeys: about 3.8 per person, one per conversion
kind and person, converting or not. It starts ``journeymap serve`` on a free loopback port
with a dashboard password in the environment, signs in and waits until the cache warm-up
reports ``ready`` in ``/api/status`` (the time it took is printed). Then it requests each
path ``--repeat`` times in a row: the first request is the first after the warm-up, the
others read the cache. ``PATHS`` are the pages and endpoints with their default filters and
tabs, which the warm-up computes. ``UNCACHED`` are filter combinations and downloads that it
does not compute, so their first request pays the whole computation. It prints a Markdown
table per group (milliseconds) and writes the numbers to
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
UNCACHED = [
    "/api/map.xlsx",
    "/api/map.md",
    "/api/map.html",
    "/?start=2026-04-01&end=2026-06-30",
    "/?segment=industry:Software",
    "/attribution?kind=lead&start=2026-03-01&end=2026-06-30",
    "/funnel?start=2026-03-01",
    "/paths?kind=lead",
    "/compare?a=2026-Q1&b=2026-Q2",
]
"""Filter combinations and downloads outside the warm-up; the timeline of a person follows."""


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


def wait_for_warm_up(client: httpx.Client, timeout: float) -> float:
    """Return the seconds until ``/api/status`` reports the warm-up ``ready``."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        state = client.get("/api/status").json()["warm_up"]["state"]
        if state in ("ready", "off"):
            return time.perf_counter() - started
        time.sleep(0.5)
    raise SystemExit(f"the cache warm-up was not ready after {timeout:.0f} s")


def time_paths(client: httpx.Client, paths: list[str], repeat: int) -> dict[str, dict[str, float]]:
    """Request each path ``repeat`` times; return the first time and the later ones' median
    and 95th percentile, in milliseconds."""
    results = {}
    for path in paths:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                print(f"{path}: status {response.status_code}", file=sys.stderr)
        cached = times[1:]
        results[path] = {
            "first_ms": times[0],
            "median_ms": statistics.median(cached),
            "p95_ms": percentile(cached, 0.95),
        }
    return results


def print_table(title: str, results: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}\n")
    print("| path | first request (ms) | cached median (ms) | cached p95 (ms) |")
    print("|---|---:|---:|---:|")
    for path, row in results.items():
        print(
            f"| `{path}` | {row['first_ms']:,.0f} | {row['median_ms']:,.0f} "
            f"| {row['p95_ms']:,.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=26_100, help="People in the demo world.")
    parser.add_argument("--repeat", type=int, default=7, help="Requests per path.")
    parser.add_argument(
        "--warm-up-timeout", type=float, default=600, help="Seconds to wait for the warm-up."
    )
    args = parser.parse_args()

    folder = HERE / "data" / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    store = ensure_world(folder, args.people)
    port = free_port()
    env = os.environ | {"JOURNEYMAP_DASHBOARD_PASSWORD": PASSWORD}
    command = [sys.executable, "-m", "journeymap", "serve", "--store", str(store)]
    command += ["--port", str(port), "--journal", str(folder / "journal")]
    started = time.perf_counter()
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            for _ in range(300):
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            client.post("/login", data={"password": PASSWORD})
            waited = wait_for_warm_up(client, args.warm_up_timeout)
            warm_up = time.perf_counter() - started
            status = client.get("/api/status").json()
            journeys = status["rows"]["journeys"]
            person = client.get("/api/entities").json()["data"]["people"][0]["id"]
            warmed = time_paths(client, PATHS, args.repeat)
            uncached = time_paths(client, [*UNCACHED, f"/timeline/person/{person}"], args.repeat)
    finally:
        server.terminate()
        server.wait(timeout=60)

    print(f"{journeys:,} journeys; {os.cpu_count()} cores; Python {platform.python_version()}")
    print(
        f"warm-up ready {warm_up:.1f} s after the server process started "
        f"({waited:.1f} s after sign-in); its last round: {status['warm_up']}"
    )
    print_table("Pages and endpoints with their default filters (warmed)", warmed)
    print_table("Filter combinations and downloads the warm-up does not compute", uncached)
    (folder / "results.json").write_text(
        json.dumps(
            {
                "journeys": journeys,
                "warm_up_seconds": warm_up,
                "warm_up": status["warm_up"],
                "warmed": warmed,
                "uncached": uncached,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
