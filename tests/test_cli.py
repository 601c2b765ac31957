"""The command line: stable names and flags, output formats, and one-line errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from journeymap.cli import app
from journeymap.common.errors import JourneymapError

runner = CliRunner()


def run_cli(*args: str, hash_seed: str = "0") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "journeymap", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
    )


def test_attribute_paths_csv_columns(shared_data: Path) -> None:
    data = shared_data / "channelattribution-paths" / "Data.csv"
    result = runner.invoke(
        app,
        [
            "attribute",
            str(data),
            "--input-format",
            "paths",
            "--models",
            "first_touch,linear",
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert list(frame.columns) == ["model", "channel", "conversions", "value"]
    assert set(frame.model) == {"first_touch", "linear"}
    totals = frame.groupby("model").conversions.sum()
    assert totals.round(6).tolist() == [19_785.0, 19_785.0]


def test_attribute_json_by_source_medium(tmp_path: Path) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(
        "user_id,timestamp,utm_source,utm_medium,utm_campaign,conversion,value\n"
        "u1,2024-03-01T10:00:00Z,google,cpc,brand,0,\n"
        "u1,2024-03-02T10:00:00Z,newsletter,email,march,1,50\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app,
        ["attribute", str(path), "--models", "linear", "--by", "source_medium", "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {row["source_medium"]: row["value"] for row in rows} == {
        "google / cpc": 25.0,
        "newsletter / email": 25.0,
    }
    assert set(rows[0]) == {"model", "source_medium", "conversions", "value"}


DIRECT_TOUCHES = (
    "user_id,timestamp,channel,conversion,value\n"
    "u1,2024-03-01T10:00:00Z,Paid Search,false,0\n"
    "u1,2024-03-02T10:00:00Z,Email,true,50\n"
    "u2,2024-03-01T11:00:00Z,Email,false,0\n"
)


def test_attribute_direct_matches_the_store(tmp_path: Path) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(DIRECT_TOUCHES, encoding="utf-8")
    arguments = ["attribute", str(path), "--models", "linear,markov", "--format", "json"]
    direct = runner.invoke(app, [*arguments, "--direct"])
    stored = runner.invoke(app, arguments)
    assert direct.exit_code == 0, direct.output
    assert stored.exit_code == 0, stored.output
    assert json.loads(direct.stdout) == json.loads(stored.stdout)
    linear = {row["channel"]: row["value"] for row in json.loads(direct.stdout)[:2]}
    assert linear == {"Email": 25.0, "Paid Search": 25.0}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--by", "campaign"], "--by campaign has no data"),
        (["--input-format", "paths"], "not --input-format paths"),
        (["--store", "x.duckdb"], "--store has no use"),
        (["--transform", "collapse"], "--transform collapse"),
        (["--kind", "lead"], "--kind lead"),
    ],
)
def test_attribute_direct_rejects_store_options(
    tmp_path: Path, options: list[str], message: str
) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(DIRECT_TOUCHES, encoding="utf-8")
    result = runner.invoke(app, ["attribute", str(path), "--direct", *options])
    assert isinstance(result.exception, JourneymapError)
    assert message in str(result.exception)


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "store"])
def test_attribute_details_writes_markov_and_shapley(tmp_path: Path, direct: bool) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(DIRECT_TOUCHES, encoding="utf-8")
    folder = tmp_path / "details"
    arguments = ["attribute", str(path), "--models", "markov,shapley", "--details", str(folder)]
    result = runner.invoke(app, [*arguments, *(["--direct"] if direct else [])])
    assert result.exit_code == 0, result.output
    assert sorted(file.name for file in folder.iterdir()) == [
        "markov_conversion_removal_effects.csv",
        "markov_conversion_transitions.csv",
        "shapley_conversion_values.csv",
    ]
    values = pd.read_csv(folder / "shapley_conversion_values.csv")
    assert values.conversions.sum() == pytest.approx(1.0)


def test_attribute_details_rule_models_write_nothing(tmp_path: Path) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(DIRECT_TOUCHES, encoding="utf-8")
    folder = tmp_path / "details"
    result = run_cli(
        "attribute", str(path), "--direct", "--models", "linear", "--details", str(folder)
    )
    assert result.returncode == 0, result.stderr
    # The console wraps long lines, so words are compared with single spaces.
    message = " ".join(result.stderr.split())
    assert "no model details written" in message
    assert "add one of them to --models" in message
    assert not folder.exists()


def test_attribute_details_without_conversions_says_so(tmp_path: Path) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(DIRECT_TOUCHES.replace("true", "false"), encoding="utf-8")
    folder = tmp_path / "details"
    result = run_cli(
        "attribute", str(path), "--direct", "--models", "markov", "--details", str(folder)
    )
    assert result.returncode == 0, result.stderr
    assert "there are no conversions to credit" in " ".join(result.stderr.split())
    assert not folder.exists()


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "store"])
def test_attribute_without_conversions_says_so(tmp_path: Path, direct: bool) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(DIRECT_TOUCHES.replace("true", "false"), encoding="utf-8")
    arguments = ["attribute", str(path), "--models", "linear", "--format", "csv"]
    result = run_cli(*arguments, *(["--direct"] if direct else []))
    assert result.returncode == 0, result.stderr
    assert "no conversions to credit" in result.stderr
    assert result.stdout.strip() == "model,channel,conversions,value"


def test_attribute_direct_names_the_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(DIRECT_TOUCHES + "u3,2024-03-03T10:00:00Z,,true,10\n", encoding="utf-8")
    result = run_cli("attribute", str(path), "--direct")
    assert result.returncode == 1
    assert "row 4" in result.stderr
    assert "column 'channel'" in result.stderr
    assert "Traceback" not in result.stderr


def test_attribute_all_models_skips_time_decay_for_paths(tmp_path: Path) -> None:
    path = tmp_path / "paths.csv"
    path.write_text(
        "path;total_conversions;total_conversion_value;total_null\na > b;2;10;1\n", encoding="utf-8"
    )
    result = runner.invoke(
        app, ["attribute", str(path), "-f", "paths", "--models", "all", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    models = set(pd.read_csv(io.StringIO(result.stdout)).model)
    assert "time_decay" not in models
    assert {
        "first_touch",
        "last_touch",
        "linear",
        "position_based",
        "w_shaped",
        "full_path",
        "custom",
    } <= models
    assert "Skipped time_decay" in result.stderr


def test_attribute_snowplow_with_run_configuration(shared_data: Path) -> None:
    data = (
        shared_data
        / "snowplow-fractribution-tests"
        / "source"
        / "snowplow_fractribution_events.csv"
    )
    result = runner.invoke(
        app,
        [
            "attribute",
            str(data),
            "-f",
            "snowplow",
            "--lookback-days",
            "30",
            "--transform",
            "collapse",
            "--models",
            "all",
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.stdout))
    for model, part in frame.groupby("model"):
        assert part.conversions.sum() == pytest.approx(6), model
        assert part.value.sum() == pytest.approx(500.92), model


def test_error_is_one_line_with_hint(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("user_id,timestamp,channel,value\nu1,2024-03-01,Email,-3\n", encoding="utf-8")
    result = run_cli("attribute", str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert "row 1" in lines[0]
    assert "'value'" in lines[0]
    assert "Traceback" not in result.stderr


def test_unknown_model_lists_models() -> None:
    result = run_cli("attribute", "--models", "markovv", "--store", ":memory:")
    assert result.returncode == 1
    assert "unknown model 'markovv'" in result.stderr
    assert "first_touch" in result.stderr


def test_store_commands_round_trip(tmp_path: Path, shared_data: Path) -> None:
    store = str(tmp_path / "jm.duckdb")
    data = shared_data / "channelattribution-paths" / "Data.csv"
    assert runner.invoke(app, ["import", "paths", str(data), "--store", store]).exit_code == 0
    assert runner.invoke(app, ["build", "--store", store]).exit_code == 0
    result = runner.invoke(
        app, ["attribute", "--store", store, "--models", "last_touch", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    report = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "--store", store, "--output", str(report)])
    assert result.exit_code == 0, result.output
    assert report.stat().st_size > 100_000


def test_version_flag() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("journeymap ")


def test_attribute_wide_puts_models_side_by_side(shared_data: Path) -> None:
    data = shared_data / "channelattribution-paths" / "Data.csv"
    result = runner.invoke(
        app,
        [
            "attribute",
            str(data),
            "-f",
            "paths",
            "-m",
            "first_touch,markov",
            "--wide",
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert list(frame.columns) == ["channel", "first_touch", "markov"]
    assert frame.first_touch.sum() == pytest.approx(19_785)
    assert frame.markov.sum() == pytest.approx(19_785)


def test_attribute_data_driven_is_byte_identical_across_processes(tmp_path: Path) -> None:
    from journeymap.demo.files import write_world
    from journeymap.demo.world import generate_world

    touches = write_world(generate_world(people=600, seed=11), tmp_path)["touchpoints"]
    args = (
        "attribute",
        str(touches),
        "--models",
        "markov,shapley,shapley_ordered,fractribution",
        "--order",
        "2",
        "--kind",
        "lead",
        "--format",
        "csv",
        "--store",
        ":memory:",
    )
    first = run_cli(*args, hash_seed="1")
    second = run_cli(*args, hash_seed="2")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert first.stdout.count("\n") > 10


def test_funnel_and_velocity_on_deals(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "crm-sales-opportunities"
    store = str(tmp_path / "deals.duckdb")
    imported = runner.invoke(
        app, ["import", "deals", str(folder / "sales_pipeline.csv"), "--store", store]
    )
    assert imported.exit_code == 0, imported.output

    stages = runner.invoke(
        app,
        ["funnel", "Engaging", "Won", "--as-of", "2018-01-01", "--format", "csv", "--store", store],
    )
    assert stages.exit_code == 0, stages.output
    cohorts = pd.read_csv(io.StringIO(stages.stdout))
    assert cohorts.entered.sum() == 1_589 + 4_238 + 2_473
    assert cohorts.converted.sum() == 4_238

    between = runner.invoke(
        app, ["velocity", "--between", "Engaging,Won", "--format", "csv", "--store", store]
    )
    assert between.exit_code == 0, between.output
    summary = pd.read_csv(io.StringIO(between.stdout))
    assert summary.deals.tolist() == [4_238]
    assert summary.median_days.tolist() == [57.0]


def test_velocity_unknown_breakdown_is_one_line(tmp_path: Path, shared_data: Path) -> None:
    folder = shared_data / "crm-sales-opportunities"
    store = str(tmp_path / "deals.duckdb")
    run_cli("import", "deals", str(folder / "sales_pipeline.csv"), "--store", store)
    result = run_cli("velocity", "--by", "colour", "--store", store)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "owner, pipeline, industry, region" in result.stderr


def test_leads_funnel_and_velocity_by_channel(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "olist-marketing-funnel"
    store = str(tmp_path / "leads.duckdb")
    imported = runner.invoke(
        app,
        [
            "import",
            "leads",
            str(folder / "olist_marketing_qualified_leads_dataset.csv"),
            "--deals",
            str(folder / "olist_closed_deals_dataset.csv"),
            "--store",
            store,
        ],
    )
    assert imported.exit_code == 0, imported.output

    funnel = runner.invoke(
        app,
        [
            "funnel",
            "MQL",
            "Won",
            "--by",
            "channel",
            "--as-of",
            "2019-01-01",
            "--format",
            "csv",
            "--store",
            store,
        ],
    )
    assert funnel.exit_code == 0, funnel.output
    cohorts = pd.read_csv(io.StringIO(funnel.stdout))
    by_channel = cohorts.groupby("channel")[["entered", "converted"]].sum()
    assert by_channel.loc["Organic Search"].tolist() == [2_296, 270]
    assert by_channel.entered.sum() == 8_000

    velocity = runner.invoke(
        app,
        [
            "velocity",
            "--between",
            "MQL,Won",
            "--by",
            "channel",
            "--format",
            "csv",
            "--store",
            store,
        ],
    )
    assert velocity.exit_code == 0, velocity.output
    times = pd.read_csv(io.StringIO(velocity.stdout)).set_index("channel")
    assert times.loc["Paid Search", "deals"] == 195


def test_stages_places_accounts(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "crm-sales-opportunities"
    store = str(tmp_path / "deals.duckdb")
    run_cli("import", "deals", str(folder / "sales_pipeline.csv"), "--store", store)
    result = run_cli("stages", "--as-of", "2018-01-01", "--format", "csv", "--store", store)
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(io.StringIO(result.stdout)).set_index("stage")
    pipeline = pd.read_csv(folder / "sales_pipeline.csv")
    won_accounts = pipeline[pipeline.deal_stage == "Won"].account.nunique()
    assert summary.loc["Onboarding", "entered"] == won_accounts
    assert list(summary.index[:3]) == ["Awareness", "Consideration", "Decision"]
    assert "not checked" in result.stderr


def test_icp_ranks_segments(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "crm-sales-opportunities"
    store = str(tmp_path / "deals.duckdb")
    run_cli(
        "import",
        "deals",
        str(folder / "sales_pipeline.csv"),
        "--accounts",
        str(folder / "accounts.csv"),
        "--store",
        store,
    )
    result = run_cli("icp", "--format", "csv", "--store", store)
    assert result.returncode == 0, result.stderr
    profile = pd.read_csv(io.StringIO(result.stdout))
    assert profile["rank"].tolist() == sorted(profile["rank"])
    assert profile.overall_win_rate.iloc[0] == pytest.approx(4_238 / 6_711)
    assert "1,425 no account" in result.stderr
    # The export has no churn dates, so retention is shown as unknown.
    assert profile["customers"].sum() == 3 * 85
    assert profile["retention_rate"].isna().all()
    assert "churned_at column" in result.stderr

    unknown = run_cli("icp", "--by", "colour", "--store", store)
    assert unknown.returncode == 1
    assert "industry, size_band, region, plan" in unknown.stderr


def test_icp_ranks_plan_when_accounts_have_one(tmp_path: Path) -> None:
    deals = tmp_path / "deals.csv"
    pd.DataFrame(
        {
            "deal_id": ["d1", "d2", "d3"],
            "account": ["a1", "a2", "a3"],
            "stage": ["Won", "Lost", "Won"],
            "engage_date": ["2024-01-01"] * 3,
            "close_date": ["2024-02-01"] * 3,
        }
    ).to_csv(deals, index=False)
    accounts = tmp_path / "accounts.csv"
    pd.DataFrame(
        {
            "account": ["a1", "a2", "a3"],
            "sector": ["retail", "retail", "media"],
            "plan": ["Growth", "Starter", "Growth"],
        }
    ).to_csv(accounts, index=False)
    store = str(tmp_path / "plans.duckdb")
    imported = run_cli("import", "deals", str(deals), "--accounts", str(accounts), "--store", store)
    assert imported.returncode == 0, imported.stderr

    ranked = run_cli("icp", "--format", "json", "--min-closed", "1", "--store", store)
    chosen = run_cli(
        "icp", "--format", "json", "--dimensions", "industry", "--min-closed", "1", "--store", store
    )

    assert ranked.returncode == 0, ranked.stderr
    assert {row["dimension"] for row in json.loads(ranked.stdout)} >= {"industry", "plan"}
    assert {row["dimension"] for row in json.loads(chosen.stdout)} == {"industry"}


def test_icp_shows_retention_columns(tmp_path: Path) -> None:
    deals = tmp_path / "deals.csv"
    pd.DataFrame(
        {
            "deal_id": ["d1", "d2", "d3", "d4", "d5"],
            "account": ["a1", "a2", "a3", "a3", "a4"],
            "stage": ["Won", "Won", "Won", "Lost", "Won"],
            "engage_date": ["2024-01-01"] * 5,
            "close_date": ["2024-01-10", "2024-01-10", "2024-01-10", "2024-03-01", "2025-03-01"],
            "name": ["New", "New", "New", "Renewal", "New"],
        }
    ).to_csv(deals, index=False)
    accounts = tmp_path / "accounts.csv"
    pd.DataFrame(
        {
            "account": ["a1", "a2", "a3", "a4"],
            "sector": ["retail", "retail", "media", "media"],
            "churn_date": ["2024-06-01", "", "", ""],
        }
    ).to_csv(accounts, index=False)
    store = str(tmp_path / "churn.duckdb")
    imported = run_cli("import", "deals", str(deals), "--accounts", str(accounts), "--store", store)
    assert imported.returncode == 0, imported.stderr

    result = run_cli("icp", "--by", "industry", "--format", "json", "--store", store)
    without = run_cli(
        "icp", "--by", "industry", "--format", "json", "--renewal-pattern", "", "--store", store
    )
    later = run_cli(
        "icp", "--by", "industry", "--format", "json", "--as-of", "2024-12-31", "--store", store
    )
    table = run_cli("icp", "--store", store)
    bad = run_cli("icp", "--renewal-pattern", "(", "--store", store)

    assert result.returncode == 0, result.stderr
    rows = {row["industry"]: row for row in json.loads(result.stdout)}
    assert rows["retail"]["customers"] == 2
    assert rows["retail"]["churned"] == 1
    assert rows["retail"]["retention_rate"] == 0.5
    # a3 lost a renewal, and a4 was won on 2025-03-01, the end of the data.
    assert rows["media"]["churned"] == 1
    assert rows["media"]["too_recent"] == 1
    assert rows["media"]["horizon_customers"] == 1
    assert rows["media"]["horizon_retention_rate"] == 0.0
    assert {row["industry"]: row["churned"] for row in json.loads(without.stdout)} == {
        "media": 0,
        "retail": 1,
    }
    assert rows["retail"]["horizon_customers"] == 2
    assert rows["retail"]["horizon_retained"] == 1
    # On 2024-12-31 no customer had been one for 365 days.
    later_rows = {row["industry"]: row for row in json.loads(later.stdout)}
    assert later_rows["media"]["horizon_customers"] == 0
    assert later_rows["retail"]["too_recent"] == 2
    assert table.returncode == 0, table.stderr
    assert "retention" in table.stdout
    assert "churned_at column" not in table.stderr
    assert bad.returncode == 1
    assert "--renewal-pattern" in bad.stderr
    assert "not a valid regular expression" in bad.stderr

    look_behind = run_cli("icp", "--renewal-pattern", "renewal|(?<=x)y+", "--store", store)
    no_dimension = run_cli("icp", "--dimensions", ",", "--store", store)
    endless = run_cli("icp", "--horizon-days", "inf", "--store", store)
    assert look_behind.returncode == 1
    assert "not supported by the store" in look_behind.stderr
    assert "Traceback" not in look_behind.stderr
    assert no_dimension.returncode == 1
    assert "--dimensions" in no_dimension.stderr
    assert "Traceback" not in no_dimension.stderr
    assert endless.returncode == 1
    assert "--horizon-days" in endless.stderr


def test_dropoff_flags_top_segments(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "crm-sales-opportunities"
    store = str(tmp_path / "deals.duckdb")
    run_cli(
        "import",
        "deals",
        str(folder / "sales_pipeline.csv"),
        "--accounts",
        str(folder / "accounts.csv"),
        "--store",
        store,
    )
    result = run_cli(
        "dropoff",
        "Engaging",
        "Won",
        "--by",
        "industry",
        "--as-of",
        "2018-01-01",
        "--format",
        "csv",
        "--store",
        store,
    )
    assert result.returncode == 0, result.stderr
    ranked = pd.read_csv(io.StringIO(result.stdout))
    assert ranked["top"].sum() == 3
    assert (ranked.lost + ranked.open + ranked.converted == ranked.entered).all()
    assert ranked.converted.sum() == 4_238


def test_blindspots_needs_part_for_csv(tmp_path: Path) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(
        "user_id,timestamp,channel,conversion,value\n"
        "u1,2024-03-01T10:00:00Z,Direct,0,\n"
        "u1,2024-03-02T10:00:00Z,Direct,1,50\n"
        "u2,2024-03-02T10:00:00Z,,1,20\n",
        encoding="utf-8",
    )
    store = str(tmp_path / "store.duckdb")
    run_cli("import", "touchpoints", str(path), "--store", store)
    refused = run_cli("blindspots", "--format", "csv", "--store", store)
    assert refused.returncode == 1
    assert "--part" in refused.stderr

    result = run_cli("blindspots", "--part", "by_kind", "--format", "csv", "--store", store)
    assert result.returncode == 0, result.stderr
    [row] = pd.read_csv(io.StringIO(result.stdout)).to_dict("records")
    assert row["conversions"] == 2
    assert row["direct_only"] == 1


def test_paths_reconcile_with_funnel(tmp_path: Path) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(
        "user_id,timestamp,channel,conversion,value,conversion_kind\n"
        "u1,2024-03-01T10:00:00Z,Email,1,0,lead\n"
        "u1,2024-03-05T10:00:00Z,Paid Search,1,100,closed_won\n"
        "u2,2024-03-01T10:00:00Z,Email,1,0,lead\n"
        "u2,2024-03-03T10:00:00Z,Email,0,,\n"
        "u2,2024-03-06T10:00:00Z,Paid Search,1,50,closed_won\n"
        "u3,2024-03-01T10:00:00Z,Direct,1,0,lead\n",
        encoding="utf-8",
    )
    store = str(tmp_path / "store.duckdb")
    imported = run_cli("import", "touchpoints", str(path), "--store", store)
    assert imported.returncode == 0, imported.stderr
    result = run_cli(
        "paths", "--kind", "closed_won", "--collapse", "--format", "csv", "--store", store
    )
    assert result.returncode == 0, result.stderr
    paths = pd.read_csv(io.StringIO(result.stdout))
    assert paths.converters.sum() == 2
    assert paths.share.sum() == pytest.approx(1.0, abs=1e-12)
    assert "2 converters on paths; the lead → closed_won funnel counts 2" in result.stderr


def test_coverage_lists_stages_and_campaigns(tmp_path: Path) -> None:
    from journeymap.demo.files import write_world
    from journeymap.demo.world import generate_world

    files = write_world(generate_world(people=300, seed=5), tmp_path)
    store = str(tmp_path / "store.duckdb")
    run_cli("import", "touchpoints", str(files["touchpoints"]), "--store", store)
    run_cli(
        "import",
        "spend",
        str(files["ad_spend"]),
        "--store",
        store,
    )
    result = run_cli("coverage", "--format", "csv", "--store", store)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(io.StringIO(result.stdout))
    assert table.stage.tolist()[:3] == ["Awareness", "Consideration", "Decision"]
    assert table.spend_share.sum() == pytest.approx(1.0)

    campaigns = run_cli("coverage", "--campaigns", "--format", "csv", "--store", store)
    listed = pd.read_csv(io.StringIO(campaigns.stdout))
    assert listed.cost.sum() == pytest.approx(table.spend.sum())


def test_funnel_uses_stored_journey_stages(tmp_path: Path) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(
        "user_id,timestamp,channel,conversion,value,conversion_kind\n"
        "u1,2024-03-01T10:00:00Z,Email,0,,\n"
        "u1,2024-03-02T10:00:00Z,Email,1,0,lead\n"
        "u2,2024-03-01T10:00:00Z,Paid Search,0,,\n",
        encoding="utf-8",
    )
    store = str(tmp_path / "store.duckdb")
    run_cli("import", "touchpoints", str(path), "--store", store)
    staged = run_cli("stages", "--entity", "person", "--store", store)
    assert staged.returncode == 0, staged.stderr
    result = run_cli(
        "funnel",
        "Awareness",
        "Consideration",
        "--as-of",
        "2024-04-01",
        "--format",
        "csv",
        "--store",
        store,
    )
    assert result.returncode == 0, result.stderr
    cohorts = pd.read_csv(io.StringIO(result.stdout))
    assert cohorts.entered.sum() == 2
    assert cohorts.converted.sum() == 1


def test_unknown_stage_names_nearest(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "crm-sales-opportunities"
    store = str(tmp_path / "deals.duckdb")
    run_cli("import", "deals", str(folder / "sales_pipeline.csv"), "--store", store)
    result = run_cli("funnel", "Engagin", "Won", "--store", store)
    assert result.returncode == 1
    assert "Did you mean Engaging?" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_json_output_writes_iso_dates(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "crm-sales-opportunities"
    store = str(tmp_path / "deals.duckdb")
    run_cli("import", "deals", str(folder / "sales_pipeline.csv"), "--store", store)
    result = run_cli(
        "funnel", "Engaging", "Won", "--period", "quarter", "--format", "json", "--store", store
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows[0]["cohort"].startswith("2016-10-01")
