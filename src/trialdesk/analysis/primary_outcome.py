"""The registered primary outcome counted per infusion, for a protocol that names this reading itself
(``outcomes.primary[0].infusion_time_frame``: every adverse event, counted with the infusion it follows, within
that time frame; e.g. "adverse events reported with infusion of each dose" over 183 days from the first
infusion). A protocol with ``outcome_measures`` is counted by :mod:`.outcome_report`; a protocol with neither
is refused (:class:`NoOutcomeMeasureError`), never counted some other trial's way.

Counted per infusion (first, second, ...), per dose level, per participant and in total, for all
events, related events (possibly, probably or definitely related) and grade >= 3 events; and the
number and proportion of infused participants with at least one such event, with an exact
(Clopper-Pearson) 95 % confidence interval. Which events count is :mod:`.attribution`'s reading.

Dose levels are the protocol's dose groups (:func:`trialdesk.safety.attribution.dose_group`, the one grouping
every table and plot uses): its dose levels, or a range's doses rounded half up to its ``group_step``
(e.g. 0.1 x 10^6 cells/kg: "0.5", "0.7", "1.0").

Time frame: the protocol's ``infusion_time_frame`` setting (anchor ``first_infusion`` or
``each_infusion``, days, reason); without it, ``time_frame_days`` from the first infusion. An event
after the time frame is not counted and is listed in :attr:`PrimaryOutcome.outside_time_frame` (the
events CSV, the plot's note), never dropped silently.

Pre-existing events that worsen (CTCAE practice, the rule here): a condition present before the first
infusion (an AE with onset before it, still unresolved then, or an ongoing medical-history item of the
same term) that worsens after an infusion is recorded as a new AE with onset on the day it worsened and
its new grade; that AE is counted, attributed to the infusion it follows, and the events CSV names the
pre-existing record it worsens (``worsening_of``). The pre-treatment record itself is never counted. A
post-infusion AE of the same term at the same or a lower grade than the pre-existing AE is still
counted (the investigator recorded it) and marked for checking.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
from scipy.stats import beta  # type: ignore[import-untyped]

from trialdesk.analysis.attribution import Attributed
from trialdesk.analysis.data_cut import check_enrolled
from trialdesk.protocol.model import Dose, InfusionTimeFrame, Protocol
from trialdesk.safety.attribution import attribute as attribute_event
from trialdesk.safety.attribution import dose_group
from trialdesk.trial.records import AdverseEvent, Infusion, TrialData

Scope = Literal["infusion", "dose_level", "participant", "total"]
Subset = Literal["any", "related", "grade_3_plus"]
SUBSETS: tuple[Subset, ...] = ("any", "related", "grade_3_plus")
_KEEP: dict[Subset, Callable[[Attributed], bool]] = {
    "any": lambda a: True,
    "related": lambda a: a.event.related,
    "grade_3_plus": lambda a: a.event.grade >= 3,
}
GRADE_COLOURS = {1: "#9ecae1", 2: "#fdd49e", 3: "#fc8d59", 4: "#d7301f", 5: "#252525"}


class NoOutcomeMeasureError(ValueError):
    """The protocol says neither how its primary outcome is counted nor that it is every event per infusion."""

    def __init__(self, protocol_id: str, measure_id: str | None = None) -> None:
        if measure_id is not None:
            message = (f"protocol {protocol_id} counts its primary outcome as its outcome measure {measure_id!r}, not every adverse"
                       " event per infusion; report that measure (trialdesk report primary-outcome does)")
        else:
            message = (f"protocol {protocol_id} does not say how its primary outcome is counted: add an outcome_measures entry"
                       " with primary: true (what is counted, which events, the window, the groups), or"
                       " outcomes.primary[0].infusion_time_frame to count every adverse event with the infusion it follows")
        super().__init__(message)
        self.protocol_id = protocol_id


def dose_level(protocol: Protocol, infusion: Infusion) -> str:
    """The infusion's dose group key in files (``"DL2"``, ``"0.7"``): the one grouping of every table and plot."""
    return dose_group(protocol.study_intervention.dose_spec, infusion).key


