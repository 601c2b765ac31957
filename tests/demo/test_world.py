"""Tests of the demo world: determinism, sizes, funnel order, spend, truth and importability."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeymap.channels.rules import ChannelClassifier
from journeymap.demo import catalog
from journeymap.demo.world import World, generate_world, truth_draws, write_world
from journeymap.sources.touchpoints import import_touchpoints
from journeymap.store.store import Store

PEOPLE = 2000


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(PEOPLE, seed=7)


def _kinds(touchpoints: pd.DataFrame) -> pd.Series:
    return touchpoints["conversion_kind"].astype("string")


def _touch_rows(touchpoints: pd.DataFrame) -> pd.DataFrame:
    """Rows that the importer keeps as touches: every row but conversions without channel fields."""
    conversion_only = (touchpoints["conversion"] == 1) & touchpoints["touch_type"].isna()
    return touchpoints[~conversion_only]


def _unattributed_won(touchpoints: pd.DataFrame) -> tuple[int, int]:
    """Count closed-won rows whose person has no touch at or before them, and all of them."""
    first_touch = _touch_rows(touchpoints).groupby("user_id", observed=True)["timestamp"].min()
    won = touchpoints[_kinds(touchpoints) == "closed_won"]
    first = won["user_id"].map(first_touch)
    unattributed = first.isna() | (first > won["timestamp"])
    return int(unattributed.sum()), len(won)


def test_same_seed_gives_equal_frames(world: World) -> None:
    again = generate_world(PEOPLE, seed=7)
    pd.testing.assert_frame_equal(world.touchpoints, again.touchpoints)
    pd.testing.assert_frame_equal(world.spend, again.spend)
    pd.testing.assert_frame_equal(world.accounts, again.accounts)
    pd.testing.assert_frame_equal(world.people, again.people)
    assert world.truth == again.truth


def test_other_seed_gives_other_world(world: World) -> None:
    other = generate_world(PEOPLE, seed=8)
    assert not world.touchpoints.equals(other.touchpoints)
    assert not world.people["email_hash"].equals(other.people["email_hash"])
    assert world.truth["channels"] != other.truth["channels"]


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_same_seed_gives_same_bytes(tmp_path: Path, file_format: str) -> None:
    first = write_world(generate_world(300, seed=3), tmp_path / "a", format=file_format)  # type: ignore[arg-type]
    second = write_world(generate_world(300, seed=3), tmp_path / "b", format=file_format)  # type: ignore[arg-type]
    assert sorted(first) == ["accounts", "ad_spend", "contacts", "people", "touchpoints", "truth"]
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name


def test_people_count_honoured(world: World) -> None:
    assert len(world.people) == PEOPLE
    assert world.people["person_id"].is_unique
    assert world.truth["generator"]["people"] == PEOPLE
    assert sum(world.truth["touches_per_person"].values()) == PEOPLE
    assert world.touchpoints["user_id"].isin(world.people["person_id"]).all()


def test_committees_have_one_to_six_people(world: World) -> None:
    sizes = world.people.groupby("account_id", observed=True).size()
    assert len(sizes) == len(world.accounts)
    assert sizes.min() >= 1
    assert sizes.max() <= 6
    assert world.accounts["account_id"].is_unique
    assert world.accounts["domain"].is_unique


def test_churn_only_of_customers_after_first_win(world: World) -> None:
    won = world.touchpoints[_kinds(world.touchpoints) == "closed_won"]
    first_won = won.groupby(won["account_id"].astype("string"))["timestamp"].min()
    accounts = world.accounts.set_index(world.accounts["account_id"].astype("string"))
    churned = accounts["churned_at"].dropna()
    end = pd.Timestamp(world.truth["generator"]["start"], tz="UTC") + pd.Timedelta(
        days=world.truth["generator"]["days"]
    )

    assert len(churned) > 0
    assert churned.index.isin(first_won.index).all()
    waits = (churned - first_won.reindex(churned.index)).dt.total_seconds() / 86_400
    assert (waits >= 14).all()
    assert (churned < end).all()


def test_world_without_crm_keeps_accounts(world: World) -> None:
    without_crm = generate_world(PEOPLE, seed=7, crm=False)

    pd.testing.assert_frame_equal(world.accounts, without_crm.accounts)


def test_touches_per_person_within_limits(world: World) -> None:
    counts = {int(key): value for key, value in world.truth["touches_per_person"].items()}
    assert min(count for count, people in counts.items() if people) >= 1
    assert max(count for count, people in counts.items() if people) <= 20
    assert counts[1] > 0
    tracked = _touch_rows(world.touchpoints).groupby("user_id", observed=True).size()
    assert tracked.max() <= 20
    assert world.truth["counts"]["touches_tracked"] < world.truth["counts"]["touches_generated"]


def test_email_hashes_are_sha256_hex(world: World) -> None:
    hashes = world.people["email_hash"]
    assert hashes.str.fullmatch(r"[0-9a-f]{64}").all()
    assert hashes.is_unique
    assert not hashes.str.contains("@").any()


def test_conversion_order_per_deal(world: World) -> None:
    touchpoints = world.touchpoints
    kinds = _kinds(touchpoints)
    leads = touchpoints[kinds == "lead"].groupby("user_id", observed=True)["timestamp"].min()
    opportunities = touchpoints[kinds == "opportunity"].set_index("deal_id")
    won = touchpoints[kinds == "closed_won"].set_index("deal_id")
    assert len(won) > 20
    assert opportunities.index.is_unique
    assert won.index.is_unique
    assert won.index.isin(opportunities.index).all()

    opportunity_lead = opportunities["user_id"].map(leads)
    assert opportunity_lead.notna().all()
    assert (opportunity_lead < opportunities["timestamp"]).all()
    matched = opportunities.loc[won.index]
    assert (matched["user_id"].astype("string") == won["user_id"].astype("string")).all()
    assert (matched["timestamp"] < won["timestamp"]).all()
    assert (won["value"] > 0).all()
    assert (won["value"] <= matched["value"]).all()


def test_conversion_rows_and_values(world: World) -> None:
    touchpoints = world.touchpoints
    conversions = touchpoints[touchpoints["conversion"] == 1]
    kinds = _kinds(conversions)
    assert set(kinds) == {"lead", "opportunity", "closed_won"}
    assert _kinds(touchpoints[touchpoints["conversion"] == 0]).isna().all()
    assert (conversions.loc[kinds == "lead", "value"] == 0).all()
    assert (conversions["currency"] == "USD").all()
    assert conversions.loc[kinds != "lead", "deal_id"].notna().all()
    assert conversions.loc[kinds == "lead", "deal_id"].isna().all()
    deal_values = conversions.loc[kinds == "closed_won", "value"]
    assert 10_000 < deal_values.median() < 60_000

    form_fills = conversions[(kinds == "lead") & conversions["referrer"].notna()]
    conversion_only = conversions[conversions["touch_type"].isna()]
    assert len(form_fills) > 0
    assert len(conversion_only) > len(conversions) / 2
    assert touchpoints.loc[touchpoints["conversion"] == 0, "value"].isna().all()


def test_touches_continue_after_leads(world: World) -> None:
    touchpoints = world.touchpoints
    leads = (
        touchpoints[_kinds(touchpoints) == "lead"]
        .groupby("user_id", observed=True)["timestamp"]
        .min()
    )
    touches = _touch_rows(touchpoints)
    touches = touches[touches["conversion"] == 0]
    after = touches["timestamp"] > touches["user_id"].map(leads)
    assert after.sum() > 0


def test_rows_sorted_by_time(world: World) -> None:
    assert world.touchpoints["timestamp"].is_monotonic_increasing
    assert str(world.touchpoints["timestamp"].dtype) == "datetime64[us, UTC]"


def test_unattributed_share_of_closed_won(world: World) -> None:
    # Pooled over three seeds: one small world has too few deals for a stable share.
    unattributed, won = _unattributed_won(world.touchpoints)
    for seed in (8, 9):
        more_unattributed, more_won = _unattributed_won(
            generate_world(PEOPLE, seed=seed).touchpoints
        )
        unattributed += more_unattributed
        won += more_won
    share = unattributed / won
    assert 0.03 <= share <= 0.15, f"{unattributed} of {won} closed-won deals have no touch"


def _paid_platform(touchpoints: pd.DataFrame) -> pd.Series:
    """Name the ad platform of each paid touch from its raw fields (missing for other touches)."""
    source = touchpoints["utm_source"].astype("string")
    medium = touchpoints["utm_medium"].astype("string")
    platform = pd.Series(pd.NA, index=touchpoints.index, dtype="string")
    google = touchpoints["gclid"].notna() | touchpoints["gbraid"].notna()
    google |= (source == "google") & medium.isin(["cpc", "display"])
    platform[google.fillna(False)] = "google_ads"
    platform[(touchpoints["msclkid"].notna() | (source == "bing")).fillna(False)] = "microsoft_ads"
    linkedin = touchpoints["li_fat_id"].notna() | (
        (source == "linkedin") & (medium == "paid_social")
    )
    platform[linkedin.fillna(False)] = "linkedin"
    platform[(source == "facebook").fillna(False)] = "facebook"
    return platform


def test_spend_clicks_agree_with_paid_touches(world: World) -> None:
    spend = world.spend
    assert list(spend.columns) == [
        "date",
        "platform",
        "campaign_id",
        "campaign",
        "ad_group",
        "ad_id",
        "impressions",
        "clicks",
        "cost",
        "currency",
    ]
    touches = _paid_platform(world.touchpoints).value_counts().to_dict()
    clicks = spend.groupby("platform")["clicks"].sum().to_dict()
    assert set(clicks) == {"google_ads", "microsoft_ads", "linkedin", "facebook"}
    for platform, platform_clicks in clicks.items():
        ratio = platform_clicks / touches[platform]
        assert 0.5 <= ratio <= 2.0, (
            f"{platform}: {platform_clicks} clicks, {touches[platform]} touches"
        )
    assert (spend["impressions"] >= spend["clicks"]).all()
    assert (spend["cost"] >= 0).all()
    assert (spend["currency"] == "USD").all()


def test_spend_campaigns_match_touch_campaigns(world: World) -> None:
    spend_campaigns = set(world.spend["campaign"])
    campaigns_per_channel = pd.Series([c.channel for c in catalog.CAMPAIGNS]).value_counts()
    assert campaigns_per_channel.between(2, 5).all()
    touch_campaigns = set(world.touchpoints["utm_campaign"].dropna().astype(str))
    assert spend_campaigns <= touch_campaigns
    assert set(world.spend["ad_id"]) >= set(world.touchpoints["ad_id"].dropna().astype(str))


def test_truth_positive_for_paid_channels(world: World) -> None:
    channels = world.truth["channels"]
    assert list(channels) == list(catalog.CHANNELS)
    for name in catalog.PAID_CHANNELS:
        assert channels[name]["closed_won"] > 0, name
        assert channels[name]["closed_won_value"] > 0, name
    for name, effect in channels.items():
        assert effect["leads"] >= 0, name


def test_truth_sums_reasonably(world: World) -> None:
    expected = world.truth["expected"]
    total = sum(effect["closed_won"] for effect in world.truth["channels"].values())
    incremental = expected["closed_won"] - expected["closed_won_without_channels"]
    assert 0 < expected["closed_won_without_channels"] < expected["closed_won"]
    assert 0.5 * incremental <= total <= 1.5 * expected["closed_won"]
    observed = world.truth["counts"]["closed_won"]
    assert abs(observed - expected["closed_won"]) < 4 * np.sqrt(expected["closed_won"])
    assert world.truth["generator"]["truth_draws"] == truth_draws(PEOPLE)


def test_progress_counts_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("journeymap.demo.world.GROUP_PEOPLE", 50)
    calls: list[tuple[int, int]] = []
    world = generate_world(300, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 300)
    assert calls[-1] == (300, 300)
    assert len(calls) >= 6
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert len(world.people) == 300
    assert world.truth["counts"]["closed_won"] == (_kinds(world.touchpoints) == "closed_won").sum()


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError, match="people"):
        generate_world(0)
    with pytest.raises(ValueError, match="days"):
        generate_world(10, days=7)


def test_csv_timestamps_are_iso_utc(world: World, tmp_path: Path) -> None:
    paths = write_world(world, tmp_path)
    header, first = paths["touchpoints"].read_text(encoding="utf-8").splitlines()[:2]
    assert header.split(",")[:3] == ["user_id", "account_id", "timestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first.split(",")[2])
    spend_line = paths["ad_spend"].read_text(encoding="utf-8").splitlines()[1]
    assert re.match(r"\d{4}-\d\d-\d\d,", spend_line)
    truth = json.loads(paths["truth"].read_text(encoding="utf-8"))
    assert truth["generator"]["seed"] == 7


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_written_files_import(world: World, store: Store, tmp_path: Path, file_format: str) -> None:
    paths = write_world(world, tmp_path, format=file_format)  # type: ignore[arg-type]
    result = import_touchpoints(store, paths["touchpoints"])
    conversions = int((world.touchpoints["conversion"] == 1).sum())
    assert result.rows["conversions"] == conversions
    assert result.rows["touchpoints"] == len(_touch_rows(world.touchpoints))
    assert result.rows["touchpoints"] == world.truth["counts"]["touches_tracked"]

    stored = store.table("conversions").to_pandas()
    assert (
        stored["kind"].value_counts().to_dict()
        == _kinds(world.touchpoints).value_counts().to_dict()
    )
    assert (
        stored["deal_id"].notna().sum() == conversions - (_kinds(world.touchpoints) == "lead").sum()
    )


def test_default_rules_name_each_channel(world: World, store: Store, tmp_path: Path) -> None:
    paths = write_world(world, tmp_path)
    import_touchpoints(store, paths["touchpoints"])
    channels = (
        ChannelClassifier().classify(store.table("touchpoints")).select("channel").to_pandas()
    )
    counts = channels["channel"].value_counts().to_dict()
    expected = {name: effect["touches_tracked"] for name, effect in world.truth["channels"].items()}
    assert counts == {name: count for name, count in expected.items() if count}


def test_generate_world_without_crm_keeps_every_other_table() -> None:
    full = generate_world(1000, seed=7)
    lean = generate_world(1000, seed=7, crm=False)

    assert lean.crm is None
    assert lean.contacts is None
    assert "planted" not in lean.truth
    pd.testing.assert_frame_equal(full.touchpoints, lean.touchpoints)
    pd.testing.assert_frame_equal(full.spend, lean.spend)


def test_generate_world_small_has_no_warnings() -> None:
    # Warnings are errors in the tests, so a small world with empty segments must not warn.
    world = generate_world(200, seed=3)

    assert world.crm is not None
