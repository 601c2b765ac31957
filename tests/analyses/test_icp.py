"""Ideal customer profile: segment performance on the CRM pipeline, lift, p-values,
retention, Spark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact

from journeymap.analyses.churn import customer_churn
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
    name: str | None = None,
) -> dict[str, Any]:
    """Return a deal created on START: won, lost (``won=False``) or open (``won=None``),
    closed ``days`` after START."""
    closed = won is not None
    stage = "Open"
    if closed:
        stage = "Won" if won else "Lost"
    return {
        "deal_id": f"d{number:03d}",
        "account_id": account,
        "name": name,
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

    records = result.to_dict("records")
    assert len(records) == 1
    # Without churn dates the churn columns are unknown, not zero.
    unknown = ["churned", "retention_rate", "horizon_retained", "horizon_retention_rate"]
    for column in unknown:
        assert pd.isna(records[0].pop(column)), column
    assert records == [
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
            "customers": 1,
            "horizon_customers": 0,
            "too_recent": 1,
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


# Retention -----------------------------------------------------------------------------------

AS_OF = datetime(2025, 12, 31, tzinfo=UTC)


def at(day: str) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


def days_from_start(day: str) -> float:
    return (at(day) - pd.Timestamp(START)).total_seconds() / 86_400


def retention_case(store: Store) -> tuple[ibis.Table, ibis.Table]:
    """Return accounts that test each churn rule, with deals that close on 2024-01-11.

    - retail: r1 churned after its win, and r2 never churned. r3 has a churn date before
      its win (a win-back), and r4 lost a renewal and then won one (a win-back again).
    - media: m1 lost a renewal 374 days after its win, and m2 lost a deal that is no
      renewal. m3 has a churn date but never won.
    - energy: e1 won on 2025-06-01, less than a year before AS_OF.
    """
    rows = [
        deal(1, "r1", won=True),
        deal(2, "r2", won=True),
        deal(3, "r3", won=True),
        deal(4, "r4", won=True),
        deal(5, "r4", won=False, days=days_from_start("2024-05-01"), name="Renewal 2024"),
        deal(6, "r4", won=True, days=days_from_start("2024-09-01"), name="r4 renewal"),
        deal(7, "m1", won=True),
        deal(8, "m1", won=False, days=days_from_start("2025-01-20"), name="RENEWAL 2025"),
        deal(9, "m2", won=True),
        deal(10, "m2", won=False, days=days_from_start("2025-02-01"), name="Upsell"),
        deal(11, "m3", won=False),
        deal(12, "e1", won=True, days=days_from_start("2025-06-01")),
        deal(13, "e1", won=None, name="Renewal 2026"),
    ]
    accounts = [
        {"account_id": "r1", "industry": "retail", "churned_at": at("2024-06-01")},
        {"account_id": "r2", "industry": "retail"},
        {"account_id": "r3", "industry": "retail", "churned_at": at("2023-12-01")},
        {"account_id": "r4", "industry": "retail"},
        {"account_id": "m1", "industry": "media"},
        {"account_id": "m2", "industry": "media"},
        {"account_id": "m3", "industry": "media", "churned_at": at("2024-03-01")},
        {"account_id": "e1", "industry": "energy"},
    ]
    return write_tables(store, rows, accounts)


def pandas_retention(
    deal_rows: pd.DataFrame,
    account_rows: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    horizon_days: float,
    renewal: str | None,
) -> pd.DataFrame:
    """Return the retention columns per industry, by the module's rules in plain pandas."""
    won = deal_rows[deal_rows["is_closed"] & deal_rows["is_won"]]
    first_won = won.groupby("account_id")["closed_at"].min()
    last_won = won.groupby("account_id")["closed_at"].max()

    dates = account_rows[["account_id", "churned_at"]].dropna()
    if renewal is not None:
        names = deal_rows["name"].fillna("").str.contains(renewal, case=False, regex=True)
        lost = deal_rows[deal_rows["is_closed"] & ~deal_rows["is_won"] & names]
        renewals = lost[["account_id", "closed_at"]].rename(columns={"closed_at": "churned_at"})
        dates = pd.concat([dates, renewals], ignore_index=True)
    latest = dates["account_id"].map(last_won)
    counted = dates[latest.isna() | (dates["churned_at"] >= latest)]
    churned_at = counted.groupby("account_id")["churned_at"].min()

    rows = []
    for account in account_rows.itertuples():
        if account.account_id not in first_won.index:
            continue
        first = first_won[account.account_id]
        churned = churned_at.get(account.account_id)
        tenure = (as_of - first).total_seconds() / 86_400
        lasted = None if churned is None else (churned - first).total_seconds() / 86_400
        rows.append(
            {
                "industry": account.industry,
                "churned": churned is not None,
                "eligible": tenure >= horizon_days,
                "retained": lasted is None or lasted > horizon_days,
            }
        )
    frame = pd.DataFrame(rows)
    eligible = frame[frame["eligible"]]
    groups = frame.groupby("industry")
    result = pd.DataFrame(
        {
            "customers": groups.size(),
            "churned": groups["churned"].sum(),
            "horizon_customers": eligible.groupby("industry").size(),
            "horizon_retained": eligible.groupby("industry")["retained"].sum(),
            "too_recent": groups["eligible"].apply(lambda flags: int((~flags).sum())),
        }
    ).fillna(0)
    result["retention_rate"] = (result["customers"] - result["churned"]) / result["customers"]
    result["horizon_retention_rate"] = result["horizon_retained"] / result[
        "horizon_customers"
    ].where(result["horizon_customers"] > 0)
    return result