def time_frame_of(protocol: Protocol) -> InfusionTimeFrame:
    """The primary outcome's time frame setting (from ``time_frame_days`` when the file names no anchor)."""
    outcome = protocol.outcomes.primary[0]
    if outcome.infusion_time_frame is not None:
        return outcome.infusion_time_frame
    if outcome.time_frame_days is None:
        raise ValueError(f"{protocol.id}: outcomes.primary[0] has neither infusion_time_frame nor time_frame_days;"
                         " the count needs the time frame in days")
    return InfusionTimeFrame(anchor="first_infusion", days=outcome.time_frame_days,
                             reason="time_frame_days from the first infusion (no infusion_time_frame in the protocol file)")


def classify(data: TrialData, frame: InfusionTimeFrame) -> list[Attributed]:
    """Every adverse event of the cut with its infusion, or why it is not counted, under ``frame``."""
    out: list[Attributed] = []
    for ae in sorted(data.adverse_events, key=lambda a: (a.subject_id, a.onset, a.id)):
        a = attribute_event(ae, data.infusions, frame.days)
        if a.first_infusion is None:
            out.append(Attributed(ae, None, None, "not_infused"))
        elif a.infusion is None:
            out.append(Attributed(ae, None, a.study_day, "before_first_infusion"))
        else:
            since = a.study_day if frame.anchor == "first_infusion" else a.days_after_infusion
            inside = since is not None and 0 <= since <= frame.days
            out.append(Attributed(ae, a.infusion, a.study_day, None if inside else "after_window"))
    return out


