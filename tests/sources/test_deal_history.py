"""Stage history columns of a deals export: header forms and the stays they give."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from journeymap.sources.deal_history import stage_columns
from journeymap.sources.deals import import_deals
from journeymap.store.store import Store


def test_stage_columns_recognise_header_forms() -> None:
    columns = [
        "dealname",
        'Date entered "Demo Scheduled (Sales Pipeline)"',
        'Date entered "Proposal (v2) (Sales Pipeline)"',
        "hs_v2_date_entered_closedwon",
        "date_entered_Qualification",
    ]

    found = stage_columns(columns, ["Sales Pipeline"])

    assert [column.stage for column in found] == [
        "Demo Scheduled",
        "Proposal (v2)",
        "closedwon",
        "Qualification",
    ]


def test_stage_columns_keep_brackets_of_unknown_pipeline() -> None:
    found = stage_columns(['Date entered "Demo (EMEA)"'], ["Sales Pipeline"])

    assert [column.stage for column in found] == ["Demo (EMEA)"]


def test_import_deals_reads_stage_history(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    pd.DataFrame(
        {
            "hs_object_id": ["d1", "d2"],
            "pipeline": ["Sales", "Sales"],
            "dealstage": ["Closed Lost", "Demo"],
            "createdate": ["2024-01-01", "2024-01-03"],
            "closedate": ["2024-01-20", ""],
            'Date entered "Demo (Sales)"': ["2024-01-05T10:00:00Z", "2024-01-03"],
            'Date entered "Closed Lost (Sales)"': ["2024-01-20", ""],
        }
    ).to_csv(path, index=False)

    import_deals(store, path)

    stays = store.table("deal_stages").to_pandas().sort_values(["deal_id", "entered_at"])
    assert list(zip(stays["deal_id"], stays["stage"], strict=True)) == [
        ("d1", "Demo"),
        ("d1", "Closed Lost"),
        ("d2", "Demo"),
    ]
    exits = stays["exited_at"].tolist()
    assert exits[0] == pd.Timestamp("2024-01-20", tz="UTC")
    assert pd.isna(exits[1])
    assert pd.isna(exits[2])
