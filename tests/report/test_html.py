"""The HTML report and its Plotly figures, built from hand-made ReportData."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

from journeymap.attribution import model_names
from journeymap.report import Headline, ReportData, charts, render_html, write_html

CHANNELS = ["Paid Search", "Email", "Direct"]
MODELS = ["first_touch", "last_touch", "linear"]
PATHS = ["Paid Search > Email > Direct", "Email"]
SPEND_COLUMNS = ["model", "channel", "conversions", "value", "cost", "roas", "cost_per_conversion"]
CAMPAIGN_SPEND_COLUMNS = ["campaign" if name == "channel" else name for name in SPEND_COLUMNS]

VOID_ELEMENTS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input",
    "link", "meta", "source", "track", "wbr",
}  # fmt: skip


class ReportParser(HTMLParser):
    """Parse a page, check that every element closes in order, and collect what tests inspect."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open_elements: list[str] = []
        self.errors: list[str] = []
        self.start_tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.start_tags.append((tag, dict(attrs)))
        if tag not in VOID_ELEMENTS:
            self.open_elements.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.start_tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.open_elements or self.open_elements[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open_elements[-1:] or 'nothing'}")
            return
        self.open_elements.pop()

    def handle_data(self, data: str) -> None:
        if self.open_elements and self.open_elements[-1] in {"script", "style"}:
            return
        self.text.append(data)

    def visible_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse(page: str) -> ReportParser:
    parser = ReportParser()
    parser.feed(page)
    parser.close()
    return parser


def credit_frame(channels: list[str] = CHANNELS, models: list[str] = MODELS) -> pd.DataFrame:
    rows = []
    for model_index, model in enumerate(models):
        for channel_index, channel in enumerate(channels):
            conversions = 10.0 + channel_index + model_index / 3
            rows.append(
                {
                    "model": model,
                    "channel": channel,
                    "conversions": conversions,
                    "value": conversions * 1000.5,
                }
            )
    return pd.DataFrame(rows)


def paths_frame() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "path": PATHS,
            "conversions": [30.0, 10.0],
            "value": [30000.0, 5000.0],
            "nulls": [70.0, 190.0],
        }
    )
    frame["share"] = frame["conversions"] / 40.0
    frame["conversion_rate"] = frame["conversions"] / (frame["conversions"] + frame["nulls"])
    return frame


def roles_frame(channels: list[str] = CHANNELS) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "channel": channels,
            "first": [30.0, 4.0, 0.0][: len(channels)],
            "middle": [0.0, 26.0, 0.0][: len(channels)],
            "last": [0.0, 10.0, 30.0][: len(channels)],
        }
    )
    total = frame["first"] + frame["middle"] + frame["last"]
    for position in ("first", "middle", "last"):
        frame[f"{position}_share"] = frame[position] / total
    frame["role"] = ["introducer", "influencer", "closer"][: len(channels)]
    return frame


def spend_frame(key: str = "channel") -> pd.DataFrame:
    rows = []
    for model_index, model in enumerate(MODELS):
        value = 4000.0 + 1000.0 * model_index
        rows.append(
            {
                "model": model,
                key: "Paid Search" if key == "channel" else "brand-q1",
                "conversions": 4.0,
                "value": value,
                "cost": 3000.0,
                "roas": value / 3000.0,
                "cost_per_conversion": 750.0,
            }
        )
    return pd.DataFrame(rows)


def empty_spend(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=columns)


def make_report(*, with_spend: bool = False, channels: list[str] = CHANNELS) -> ReportData:
    campaign_credit = credit_frame(["brand-q1"]).rename(columns={"channel": "campaign"})
    return ReportData(
        title="Attribution report",
        generated_at=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        package_version="9.8.7",
        store_location="/data/journeymap.duckdb",
        settings={"lookback days": 90, "path transform": "none", "kinds": ["won"]},
        models=[
            {"model": "first_touch", "parameters": {}, "version": "9.8.7"},
            {"model": "last_touch", "parameters": {}, "version": "9.8.7"},
            {"model": "linear", "parameters": {"exclude_direct": True}, "version": "9.8.7"},
        ],
        headline=Headline(
            journeys=12345.0,
            converting_journeys=38.0,
            conversions=40.0,
            value=98765.4321,
            currency="EUR",
            touches=54321,
            channels=len(channels),
            unattributed_conversions=2.0,
            unattributed_value=1234.5,
            first_touch_at=datetime(2024, 1, 2, 8, 0, tzinfo=UTC),
            last_touch_at=datetime(2024, 3, 30, 17, 45, tzinfo=UTC),
        ),
        credit_by_channel=credit_frame(channels),
        credit_by_campaign=campaign_credit if with_spend else campaign_credit.iloc[0:0],
        top_paths=paths_frame(),
        channel_roles=roles_frame(channels),
        spend_by_channel=spend_frame() if with_spend else empty_spend(SPEND_COLUMNS),
        spend_by_campaign=(
            spend_frame("campaign") if with_spend else empty_spend(CAMPAIGN_SPEND_COLUMNS)
        ),
        notes=["Models that need timestamps were skipped."],
    )