def pre_existing(ae: AdverseEvent, data: TrialData) -> str | None:
    """The pre-existing record of the same term that a post-infusion AE worsens: 'A1 (grade 1)' or 'MH-3', else None."""
    own = data.infusions_of(ae.subject_id)
    if not own:
        return None
    first = min(i.date for i in own)
    if ae.onset < first:
        return None
    term = ae.term.casefold()
    for other in data.adverse_events:
        if other.subject_id == ae.subject_id and other.term.casefold() == term and other.onset < first \
                and (other.resolved is None or other.resolved >= first):
            return f"{other.id} (grade {other.grade})" + ("" if ae.grade > other.grade else "; not a higher grade: check")
    for mh in data.medical_history:
        if mh.subject_id == ae.subject_id and mh.term.casefold() == term and (mh.ongoing or mh.end_date is None or mh.end_date >= first):
            return f"medical history {mh.id}"
    return None


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial confidence interval for k successes in n trials (0 and 1 at the ends)."""
    if n == 0:
        return (0.0, 1.0)
    alpha = 1 - confidence
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return (low, high)


@dataclass(frozen=True)
class CountRow:
    """Events and participants in one group (an infusion number, a dose level, a participant, or all)."""

    scope: Scope
    key: str
    participants_at_risk: int
    events: int
    related_events: int
    grade_3_plus_events: int
    participants_with_event: int
    participants_with_related: int
    participants_with_grade_3_plus: int


@dataclass(frozen=True)
class Proportion:
    """Infused participants with at least one event of ``subset``, with its exact 95 % CI."""

    subset: Subset
    participants: int
    at_risk: int
    ci_low: float
    ci_high: float

    @property
    def proportion(self) -> float:
        return self.participants / self.at_risk if self.at_risk else 0.0


@dataclass(frozen=True)
class PrimaryOutcome:
    protocol_id: str
    cutoff: dt.date
    measure: str
    time_frame: str
    window_days: int
    rows: list[CountRow]
    proportions: list[Proportion]
    events: list[Attributed]  # every event of the cut, counted or with the reason it is not
    note: str | None = None
    time_frame_rule: str = ""  # the protocol's setting, as a sentence
    worsening: dict[str, str] | None = None  # AE id -> the pre-existing record it worsens
    dose_spec: Dose | None = None  # the protocol's dose, whose groups the dose levels are

    @property
    def outside_time_frame(self) -> list[Attributed]:
        """Events after an infusion but beyond the time frame: not counted, and shown (never dropped silently)."""
        return [a for a in self.events if a.excluded == "after_window"]

    def row(self, scope: Scope, key: str) -> CountRow:
        for r in self.rows:
            if r.scope == scope and r.key == key:
                return r
        raise KeyError(f"no {scope} row {key!r}")

    def proportion(self, subset: Subset) -> Proportion:
        return next(p for p in self.proportions if p.subset == subset)

    @property
    def total(self) -> CountRow:
        return self.row("total", "all")

    @property
    def counted(self) -> list[Attributed]:
        return [a for a in self.events if a.counted]

    def counts_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([
            "scope", "key", "participants_at_risk", "events", "related_events", "grade_3_plus_events",
            "participants_with_event", "participants_with_related", "participants_with_grade_3_plus",
        ])
        for r in self.rows:
            w.writerow([
                r.scope, r.key, r.participants_at_risk, r.events, r.related_events, r.grade_3_plus_events,
                r.participants_with_event, r.participants_with_related, r.participants_with_grade_3_plus,
            ])
        return buf.getvalue()

    def participants_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["subset", "participants", "at_risk", "proportion", "ci95_low", "ci95_high", "method"])
        for p in self.proportions:
            w.writerow([p.subset, p.participants, p.at_risk, f"{p.proportion:.4f}", f"{p.ci_low:.4f}", f"{p.ci_high:.4f}",
                        "Clopper-Pearson exact"])
        return buf.getvalue()

    def events_csv(self) -> str:
        """One line per adverse event of the cut: where it was counted, or why not."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["ae_id", "subject_id", "term", "grade", "related", "serious", "day_from_first_infusion",
                    "infusion", "dose_level", "counted", "excluded_because", "worsening_of"])
        worse = self.worsening or {}
        for a in self.events:
            ae = a.event
            w.writerow([ae.id, ae.subject_id, ae.term, ae.grade, "Y" if ae.related else "N", "Y" if ae.serious else "N",
                        "" if a.day is None else a.day, a.infusion.number if a.infusion and a.counted else "",
                        dose_group(self.dose_spec, a.infusion).key if a.infusion and a.counted else "", "Y" if a.counted else "N",
                        "after_time_frame" if a.excluded == "after_window" else (a.excluded or ""), worse.get(ae.id, "")])
        return buf.getvalue()

    def to_csv(self, directory: Path) -> list[Path]:
        """Write ``primary_outcome_counts.csv``, ``primary_outcome_participants.csv`` and
        ``primary_outcome_events.csv`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in (("counts", self.counts_csv()), ("participants", self.participants_csv()), ("events", self.events_csv())):
            path = directory / f"primary_outcome_{name}.csv"
            path.write_text(text, encoding="utf-8")
            written.append(path)
        return written

    def plot(self, directory: Path, stem: str = "primary_outcome") -> list[Path]:
        """Bars per infusion, stacked by CTCAE grade; written as PNG and SVG."""
        directory.mkdir(parents=True, exist_ok=True)
        numbers = sorted({int(r.key) for r in self.rows if r.scope == "infusion"})
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        bottoms = [0] * len(numbers)
        for grade, colour in GRADE_COLOURS.items():
            heights = [sum(1 for a in self.counted if a.infusion and a.infusion.number == n and a.event.grade == grade) for n in numbers]
            if any(heights):
                ax.bar([str(n) for n in numbers], heights, bottom=bottoms, color=colour, edgecolor="black", linewidth=0.5,
                       label=f"Grade {grade}")
                bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        ax.set_xlabel("Infusion")
        ax.set_ylabel("Adverse events")
        ax.set_title(f"{self.measure}: events within {self.time_frame} of the first infusion", fontsize=10)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        notes = [self.note] if self.note else []
        outside = self.outside_time_frame
        if outside:
            listed = ", ".join(f"{a.event.id} (day {a.day})" for a in outside[:6]) + (" ..." if len(outside) > 6 else "")
            notes.append(f"Not counted, after the time frame: {len(outside)} event(s): {listed} (primary_outcome_events.csv)")
        if notes:
            fig.text(0.01, 0.01, "\n".join(notes), fontsize=7)
        if any(bottoms):
            ax.legend(title="CTCAE v5.0", fontsize=8)
        else:  # say so, rather than leave an empty axis to be misread
            ax.text(0.5, 0.5, "No adverse event counted in the time frame", transform=ax.transAxes, ha="center", va="center")
        fig.tight_layout()
        paths = [directory / f"{stem}.png", directory / f"{stem}.svg"]
        with plt.rc_context({"svg.fonttype": "none"}):  # SVG text stays text
            for path in paths:
                fig.savefig(path, dpi=150 if path.suffix == ".png" else "figure", metadata=_plot_metadata(path))
        plt.close(fig)
        return paths


def _plot_metadata(path: Path) -> dict[str, str | None]:
    # a fixed SVG "Date" keeps re-runs byte-identical
    return {"Date": None} if path.suffix == ".svg" else {}


def _row(scope: Scope, key: str, at_risk: Iterable[str], events: list[Attributed]) -> CountRow:
    def affected(subset: Subset) -> int:
        return len({a.event.subject_id for a in events if _KEEP[subset](a)})

    return CountRow(
        scope=scope,
        key=key,
        participants_at_risk=len(set(at_risk)),
        events=len(events),
        related_events=sum(1 for a in events if a.event.related),
        grade_3_plus_events=sum(1 for a in events if a.event.grade >= 3),
        participants_with_event=affected("any"),
        participants_with_related=affected("related"),
        participants_with_grade_3_plus=affected("grade_3_plus"),
    )


def counted_in_time_frame(data: TrialData, protocol: Protocol) -> tuple[list[Attributed], int]:
    """The adverse events of the registered time frame (:func:`time_frame_of`) with the infusion each follows, and the
    time frame in days: what the results' adverse-event module reports, whatever the primary outcome counts."""
    frame = time_frame_of(protocol)
    return [a for a in classify(data, frame) if a.counted and a.infusion is not None], frame.days


