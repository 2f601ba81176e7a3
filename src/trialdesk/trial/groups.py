"""A participant's group, as results and tabulations report it: the cohort, the dose level, or the one arm.

The rule a reader of the results would state: where the protocol has dose cohorts, a participant is in
the cohort they were dosed in; where it has dose levels but no cohorts, in their dose level; otherwise
every participant is in the protocol's first arm. A participant with no infusion is in no group.

The group is read in one place, :func:`assigned_group` (the planned group: SDTM ARM, the ClinicalTrials.gov
reporting groups), beside :func:`treated_group` (the group of the dose actually given: SDTM ACTARM). Where the
desk recorded the participant's cohort (the data cut's ``cohort``, assigned by its cut-off), that is the planned
group, dosed or not; the actual group is that cohort when the first dose is at its level. A data cut without
recorded cohorts (an older cut, or data from elsewhere) falls back to the first infusion's dose level: the one
cohort at that level; a dose level given in two cohorts (as after a 3+3 expansion) cannot be told apart from
the dose and is refused, naming the participant.
"""

from __future__ import annotations

from dataclasses import dataclass

from trialdesk.protocol.model import Protocol
from trialdesk.trial import dose as dose_rules
from trialdesk.trial.errors import ConductError
from trialdesk.trial.records import TrialData


@dataclass(frozen=True)
class Group:
    """A reporting group: its code (cohort 'C1', dose level 'DL2', or the arm's code), its title and description."""

    code: str
    title: str
    description: str
    dose_level: str | None = None


def _level_text(protocol: Protocol, level_id: str, *, plain: bool = False) -> str:
    spec = protocol.study_intervention.dose_spec
    assert spec is not None
    level = next(lv for lv in spec.levels if lv.id == level_id)
    if level.label:
        return dose_rules.plain_unit(level.label) if plain else dose_rules.shown_unit(level.label)
    return dose_rules.dose_text(spec, level.amount, plain=plain)


def kind(protocol: Protocol) -> str:
    """'cohort', 'dose_level' or 'arm': how this protocol's participants are grouped."""
    if protocol.dose_finding is not None and protocol.dose_finding.cohorts:
        return "cohort"
    spec = protocol.study_intervention.dose_spec
    if spec is not None and spec.levels:
        return "dose_level"
    return "arm"


def groups(protocol: Protocol, *, plain: bool = False) -> list[Group]:
    """Every group of the protocol, in the protocol's order (``plain``: powers of ten in ASCII, for files)."""
    arm = protocol.arms[0]
    how = kind(protocol)
    if how == "cohort":
        assert protocol.dose_finding is not None
        return [Group(c.id, f"Cohort {c.id} ({_level_text(protocol, c.dose_level, plain=plain)})",
                      f"{arm.label}: {_level_text(protocol, c.dose_level, plain=plain)}", c.dose_level)
                for c in protocol.dose_finding.cohorts]
    if how == "dose_level":
        spec = protocol.study_intervention.dose_spec
        assert spec is not None
        return [Group(lv.id, f"{lv.id} ({_level_text(protocol, lv.id, plain=plain)})",
                      f"{arm.label}: {_level_text(protocol, lv.id, plain=plain)}", lv.id) for lv in spec.levels]
    return [Group(arm.code or "ARM1", arm.label, arm.description)]


def dose_level_of(protocol: Protocol, data: TrialData, subject_id: str) -> str | None:
    """The protocol's dose level of the participant's first infusion; None without an infusion or without levels."""
    spec = protocol.study_intervention.dose_spec
    infusions = data.infusions_of(subject_id)
    if spec is None or not spec.levels or not infusions:
        return None
    first = infusions[0]
    try:
        level = dose_rules.check(spec, first.total_cells, weight_kg=first.weight_kg).level
    except ConductError as e:
        raise ConductError("dose_level", f"{subject_id}'s first infusion matches no dose level of the protocol: {e.message}") from None
    assert level is not None
    return level.id


def _recorded(protocol: Protocol, data: TrialData, subject_id: str, every: list[Group]) -> Group | None:
    """The group of the cohort recorded for the participant in the data cut, if the protocol has cohorts and one is."""
    if kind(protocol) != "cohort":
        return None
    code = data.cohort_assignments().get(subject_id)
    if code is None:
        return None
    hit = [g for g in every if g.code == code]
    if not hit:
        raise ConductError("cohort", f"{subject_id} is recorded in cohort {code}, which the protocol does not define")
    return hit[0]


def treated_group(protocol: Protocol, data: TrialData, subject_id: str, *, plain: bool = False) -> Group | None:
    """The group of the dose the participant actually received first; None when they received none."""
    if not data.infusions_of(subject_id):
        return None
    every = groups(protocol, plain=plain)
    how = kind(protocol)
    if how == "arm":
        return every[0]
    level = dose_level_of(protocol, data, subject_id)
    recorded = _recorded(protocol, data, subject_id, every)
    if recorded is not None and recorded.dose_level == level:
        return recorded
    at_level = [g for g in every if g.dose_level == level]
    if len(at_level) != 1:
        raise ConductError("cohort", f"{subject_id}'s dose level {level} is given in cohorts {', '.join(g.code for g in at_level)};"
                                     " the cohort cannot be read from the dose: record the participant's cohort")
    return at_level[0]


def assigned_group(protocol: Protocol, data: TrialData, subject_id: str, *, plain: bool = False) -> Group | None:
    """The participant's planned group: the cohort recorded for them (dosed or not), else the group of their first
    dose (see the module docstring); None for a participant with neither."""
    recorded = _recorded(protocol, data, subject_id, groups(protocol, plain=plain))
    if recorded is not None:
        return recorded
    return treated_group(protocol, data, subject_id, plain=plain)


def members(protocol: Protocol, data: TrialData, subject_ids: set[str] | frozenset[str]) -> list[tuple[Group, frozenset[str]]]:
    """The groups that have at least one of ``subject_ids`` (participants with an infusion), in the protocol's order,
    each with its members."""
    of = {s: assigned_group(protocol, data, s) for s in sorted(subject_ids)}
    out = []
    for g in groups(protocol):
        mine = frozenset(s for s, x in of.items() if x is not None and x.code == g.code)
        if mine:
            out.append((g, mine))
    return out