def test_segment_performance_retention_by_hand(store: Store) -> None:
    deals, accounts = retention_case(store)

    result = segment_performance(deals, accounts, by="industry", as_of=AS_OF).to_pandas()

    rows = result.set_index("industry")
    assert rows.loc["retail", "customers"] == 4
    assert rows.loc["retail", "churned"] == 1
    assert rows.loc["retail", "retention_rate"] == 0.75
    assert rows.loc["retail", "horizon_customers"] == 4
    assert rows.loc["retail", "horizon_retained"] == 3
    assert rows.loc["media", "customers"] == 2
    assert rows.loc["media", "churned"] == 1
    assert rows.loc["media", "retention_rate"] == 0.5
    # m1 churned 374 days after its win, so it was still a customer a year in.
    assert rows.loc["media", "horizon_retention_rate"] == 1.0
    assert rows.loc["energy", "customers"] == 1
    assert rows.loc["energy", "too_recent"] == 1
    assert rows.loc["energy", "horizon_customers"] == 0
    assert pd.isna(rows.loc["energy", "horizon_retention_rate"])
    assert rows.loc["energy", "retention_rate"] == 1.0


@pytest.mark.parametrize("renewal", ["renewal", None], ids=["renewals", "no-renewals"])
def test_segment_performance_retention_matches_pandas(store: Store, renewal: str | None) -> None:
    deals, accounts = retention_case(store)
    expected = pandas_retention(
        deals.to_pandas(),
        accounts.to_pandas(),
        as_of=at("2025-12-31"),
        horizon_days=365.0,
        renewal=renewal,
    )

    table = segment_performance(
        deals, accounts, by="industry", as_of=AS_OF, renewal_pattern=renewal
    )

    result = table.to_pandas().set_index("industry").loc[expected.index]
    for column in expected.columns:
        pd.testing.assert_series_equal(
            result[column].astype("float64"),
            expected[column].astype("float64"),
            check_names=False,
            check_exact=True,
        )
    if renewal is None:
        assert result.loc["media", "churned"] == 0


def test_customer_churn_per_account(store: Store) -> None:
    deals, accounts = retention_case(store)

    status = customer_churn(deals, accounts, as_of=AS_OF).to_pandas().set_index("account_id")

    assert not status.loc["m3", "customer"]
    assert pd.isna(status.loc["m3", "churned_at"])
    assert status.loc["r1", "churned_at"] == at("2024-06-01")
    assert pd.isna(status.loc["r3", "churned_at"])
    assert pd.isna(status.loc["r4", "churned_at"])
    assert status.loc["m1", "churned_at"] == at("2025-01-20")
    assert pd.isna(status.loc["m2", "churned_at"])
    assert status.loc["r4", "first_won_at"] == at("2024-01-11")
    assert not status.loc["r1", "retained_at_horizon"]
    assert status.loc["m1", "retained_at_horizon"]
    assert not status.loc["e1", "horizon_eligible"]
    assert pd.isna(status.loc["e1", "retained_at_horizon"])
    assert status["churn_known"].all()


