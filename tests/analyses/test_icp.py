"""Ideal customer profile: segment performance on the CRM pipeline, lift, p-values, Spark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact

from journeymap.analyses.icp import (
    SIZE_BANDS,
    TOO_SMALL,
    excluded_deals,
    ideal_customer_profile,
    segment_performance,
)
from journeymap.sources.deals import import_deals
from journeymap.store.schema import RAW_TABLES
from journeymap.store.store import Store, conform

PIPELINE = Path("crm-sales-opportunities/sales_pipeline.csv")
ACCOUNTS = Path("crm-sales-opportunities/accounts.csv")
START = datetime(2024, 1, 1, tzinfo=UTC)


def deal(
    number: int,
    account: str | None,
    *,
    won: bool | None,
    amount: float = 100.0,
    days: float = 10.0,
) -> dict[str, Any]:
    """Return a deal created on START: won, lost (``won=False``) or open (``won=None``)."""
    closed = won is not None
    stage = "Open"
    if closed:
        stage = "Won" if won else "Lost"
    return {
        "deal_id": f"d{number:03d}",
        "account_id": account,
        "amount": amount,
        "currency": "USD",
        "stage": stage,
        "is_won": bool(won),
        "is_closed": closed,
        "created_at": START,
        "closed_at": START + timedelta(days=days) if closed else None,
    }


def deals_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in ("created_at", "closed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def write_tables(
    store: Store, deal_rows: list[dict[str, Any]], account_rows: list[dict[str, Any]]
) -> tuple[ibis.Table, ibis.Table]:
    store.append("deals", deals_frame(deal_rows))
    store.append("accounts", pd.DataFrame(account_rows))
    return store.table("deals"), store.table("accounts")


def won_lost(account: str, won: int, lost: int, start: int) -> list[dict[str, Any]]:
    """Return ``won`` won and ``lost`` lost deals of one account, numbered from ``start``."""
    outcomes = [True] * won + [False] * lost
    return [deal(start + offset, account, won=outcome) for offset, outcome in enumerate(outcomes)]


# The sales-pipeline dataset ------------------------------------------------------------------


@pytest.fixture
def pipeline_store(store: Store, shared_data: Path) -> Store:
    import_deals(store, shared_data / PIPELINE, accounts_file=shared_data / ACCOUNTS)
    return store


@pytest.fixture
def closed_deals(shared_data: Path) -> pd.DataFrame:
    """Closed pipeline deals joined to their accounts by plain pandas, with a size band."""
    pipeline = pd.read_csv(shared_data / PIPELINE, dtype={"close_value": "float64"})
    accounts = pd.read_csv(shared_data / ACCOUNTS)
    minimums = [minimum for _, minimum in SIZE_BANDS]
    accounts["size_band"] = pd.cut(
        accounts["employees"],
        bins=[*minimums, np.inf],
        right=False,
        labels=[label for label, _ in SIZE_BANDS],
    ).astype("object")

    closed = pipeline[pipeline["deal_stage"].isin(["Won", "Lost"])]
    joined = closed.merge(accounts, on="account", how="inner", validate="many_to_one")
    joined["won"] = joined["deal_stage"] == "Won"
    cycle = pd.to_datetime(joined["close_date"]) - pd.to_datetime(joined["engage_date"])
    joined["cycle_days"] = cycle.dt.total_seconds() / 86_400
    return joined


def pandas_segments(closed: pd.DataFrame, column: str) -> pd.DataFrame:
    """Return closed, won, win rate, ACV and median cycle of won deals per ``column``."""
    won = closed[closed["won"]]
    groups = closed.groupby(column)
    won_groups = won.groupby(column)
    return pd.DataFrame(
        {
            "closed": groups.size(),
            "won": groups["won"].sum(),
            "win_rate": groups["won"].sum() / groups.size(),
            "acv": won_groups["close_value"].mean(),
            "median_cycle_days": won_groups["cycle_days"].quantile(0.5),
        }
    )


@pytest.mark.parametrize(
    ("by", "column"),
    [("industry", "sector"), ("size_band", "size_band"), ("region", "office_location")],
)
def test_segment_performance_pipeline_matches_pandas(
    pipeline_store: Store, closed_deals: pd.DataFrame, by: str, column: str
) -> None:
    table = segment_performance(
        pipeline_store.table("deals"), pipeline_store.table("accounts"), by=by
    )
    result = table.to_pandas().set_index(by)
    expected = pandas_segments(closed_deals, column)

    assert sorted(result.index) == sorted(expected.index)
    result = result.loc[expected.index]
    assert result["closed"].tolist() == expected["closed"].tolist()
    assert result["won"].tolist() == expected["won"].tolist()
    assert result["lost"].tolist() == (expected["closed"] - expected["won"]).tolist()
    assert result["win_rate"].tolist() == expected["win_rate"].tolist()
    assert result["acv"].tolist() == expected["acv"].tolist()
    assert result["median_cycle_days"].tolist() == expected["median_cycle_days"].tolist()


def test_segment_performance_pipeline_typo_kept(pipeline_store: Store) -> None:
    table = segment_performance(
        pipeline_store.table("deals"), pipeline_store.table("accounts"), by="industry"
    )
    industries = table.to_pandas().set_index("industry")

    assert "technolgy" in industries.index
    assert "technology" not in industries.index
    assert industries.loc["technolgy", "accounts"] == 12


def test_segment_performance_size_bands_in_order(pipeline_store: Store) -> None:
    table = segment_performance(
        pipeline_store.table("deals"), pipeline_store.table("accounts"), by="size_band"
    )

    assert table.to_pandas()["size_band"].tolist() == [label for label, _ in SIZE_BANDS]


def test_excluded_deals_pipeline(pipeline_store: Store, shared_data: Path) -> None:
    pipeline = pd.read_csv(shared_data / PIPELINE)
    no_account = int(pipeline["account"].isna().sum())
    is_open = ~pipeline["deal_stage"].isin(["Won", "Lost"])
    open_with_account = int((is_open & pipeline["account"].notna()).sum())

    excluded = excluded_deals(pipeline_store.table("deals"), pipeline_store.table("accounts"))

    counts = excluded.to_pandas().set_index("reason")["deals"].to_dict()
    assert counts == {"no account": no_account, "open": open_with_account}
    assert no_account == 1_425


def test_icp_pipeline_overall_win_rate(pipeline_store: Store) -> None:
    profile = ideal_customer_profile(
        pipeline_store.table("deals"), pipeline_store.table("accounts")
    )

    assert set(profile["dimension"]) == {"industry", "size_band", "region"}
    assert (profile["overall_win_rate"] == 4_238 / 6_711).all()
    shares = profile.groupby("dimension")["won_revenue_share"].sum()
    assert np.allclose(shares, 1.0)
    assert profile["rank"].tolist() == list(range(1, len(profile) + 1))


# Hand-made cases -----------------------------------------------------------------------------


def lift_case(store: Store) -> tuple[ibis.Table, ibis.Table]:
    """Return tables where account A wins 32 of 40 deals and account B 30 of 60."""
    rows = won_lost("A", 32, 8, 0) + won_lost("B", 30, 30, 100)
    accounts = [
        {"account_id": "A", "industry": "retail", "employees": 20, "region": "EU"},
        {"account_id": "B", "industry": "media", "employees": 500, "region": "EU"},
    ]
    return write_tables(store, rows, accounts)


def test_icp_lift_and_p_value(store: Store) -> None:
    deals, accounts = lift_case(store)

    profile = ideal_customer_profile(deals, accounts, dimensions=["industry"], min_closed=30)

    retail = profile.set_index("value").loc["retail"]
    expected_p = fisher_exact([[32, 8], [30, 30]], alternative="two-sided").pvalue
    assert retail["closed"] == 40
    assert retail["won"] == 32
    assert retail["overall_win_rate"] == 62 / 100
    assert retail["lift"] == pytest.approx((32 / 40) / (62 / 100), rel=1e-12)
    assert retail["p_value"] == pytest.approx(expected_p, rel=1e-12)
    assert expected_p < 0.05
    assert bool(retail["significant"])
    assert retail["won_revenue_share"] == pytest.approx(32 / 62, rel=1e-12)
    assert profile["value"].tolist() == ["retail", "media"]


def test_icp_single_segment_dimension(store: Store) -> None:
    deals, accounts = lift_case(store)

    profile = ideal_customer_profile(deals, accounts, dimensions=["region"])

    assert len(profile) == 1
    assert profile.loc[0, "lift"] == 1.0
    assert profile.loc[0, "p_value"] == 1.0
    assert not profile.loc[0, "significant"]


def test_icp_small_segment_flagged(store: Store) -> None:
    rows = won_lost("A", 5, 0, 0) + won_lost("B", 10, 50, 100)
    accounts = [
        {"account_id": "A", "industry": "retail"},
        {"account_id": "B", "industry": "media"},
    ]
    deals, accounts_table = write_tables(store, rows, accounts)

    profile = ideal_customer_profile(deals, accounts_table, dimensions=["industry"], min_closed=30)

    retail = profile.set_index("value").loc["retail"]
    assert retail["p_value"] < 0.05
    assert not retail["significant"]
    assert retail["note"] == TOO_SMALL
    assert profile.set_index("value").loc["media", "note"] == ""


def test_icp_significant_positive_lift_first(store: Store) -> None:
    # C has the highest win rate but too few deals, so the significant A ranks first.
    rows = won_lost("A", 32, 8, 0) + won_lost("B", 30, 30, 100) + won_lost("C", 3, 0, 200)
    accounts = [
        {"account_id": "A", "industry": "retail"},
        {"account_id": "B", "industry": "media"},
        {"account_id": "C", "industry": "energy"},
    ]
    deals, accounts_table = write_tables(store, rows, accounts)

    profile = ideal_customer_profile(deals, accounts_table, dimensions=["industry"])

    assert profile["value"].tolist() == ["retail", "energy", "media"]
    assert profile["revenue_rank"].tolist() == [1, 3, 2]


def test_icp_deterministic(store: Store) -> None:
    rows = won_lost("A", 7, 3, 0) + won_lost("B", 7, 3, 100) + won_lost("C", 2, 8, 200)
    accounts = [
        {"account_id": "A", "industry": "retail", "employees": 10, "region": "EU"},
        {"account_id": "B", "industry": "media", "employees": 10, "region": "EU"},
        {"account_id": "C", "industry": "energy", "employees": 6_000, "region": None},
    ]
    deals, accounts_table = write_tables(store, rows, accounts)

    first = ideal_customer_profile(deals, accounts_table)
    second = ideal_customer_profile(deals, accounts_table)

    pd.testing.assert_frame_equal(first, second)
    ties = first[first["dimension"] == "industry"]["value"].tolist()
    assert ties[:2] == ["media", "retail"]


def test_segment_performance_exclusions(store: Store) -> None:
    rows = [
        deal(1, "A", won=True, amount=300.0, days=4),
        deal(2, "A", won=False, amount=50.0),
        deal(3, "A", won=None, amount=999.0),
        deal(4, None, won=True, amount=999.0),
        deal(5, "Z", won=True, amount=999.0),
    ]
    deals, accounts = write_tables(store, rows, [{"account_id": "A", "industry": "retail"}])

    result = segment_performance(deals, accounts, by="industry").to_pandas()
    excluded = excluded_deals(deals, accounts).to_pandas()

    assert result.to_dict("records") == [
        {
            "industry": "retail",
            "closed": 2,
            "won": 1,
            "lost": 1,
            "win_rate": 0.5,
            "acv": 300.0,
            "won_revenue": 300.0,
            "median_cycle_days": 4.0,
            "accounts": 1,
            "open_deals": 1,
        }
    ]
    assert excluded.to_dict("records") == [
        {"reason": "no account", "deals": 1},
        {"reason": "open", "deals": 1},
        {"reason": "unknown account", "deals": 1},
    ]


def test_segment_performance_median_even_count(store: Store) -> None:
    rows = [deal(n, "A", won=True, days=days) for n, days in enumerate([1.5, 9, 2, 4])]
    rows.append(deal(9, "A", won=True, days=0.25))
    rows[-1]["created_at"] = None
    deals, accounts = write_tables(store, rows, [{"account_id": "A", "industry": "retail"}])

    result = segment_performance(deals, accounts, by="industry").to_pandas()

    assert result.loc[0, "median_cycle_days"] == np.quantile([1.5, 9, 2, 4], 0.5)
    assert result.loc[0, "won"] == 5


def test_segment_performance_size_band_edges(store: Store) -> None:
    employees = {"a": 0, "b": 49, "c": 50, "d": 4_999, "e": 5_000, "f": None}
    accounts = [{"account_id": name, "employees": count} for name, count in employees.items()]
    rows = [deal(n, name, won=True) for n, name in enumerate(employees)]
    deals, accounts_table = write_tables(store, rows, accounts)

    default = segment_performance(deals, accounts_table, by="size_band").to_pandas()
    custom = segment_performance(
        deals, accounts_table, by="size_band", size_bands=[("small", 0), ("large", 1_000)]
    ).to_pandas()

    assert default["size_band"].tolist() == ["1-49", "50-199", "1000-4999", "5000+", None]
    assert default["closed"].tolist() == [1, 1, 1, 1, 2]
    assert custom["size_band"].tolist() == ["small", "large", None]
    assert custom["closed"].tolist() == [3, 2, 1]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"dimensions": ["owner"]}, "unknown dimension 'owner'"),
        ({"dimensions": "industry"}, "not the string"),
        ({"dimensions": ["industry", "industry"]}, "repeat a dimension"),
        ({"min_closed": 0}, "min_closed must be 1 or more"),
        ({"alpha": 1.0}, "alpha must be between 0 and 1"),
        ({"size_bands": [("big", 100), ("small", 10)]}, "strictly increasing"),
        ({"size_bands": [("big", 1), ("big", 10)]}, "must be distinct"),
    ],
    ids=["unknown-dimension", "string", "repeated", "min-closed", "alpha", "order", "labels"],
)
def test_icp_invalid_arguments(store: Store, arguments: dict[str, Any], message: str) -> None:
    deals, accounts = lift_case(store)

    with pytest.raises(ValueError, match=message):
        ideal_customer_profile(deals, accounts, **arguments)


# Spark ---------------------------------------------------------------------------------------


def parity_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(5)
    accounts = pd.DataFrame(
        {
            "account_id": [f"a{n}" for n in range(6)],
            "industry": ["retail", "media", "retail", None, "energy", "media"],
            # NOTE: no null employees, because with ibis 12.0 a Spark table created from an
            # int64 Arrow column with nulls read as all nulls. A count of 0 gives a null band.
            "employees": [10, 120, 800, 3_000, 9_000, 0],
            "region": ["EU", "US", "US", "EU", None, "APAC"],
        }
    )
    rows = []
    for number in range(60):
        outcome = [True, False, None][int(rng.integers(0, 3))]
        account = None if number % 11 == 0 else f"a{number % 7}"
        days = float(rng.integers(0, 90 * 86_400)) / 86_400
        amount = float(rng.integers(100, 5_000))
        rows.append(deal(number, account, won=outcome, amount=amount, days=days))
    return deals_frame(rows), accounts


@pytest.mark.spark
@pytest.mark.parametrize("by", ["industry", "size_band", "region"])
def test_segment_performance_spark_equals_duckdb(spark: Any, by: str) -> None:
    deal_rows, account_rows = parity_tables()
    deals_data = conform(deal_rows, RAW_TABLES["deals"], table_name="deals")
    accounts_data = conform(account_rows, RAW_TABLES["accounts"], table_name="accounts")
    frames = []
    for con in (ibis.duckdb.connect(), ibis.pyspark.connect(spark)):
        deals = con.create_table("icp_deals", deals_data, overwrite=True)
        accounts = con.create_table("icp_accounts", accounts_data, overwrite=True)
        frames.append(segment_performance(deals, accounts, by=by).to_pandas())
    duck, sparked = frames

    assert duck["closed"].sum() > 0
    assert duck["median_cycle_days"].notna().sum() > 1
    pd.testing.assert_frame_equal(duck, sparked, check_dtype=False, check_exact=True)


# Buying committees ---------------------------------------------------------------------------


def person(number: int, account: str | None, title: str | None) -> dict[str, Any]:
    return {"person_id": f"p{number}", "account_id": account, "title": title}


def test_with_buying_committee_bands_sizes_and_ranks_roles(store: Store) -> None:
    from journeymap.analyses.icp import with_buying_committee

    store.append("accounts", pd.DataFrame({"account_id": ["a", "b", "c", "d"]}))
    people = [
        person(1, "a", "VP Marketing"),
        person(2, "a", "Marketing Manager"),
        person(3, "a", None),
        person(4, "b", "Analyst"),
        person(5, "b", "Head of Growth"),
        *[person(10 + n, "c", None) for n in range(7)],
        person(30, None, "CEO"),
    ]
    store.append("people", pd.DataFrame(people))

    result = with_buying_committee(store.table("accounts"), store.table("people")).to_pandas()

    rows = result.set_index("account_id")
    assert rows.loc["a"].committee_size == "2-3"
    assert rows.loc["a"].committee_roles == "executive"
    assert rows.loc["b"].committee_size == "2-3"
    assert rows.loc["b"].committee_roles == "manager"
    assert rows.loc["c"].committee_size == "7+"
    assert rows.loc["c"].committee_roles == "unknown"
    assert pd.isna(rows.loc["d"].committee_size)
    assert pd.isna(rows.loc["d"].committee_roles)


def test_icp_by_committee_size_counts_deals_per_band(store: Store) -> None:
    from journeymap import api

    write_tables(
        store,
        won_lost("a", 3, 1, 0) + won_lost("b", 0, 2, 10),
        [{"account_id": "a"}, {"account_id": "b"}],
    )
    store.append(
        "people",
        pd.DataFrame([person(1, "a", "CFO"), person(2, "a", "Buyer"), person(3, "b", "Buyer")]),
    )

    frame, _ = api.icp(store, by="committee_size")

    rows = frame.set_index("committee_size")
    assert rows.loc["2-3"].won == 3
    assert rows.loc["2-3"].lost == 1
    assert rows.loc["1"].won == 0
    assert rows.loc["1"].lost == 2
