"""Time journeymap against channelattribution and marketing-attribution-models on the same data.

Usage::

    python benchmarks/attribution.py --sizes 10k,100k,1M,10M --peers-up-to 1M --write-docs

For each size the script generates a demo world with that many people (one journey each),
writes one touchpoint file (``user_id, timestamp, channel, conversion, value``: the touches of
each person up to their first lead, the conversion flagged on the last touch), and runs each
tool on it in its own process, so that peak memory is the tool's own. Every time includes the
tool's preprocessing from that file:

* journeymap: ``journeymap attribute FILE --direct``, which checks the file and cuts it into
  journeys in DuckDB where it lies, then runs the models;
* journeymap-store: import into a new DuckDB store, build and store journeys, run the models
  (the path that the journey reports, the map and conversion sync read; not compared);
* channelattribution: aggregate paths with pandas, then ``heuristic_models`` and
  ``markov_model`` (order 1 and 2, one million simulations as its convergence test asks);
* marketing-attribution-models: its ``MAM`` session pipeline, then each ``run_*`` model.

The generated files are cached under ``benchmarks/data`` (not versioned).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "data"
SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000, "10M": 10_000_000}
OURS = [
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "time_decay",
    "position_based",
    "w_shaped",
    "full_path",
    "custom",
    "markov",
    "markov_order_2",
    "shapley",
    "shapley_ordered",
    "fractribution",
]
# Our model name, and the peer models that compute the same thing.
COMPARABLE = {
    "first_touch": ["channelattribution:heuristic", "mam:first_click"],
    "last_touch": ["channelattribution:heuristic", "mam:last_click"],
    "linear": ["channelattribution:heuristic", "mam:linear"],
    "time_decay": ["mam:time_decay"],
    "position_based": ["mam:position_based"],
    "markov": ["channelattribution:markov_order_1", "mam:markov"],
    "markov_order_2": ["channelattribution:markov_order_2"],
    "shapley": ["mam:shapley"],
}


def peak_memory_mb() -> float:
    """Return this process's peak resident memory in MB.

    Reads ``VmHWM`` from ``/proc/self/status``: unlike ``getrusage``, it starts afresh at
    ``exec``, so it does not include the memory of the parent that generated the data.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


LARGE_FILE_ROWS = 10_000_000
"""Touch rows above which journeymap's store is a file rather than in memory."""
LARGE_MEMORY_LIMIT = "8GB"

CHUNK_PEOPLE = 1_000_000
"""People per generated world: larger files are written in chunks of this many people, so
that generating ten million journeys needs the memory of one million."""