def test_customer_churn_horizon_edges(store: Store) -> None:
    won_at = START + timedelta(days=10)
    rows = [deal(n, name, won=True) for n, name in enumerate(["edge", "late", "gone", "kept"])]
    rows[1]["closed_at"] = won_at + timedelta(seconds=1)
    accounts = [
        {"account_id": "edge"},
        {"account_id": "late"},
        {"account_id": "gone", "churned_at": won_at + timedelta(days=30)},
        {"account_id": "kept", "churned_at": won_at + timedelta(days=30, seconds=1)},
    ]
    deals, accounts_table = write_tables(store, rows, accounts)
    as_of = won_at + timedelta(days=40)

    status = customer_churn(deals, accounts_table, as_of=as_of, horizon_days=40)
    later = customer_churn(deals, accounts_table, as_of=as_of, horizon_days=30)

    flags = status.to_pandas().set_index("account_id")
    assert flags.loc["edge", "horizon_eligible"]
    assert not flags.loc["late", "horizon_eligible"]
    retained = later.to_pandas().set_index("account_id")["retained_at_horizon"]
    # A churn exactly at the horizon is a churn within it.
    assert not retained["gone"]
    assert retained["kept"]


def test_customer_churn_default_as_of_is_data_end(store: Store) -> None:
    deals, accounts = retention_case(store)
    end = datetime(2025, 6, 1, tzinfo=UTC)

    default = segment_performance(deals, accounts, by="industry", horizon_days=400)
    explicit = segment_performance(deals, accounts, by="industry", horizon_days=400, as_of=end)

    pd.testing.assert_frame_equal(default.to_pandas(), explicit.to_pandas())


def test_segment_performance_without_churn_data(store: Store) -> None:
    rows = [*won_lost("A", 3, 1, 0), deal(10, "B", won=False, name="Renewal")]
    deals, accounts = write_tables(
        store, rows, [{"account_id": "A", "industry": "retail"}, {"account_id": "B"}]
    )

    without = segment_performance(deals, accounts, by="industry", renewal_pattern=None)
    renewals = segment_performance(deals, accounts, by="industry")

    retail = without.to_pandas().set_index("industry").loc["retail"]
    assert retail["customers"] == 1
    assert pd.isna(retail["churned"])
    assert pd.isna(retail["retention_rate"])
    assert pd.isna(retail["horizon_retained"])
    # B's lost renewal shows that renewals are tracked, so A's retention is known.
    assert renewals.to_pandas().set_index("industry").loc["retail", "retention_rate"] == 1.0


def test_icp_without_churn_data_ranks_by_win_rate(store: Store) -> None:
    deals, accounts = lift_case(store)

    profile = ideal_customer_profile(deals, accounts, dimensions=["industry"])

    assert profile["value"].tolist() == ["retail", "media"]
    assert profile["customers"].tolist() == [1, 1]
    assert profile["retention_rate"].isna().all()
    assert profile["retention_p_value"].isna().all()
    assert not profile["retention_significant"].any()
    assert profile["retention_note"].tolist() == ["", ""]


def churn_case(
    store: Store, segments: dict[str, tuple[int, int, int]]
) -> tuple[ibis.Table, ibis.Table]:
    """Return one won deal per customer account and the lost deals of one more account.

    ``segments`` maps an industry to its customers, churned customers and lost deals.
    """
    rows: list[dict[str, Any]] = []
    accounts: list[dict[str, Any]] = []
    churn = pd.Timestamp(START) + pd.Timedelta(days=100)
    for industry, (customers, churned, lost) in segments.items():
        for number in range(customers):
            account = f"{industry}-{number}"
            rows.append(deal(len(rows), account, won=True))
            accounts.append(
                {
                    "account_id": account,
                    "industry": industry,
                    "churned_at": churn if number < churned else None,
                }
            )
        rows += [deal(len(rows) + n, f"{industry}-lost", won=False) for n in range(lost)]
        accounts.append({"account_id": f"{industry}-lost", "industry": industry})
    return write_tables(store, rows, accounts)


