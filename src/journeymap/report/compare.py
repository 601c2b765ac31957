"""Compare two journey maps: what changed between two snapshots or two periods.

:func:`compare` takes two :meth:`~journeymap.report.map.JourneyMap.to_dict` structures (the
``map`` of two snapshots, or two maps measured now) and lists, for every stage, path and
channel that either map has, the figure before, after and the change. A change **matters**
under :class:`ChangeRule`, so that a review looks at the few changes that are not noise:

- A share (a stage's conversion rate, its stalled share of entrants, a path's share of
  winning customers, a channel's share of won-conversion credit) matters when it moved by at
  least ``rate_points`` percentage points, both maps have at least ``min_entities`` behind it
  (entrants, winning customers or won conversions), and a two-sided two-proportion z-test
  gives a p-value below ``alpha``.
- A stage's median days matter when both maps have ``min_entities`` completed stays and the
  median moved by at least ``days_ratio`` of its earlier value and by at least ``min_days``.

A path or channel missing from one map shows a null there and never matters on its own,
because a list cut at its top rows does not tell its count.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from scipy.stats import norm

from journeymap.common.errors import ConfigError
from journeymap.report.map import MAP_FORMAT, JourneyMap

SECTIONS = ("stage rate", "stalled share", "median days", "top path", "channel credit")
"""Kinds of change, in the order the output lists them."""


@dataclass(frozen=True)
class ChangeRule:
    """When a change matters; see the module docstring."""

    rate_points: float = 5.0
    """Smallest change of a share that matters, in percentage points."""
    min_entities: int = 30
    """Entities (entrants, winning customers, won conversions) each map needs behind a figure."""
    alpha: float = 0.05
    """Largest p-value of the two-proportion z-test for which a share change matters."""
    days_ratio: float = 0.2
    """Smallest relative change of a median that matters (0.2 is 20 %)."""
    min_days: float = 1.0
    """Smallest absolute change of a median that matters, in days."""

    def __post_init__(self) -> None:
        if self.rate_points < 0 or self.min_entities < 1 or self.days_ratio < 0:
            raise ConfigError(
                "the change rule needs rate_points and days_ratio of 0 or more and "
                f"min_entities of 1 or more, got {self}",
                hint="Pass --rate-points 5 --min-entities 30, or leave them out",
            )
        if not 0 < self.alpha <= 1:
            raise ConfigError(
                f"alpha must be in (0, 1], got {self.alpha}", hint="Use 0.05, or leave it out"
            )


@dataclass(frozen=True)
class Change:
    """One compared figure. Shares are fractions; ``change`` is in percentage points for them."""

    section: str
    item: str
    before: float | None
    after: float | None
    change: float | None
    unit: str
    """``pp`` (percentage points) for shares, ``days`` for medians."""
    base_before: float | None
    """Entities behind the figure in the earlier map."""
    base_after: float | None
    p_value: float | None
    matters: bool


@dataclass(frozen=True)
class Comparison:
    """The changes between two maps, with the labels and the rule used."""

    before: str
    after: str
    rule: ChangeRule
    changes: tuple[Change, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def highlights(self) -> tuple[Change, ...]:
        """The changes that matter under the rule."""
        return tuple(change for change in self.changes if change.matters)

    def to_frame(self) -> pd.DataFrame:
        """Return one row per change: the :class:`Change` fields, changes that matter first."""
        columns = list(Change.__dataclass_fields__)
        return pd.DataFrame([asdict(change) for change in self.changes], columns=columns)

    def to_dict(self) -> dict[str, Any]:
        """Return the comparison as JSON-ready data (NaN as None)."""
        return {
            "before": self.before,
            "after": self.after,
            "rule": asdict(self.rule),
            "changes": [asdict(change) for change in self.changes],
            "notes": list(self.notes),
        }


def compare(
    before: JourneyMap | dict[str, Any],
    after: JourneyMap | dict[str, Any],
    *,
    labels: tuple[str, str] = ("before", "after"),
    rule: ChangeRule | None = None,
) -> Comparison:
    """Return the changes from the map ``before`` to the map ``after``.

    Each map is a :class:`JourneyMap`, its ``to_dict()``, or a snapshot document.

    Raises:
        ConfigError: a map is not in the :data:`~journeymap.report.map.MAP_FORMAT` layout.
    """
    rule = rule or ChangeRule()
    old, new = _map_data(before, labels[0]), _map_data(after, labels[1])
    changes = [
        *_stage_changes(old, new, rule),
        *_path_changes(old, new, rule),
        *_channel_changes(old, new, rule),
    ]
    order = {section: index for index, section in enumerate(SECTIONS)}
    changes.sort(
        key=lambda item: (
            not item.matters,
            order[item.section],
            -abs(item.change) if item.change is not None else 0.0,
            item.item,
        )
    )
    return Comparison(
        before=labels[0],
        after=labels[1],
        rule=rule,
        changes=tuple(changes),
        notes=tuple(_notes(old, new, labels)),
    )


def _map_data(item: JourneyMap | dict[str, Any], label: str) -> dict[str, Any]:
    data = item.to_dict() if isinstance(item, JourneyMap) else item
    if isinstance(data.get("map"), dict):
        # A whole snapshot document: its map is under "map".
        data = data["map"]
    if data.get("format") != MAP_FORMAT:
        raise ConfigError(
            f"{label} is not a journey map of format {MAP_FORMAT!r} (got {data.get('format')!r})",
            hint="Compare snapshots written by journeymap snapshot, or the map key of one",
        )
    return data


def _notes(old: dict[str, Any], new: dict[str, Any], labels: tuple[str, str]) -> list[str]:
    notes = []
    for key in ("model", "lookback_days", "entity", "segment"):
        if old["filters"][key] != new["filters"][key]:
            notes.append(
                f"The maps differ in {key}: {old['filters'][key]} in {labels[0]}, "
                f"{new['filters'][key]} in {labels[1]}; some changes come from that."
            )
    old_stages = [stage["name"] for stage in old["stages"]]
    new_stages = [stage["name"] for stage in new["stages"]]
    if old_stages != new_stages:
        notes.append(
            f"The stages differ: {', '.join(old_stages)} in {labels[0]}; "
            f"{', '.join(new_stages)} in {labels[1]}."
        )
    return notes


def two_proportion_p_value(hits_a: float, total_a: float, hits_b: float, total_b: float) -> float:
    """Return the two-sided p-value of the pooled two-proportion z-test.

    The p-value is 1 when the pooled proportion is 0 or 1 (no variation to test).
    """
    pooled = (hits_a + hits_b) / (total_a + total_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / total_a + 1 / total_b))
    if spread == 0:
        return 1.0
    z = (hits_b / total_b - hits_a / total_a) / spread
    return float(2 * norm.sf(abs(z)))


def _share_change(
    section: str,
    item: str,
    counts: tuple[tuple[float, float] | None, tuple[float, float] | None],
    rule: ChangeRule,
) -> Change:
    """Return the change of ``hits / total`` from the first count pair to the second."""
    old, new = counts
    before = old[0] / old[1] if old and old[1] > 0 else None
    after = new[0] / new[1] if new and new[1] > 0 else None
    change = None if before is None or after is None else (after - before) * 100
    p_value = None
    matters = False
    if change is not None and old is not None and new is not None:
        p_value = two_proportion_p_value(old[0], old[1], new[0], new[1])
        enough = min(old[1], new[1]) >= rule.min_entities
        matters = enough and abs(change) >= rule.rate_points and p_value < rule.alpha
    return Change(
        section=section,
        item=item,
        before=before,
        after=after,
        change=change,
        unit="pp",
        base_before=old[1] if old else None,
        base_after=new[1] if new else None,
        p_value=p_value,
        matters=matters,
    )


def _stage_changes(old: dict[str, Any], new: dict[str, Any], rule: ChangeRule) -> list[Change]:
    old_stages = {stage["name"]: stage["figures"] for stage in old["stages"]}
    new_stages = {stage["name"]: stage["figures"] for stage in new["stages"]}
    names = list(old_stages) + [name for name in new_stages if name not in old_stages]
    changes = []
    for name in names:
        first, second = old_stages.get(name), new_stages.get(name)

        def moved(figures: dict[str, Any] | None) -> tuple[float, float] | None:
            if figures is None or figures["conversion_rate"] is None:
                return None
            return float(figures["moved_on"]), float(figures["entered"])

        def stalled(figures: dict[str, Any] | None) -> tuple[float, float] | None:
            if figures is None or figures["stalled"] is None or not figures["entered"]:
                return None
            return float(figures["stalled"]), float(figures["entered"])

        changes.append(_share_change("stage rate", name, (moved(first), moved(second)), rule))
        changes.append(
            _share_change("stalled share", name, (stalled(first), stalled(second)), rule)
        )
        changes.append(_days_change(name, first, second, rule))
    return [change for change in changes if change.before is not None or change.after is not None]


def _days_change(
    name: str, first: dict[str, Any] | None, second: dict[str, Any] | None, rule: ChangeRule
) -> Change:
    before = None if first is None else first["median_days"]
    after = None if second is None else second["median_days"]
    change = None if before is None or after is None else after - before
    matters = False
    if change is not None and first is not None and second is not None:
        enough = min(first["completed_stays"], second["completed_stays"]) >= rule.min_entities
        large = abs(change) >= max(rule.min_days, rule.days_ratio * abs(before or 0.0))
        matters = enough and large
    return Change(
        section="median days",
        item=name,
        before=before,
        after=after,
        change=change,
        unit="days",
        base_before=None if first is None else first["completed_stays"],
        base_after=None if second is None else second["completed_stays"],
        p_value=None,
        matters=matters,
    )


def _path_changes(old: dict[str, Any], new: dict[str, Any], rule: ChangeRule) -> list[Change]:
    def counts(data: dict[str, Any]) -> tuple[dict[str, float], float]:
        rows = data["top_sequences"]
        total = float(sum(row["converters"] for row in rows))
        listed = {row["path"]: float(row["converters"]) for row in rows}
        listed.pop("(other paths)", None)
        return listed, total

    old_paths, old_total = counts(old)
    new_paths, new_total = counts(new)
    names = list(old_paths) + [path for path in new_paths if path not in old_paths]
    return [
        _share_change(
            "top path",
            path,
            (
                (old_paths[path], old_total) if path in old_paths else None,
                (new_paths[path], new_total) if path in new_paths else None,
            ),
            rule,
        )
        for path in names
    ]


def _channel_changes(old: dict[str, Any], new: dict[str, Any], rule: ChangeRule) -> list[Change]:
    def counts(data: dict[str, Any]) -> tuple[dict[str, float], float]:
        rows = data["channel_credit"]
        return (
            {row["channel"]: float(row["conversions"]) for row in rows},
            float(sum(row["conversions"] for row in rows)),
        )

    old_credit, old_total = counts(old)
    new_credit, new_total = counts(new)
    names = list(old_credit) + [name for name in new_credit if name not in old_credit]
    return [
        _share_change(
            "channel credit",
            channel,
            (
                (old_credit[channel], old_total) if channel in old_credit else None,
                (new_credit[channel], new_total) if channel in new_credit else None,
            ),
            rule,
        )
        for channel in names
    ]


def render_markdown(comparison: Comparison) -> str:
    """Return the comparison as Markdown: the changes that matter, then every change."""
    lines = [f"# Journey map: {comparison.before} → {comparison.after}", ""]
    rule = comparison.rule
    lines.append(
        f"A share change matters at {rule.rate_points:g} pp or more with at least "
        f"{rule.min_entities} entities on each side and p < {rule.alpha:g}; a median at "
        f"{rule.days_ratio:.0%} and {rule.min_days:g} days or more."
    )
    for heading, changes in (
        ("Changes that matter", comparison.highlights),
        ("All changes", comparison.changes),
    ):
        lines += ["", f"## {heading}", ""]
        if not changes:
            lines.append("None.")
            continue
        lines.append(f"| | kind | item | {comparison.before} | {comparison.after} | change |")
        lines.append("|---|---|---|---:|---:|---:|")
        for change in changes:
            mark = "**◆**" if change.matters else ""
            item = change.item.replace("|", "\\|")
            lines.append(
                f"| {mark} | {change.section} | {item} | {format_value(change, change.before)} "
                f"| {format_value(change, change.after)} | {format_change(change)} |"
            )
    if comparison.notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in comparison.notes)]
    return "\n".join(lines) + "\n"


def format_value(change: Change, value: float | None) -> str:
    """Return a figure of ``change`` as text: a share in percent, a median in days."""
    if value is None:
        return "–"
    return f"{value:.1%}" if change.unit == "pp" else f"{value:,.1f}"


def format_change(change: Change) -> str:
    """Return the change with its sign and unit, such as ``+6.2 pp``."""
    if change.change is None:
        return "–"
    return f"{change.change:+,.1f} {change.unit}"