def without_plotly_bundle(page: str) -> str:
    return page.replace(get_plotlyjs(), "", 1)


# ----------------------------------------------------------------------------- the page


@pytest.mark.parametrize("with_spend", [False, True])
def test_report_parses_as_html(with_spend: bool) -> None:
    parser = parse(render_html(make_report(with_spend=with_spend)))

    assert parser.errors == []
    assert parser.open_elements == []
    assert parser.start_tags[0][0] == "html"


@pytest.mark.parametrize("with_spend", [False, True])
def test_plotly_bundle_inlined_once(with_spend: bool) -> None:
    page = render_html(make_report(with_spend=with_spend))

    assert page.count(get_plotlyjs()) == 1
    assert len(re.findall(r"plotly\.js v\d+\.\d+\.\d+", page)) == 1


def test_report_size_beyond_bundle() -> None:
    page = render_html(make_report(with_spend=True))

    assert len(page) - len(get_plotlyjs()) < 200_000


@pytest.mark.parametrize("with_spend", [False, True])
def test_report_has_no_external_urls(with_spend: bool) -> None:
    page = render_html(make_report(with_spend=with_spend))
    parser = parse(page)

    for tag, attributes in parser.start_tags:
        for name in ("src", "href"):
            target = attributes.get(name)
            assert target is None or target.startswith("#"), f"<{tag} {name}={target!r}>"
    # The bundle's own JavaScript names URLs in strings, so the text checks skip it.
    outside_bundle = without_plotly_bundle(page)
    assert 'src="http' not in outside_bundle
    assert 'href="http' not in outside_bundle
    assert "url(" not in outside_bundle
    assert "http://" not in outside_bundle
    assert "https://" not in outside_bundle


def test_scripts_are_bundle_and_figures_only() -> None:
    parser = parse(render_html(make_report(with_spend=True)))
    scripts = [attributes for tag, attributes in parser.start_tags if tag == "script"]

    # The bundle, then one script per figure: credit, paths, roles, spend.
    assert len(scripts) == 5
    assert all("src" not in attributes for attributes in scripts)


def test_report_names_every_channel_and_model() -> None:
    text = parse(render_html(make_report(with_spend=True))).visible_text()

    for channel in CHANNELS:
        assert channel in text
    for model in MODELS:
        assert model in text
    for path in PATHS:
        assert path in text


def test_report_shows_title_and_provenance() -> None:
    text = parse(render_html(make_report())).visible_text()

    assert "Attribution report" in text
    assert "2024-05-01 09:30+00:00" in text
    assert "journeymap 9.8.7" in text
    assert "/data/journeymap.duckdb" in text
    assert "lookback days" in text
    assert "exclude_direct=true" in text
    assert "Models that need timestamps were skipped." in text


def test_headline_numbers_formatted() -> None:
    text = parse(render_html(make_report())).visible_text()

    assert "12,345" in text
    assert "98,765.43 EUR" in text
    assert "54,321" in text
    assert "5.0% of conversions" in text
    assert "1,234.50 EUR" in text
    assert "1.2% of value" in text
    assert "2024-01-02 to 2024-03-30" in text


def test_headline_keeps_full_precision() -> None:
    page = render_html(make_report())

    assert 'data-value="98765.4321"' in page
    assert 'data-value="54321"' in page


def test_tables_keep_full_precision() -> None:
    page = render_html(make_report())

    # linear (the third model) gives the first channel 10 + 2/3 conversions.
    assert f'data-value="{10.0 + 2 / 3!r}"' in page
    assert ">10.67<" in page


def test_tables_format_shares_as_percentages() -> None:
    text = parse(render_html(make_report())).visible_text()

    assert "75.0%" in text
    assert "30.0%" in text