def test_icp_retention_lift_and_p_value(store: Store) -> None:
    deals, accounts = churn_case(store, {"retail": (30, 0, 0), "media": (30, 20, 0)})

    profile = ideal_customer_profile(deals, accounts, dimensions=["industry"])

    rows = profile.set_index("value")
    expected_p = fisher_exact([[30, 0], [10, 20]], alternative="two-sided").pvalue
    assert rows.loc["retail", "retention_rate"] == 1.0
    assert rows.loc["retail", "overall_retention_rate"] == 40 / 60
    assert rows.loc["retail", "retention_lift"] == pytest.approx(1.5, rel=1e-12)
    assert rows.loc["retail", "retention_p_value"] == pytest.approx(expected_p, rel=1e-12)
    assert rows.loc["retail", "retention_significant"]
    assert rows.loc["media", "churned"] == 20
    # Equal win rates and revenue: without retention, media would come first by name.
    assert profile["value"].tolist() == ["retail", "media"]
    assert rows.loc["retail", "rank"] == 1


def test_icp_worse_retention_demotes_a_winning_segment(store: Store) -> None:
    # retail wins 32 of 40 deals (significant) but 25 of its 32 customers churned.
    deals, accounts = churn_case(
        store, {"retail": (32, 25, 8), "media": (30, 2, 30), "energy": (3, 0, 0)}
    )

    profile = ideal_customer_profile(deals, accounts, dimensions=["industry"])

    rows = profile.set_index("value")
    assert rows.loc["retail", "significant"]
    assert rows.loc["retail", "lift"] > 1
    assert rows.loc["retail", "retention_significant"]
    assert rows.loc["retail", "retention_lift"] < 1
    # media wins less often but keeps its customers, so only retail ranks last for churn.
    assert profile["value"].tolist() == ["energy", "media", "retail"]


def test_icp_retention_small_segment_flagged(store: Store) -> None:
    deals, accounts = churn_case(store, {"retail": (8, 0, 0), "media": (40, 30, 0)})

    profile = ideal_customer_profile(deals, accounts, dimensions=["industry"], min_customers=10)

    rows = profile.set_index("value")
    assert rows.loc["retail", "retention_p_value"] < 0.05
    assert not rows.loc["retail", "retention_significant"]
    assert rows.loc["retail", "retention_note"] == TOO_SMALL
    assert rows.loc["media", "retention_note"] == ""
    assert rows.loc["media", "retention_significant"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"min_customers": 0}, "min_customers must be 1 or more"),
        ({"horizon_days": 0}, "horizon_days must be more than 0"),
        ({"renewal_pattern": "("}, "not a valid regular expression"),
        ({"renewal_pattern": ""}, "renewal_pattern is empty"),
    ],
    ids=["min-customers", "horizon", "pattern", "empty-pattern"],
)
def test_icp_invalid_retention_arguments(
    store: Store, arguments: dict[str, Any], message: str
) -> None:
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
            # Churn dates within the deals' 90 days, so that some come before a later win.
            "churned_at": pd.to_datetime(
                [START + timedelta(days=n) for n in (80, 0, 20, 0, 50, 0)], utc=True
            ).where([True, False, True, False, True, False]),
        }
    )
    rows = []
    for number in range(60):
        outcome = [True, False, None][int(rng.integers(0, 3))]
        account = None if number % 11 == 0 else f"a{number % 7}"
        days = float(rng.integers(0, 90 * 86_400)) / 86_400
        amount = float(rng.integers(100, 5_000))
        name = "Renewal" if number % 5 == 0 else None
        rows.append(deal(number, account, won=outcome, amount=amount, days=days, name=name))
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
        table = segment_performance(deals, accounts, by=by, horizon_days=45.0)
        frames.append(table.to_pandas())
    duck, sparked = frames

    assert duck["closed"].sum() > 0
    assert duck["median_cycle_days"].notna().sum() > 1
    assert duck["churned"].sum() > 0
    assert duck["horizon_customers"].sum() > duck["horizon_retained"].sum() > 0
    assert duck["too_recent"].sum() > 0
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
