"""An outcome measure computed as the protocol defines it (``outcome_measures:``): events or
participants with an event; which events (serious, related, treatment-emergent, DLT, grade, terms);
the window (from which infusion, how many days, or after each infusion); by cohort or dose level.

The primary-outcome report, the DSMB report and the CT.gov results follow it when the protocol
names a primary measure (``primary: true``); a protocol without ``outcome_measures`` keeps the
registered outcome's count of all events per infusion (``analysis/primary_outcome.py``). Readings:
- day 0 is the infusion day; an event counts when its onset is within [infusion day, infusion day + days];
- an event inside two windows (one per infusion) counts once;
- a participant is analysed for a window when they received the infusion that opens it;
- treatment-emergent means onset on or after the participant's first infusion;
- a participant's dose level is the level their first infusion's dose matches (within the protocol's tolerance);
- a participant's cohort is their assignment when given (or recorded in the data cut, as the desk records it),
  else the one cohort at their dose level (a dose level given in two cohorts, as after a 3+3 expansion, needs
  the assignments).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from trialdesk.protocol.model import OutcomeMeasure, Protocol
from trialdesk.trial import dose as dose_rules
from trialdesk.trial import groups
from trialdesk.trial.cohorts import is_dlt
from trialdesk.trial.errors import ConductError
from trialdesk.trial.records import AdverseEvent, TrialData


@dataclass(frozen=True)
class GroupResult:
    """One group's figure: participants analysed, the count (events or participants), and the events counted."""

    group: str
    analysed: int
    count: int
    event_ids: tuple[str, ...]


@dataclass(frozen=True)
class MeasureResult:
    measure_id: str
    title: str
    counts: str
    groups: tuple[GroupResult, ...]


def measure(protocol: Protocol, measure_id: str | None = None) -> OutcomeMeasure:
    """The protocol's measure ``measure_id``, or its primary one."""
    for m in protocol.outcome_measures:
        if (measure_id is None and m.primary) or m.id == measure_id:
            return m
    known = ", ".join(m.id for m in protocol.outcome_measures) or "none"
    what = f"outcome measure {measure_id!r}" if measure_id else "primary outcome measure (primary: true)"
    raise ConductError("outcome_measures", f"protocol {protocol.id} has no {what}; its measures: {known}")


def _windows(m: OutcomeMeasure, data: TrialData, subject_id: str) -> list[tuple[dt.date, dt.date]]:
    infusions = data.infusions_of(subject_id)
    chosen = [i for i in infusions if i.number == m.window.from_infusion]
    if m.window.each_infusion:
        chosen = [i for i in infusions if i.number >= m.window.from_infusion]
    return [(i.date, i.date + dt.timedelta(days=m.window.days)) for i in chosen]


def _counted(protocol: Protocol, m: OutcomeMeasure, e: AdverseEvent, data: TrialData, windows: list[tuple[dt.date, dt.date]]) -> bool:
    f = m.events
    if not any(a <= e.onset <= b for a, b in windows):
        return False
    first = data.infusions_of(e.subject_id)[0].date
    if f.treatment_emergent and e.onset < first:
        return False
    if f.serious is not None and e.serious != f.serious:
        return False
    if f.related is not None and e.related != f.related:
        return False
    if f.min_grade is not None and e.grade < f.min_grade:
        return False
    if f.terms and e.term.casefold() not in {t.casefold() for t in f.terms}:
        return False
    if f.dlt:
        assert protocol.dose_finding is not None  # the protocol model requires it for DLT measures
        return is_dlt(e, first, protocol.dose_finding.dlt)
    return True


def group_of(protocol: Protocol, m: OutcomeMeasure, data: TrialData, subject_id: str, assignments: Mapping[str, str] | None = None) -> str:
    if m.group_by == "none":
        return "all"
    if m.group_by == "cohort":
        if assignments is None:
            assignments = data.cohort_assignments() or None  # the cut's recorded assignments, when it has any
        if assignments is not None:
            if subject_id not in assignments:
                raise ConductError("cohort", f"{subject_id} has no cohort assignment; the measure {m.id} is grouped by cohort")
            return assignments[subject_id]
        group = groups.assigned_group(protocol, data, subject_id)  # the one place a participant's cohort is read
        assert group is not None  # only participants with an infusion are grouped
        return group.code
    return _level_of(protocol, m, data, subject_id)