def test_headline_without_timestamps() -> None:
    data = make_report()
    headline = dataclasses.replace(data.headline, first_touch_at=None, last_touch_at=None)
    text = parse(render_html(dataclasses.replace(data, headline=headline))).visible_text()

    assert "No touch timestamps" in text


def test_empty_spend_shows_import_hint() -> None:
    text = parse(render_html(make_report(with_spend=False))).visible_text()

    assert "No ad spend loaded: import it with journeymap import spend FILE --platform NAME" in text
    assert "ROAS by channel and model" not in text


def test_spend_tables_when_spend_loaded() -> None:
    page = render_html(make_report(with_spend=True))
    text = parse(page).visible_text()

    assert "No ad spend loaded" not in text
    assert "Spend and return by channel (first_touch)" in text
    assert "ROAS by channel and model" in text
    assert "Spend and return by campaign (first_touch)" in text
    assert "brand-q1" in text
    assert "3,000.00" in text
    # first_touch credits 4,000 of value to 3,000 of spend.
    assert f'data-value="{4000.0 / 3000.0!r}"' in page
    assert 'id="journeymap-spend-roas"' in page


def test_spend_without_campaign_match() -> None:
    data = dataclasses.replace(
        make_report(with_spend=True), spend_by_campaign=empty_spend(CAMPAIGN_SPEND_COLUMNS)
    )
    text = parse(render_html(data)).visible_text()

    assert "Spend and return by channel (first_touch)" in text
    assert "No spend row matches a campaign" in text


def test_undefined_roas_shows_dash() -> None:
    spend = spend_frame()
    spend["cost"] = 0.0
    spend["roas"] = float("nan")
    data = dataclasses.replace(make_report(with_spend=True), spend_by_channel=spend)
    page = render_html(data)

    assert 'data-value="" title="not defined">—<' in page


def test_special_characters_escaped() -> None:
    channels = ["<script>alert(1)</script>", "A & B", "Email"]
    data = dataclasses.replace(
        make_report(with_spend=True, channels=channels),
        title='Q1 <b>"report"</b>',
        notes=["<img src=x onerror=alert(2)>"],
    )
    page = render_html(data)
    parser = parse(page)
    text = parser.visible_text()

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "A &amp; B" in page
    assert "<img" not in page
    assert "<b>" not in without_plotly_bundle(page)
    assert "<script>alert(1)</script>" in text
    assert "A & B" in text
    assert 'Q1 <b>"report"</b>' in text
    assert parser.errors == []
    assert [tag for tag, _ in parser.start_tags].count("script") == 5


def test_all_frames_empty() -> None:
    data = dataclasses.replace(
        make_report(),
        models=[],
        credit_by_channel=credit_frame().iloc[0:0],
        top_paths=paths_frame().iloc[0:0],
        channel_roles=roles_frame().iloc[0:0],
        notes=[],
    )
    page = render_html(data)
    parser = parse(page)
    text = parser.visible_text()

    assert parser.errors == []
    assert "No conversions were attributed" in text
    assert "No converting paths." in text
    assert "No converting journey has a touch" in text
    assert "No ad spend loaded" in text
    assert "No model was run." in text
    assert "No caveats were recorded" in text
    assert [tag for tag, _ in parser.start_tags].count("script") == 1


def test_render_is_deterministic() -> None:
    assert render_html(make_report(with_spend=True)) == render_html(make_report(with_spend=True))


def test_write_html_matches_render(tmp_path: Path) -> None:
    data = make_report(with_spend=True)
    target = tmp_path / "out" / "report.html"

    written = write_html(data, target)

    assert written == target
    assert target.read_bytes() == render_html(data).encode("utf-8")


# ----------------------------------------------------------------------------- the charts


def annotation_texts(fig: go.Figure) -> list[str]:
    return [annotation.text for annotation in fig.layout.annotations]


def test_credit_chart_empty() -> None:
    fig = charts.credit_by_model_figure(credit_frame().iloc[0:0])

    assert charts.is_empty_figure(fig)
    assert len(fig.data) == 0
    assert annotation_texts(fig) == ["No attributed conversions"]


def test_credit_chart_bars_per_model() -> None:
    fig = charts.credit_by_model_figure(credit_frame(), currency="EUR")

    assert not charts.is_empty_figure(fig)
    # One conversions trace and one value trace per model. The value traces start hidden.
    assert [trace.name for trace in fig.data] == MODELS + MODELS
    assert [trace.visible for trace in fig.data] == [True] * 3 + [False] * 3
    assert fig.layout.barmode == "group"
    assert list(fig.data[0].x) == ["Direct", "Email", "Paid Search"]
    buttons = fig.layout.updatemenus[0].buttons
    assert [button.label for button in buttons] == ["Conversions", "Value"]
    assert buttons[1].args[1]["yaxis.title.text"] == "Value (EUR)"


