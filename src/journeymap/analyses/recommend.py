"""Recommendations: rules over the measured figures that name a problem and what to do about it.

Each rule reads the store through the existing analyses (coverage, attribution credits, deal
stages, blind spots, conversions) and returns zero or more :class:`Recommendation`. A rule
fires only when its figures pass the thresholds of the ``recommendations`` section of the
configuration, and its evidence table lists those figures with their units beside the
thresholds. The rules are in :mod:`journeymap.analyses.recommend_rules`:

======================  ==================================================================
rule                    fires when
======================  ==================================================================
uncovered_stage         a journey stage loses many entrants and no campaign targets it
undervalued_channel     Markov credits a channel far more than last-click does
segment_stall           an industry, region or owner stays far longer in a deal stage and
                        moves on less often than the other deals
tracking_gap            a share of won revenue has no tracked touch at all
unsynced_conversions    many conversions of a kind carry ad click ids but no sync sends them
period_drop             a channel's stage-to-stage rate fell between two halves of the data
                        by more than the other channels' rate did
======================  ==================================================================

A rule whose data the store lacks (no spend, no deals, no touches) returns nothing, and its
name goes into the ``skipped`` notes of :class:`Recommendations`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from journeymap.common.config import Config
from journeymap.store.store import Store

log = logging.getLogger("journeymap")

Severity = Literal["high", "medium", "low"]
SEVERITY_ORDER: dict[str, int] = {"high": 0, "medium": 1, "low": 2}
EVIDENCE_COLUMNS = ("measure", "value", "unit", "threshold")


@dataclass(frozen=True)
class Recommendation:
    """One finding: what is wrong, where, the figures behind it, and what to do.

    ``concerns`` names the stage, channel, segment or conversion kind, such as
    ``{"segment": "industry", "value": "Software", "stage": "Demo Scheduled"}``.
    ``evidence`` has the columns ``measure``, ``value`` (a number), ``unit`` and
    ``threshold`` (the configured limit as text, empty for context rows). ``chart`` names the
    report or dashboard page that shows the figures: ``coverage``, ``attribution``,
    ``velocity``, ``blindspots``, ``sync`` or ``funnel``.
    """

    id: str
    rule: str
    title: str
    severity: Severity
    concerns: dict[str, str]
    why: str
    evidence: pd.DataFrame
    action: str
    chart: str

    def to_dict(self) -> dict[str, Any]:
        """Return the recommendation as JSON-ready values (evidence as a list of rows)."""
        rows = [
            {
                "measure": str(row.measure),
                "value": _number(row.value),
                "unit": str(row.unit),
                "threshold": str(row.threshold),
            }
            for row in self.evidence.itertuples(index=False)
        ]
        return {
            "id": self.id,
            "rule": self.rule,
            "title": self.title,
            "severity": self.severity,
            "concerns": dict(self.concerns),
            "why": self.why,
            "evidence": rows,
            "action": self.action,
            "chart": self.chart,
        }


@dataclass(frozen=True)
class Recommendations:
    """The recommendations of a store, most severe first, and notes on rules that could not run."""

    items: list[Recommendation]
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recommendations": [item.to_dict() for item in self.items],
            "skipped": list(self.skipped),
        }


class MissingInputError(Exception):
    """Raised by a rule whose input tables are empty; the message names the missing tables."""


def evidence(rows: list[tuple[str, float | int | None, str, str]]) -> pd.DataFrame:
    """Build an evidence table from ``(measure, value, unit, threshold)`` rows."""
    return pd.DataFrame(rows, columns=list(EVIDENCE_COLUMNS))


def recommendations(store: Store, config: Config | None = None) -> Recommendations:
    """Run every rule on ``store`` and return what they found, most severe first.

    Ties of severity keep the rule order of the module docstring, then the order each rule
    gives (largest effect first).
    """
    from journeymap.analyses.recommend_rules import RULES

    config = config or Config()
    found: list[Recommendation] = []
    skipped: list[str] = []
    for name, rule in RULES.items():
        try:
            found.extend(rule(store, config))
        except MissingInputError as exc:
            skipped.append(f"{name}: {exc}")
            log.info("recommendation rule %s skipped: %s", name, exc)
    found.sort(key=lambda item: SEVERITY_ORDER[item.severity])
    log.info("recommendations: %d found, %d rules skipped", len(found), len(skipped))
    return Recommendations(items=found, skipped=skipped)


def to_markdown(result: Recommendations) -> str:
    """Render recommendations as Markdown: a heading per finding and its evidence table."""
    lines: list[str] = ["# Recommendations", ""]
    if not result.items:
        lines += ["No rule fired.", ""]
    for number, item in enumerate(result.items, start=1):
        lines += [
            f"## {number}. {item.title}",
            "",
            f"**Severity:** {item.severity} · **Rule:** `{item.rule}` · **Chart:** `{item.chart}`",
            "",
            item.why,
            "",
            "| measure | value | unit | threshold |",
            "|---|---:|---|---|",
        ]
        for row in item.evidence.itertuples(index=False):
            shown = format_value(row.value)
            lines.append(f"| {row.measure} | {shown} | {row.unit} | {row.threshold} |")
        lines += ["", f"**Action:** {item.action}", ""]
    if result.skipped:
        lines += ["Rules not run:", ""]
        lines += [f"- {note}" for note in result.skipped]
        lines.append("")
    return "\n".join(lines)


def format_value(value: object) -> str:
    """Format an evidence value: whole thousands for large numbers, four digits otherwise."""
    number = _number(value)
    if number is None:
        return ""
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.4g}"


def _number(value: object) -> float | int | None:
    if value is None or pd.isna(value):  # type: ignore[call-overload]
        return None
    if isinstance(value, int):
        return value
    number = float(value)  # type: ignore[arg-type]
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


RuleFunction = Callable[[Store, Config], list[Recommendation]]