def primary_outcome(data: TrialData, protocol: Protocol, allow_empty: bool = False) -> PrimaryOutcome:
    """Count the primary outcome of ``data`` per infusion, as ``protocol`` registers it (its ``infusion_time_frame``;
    :class:`NoOutcomeMeasureError` when it names none)."""
    outcome = protocol.outcomes.primary[0]
    if outcome.infusion_time_frame is None:
        raise NoOutcomeMeasureError(protocol.id, next((m.id for m in protocol.outcome_measures if m.primary), None))
    note = check_enrolled(data, "primary outcome", allow_empty)
    frame = time_frame_of(protocol)
    window = frame.days
    events = classify(data, frame)
    counted = [a for a in events if a.counted and a.infusion is not None]
    worsening = {a.event.id: w for a in counted if (w := pre_existing(a.event, data)) is not None}
    rule = (f"events from each infusion to day {frame.days} after the first infusion" if frame.anchor == "first_infusion"
            else f"events up to {frame.days} days after the infusion they follow")

    rows: list[CountRow] = []
    for n in sorted({i.number for i in data.infusions}):
        rows.append(_row("infusion", str(n), (i.subject_id for i in data.infusions if i.number == n),
                         [a for a in counted if a.infusion is not None and a.infusion.number == n]))
    spec = protocol.study_intervention.dose_spec
    for group in sorted({dose_group(spec, i) for i in data.infusions}):
        level = group.key
        rows.append(_row("dose_level", level, (i.subject_id for i in data.infusions if dose_level(protocol, i) == level),
                         [a for a in counted if a.infusion is not None and dose_level(protocol, a.infusion) == level]))
    infused = sorted({i.subject_id for i in data.infusions})
    for subject in infused:
        rows.append(_row("participant", subject, [subject], [a for a in counted if a.event.subject_id == subject]))
    total = _row("total", "all", infused, counted)
    rows.append(total)

    affected = {"any": total.participants_with_event, "related": total.participants_with_related,
                "grade_3_plus": total.participants_with_grade_3_plus}
    proportions = [Proportion(s, affected[s], len(infused), *clopper_pearson(affected[s], len(infused))) for s in SUBSETS]
    return PrimaryOutcome(data.protocol_id, data.cutoff, outcome.measure, outcome.time_frame, window, rows, proportions, events, note,
                          f"{rule} ({frame.reason.split('.')[0]}.)", worsening, spec)