def _level_of(protocol: Protocol, m: OutcomeMeasure, data: TrialData, subject_id: str) -> str:
    spec = protocol.study_intervention.dose_spec
    if spec is None or not spec.levels:
        raise ConductError("group_by", f"measure {m.id} is grouped by dose level but the protocol's dose has no levels")
    level = groups.dose_level_of(protocol, data, subject_id)
    assert level is not None
    return level


def compute(protocol: Protocol, data: TrialData, measure_id: str | None = None,
            assignments: Mapping[str, str] | None = None) -> MeasureResult:
    """The measure from a data cut, one figure per group (groups in the protocol's order)."""
    m = measure(protocol, measure_id)
    per: dict[str, list[str]] = {}
    events: dict[str, list[str]] = {}
    participants: dict[str, int] = {}
    for p in data.participants:
        windows = _windows(m, data, p.subject_id)
        if not windows:
            continue
        g = group_of(protocol, m, data, p.subject_id, assignments)
        participants[g] = participants.get(g, 0) + 1
        hits = [e.id for e in data.adverse_events if e.subject_id == p.subject_id and _counted(protocol, m, e, data, windows)]
        events.setdefault(g, []).extend(hits)
        per.setdefault(g, [])
        if hits:
            per[g].append(p.subject_id)
    groups = []
    for g in group_order(protocol, m, participants):
        ev = events.get(g, [])
        count = len(ev) if m.counts == "events" else len(per.get(g, []))
        groups.append(GroupResult(g, participants.get(g, 0), count, tuple(ev)))
    return MeasureResult(m.id, m.title, m.counts, tuple(groups))


def group_order(protocol: Protocol, m: OutcomeMeasure, seen: Mapping[str, int]) -> list[str]:
    if m.group_by == "cohort" and protocol.dose_finding is not None:
        return [c.id for c in protocol.dose_finding.cohorts]
    spec = protocol.study_intervention.dose_spec
    if m.group_by == "dose_level" and spec is not None:
        return [lv.id for lv in spec.levels]
    return sorted(seen) or ["all"]



def primary_measure(protocol: Protocol) -> OutcomeMeasure | None:
    """The protocol's primary measure as data, or None when it names none (the registered outcome is then counted
    the first trial's way, all events per infusion: :mod:`trialdesk.analysis.primary_outcome`)."""
    return next((m for m in protocol.outcome_measures if m.primary), None)


def group_label(protocol: Protocol, m: OutcomeMeasure, group: str) -> str:
    """A group as a reader knows it: 'Cohort C1 (20 × 10^6 cells)', 'DL2 (100 × 10^6 cells)', or the arm."""
    spec = protocol.study_intervention.dose_spec
    levels = {lv.id: lv for lv in spec.levels} if spec is not None else {}

    def level_text(level_id: str) -> str:
        lv = levels[level_id]
        assert spec is not None
        return lv.label or dose_rules.format_amount(spec, lv.amount)

    if m.group_by == "cohort" and protocol.dose_finding is not None:
        cohort = next((c for c in protocol.dose_finding.cohorts if c.id == group), None)
        return f"Cohort {group} ({level_text(cohort.dose_level)})" if cohort is not None else f"Cohort {group}"
    if m.group_by == "dose_level" and group in levels:
        return f"{group} ({level_text(group)})"
    return protocol.arms[0].label if protocol.arms else "All participants"


def events_text(m: OutcomeMeasure) -> str:
    """Which events the measure counts, in words: 'serious, treatment-emergent adverse events'."""
    f = m.events
    words = []
    if f.dlt:
        words.append("dose-limiting")
    if f.serious is not None:
        words.append("serious" if f.serious else "non-serious")
    if f.related is not None:
        words.append("related" if f.related else "unrelated")
    if f.treatment_emergent:
        words.append("treatment-emergent")
    if f.min_grade is not None:
        words.append(f"grade ≥ {f.min_grade}")
    what = ", ".join(words) + " adverse events" if words else "adverse events of any kind"
    if f.terms:
        what += f" ({', '.join(f.terms)})"
    return what


def window_text(m: OutcomeMeasure) -> str:
    w = m.window
    infusion = "each infusion" if w.each_infusion else f"infusion {w.from_infusion}"
    return f"from {infusion} (day 0) to day {w.days}"
