"""Small hand-built stores for the journey map tests: three stages and a few people."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from journeymap import api
from journeymap.common.config import Config, parse_config
from journeymap.store.store import Store
from tests.builders import at, write_rows

STAGES: list[dict[str, Any]] = [
    {
        "name": "Awareness",
        "owner": "Marketing",
        "enter_when": [{"touch": True}],
        "stall_days": 10,
        "doing": ["Reads a guide"],
        "pain_points": ["Too | many vendors"],
    },
    {"name": "Consideration", "owner": "Marketing", "enter_when": [{"conversion": "lead"}]},
    {"name": "Won", "owner": "Sales", "enter_when": [{"conversion": "closed_won"}]},
]


def map_config(**extra: Any) -> Config:
    """Return the three-stage configuration, with linear credit."""
    return parse_config(
        {"stages": STAGES, "attribution": {"models": ["linear"]}, **extra}, source="test"
    )


def touch(person: str, days: float, channel: str, account: str = "") -> dict[str, Any]:
    return {"user_id": person, "account_id": account, "timestamp": at(days), "channel": channel}


def conversion(
    person: str, days: float, kind: str, value: float = 0.0, account: str = ""
) -> dict[str, Any]:
    return {
        "user_id": person,
        "account_id": account,
        "timestamp": at(days),
        "conversion": 1,
        "conversion_kind": kind,
        "value": value,
    }


def load_store(store: Store, rows: list[dict[str, Any]], folder: Path, config: Config) -> Store:
    """Import ``rows`` as touchpoints, build the journeys and store linear credits."""
    api.import_file(store, write_rows(rows, folder), input_format="touchpoints", config=config)
    journeys = api.build(store, config)
    api.attribute(store, journeys, config=config, models=["linear"])
    return store


def add_accounts(store: Store, industries: dict[str, str]) -> None:
    """Append one account per id with its industry."""
    frame = pd.DataFrame(
        {"account_id": list(industries), "industry": list(industries.values()), "employees": 100}
    )
    store.append("accounts", frame)
