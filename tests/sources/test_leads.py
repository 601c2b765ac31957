"""Leads import: the Olist marketing funnel, lead-to-deal conversion and time to close by
channel against plain pandas, and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from journeymap.analyses.funnel import stage_funnel
from journeymap.analyses.velocity import time_between
from journeymap.common.errors import AlreadyImportedError, InputError
from journeymap.sources.leads import ORIGIN_CHANNELS, import_leads, stays_with_first_channel
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store

LEADS = Path("olist-marketing-funnel/olist_marketing_qualified_leads_dataset.csv")
CLOSED = Path("olist-marketing-funnel/olist_closed_deals_dataset.csv")
EARLY_WIN = "b91cf8812365f50ff4bda4bcd6206b05"


def write_csv(folder: Path, rows: list[dict[str, Any]], name: str) -> Path:
    path = folder / name
    pd.DataFrame(rows, dtype="object").to_csv(path, index=False)
    return path


def row_counts(store: Store) -> dict[str, int]:
    return {name: int(store.table(name).count().execute()) for name in RAW_TABLES}


def assert_same_times(actual: pd.Series, expected: pd.Series) -> None:
    """Compare timestamps whatever their unit: the store returns microseconds."""
    pd.testing.assert_series_equal(actual, expected, check_dtype=False, check_names=False)


def channel_of(origin: str) -> str:
    """The documented origin-to-channel mapping, written out again for the reference."""
    return "(unknown)" if origin == "" else ORIGIN_CHANNELS[origin]


@pytest.fixture
def olist(shared_data: Path) -> pd.DataFrame:
    """Every lead, with its channel and won date (NaT when not won), read by plain pandas."""
    leads = pd.read_csv(shared_data / LEADS, dtype=str, keep_default_na=False)
    closed = pd.read_csv(shared_data / CLOSED, dtype=str, keep_default_na=False)
    merged = leads.merge(closed, on="mql_id", how="left", validate="1:1")
    merged["channel"] = merged["origin"].map(channel_of)
    merged["first_contact"] = pd.to_datetime(merged["first_contact_date"], utc=True)
    merged["won"] = pd.to_datetime(merged["won_date"], utc=True)
    return merged


@pytest.fixture
def imported(store: Store, shared_data: Path) -> Store:
    import_leads(store, shared_data / LEADS, deals_file=shared_data / CLOSED)
    return store


# The Olist marketing funnel -------------------------------------------------------------------


def test_leads_olist_row_counts(imported: Store) -> None:
    counts = row_counts(imported)

    assert counts["touchpoints"] == 8_000
    assert counts["conversions"] == 8_000 + 842
    assert counts["deals"] == 842
    assert counts["deal_stages"] == 8_000 + 842
    assert counts["imports"] == 1


def test_leads_olist_touchpoints(imported: Store, olist: pd.DataFrame) -> None:
    touches = imported.table("touchpoints").to_pandas().set_index("person_id")
    expected = olist.set_index("mql_id")

    assert set(touches.index) == set(expected.index)
    assert set(touches["touch_type"]) == {"form"}
    assert_same_times(touches["occurred_at"], expected["first_contact"].reindex(touches.index))
    assert touches["seq"].is_unique


def test_leads_olist_channels(imported: Store, olist: pd.DataFrame) -> None:
    touches = imported.table("touchpoints").to_pandas()
    counts = touches["channel"].value_counts().to_dict()

    assert counts == olist["channel"].value_counts().to_dict()
    assert counts["Organic Search"] == 2_296
    assert counts["Other"] == 150 + 65
    assert counts["(unknown)"] == 1_099 + 60
    assert touches["source"].isna().sum() == 60
    assert set(touches.loc[touches["source"].isna(), "channel"]) == {"(unknown)"}


def test_leads_olist_won_deals(imported: Store, olist: pd.DataFrame) -> None:
    deals = imported.table("deals").to_pandas()
    won = olist[olist["won"].notna()].set_index("mql_id")

    assert len(deals) == 842
    assert deals["is_won"].all()
    assert deals["is_closed"].all()
    assert set(deals["pipeline"]) == {"olist"}
    assert set(deals["currency"]) == {"BRL"}
    deals = deals.set_index("deal_id")
    assert_same_times(deals["closed_at"], won["won"].reindex(deals.index))


def test_leads_olist_conversions(imported: Store, olist: pd.DataFrame) -> None:
    conversions = imported.table("conversions").to_pandas()
    lead = conversions[conversions["kind"] == "lead"]
    won = conversions[conversions["kind"] == "closed_won"]
    declared = pd.to_numeric(olist["declared_monthly_revenue"], errors="coerce")

    assert len(lead) == 8_000
    assert (lead["value"] == 0).all()
    assert len(won) == 842
    assert won["value"].sum() == declared.sum()
    assert won["deal_id"].tolist() == won["person_id"].tolist()
    assert conversions["conversion_id"].is_unique


def test_leads_olist_closed_deals_by_origin(imported: Store) -> None:
    stays = stays_with_first_channel(imported).to_pandas()
    won = stays[stays["stage"] == "Won"]

    # Closed deals per origin, merged into channels: unknown and empty origins are (unknown).
    assert won["channel"].value_counts().to_dict() == {
        "Organic Search": 271,
        "Paid Search": 195,
        "(unknown)": 179 + 14,
        "Social": 75,
        "Direct": 56,
        "Referral": 24,
        "Email": 15,
        "Other": 4 + 3,
        "Display": 6,
    }


def test_leads_olist_stages(imported: Store, olist: pd.DataFrame) -> None:
    stays = imported.table("deal_stages").to_pandas()
    mql = stays[stays["stage"] == "MQL"].set_index("deal_id")
    won = stays[stays["stage"] == "Won"]
    expected = olist.set_index("mql_id")["won"].reindex(mql.index)

    assert len(mql) == 8_000
    assert len(won) == 842
    assert mql["exited_at"].isna().sum() == 8_000 - 842
    assert_same_times(mql["exited_at"], expected)
    assert won["exited_at"].isna().all()


def test_leads_olist_early_win_warning(store: Store, shared_data: Path) -> None:
    result = import_leads(store, shared_data / LEADS, deals_file=shared_data / CLOSED)
    deals = store.table("deals").to_pandas().set_index("deal_id")

    early = [warning for warning in result.warnings if "before the lead's first contact" in warning]
    assert len(early) == 1
    assert early[0].startswith("1 closed deal(s)")
    assert EARLY_WIN in early[0]
    assert deals.loc[EARLY_WIN, "closed_at"] < deals.loc[EARLY_WIN, "created_at"]


def test_leads_olist_conversion_matches_pandas(imported: Store, olist: pd.DataFrame) -> None:
    stays = stays_with_first_channel(imported)

    funnel = stage_funnel(stays, ["MQL", "Won"], by="channel").to_pandas()
    actual = funnel.groupby("channel")[["entered", "converted"]].sum()

    # The funnel counts a conversion only when the won date is at or after the first contact.
    converted = olist["won"] >= olist["first_contact"]
    expected = olist.assign(converted=converted).groupby("channel")
    assert actual["entered"].to_dict() == expected.size().to_dict()
    assert actual["converted"].to_dict() == expected["converted"].sum().to_dict()
    assert actual.loc["Organic Search"].tolist() == [2_296, 270]
    assert actual.loc["Paid Search"].tolist() == [1_586, 195]
    assert actual["entered"].sum() == 8_000
    assert actual["converted"].sum() == 842 - 1


def test_leads_olist_time_to_close_matches_pandas(imported: Store, olist: pd.DataFrame) -> None:
    stays = stays_with_first_channel(imported)

    result = time_between(stays, "MQL", "Won", by="channel").to_pandas()

    won = olist[olist["won"] >= olist["first_contact"]]
    seconds = (won["won"] - won["first_contact"]).dt.total_seconds()
    days = np.floor(seconds) / 86_400
    assert len(result) == won["channel"].nunique() == 9
    for row in result.to_dict("records"):
        group = days[won["channel"] == row["channel"]]
        assert row["deals"] == len(group), row["channel"]
        assert row["median_days"] == group.median(), row["channel"]
        assert row["p75_days"] == group.quantile(0.75), row["channel"]
        assert row["p90_days"] == group.quantile(0.9), row["channel"]
        # DuckDB and pandas sum in different orders, so the means can differ in the last bit.
        assert row["mean_days"] == pytest.approx(group.mean(), rel=1e-12, abs=0), row["channel"]


def test_leads_olist_reimport_rejected(imported: Store, shared_data: Path) -> None:
    before = row_counts(imported)

    with pytest.raises(AlreadyImportedError):
        import_leads(imported, shared_data / LEADS)

    assert row_counts(imported) == before


# Small files ----------------------------------------------------------------------------------


LEAD_ROWS = [
    {"mql_id": "a", "first_contact_date": "2024-01-10", "landing_page_id": "p", "origin": "email"},
    {"mql_id": "b", "first_contact_date": "2024-01-20", "landing_page_id": "p", "origin": ""},
    {"mql_id": "c", "first_contact_date": "2024-02-01", "landing_page_id": "p", "origin": "tv"},
]
CLOSED_ROWS = [
    {"mql_id": "a", "won_date": "2024-03-01 12:00:00", "declared_monthly_revenue": "5000.0"},
    {"mql_id": "c", "won_date": "2024-02-05 00:00:00", "declared_monthly_revenue": "n/a"},
]


@pytest.fixture
def small_files(tmp_path: Path) -> tuple[Path, Path]:
    return (
        write_csv(tmp_path, LEAD_ROWS, "leads.csv"),
        write_csv(tmp_path, CLOSED_ROWS, "closed.csv"),
    )


def test_leads_small_values_and_warnings(store: Store, small_files: tuple[Path, Path]) -> None:
    leads, closed = small_files

    result = import_leads(store, leads, deals_file=closed)

    touches = store.table("touchpoints").to_pandas().set_index("person_id")
    assert touches["channel"].to_dict() == {"a": "Email", "b": "(unknown)", "c": "tv"}
    won = store.table("conversions").to_pandas().query("kind == 'closed_won'")
    assert won.set_index("person_id")["value"].to_dict() == {"a": 5000.0, "c": 0.0}
    assert any("origin 'tv'" in warning for warning in result.warnings)
    assert any("1 closed deals declare a revenue" in warning for warning in result.warnings)
    assert any("1 leads have no origin" in warning for warning in result.warnings)


def test_leads_without_deals_file(store: Store, small_files: tuple[Path, Path]) -> None:
    leads, _ = small_files

    import_leads(store, leads)

    stays = store.table("deal_stages").to_pandas()
    assert row_counts(store)["deals"] == 0
    assert stays["stage"].tolist() == ["MQL", "MQL", "MQL"]
    assert stays["exited_at"].isna().all()


def test_leads_mapping(store: Store, tmp_path: Path) -> None:
    rows = [{"lead": "x", "contacted": "2024-05-01", "channel_source": "paid_search"}]
    path = write_csv(tmp_path, rows, "renamed.csv")

    import_leads(
        store,
        path,
        mapping={"lead_id": "lead", "first_contact": "contacted", "origin": "channel_source"},
    )

    touches = store.table("touchpoints").to_pandas()
    assert touches["person_id"].tolist() == ["x"]
    assert touches["channel"].tolist() == ["Paid Search"]


def test_first_channel_uses_earliest_touch(store: Store, small_files: tuple[Path, Path]) -> None:
    leads, closed = small_files
    later = [{"mql_id": "a", "first_contact_date": "2024-06-01", "origin": "referral"}]
    import_leads(store, leads, deals_file=closed)
    import_leads(store, write_csv(leads.parent, later, "later.csv"))

    stays = stays_with_first_channel(store).to_pandas()

    assert set(stays.loc[stays["deal_id"] == "a", "channel"]) == {"Email"}
    assert list(stays.columns) == [*RAW_TABLES["deal_stages"].names, "channel"]


@pytest.mark.parametrize(
    ("file", "rows", "message", "row", "column"),
    [
        ("closed", [{"mql_id": "zzz", "won_date": "2024-03-01"}], "not in the leads", 1, "mql_id"),
        ("closed", [{"mql_id": "a", "won_date": ""}], "won date is missing", 1, "won_date"),
        ("closed", [{"mql_id": "a", "won_date": "03/01/2024"}], "ISO 8601", 1, "won_date"),
        (
            "closed",
            [{"mql_id": "a", "won_date": "2024-03-01"}, {"mql_id": "a", "won_date": "2024-03-02"}],
            "duplicate of row 1",
            2,
            "mql_id",
        ),
        ("leads", [*LEAD_ROWS, LEAD_ROWS[0]], "duplicate of row 1", 4, "mql_id"),
        ("leads", [{**LEAD_ROWS[0], "mql_id": ""}], "lead id is missing", 1, "mql_id"),
        (
            "leads",
            [{**LEAD_ROWS[0], "first_contact_date": ""}],
            "first-contact date is missing",
            1,
            "first_contact_date",
        ),
    ],
)
def test_leads_bad_cell(
    store: Store,
    small_files: tuple[Path, Path],
    file: str,
    rows: list[dict[str, Any]],
    message: str,
    row: int,
    column: str,
) -> None:
    leads, closed = small_files
    bad = write_csv(leads.parent, rows, f"bad_{file}.csv")
    leads, closed = (bad, closed) if file == "leads" else (leads, bad)

    with pytest.raises(InputError, match=message) as caught:
        import_leads(store, leads, deals_file=closed)

    assert caught.value.file == str(bad)
    assert caught.value.row == row
    assert caught.value.column == column
    assert sum(row_counts(store).values()) == 0


def test_leads_missing_origin_column(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{"mql_id": "a", "first_contact_date": "2024-01-01"}], "x.csv")

    with pytest.raises(InputError, match="missing column for origin") as caught:
        import_leads(store, path)

    assert caught.value.column == "origin"
