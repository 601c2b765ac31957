"""Report layout: model order, folded campaign rows, money formats, the headline and spend."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pandas as pd
import pytest

from journeymap.attribution import model_names
from journeymap.report import ReportData, charts, render_html
from tests.report.test_html import (
    CAMPAIGN_SPEND_COLUMNS,
    MODELS,
    credit_frame,
    make_report,
    parse,
)

REGISTRY = model_names()


@dataclass
class ParsedCell:
    text: str
    attributes: dict[str, str | None]

    @property
    def value(self) -> float:
        return float(self.attributes["data-value"] or "nan")


@dataclass
class ParsedTable:
    caption: str = ""
    header: list[str] = field(default_factory=list)
    body: list[list[ParsedCell]] = field(default_factory=list)
    footer: list[ParsedCell] = field(default_factory=list)

    def labels(self) -> list[str]:
        return [row[0].text for row in self.body]

    def row(self, label: str) -> list[ParsedCell]:
        matches = [row for row in self.body if row[0].text == label]
        assert len(matches) == 1, f"{len(matches)} rows labelled {label!r} in {self.caption!r}"
        return matches[0]


class TableParser(HTMLParser):
    """Collect every table of a page: caption, header labels, body rows and footer row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[ParsedTable] = []
        self.section = ""
        self.cell: ParsedCell | None = None
        self.in_caption = False
        self.row: list[ParsedCell] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append(ParsedTable())
        elif tag in {"thead", "tbody", "tfoot"}:
            self.section = tag
        elif tag == "caption":
            self.in_caption = True
        elif tag == "tr":
            self.row = []
        elif tag in {"th", "td"}:
            self.cell = ParsedCell("", dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self.in_caption = False
        elif tag in {"th", "td"} and self.cell is not None:
            self.cell.text = self.cell.text.strip()
            self.row.append(self.cell)
            self.cell = None
        elif tag == "tr":
            table = self.tables[-1]
            if self.section == "thead":
                table.header = [cell.text for cell in self.row]
            elif self.section == "tbody":
                table.body.append(self.row)
            elif self.section == "tfoot":
                table.footer = self.row

    def handle_data(self, data: str) -> None:
        if self.in_caption:
            self.tables[-1].caption += data
        elif self.cell is not None:
            self.cell.text += data


def tables_of(page: str) -> dict[str, ParsedTable]:
    parser = TableParser()
    parser.feed(page)
    parser.close()
    return {table.caption: table for table in parser.tables}


def campaign_credit(count: int, models: list[str] = MODELS) -> pd.DataFrame:
    """Credit for ``count`` campaigns: campaign-00 has the most, and each model differs."""
    rows = []
    for model_index, model in enumerate(models):
        for index in range(count):
            conversions = (count - index) + model_index / 7
            rows.append(
                {
                    "model": model,
                    "campaign": f"campaign-{index:02d}",
                    "conversions": conversions,
                    "value": conversions * 1234.567,
                }
            )
    return pd.DataFrame(rows)


def campaign_spend(costs: dict[str, float], models: list[str] = MODELS) -> pd.DataFrame:
    rows = []
    for model_index, model in enumerate(models):
        for campaign, cost in costs.items():
            value = 5000.0 + 100.0 * model_index
            rows.append(
                {
                    "model": model,
                    "campaign": campaign,
                    "conversions": 2.0,
                    "value": value,
                    "cost": cost,
                    "roas": value / cost if cost else float("nan"),
                    "cost_per_conversion": cost / 2.0,
                }
            )
    return pd.DataFrame(rows, columns=CAMPAIGN_SPEND_COLUMNS)


def with_campaigns(credit: pd.DataFrame) -> ReportData:
    return dataclasses.replace(make_report(with_spend=True), credit_by_campaign=credit)


# ----------------------------------------------------------------------------- model order


def test_credit_chart_defaults_to_registry_order() -> None:
    credit = credit_frame(models=sorted(REGISTRY))

    fig = charts.credit_by_model_figure(credit)

    assert [trace.name for trace in fig.data] == REGISTRY + REGISTRY


def test_credit_chart_follows_given_order() -> None:
    order = ["linear", "first_touch", "last_touch"]

    fig = charts.credit_by_model_figure(credit_frame(), models=order)

    assert [trace.name for trace in fig.data] == order + order


def test_credit_chart_appends_unlisted_models() -> None:
    credit = credit_frame(models=["my_model", "linear", "first_touch"])

    fig = charts.credit_by_model_figure(credit, models=["linear"])

    assert [trace.name for trace in fig.data[:3]] == ["linear", "first_touch", "my_model"]


def test_registry_order_puts_unknown_last() -> None:
    assert charts.registry_order(["zeta", "custom", "linear", "alpha", "first_touch"]) == [
        "first_touch",
        "linear",
        "custom",
        "zeta",
        "alpha",
    ]


def test_report_follows_run_order() -> None:
    """Tables and the chart follow ``ReportData.models``, not the frames' alphabetical order."""
    credit = credit_frame(models=sorted(REGISTRY))
    data = dataclasses.replace(
        make_report(),
        models=[{"model": name, "parameters": {}, "version": "1"} for name in REGISTRY],
        credit_by_channel=credit,
    )

    page = render_html(data)
    tables = tables_of(page)

    assert tables["Conversions by channel and model"].header == ["Channel", *REGISTRY]
    assert tables["Value by channel and model (EUR)"].header == ["Channel", *REGISTRY]
    legend = [f'"name":"{name}"' for name in REGISTRY]
    positions = [page.index(entry) for entry in legend]
    assert positions == sorted(positions)


# ----------------------------------------------------------------------------- campaign rows


def test_campaign_fold_keeps_totals() -> None:
    credit = campaign_credit(40)
    tables = tables_of(render_html(with_campaigns(credit)))

    for caption, measure in (
        ("Conversions by campaign and model", "conversions"),
        ("Value by campaign and model (EUR)", "value"),
    ):
        table = tables[caption]
        assert len(table.body) == 16
        assert table.labels()[:15] == [f"campaign-{index:02d}" for index in range(15)]
        assert table.labels()[15] == "Other campaigns (25)"
        for column, model in enumerate(MODELS, start=1):
            expected = credit.loc[credit["model"] == model, measure].sum()
            body_sum = sum(row[column].value for row in table.body)
            assert body_sum == pytest.approx(expected)
            assert table.footer[column].value == pytest.approx(expected)
            folded = credit[(credit["model"] == model) & (credit["campaign"] >= "campaign-15")]
            other = table.row("Other campaigns (25)")[column].value
            assert other == pytest.approx(folded[measure].sum())


def test_campaign_fold_says_how_many() -> None:
    text = parse(render_html(with_campaigns(campaign_credit(40)))).visible_text()

    assert "The table lists the 15 campaigns with the most conversions" in text
    assert "The other 25 are summed in one row" in text


def test_campaign_fold_needs_two_extra() -> None:
    tables = tables_of(render_html(with_campaigns(campaign_credit(16))))

    table = tables["Conversions by campaign and model"]
    assert len(table.body) == 16
    assert not any(label.startswith("Other campaigns") for label in table.labels())


def test_campaign_fold_keeps_unattributed_last() -> None:
    credit = campaign_credit(20)
    credit.loc[credit["campaign"] == "campaign-19", "campaign"] = "(unattributed)"
    tables = tables_of(render_html(with_campaigns(credit)))

    labels = tables["Conversions by campaign and model"].labels()
    assert labels[-2:] == ["Other campaigns (4)", "(unattributed)"]


def test_channel_tables_not_folded() -> None:
    channels = [f"Channel {index:02d}" for index in range(30)]
    data = dataclasses.replace(make_report(), credit_by_channel=credit_frame(channels))

    table = tables_of(render_html(data))["Conversions by channel and model"]

    assert len(table.body) == 30


# ----------------------------------------------------------------------------- money


def test_wide_table_money_whole_above_thousand() -> None:
    table = tables_of(render_html(make_report()))["Value by channel and model (EUR)"]

    # first_touch credits Paid Search 10 conversions worth 1,000.5 each.
    cell = table.row("Paid Search")[1]
    assert cell.text == "10,005"
    assert cell.value == 10005.0
    linear = table.row("Paid Search")[3]
    assert linear.text == "10,672"
    assert linear.value == pytest.approx((10.0 + 2 / 3) * 1000.5)


def test_wide_table_money_small_keeps_cents() -> None:
    credit = credit_frame()
    credit["value"] = credit["conversions"] * 1.5
    data = dataclasses.replace(make_report(), credit_by_channel=credit)

    table = tables_of(render_html(data))["Value by channel and model (EUR)"]

    assert table.row("Paid Search")[1].text == "15.00"


def test_whole_money_has_no_negative_zero() -> None:
    credit = credit_frame()
    credit.loc[0, "value"] = -0.2
    data = dataclasses.replace(make_report(), credit_by_channel=credit)

    table = tables_of(render_html(data))["Value by channel and model (EUR)"]

    assert table.row("Paid Search")[1].text == "0"


def test_counts_near_whole_show_no_decimals() -> None:
    credit = credit_frame()
    credit["conversions"] = [0.1, 0.2, 0.7 - 1e-13] * 3
    data = dataclasses.replace(make_report(), credit_by_channel=credit)

    table = tables_of(render_html(data))["Conversions by channel and model"]

    assert table.footer[1].text == "1"


# ----------------------------------------------------------------------------- headline


def headline_figure(page: str, label: str) -> ParsedCell:
    """Return the figure of the headline card labelled ``label``."""

    class CardParser(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.stack: list[tuple[str, dict[str, str | None]]] = []
            self.cards: list[list[ParsedCell]] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            attributes = dict(attrs)
            self.stack.append((tag, attributes))
            classes = (attributes.get("class") or "").split()
            if "card" in classes:
                self.cards.append([])
            elif self.cards and tag == "div":
                self.cards[-1].append(ParsedCell("", attributes))

        def handle_endtag(self, tag: str) -> None:
            self.stack.pop()

        def handle_data(self, data: str) -> None:
            if self.cards and self.cards[-1] and self.stack and self.stack[-1][0] == "div":
                self.cards[-1][-1].text += data

    parser = CardParser()
    parser.feed(page)
    for parts in parser.cards:
        if parts and parts[0].text.strip() == label:
            # The text after a figure's </div> is whitespace that lands on it, so strip it.
            return ParsedCell(parts[1].text.strip(), parts[1].attributes)
    raise AssertionError(f"no headline card labelled {label!r}")


def with_value(value: float, currency: str) -> str:
    data = make_report()
    headline = dataclasses.replace(data.headline, value=value, currency=currency)
    return render_html(dataclasses.replace(data, headline=headline))


@pytest.mark.parametrize(
    ("value", "currency", "text", "title"),
    [
        (3_671_600.0, "USD", "$3.67M", "3,671,600.00 USD"),
        (3_671_600.0, "SEK", "3.67M SEK", "3,671,600.00 SEK"),
        (512_500.0, "EUR", "€512K", "512,500.00 EUR"),
        (999_950.0, "USD", "$1.00M", "999,950.00 USD"),
        (2.5e9, "GBP", "£2.50B", "2,500,000,000.00 GBP"),
        (100_000.0, "", "100K", "100,000.00"),
    ],
)
def test_headline_money_compact(value: float, currency: str, text: str, title: str) -> None:
    figure = headline_figure(with_value(value, currency), "Value")

    assert figure.text == text
    assert figure.attributes["title"] == title
    assert figure.value == value


def test_headline_money_below_compact_stays_full() -> None:
    figure = headline_figure(with_value(99_999.5, "USD"), "Value")

    assert figure.text == "99,999.50 USD"
    assert "title" not in figure.attributes


def test_headline_numbers_do_not_wrap() -> None:
    figure = headline_figure(with_value(3_671_600.0, "USD"), "Value")

    assert "number" in (figure.attributes["class"] or "").split()


def test_headline_names_kind() -> None:
    text = parse(render_html(dataclasses.replace(make_report(), kind="closed_won"))).visible_text()

    assert "All figures are for closed_won conversions." in text


def test_headline_without_kind() -> None:
    data = make_report()
    text = parse(render_html(data)).visible_text()

    assert data.kind is None
    assert data.primary_model is None
    assert "All figures are for" not in text


def test_headline_date_range_in_two_parts() -> None:
    figure = headline_figure(render_html(make_report()), "Date range")

    assert figure.text == "2024-01-02"
    assert figure.attributes["title"] == "2024-01-02T08:00:00+00:00 to 2024-03-30T17:45:00+00:00"


# ----------------------------------------------------------------------------- spend


def test_spend_uses_primary_model() -> None:
    data = dataclasses.replace(make_report(with_spend=True), primary_model="linear")
    text = parse(render_html(data)).visible_text()

    assert "Spend and return by channel (linear)" in text
    assert "Spend and return by campaign (linear)" in text
    assert "Spend and ROAS by channel (linear)" in render_html(data)


def test_spend_primary_model_without_rows() -> None:
    data = dataclasses.replace(make_report(with_spend=True), primary_model="w_shaped")
    text = parse(render_html(data)).visible_text()

    assert "Spend and return by channel (first_touch)" in text


def test_campaign_roas_only_with_spend() -> None:
    spend = campaign_spend({"paid-a": 500.0, "organic-b": 0.0, "paid-c": 2500.0})
    data = dataclasses.replace(make_report(with_spend=True), spend_by_campaign=spend)
    tables = tables_of(render_html(data))

    for caption in ("ROAS by campaign and model", "Spend and return by campaign (first_touch)"):
        assert tables[caption].labels() == ["paid-c", "paid-a"]


def test_campaign_zero_spend_only() -> None:
    spend = campaign_spend({"organic-b": 0.0})
    data = dataclasses.replace(make_report(with_spend=True), spend_by_campaign=spend)
    text = parse(render_html(data)).visible_text()

    assert "The campaigns that match spend rows have a spend of 0." in text
    assert "ROAS by campaign and model" not in text


def test_spend_rows_by_spend_largest_first() -> None:
    costs = {"a-small": 100.0, "b-large": 9000.0, "c-middle": 4000.0, "d-middle": 4000.0}
    data = dataclasses.replace(
        make_report(with_spend=True), spend_by_campaign=campaign_spend(costs)
    )
    tables = tables_of(render_html(data))

    expected = ["b-large", "c-middle", "d-middle", "a-small"]
    assert tables["ROAS by campaign and model"].labels() == expected
    assert tables["Spend and return by campaign (first_touch)"].labels() == expected


def test_spend_missing_model_row_is_zero() -> None:
    """A model that credits a campaign with spend nothing has ROAS 0 there, not a dash."""
    spend = campaign_spend({"paid-a": 500.0, "paid-c": 2500.0})
    spend = spend[~((spend["model"] == "first_touch") & (spend["campaign"] == "paid-a"))]
    data = dataclasses.replace(make_report(with_spend=True), spend_by_campaign=spend)
    tables = tables_of(render_html(data))

    roas = tables["ROAS by campaign and model"].row("paid-a")
    assert roas[2].text == "0.00"
    spend_table = tables["Spend and return by campaign (first_touch)"]
    assert spend_table.labels() == ["paid-c", "paid-a"]
    assert spend_table.row("paid-a")[2].text == "0"
    assert spend_table.footer[1].value == pytest.approx(3000.0)


def test_spend_campaign_fold_keeps_totals() -> None:
    costs = {f"campaign-{index:02d}": 1000.0 + 10.0 * (30 - index) for index in range(30)}
    spend = campaign_spend(costs)
    data = dataclasses.replace(make_report(with_spend=True), spend_by_campaign=spend)
    tables = tables_of(render_html(data))

    roas = tables["ROAS by campaign and model"]
    assert len(roas.body) == 16
    assert roas.labels()[-1] == "Other campaigns (15)"
    assert sum(row[1].value for row in roas.body) == pytest.approx(sum(costs.values()))
    assert roas.footer[1].value == pytest.approx(sum(costs.values()))
    folded_cost = sum(cost for name, cost in costs.items() if name >= "campaign-15")
    other = roas.row("Other campaigns (15)")
    assert other[1].value == pytest.approx(folded_cost)
    # Every campaign has 5,000 of first_touch value, so the folded row earns 15 times that.
    assert other[2].value == pytest.approx(15 * 5000.0 / folded_cost)

    table = tables["Spend and return by campaign (first_touch)"]
    assert table.labels()[-1] == "Other campaigns (15)"
    assert sum(row[1].value for row in table.body) == pytest.approx(sum(costs.values()))
    assert sum(row[3].value for row in table.body) == pytest.approx(30 * 5000.0)
    assert table.footer[3].value == pytest.approx(30 * 5000.0)


def test_roas_table_spend_whole_units() -> None:
    table = tables_of(render_html(make_report(with_spend=True)))["ROAS by channel and model"]

    assert table.row("Paid Search")[1].text == "3,000"
    assert table.row("Paid Search")[1].value == 3000.0