def test_credit_chart_twelve_channels_every_model() -> None:
    channels = [f"Channel {index:02d}" for index in range(12)] + ["(unattributed)"]
    models = model_names()
    fig = charts.credit_by_model_figure(credit_frame(channels, models))

    assert len(fig.data) == 2 * len(models)
    assert list(fig.data[0].x)[-1] == "(unattributed)"
    assert fig.layout.xaxis.tickangle == -30
    assert len({trace.marker.color for trace in fig.data[: len(models)]}) == len(models)


def test_top_paths_chart_empty() -> None:
    fig = charts.top_paths_figure(paths_frame().iloc[0:0])

    assert charts.is_empty_figure(fig)
    assert annotation_texts(fig) == ["No converting paths"]


def test_top_paths_chart_shares() -> None:
    fig = charts.top_paths_figure(paths_frame())

    bars = fig.data[0]
    assert bars.orientation == "h"
    assert list(bars.x) == [0.75, 0.25]
    assert list(bars.y) == ["1. Paid Search &gt; Email &gt; Direct", "2. Email"]
    assert fig.layout.yaxis.autorange == "reversed"


def test_top_paths_chart_cuts_long_labels() -> None:
    frame = paths_frame()
    long_path = " > ".join(["Paid Search"] * 20)
    frame["path"] = [long_path, long_path + " > Email"]
    fig = charts.top_paths_figure(frame)

    labels = list(fig.data[0].y)
    assert len(set(labels)) == 2
    assert all(label.endswith("…") for label in labels)
    assert "Email" in fig.data[0].hovertext[1]


def test_channel_roles_chart_empty() -> None:
    fig = charts.channel_roles_figure(roles_frame().iloc[0:0])

    assert charts.is_empty_figure(fig)
    assert annotation_texts(fig) == ["No converting journeys with touches"]


def test_channel_roles_chart_stacks_shares() -> None:
    fig = charts.channel_roles_figure(roles_frame())

    assert fig.layout.barmode == "stack"
    assert [trace.name for trace in fig.data] == ["First touch", "Middle touch", "Last touch"]
    for index in range(len(CHANNELS)):
        assert sum(trace.x[index] for trace in fig.data) == pytest.approx(1.0)


def test_spend_chart_empty() -> None:
    fig = charts.spend_roas_figure(empty_spend(SPEND_COLUMNS))

    assert charts.is_empty_figure(fig)
    assert annotation_texts(fig) == ["No spend loaded"]


def test_spend_chart_bars_and_roas_axis() -> None:
    colors = charts.model_colors(MODELS)
    fig = charts.spend_roas_figure(spend_frame(), "last_touch", colors=colors, currency="EUR")

    spend, value, roas = fig.data
    assert list(spend.y) == [3000.0]
    assert list(value.y) == [5000.0]
    assert value.marker.color == colors["last_touch"]
    assert roas.yaxis == "y2"
    assert list(roas.y) == [pytest.approx(5000.0 / 3000.0)]
    assert fig.layout.yaxis2.overlaying == "y"


def test_spend_chart_by_campaign() -> None:
    fig = charts.spend_roas_figure(spend_frame("campaign"), grain="campaign")

    assert list(fig.data[0].x) == ["brand-q1"]
    assert "first_touch" in fig.layout.title.text


def test_spend_chart_unknown_model() -> None:
    with pytest.raises(ValueError, match="not found in the spend rows"):
        charts.spend_roas_figure(spend_frame(), "w_shaped")


def test_model_colors_follow_registry() -> None:
    registered = model_names()
    first = charts.model_colors(["linear", "first_touch"])
    second = charts.model_colors(registered)

    assert first["linear"] == second["linear"]
    assert first["first_touch"] == second["first_touch"]
    assert len(set(second.values())) == len(registered)
    assert charts.model_colors(["my_model"])["my_model"] == charts.MODEL_PALETTE[len(registered)]


def test_chart_labels_escaped_for_plotly() -> None:
    fig = charts.credit_by_model_figure(credit_frame(["<b>x</b>", "A & B"]))

    assert set(fig.data[0].x) == {"&lt;b&gt;x&lt;/b&gt;", "A &amp; B"}
