"""Measure each model's error against the demo world's known channel effects.

Usage::

    python benchmarks/accuracy.py --people 20000 --seed 7

The demo generator knows, for each channel, how many closed-won deals the world would lose
without it (its true incremental effect). A model's error is the distance between its
shares of credited closed-won deals and the true shares: the total variation distance
(half the sum of absolute differences, in percentage points, so 0 is perfect and 100 is
disjoint) and the largest single-channel gap. Unattributed deals are left out of both sides.
Writes ``benchmarks/accuracy.json``, which ``render.py`` puts into ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def measure(people: int, seed: int) -> dict[str, Any]:
    """Generate a world, run every model on its closed-won deals, and compare with the truth."""
    from journeymap import api
    from journeymap.attribution import model_names
    from journeymap.common.config import Config
    from journeymap.demo.world import generate_world, write_world
    from journeymap.store.schema import UNATTRIBUTED
    from journeymap.store.store import Store

    started = time.perf_counter()
    world = generate_world(people, seed=seed)
    truth = {
        channel: float(effect["closed_won"]) for channel, effect in world.truth["channels"].items()
    }
    with tempfile.TemporaryDirectory() as folder:
        files = write_world(world, Path(folder), format="parquet")
        store = Store.open()
        config = api.with_overrides(Config(), kinds=["closed_won"])
        api.import_file(store, files["touchpoints"], input_format="touchpoints", config=config)
        journeys = api.build(store, config)
        run = api.attribute(store, journeys, config=config, models=["all"])
        table = api.credit_table(run.credits, by="channel", kinds=["closed_won"])
        store.close()

    truth_total = sum(truth.values())
    rows = []
    for model in model_names():
        credited = table[(table.model == model) & (table.channel != UNATTRIBUTED)]
        total = float(credited.conversions.sum())
        shares = {row.channel: row.conversions / total for row in credited.itertuples()}
        gaps = {
            channel: shares.get(channel, 0.0) - truth.get(channel, 0.0) / truth_total
            for channel in set(shares) | set(truth)
        }
        worst = max(gaps, key=lambda channel: abs(gaps[channel]))
        rows.append(
            {
                "model": model,
                "total_variation_pp": 50.0 * sum(abs(gap) for gap in gaps.values()),
                "largest_gap_pp": 100.0 * abs(gaps[worst]),
                "largest_gap_channel": worst,
                "shares": shares,
            }
        )
    rows.sort(key=lambda row: row["total_variation_pp"])
    return {
        "people": people,
        "seed": seed,
        "truth_shares": {channel: value / truth_total for channel, value in truth.items()},
        "models": rows,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000, help="People in the demo world.")
    parser.add_argument("--seed", type=int, default=7, help="Seed of the demo world.")
    arguments = parser.parse_args()
    result = measure(arguments.people, arguments.seed)
    out = HERE / "accuracy.json"
    out.write_text(json.dumps(result, indent=2))
    for row in result["models"]:
        print(
            f"{row['model']:<16} {row['total_variation_pp']:6.2f} pp  "
            f"(largest gap {row['largest_gap_pp']:.2f} pp, {row['largest_gap_channel']})"
        )
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    main()