def make_file(people: int, seed: int = 11) -> Path:
    """Generate (or reuse) the touchpoint file of a demo world with ``people`` people.

    Sizes above :data:`CHUNK_PEOPLE` are made of independent worlds of that many people (seeds
    ``seed``, ``seed + 1`` ...), their person ids prefixed by the chunk number so that they
    stay distinct, and concatenated into one file.
    """
    import duckdb

    path = DATA / f"journeys_{people}.parquet"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if people <= CHUNK_PEOPLE:
        out = _touch_frame(people, seed)
        with duckdb.connect() as raw:
            raw.register("out", out)
            raw.execute(f"COPY out TO '{path}' (FORMAT parquet)")
    else:
        parts = []
        for number, start in enumerate(range(0, people, CHUNK_PEOPLE)):
            size = min(CHUNK_PEOPLE, people - start)
            part = DATA / f"journeys_{people}.part{number:03d}.parquet"
            if not part.exists():
                out = _touch_frame(size, seed + number)
                out["user_id"] = f"C{number:03d}-" + out.user_id.astype(str)
                with duckdb.connect() as raw:
                    raw.register("out", out)
                    raw.execute(f"COPY out TO '{part}' (FORMAT parquet)")
                del out
            print(f"generated chunk {number + 1} of {-(-people // CHUNK_PEOPLE)}", file=sys.stderr)
            parts.append(part)
        listed = ", ".join(f"'{part}'" for part in parts)
        with duckdb.connect() as raw:
            raw.execute(
                f"COPY (SELECT * FROM read_parquet([{listed}])) TO '{path}' (FORMAT parquet)"
            )
        for part in parts:
            part.unlink()
    with duckdb.connect() as raw:
        touches, journeys, conversions = raw.execute(
            f"SELECT count(*), count(DISTINCT user_id), count_if(conversion) "
            f"FROM read_parquet('{path}')"
        ).fetchone()
    print(
        f"generated {path.name}: {touches:,} touches, {journeys:,} journeys, "
        f"{conversions:,} conversions in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return path


def _touch_frame(people: int, seed: int) -> Any:
    """Return one demo world's touches: ``user_id, timestamp, channel, conversion, value``."""
    from journeymap.channels.rules import ChannelClassifier
    from journeymap.demo.world import generate_world

    world = generate_world(people, seed=seed, crm=False)
    rows = world.touchpoints
    touches = rows[rows.conversion == 0].copy()
    # The journey ends at the person's first lead; its conversion sits on the last touch before.
    leads = rows[(rows.conversion == 1) & (rows.conversion_kind == "lead")]
    first_lead = leads.groupby("user_id", observed=True).timestamp.min().rename("lead_at")
    touches = touches.join(first_lead, on="user_id")
    touches = touches[touches.lead_at.isna() | (touches.timestamp <= touches.lead_at)]

    import ibis
    import pandas as pd

    con = ibis.duckdb.connect()
    frame = touches.rename(
        columns={"utm_source": "source", "utm_medium": "medium", "utm_campaign": "campaign"}
    )
    frame["referrer_host"] = frame.referrer.str.extract(r"^(?:https?://)?([^/]+)", expand=False)
    frame["click_platform"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    for column, name in (
        ("gclid", "google_ads"),
        ("msclkid", "microsoft_ads"),
        ("li_fat_id", "linkedin_ads"),
        ("fbclid", "meta"),
    ):
        frame.loc[frame[column].notna() & frame.click_platform.isna(), "click_platform"] = name
    frame["channel"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    for column in ("user_id", "source", "medium", "campaign", "touch_type", "referrer_host"):
        frame[column] = frame[column].astype("string")
    table = con.create_table(
        "t",
        frame[
            [
                "user_id",
                "timestamp",
                "source",
                "medium",
                "campaign",
                "click_platform",
                "touch_type",
                "referrer_host",
                "channel",
                "lead_at",
            ]
        ],
    )
    classified = ChannelClassifier().classify(table).to_pandas()
    classified = classified.sort_values(["user_id", "timestamp"], kind="stable")
    last = ~classified.user_id.duplicated(keep="last")
    converted = last & classified.lead_at.notna()
    out = classified[["user_id", "timestamp", "channel"]].copy()
    out["conversion"] = converted.astype(bool)
    out["value"] = converted.astype(float)
    out["timestamp"] = out.timestamp.dt.tz_convert("UTC")
    return out


def _model(name: str) -> Any:
    from journeymap.attribution import create_model

    return create_model("markov", {"order": 2}) if name == "markov_order_2" else create_model(name)


def _time_models(journeys: Any, timings: dict[str, float]) -> None:
    """Time the distinct paths (as ``paths``), then each model's credit by channel."""
    from journeymap.attribution import channel_credit_table
    from journeymap.attribution.aggregate import path_steps

    # Every model but time decay reads the distinct paths as step arrays. Counting them once
    # here charges each model with them, as a run of that model alone would be.
    step = time.perf_counter()
    path_steps(journeys)
    timings["paths"] = time.perf_counter() - step
    for name in OURS:
        model = _model(name)
        step = time.perf_counter()
        # Credit by channel, as the peers return it.
        channel_credit_table(journeys, [model])
        timings[name] = time.perf_counter() - step


def run_journeymap(path: Path, stored_credits: bool = False) -> dict[str, Any]:
    """Time ``journeymap attribute FILE --direct``: the touch file cut into journeys in place."""
    # Load the modules first: the peers' times do not include their imports either.
    from journeymap.attribution import channel_credit_table  # noqa: F401
    from journeymap.journeys.touch_table import journeys_from_touch_table, read_touch_table

    timings: dict[str, float] = {}
    started = time.perf_counter()
    touches = read_touch_table(path)
    journeys = journeys_from_touch_table(touches)
    timings["cut"] = time.perf_counter() - started
    _time_models(journeys, timings)
    timings["total"] = time.perf_counter() - started
    return {"tool": "journeymap", "timings": timings, "shared": timings["cut"] + timings["paths"]}


def run_journeymap_store(path: Path, stored_credits: bool = False) -> dict[str, Any]:
    """Time the store path: import the file, build journeys, run every model."""
    from journeymap import api  # noqa: F401
    from journeymap.attribution import channel_credit_table  # noqa: F401

    timings: dict[str, float] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=DATA) as folder:
        store = _bench_store(path, Path(folder))
        result = _time_journeymap_store(store, path, stored_credits, timings, started)
        store.con.disconnect()
    return result


def _bench_store(path: Path, folder: Path) -> Any:
    """Return a new in-memory store, or a store file above :data:`LARGE_FILE_ROWS` touch rows.

    An in-memory store of ten million journeys needs more memory than the 24 GiB benchmark
    machine has, so large files go into a DuckDB file, with DuckDB's memory limit at
    :data:`LARGE_MEMORY_LIMIT`, as a user with that much data would keep them.
    """
    import pyarrow.parquet as pq

    from journeymap.store.store import Store

    if pq.ParquetFile(path).metadata.num_rows <= LARGE_FILE_ROWS:
        return Store.open()
    store = Store.open(folder / "journeymap.duckdb")
    store.con.raw_sql(f"SET memory_limit = '{LARGE_MEMORY_LIMIT}'")
    return store


def _time_journeymap_store(
    store: Any, path: Path, stored_credits: bool, timings: dict[str, float], started: float
) -> dict[str, Any]:
    from journeymap import api

    api.import_file(store, path, input_format="touchpoints")
    timings["import"] = time.perf_counter() - started
    step = time.perf_counter()
    journeys = api.build(store)
    timings["build"] = time.perf_counter() - step
    _time_models(journeys, timings)
    timings["total"] = time.perf_counter() - started
    # The peak of the comparison; storing credits below may raise the process's peak.
    peak = peak_memory_mb()
    extras: dict[str, float] = {}
    if stored_credits:
        # What `journeymap attribute --models all` adds: every model's per-touch credit rows,
        # stored so that reports by campaign and ad and `explain` can read them.
        step = time.perf_counter()
        api.attribute(store, journeys, models=["all"])
        extras["stored_credits"] = time.perf_counter() - step
        extras["stored_credits_peak_memory_mb"] = peak_memory_mb()
    return {
        "tool": "journeymap-store",
        "timings": timings,
        "shared": timings["import"] + timings["build"] + timings["paths"],
        "extras": extras,
        "peak_memory_mb": peak,
    }


def run_channelattribution(path: Path, stored_credits: bool = False) -> dict[str, Any]:
    import contextlib
    import io

    import pandas as pd

    with contextlib.redirect_stdout(io.StringIO()):
        from ChannelAttribution import heuristic_models, markov_model

    timings: dict[str, float] = {}
    started = time.perf_counter()
    touches = pd.read_parquet(path).sort_values(["user_id", "timestamp"], kind="stable")
    journeys = touches.groupby("user_id", sort=False).agg(
        path=("channel", " > ".join), conversion=("conversion", "max")
    )
    paths = (
        journeys.groupby("path")
        .conversion.agg(total_conversions="sum", total=("size"))
        .reset_index()
    )
    paths["total_null"] = paths.total - paths.total_conversions
    paths["total_conversion_value"] = paths.total_conversions.astype(float)
    timings["preprocess"] = time.perf_counter() - started
    with contextlib.redirect_stdout(io.StringIO()):
        step = time.perf_counter()
        heuristic_models(
            paths, "path", "total_conversions", var_value="total_conversion_value", flg_pro=False
        )
        timings["heuristic"] = time.perf_counter() - step
        for order in (1, 2):
            step = time.perf_counter()
            markov_model(
                paths,
                "path",
                "total_conversions",
                var_value="total_conversion_value",
                var_null="total_null",
                order=order,
                nsim_start=int(1e6),
                conv_par=0.01,
                seed=1,
                verbose=False,
                flg_pro=False,
            )
            timings[f"markov_order_{order}"] = time.perf_counter() - step
    timings["total"] = time.perf_counter() - started
    return {"tool": "channelattribution", "timings": timings, "shared": timings["preprocess"]}


def run_mam(path: Path, stored_credits: bool = False) -> dict[str, Any]:
    import polars as pl
    from mam.core import MAM

    timings: dict[str, float] = {}
    started = time.perf_counter()
    frame = pl.read_parquet(path)
    mam = MAM(
        df=frame,
        format_type="session",
        channels_colname="channel",
        journey_with_conv_colname="conversion",
        datetime_colname="timestamp",
        user_id_colname="user_id",
        conversion_value_colname="value",
    )
    timings["preprocess"] = time.perf_counter() - started
    runs: dict[str, Callable[[], Any]] = {
        "first_click": mam.run_first_click,
        "last_click": mam.run_last_click,
        "linear": mam.run_linear,
        "time_decay": mam.run_time_decay,
        "position_based": mam.run_position_based,
        "markov": mam.run_markov,
        "shapley": mam.run_shapley,
    }
    for name, run in runs.items():
        step = time.perf_counter()
        run()
        timings[name] = time.perf_counter() - step
    timings["total"] = time.perf_counter() - started
    return {"tool": "mam", "timings": timings, "shared": timings["preprocess"]}


TOOLS = {
    "journeymap": run_journeymap,
    "journeymap-store": run_journeymap_store,
    "channelattribution": run_channelattribution,
    "mam": run_mam,
}
OURS_TOOLS = ("journeymap", "journeymap-store")


def run_tool_in_process(
    tool: str, path: Path, timeout: float, stored_credits: bool = False
) -> dict[str, Any]:
    """Run one tool in a fresh interpreter and return its timings and peak memory.

    ``stored_credits`` also times journeymap storing every model's per-touch credits; the
    peers ignore it.
    """
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--run-tool",
        tool,
        "--file",
        str(path),
    ]
    if stored_credits:
        command.append("--stored-credits")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"tool": tool, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {
            "tool": tool,
            "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed",
        }
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def model_times(result: dict[str, Any]) -> dict[str, float]:
    """Return each model's time including the tool's shared preprocessing, by model key."""
    timings = result.get("timings", {})
    shared = float(result.get("shared", 0.0))
    tool = result["tool"]
    skip = {"import", "build", "cut", "paths", "preprocess", "total"}
    return {
        f"{tool}:{name}": shared + seconds for name, seconds in timings.items() if name not in skip
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = platform.python_version()
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {python}, {platform.system()}"


def compare(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one row per comparable model: our time, the fastest peer's, and the ratio."""
    ours = model_times(results["journeymap"]) if "journeymap" in results else {}
    peers: dict[str, float] = {}
    for tool, result in results.items():
        if tool not in OURS_TOOLS and "error" not in result:
            peers.update(model_times(result))
    rows = []
    for model, candidates in COMPARABLE.items():
        mine = ours.get(f"journeymap:{model}")
        timed = [(peers[key], key) for key in candidates if key in peers]
        best = min(timed) if timed else None
        rows.append(
            {
                "model": model,
                "journeymap_s": mine,
                "fastest_peer": best[1] if best else None,
                "peer_s": best[0] if best else None,
                "speedup": (best[0] / mine) if best and mine else None,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="10k,100k,1M", help="Comma-separated sizes: 10k, 100k, 1M, 10M."
    )
    parser.add_argument("--peers-up-to", default="1M", help="Largest size at which the peers run.")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="Seconds each tool may take per size."
    )
    parser.add_argument("--write-docs", action="store_true", help="Write docs/benchmarks.md.")
    parser.add_argument(
        "--stored-credits",
        action="store_true",
        help="Also time storing every journeymap model's per-touch credits, at the sizes "
        "where the peers run (not compared).",
    )
    parser.add_argument("--run-tool", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    arguments = parser.parse_args()

    if arguments.run_tool:
        result = TOOLS[arguments.run_tool](Path(arguments.file), arguments.stored_credits)
        result.setdefault("peak_memory_mb", peak_memory_mb())
        print(json.dumps(result))
        return

    sizes = [name.strip() for name in arguments.sizes.split(",") if name.strip()]
    limit = SIZES[arguments.peers_up_to]
    command = "python " + " ".join(sys.argv)
    report: dict[str, Any] = {"machine": machine(), "command": command, "sizes": {}}
    for name in sizes:
        path = make_file(SIZES[name])
        results: dict[str, dict[str, Any]] = {}
        tools = list(OURS_TOOLS) + (["channelattribution", "mam"] if SIZES[name] <= limit else [])
        for tool in tools:
            print(f"{name}: running {tool}", file=sys.stderr)
            # Storing per-touch credits of every model is timed where the peers run too.
            stored = arguments.stored_credits and SIZES[name] <= limit
            results[tool] = run_tool_in_process(tool, path, arguments.timeout, stored)
            print(f"{name}: {tool} -> {json.dumps(results[tool])}", file=sys.stderr)
        report["sizes"][name] = {"results": results, "comparison": compare(results)}
    out = HERE / "results.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}", file=sys.stderr)
    if arguments.write_docs:
        from benchmarks.render import write_docs

        write_docs(report, REPO / "docs" / "benchmarks.md")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
