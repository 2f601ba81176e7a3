"""Adverse events suggested by laboratory values and vital signs, for a coordinator to confirm or dismiss.

Each result after a participant's first infusion is graded with CTCAE v5.0
(:func:`~trialdesk.terminology.lab_grading.grade_lab`, whose thresholds are data) for every term of the
grading table (:data:`SUGGESTED_TERMS`: all 40 terms); a value reaching a grade above the
participant's baseline grade of that term suggests it.

Readings:

- **Baseline** is the participant's last value of the same analyte before the first infusion. Labs
  dated on the day of the first infusion count as baseline (they are drawn before the dose);
  vital signs on that day count as baseline only when their ``timepoint`` says pre-dose ("pre..."),
  so a fever an hour after the infusion is not mistaken for baseline. The baseline's own normal range
  decides whether it was abnormal, which for ALT and AST switches grading to multiples of baseline.
- **After the first infusion**: a later date, or the infusion day for a vital sign not marked pre-dose.
- **Baseline-aware**: an abnormality present at baseline (the baseline value graded, for its term) is
  suggested again only when a later value's grade is worse than the baseline grade; a value no worse
  than baseline neither starts nor continues an episode. The suggestion names the baseline grade.
  Terms that CTCAE grades by multiples of an abnormal baseline (ALT, AST, ALP, GGT, bilirubin) already
  grade the worsening, so their baseline grade is not subtracted again.
- **Cannot grade**: a value whose term needs the laboratory's normal range (ULN or LLN) that the result
  does not carry is listed by :func:`ungradable_values` with what is missing, never silently skipped.
- **Hy's law** (:func:`hy_law_cases`): ALT or AST > 3 × ULN with total bilirubin > 2 × ULN in the same
  draw (same date) after the first infusion flags the liver suggestions of that date.
- **Episodes**: one suggestion per term per episode. An episode of a term starts with a value graded
  1 or more and ends with the next value of that term graded 0 (back to normal); values that cannot
  be graded (a missing normal range) neither continue nor end it. The suggestion carries the episode's
  first abnormal date (the onset) and its worst grade, with the row that gave the worst grade as source.
- **Hypoxia** from SpO2 uses the SpO2 form's context: ``at_rest`` false (or, where the form does not
  say, a timepoint mentioning exercise or exertion) grades it as exertional (grade 2 below 88 %),
  never as resting grade 3; otherwise it is taken at rest. A reading on supplemental oxygen
  (``oxygen_l_min`` > 0) when the participant was on none before the first infusion is a *new oxygen
  need*, graded at least 2; a participant already on oxygen at baseline is graded by the saturation;
  **fever** from one reading never reaches grade 4 (CTCAE needs > 24 h above 40 °C).
- A suggestion whose term the participant already has as an AE overlapping the episode carries that
  AE's id in ``recorded_as``, so the screen can show it as already captured.
- Rows whose analyte has no grading rules (CRP, say) suggest nothing; a unit that cannot be converted
  raises :class:`~trialdesk.terminology.units.UnitConversionError` naming it, since a silent skip
  could hide a toxicity.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from trialdesk.terminology import units
from trialdesk.terminology.lab_grading import LabGrade, LabGradingError, grade_lab, grading_table
from trialdesk.trial.records import AdverseEvent, Infusion, LabResult, TrialData, VitalSign

__all__ = ["SUGGESTED_TERMS", "HyLawCase", "Suggestion", "UngradableValue", "hy_law_cases", "suggest_adverse_events",
           "ungradable_values"]

#: every CTCAE term of the grading table (the 40 lab terms of CTCAE v5.0 in admiral's specification, Hypoxia, Fever)
SUGGESTED_TERMS = frozenset(t.term for t in grading_table())
HY_LAW_FLAG = "Hy's law"
_LIVER = {"Alanine aminotransferase increased", "Aspartate aminotransferase increased", "Blood bilirubin increased"}
#: terms whose rules grade an abnormal baseline's participant by multiples of that baseline (ALT, AST, ALP, GGT, bilirubin)
_GRADED_FROM_BASELINE = frozenset(t.term for t in grading_table() if any(r.baseline_abnormal for r in t.rules))

_PRE_DOSE = re.compile(r"\bpre", re.IGNORECASE)
_EXERCISE = re.compile(r"exercis|exertion|ambulat|walk", re.IGNORECASE)
_GRADED_VITALS = {"SPO2", "TEMP"}

Row = LabResult | VitalSign


@dataclass(frozen=True)
class Suggestion:
    """An AE the data suggest: ``term`` at ``grade`` from ``date`` (the episode's first abnormal value)."""

    subject_id: str
    term: str
    meddra_code: str
    grade: int
    date: dt.date
    source: Row  # the row that gave the worst grade
    rule: str  # the grading evidence of that row
    last_abnormal: dt.date
    recorded_as: str | None = None  # an existing AE of the same term overlapping the episode
    baseline_grade: int = 0  # the participant's grade of this term at baseline (0: normal or none)
    flags: tuple[str, ...] = ()  # e.g. "Hy's law"

    @property
    def source_label(self) -> str:
        context = ""
        if isinstance(self.source, VitalSign) and self.source.test == "SPO2":
            where = {True: " at rest", False: " on exertion", None: ""}[self.source.at_rest]
            oxygen = f" on {self.source.oxygen_l_min:g} L/min oxygen" if (self.source.oxygen_l_min or 0) > 0 else \
                (" on room air" if self.source.oxygen_l_min == 0 else "")
            context = where + oxygen
        return f"{self.source.test} {self.source.value:g} {self.source.unit}{context} on {self.source.date} ({self.source.visit})"


def _analyte_key(row: Row) -> str:
    """The analyte a row measures (its id in the unit data when known), so baselines match across LOINC codes."""
    names = [row.loinc, row.test] if isinstance(row, LabResult) else [row.test]
    for name in names:
        known = units.analyte(name)
        if known is not None:
            return known.id
    return names[-1].casefold()


def _is_pre_dose(row: Row, first: Infusion) -> bool:
    if row.date != first.date:
        return row.date < first.date
    if isinstance(row, LabResult):
        return True
    return row.timepoint is not None and _PRE_DOSE.search(row.timepoint) is not None


def _context(row: Row) -> Literal["rest", "exercise"] | None:
    if not isinstance(row, VitalSign):
        return None
    if row.at_rest is not None:
        return "rest" if row.at_rest else "exercise"
    return "exercise" if row.timepoint and _EXERCISE.search(row.timepoint) else None


def _on_oxygen(row: Row) -> bool:
    return isinstance(row, VitalSign) and row.test == "SPO2" and (row.oxygen_l_min or 0) > 0


def _grade(row: Row, baseline: Row | None, oxygen_at_baseline: bool = False) -> LabGrade | None:
    names = [row.loinc, row.test] if isinstance(row, LabResult) else [row.test]
    context = _context(row)
    new_oxygen = _on_oxygen(row) and not oxygen_at_baseline
    for name in names:
        try:
            return grade_lab(
                name,
                row.value,
                row.unit,
                lln=row.range_low if isinstance(row, LabResult) else None,
                uln=row.range_high if isinstance(row, LabResult) else None,
                baseline=baseline.value if baseline is not None else None,
                baseline_lln=baseline.range_low if isinstance(baseline, LabResult) else None,
                baseline_uln=baseline.range_high if isinstance(baseline, LabResult) else None,
                baseline_unit=baseline.unit if baseline is not None else None,
                context=context,
                new_oxygen=new_oxygen,
            )
        except LabGradingError:
            continue
    return None


def _recorded(subject_id: str, term: str, start: dt.date, end: dt.date, aes: Iterable[AdverseEvent]) -> str | None:
    for ae in aes:
        if ae.subject_id == subject_id and ae.term.casefold() == term.casefold() and ae.onset <= end \
                and (ae.resolved is None or ae.resolved >= start):
            return ae.id
    return None


def _episodes(subject_id: str, graded: Sequence[tuple[Row, LabGrade]], aes: Sequence[AdverseEvent],
              baseline_grade: int = 0) -> list[Suggestion]:
    """Collapse one participant's graded values of one term (in date order) into one suggestion per episode."""
    out: list[Suggestion] = []
    episode: list[tuple[Row, LabGrade]] = []

    def close() -> None:
        if not episode:
            return
        worst_row, worst = max(episode, key=lambda rg: (rg[1].grade, -rg[0].date.toordinal()))
        start, end = episode[0][0].date, episode[-1][0].date
        out.append(Suggestion(
            subject_id, worst.term, worst.meddra_code, worst.grade, start, worst_row, worst.rule, end,
            _recorded(subject_id, worst.term, start, end, aes), baseline_grade,
        ))
        episode.clear()

    for row, grade in graded:
        if grade.grade >= 1 and grade.grade > baseline_grade:
            episode.append((row, grade))
        else:
            close()
    close()
    return out


@dataclass(frozen=True)
class UngradableValue:
    """A value after the first infusion that grading rules exist for but that cannot be graded, and why."""

    subject_id: str
    row: LabResult
    missing: str  # what the result lacks: "upper limit of normal", "lower limit of normal", "normal range"

    def sentence(self) -> str:
        r = self.row
        return (f"{r.test} {r.value:g} {r.unit} on {r.date} ({r.visit}) cannot be graded with CTCAE v5.0: the result has no"
                f" {self.missing}; record the site laboratory's reference range for {r.test}")


@dataclass(frozen=True)
class HyLawCase:
    """ALT or AST > 3 x ULN with total bilirubin > 2 x ULN in the same draw."""

    subject_id: str
    date: dt.date
    transaminase: LabResult  # the higher multiple of ALT and AST
    bilirubin: LabResult
    alkaline_phosphatase: LabResult | None

    def sentence(self) -> str:
        t, b = self.transaminase, self.bilirubin
        assert t.range_high and b.range_high
        text = (f"{self.subject_id} on {self.date}: {t.test} {t.value:g} {t.unit} = {t.value / t.range_high:.1f} × ULN with total"
                f" bilirubin {b.value:g} {b.unit} = {b.value / b.range_high:.1f} × ULN (Hy's law: ALT or AST > 3 × ULN and"
                " bilirubin > 2 × ULN; a possible drug-induced liver injury, reviewed at once)")
        alp = self.alkaline_phosphatase
        if alp is not None and alp.range_high:
            text += f"; ALP {alp.value / alp.range_high:.1f} × ULN"
        return text


def _analyte_id(row: LabResult) -> str | None:
    for name in (row.loinc, row.test):
        known = units.analyte(name)
        if known is not None:
            return known.id
    return None


def _after_first(data: TrialData) -> dict[str, Infusion]:
    out: dict[str, Infusion] = {}
    for p in data.participants:
        infusions = data.infusions_of(p.subject_id)
        if infusions:
            out[p.subject_id] = min(infusions, key=lambda i: i.date)
    return out


def hy_law_cases(data: TrialData) -> list[HyLawCase]:
    """Every draw after a participant's first infusion that meets Hy's law, by subject and date."""
    firsts = _after_first(data)
    draws: dict[tuple[str, dt.date], dict[str, LabResult]] = {}
    for row in data.labs:
        first = firsts.get(row.subject_id)
        if first is None or _is_pre_dose(row, first):
            continue
        analyte = _analyte_id(row)
        if analyte is not None:
            draws.setdefault((row.subject_id, row.date), {})[analyte] = row
    cases = []
    for (subject, date), by in sorted(draws.items()):
        bili = by.get("bilirubin_total")
        transaminases = [r for k in ("alanine_aminotransferase", "aspartate_aminotransferase") if (r := by.get(k)) and r.range_high]
        high = [r for r in transaminases if r.value > 3 * (r.range_high or 0)]
        if bili is None or not bili.range_high or not high or not bili.value > 2 * bili.range_high:
            continue
        worst = max(high, key=lambda r: r.value / (r.range_high or 1))
        cases.append(HyLawCase(subject, date, worst, bili, by.get("alkaline_phosphatase")))
    return cases


def ungradable_values(data: TrialData) -> list[UngradableValue]:
    """Lab values after the first infusion that have grading rules but cannot be graded, with what they lack."""
    firsts = _after_first(data)
    out = []
    for row in sorted(data.labs, key=lambda r: (r.subject_id, r.date, r.test)):
        first = firsts.get(row.subject_id)
        if first is None or _is_pre_dose(row, first):
            continue
        graded = _grade(row, None)
        if graded is not None or not _has_rules(row):
            continue
        missing = ("normal range" if row.range_low is None and row.range_high is None
                   else "upper limit of normal" if row.range_high is None else "lower limit of normal")
        out.append(UngradableValue(row.subject_id, row, missing))
    return out


def _has_rules(row: LabResult) -> bool:
    analyte = _analyte_id(row)
    return analyte is not None and any(analyte in t.analytes for t in grading_table())


def suggest_adverse_events(data: TrialData) -> list[Suggestion]:
    """The suggested AEs of every participant, by subject, onset and term."""
    rows: list[Row] = [*data.labs, *(v for v in data.vitals if v.test in _GRADED_VITALS)]
    hy_law = {(c.subject_id, c.date) for c in hy_law_cases(data)}
    suggestions: list[Suggestion] = []
    for participant in data.participants:
        infusions = data.infusions_of(participant.subject_id)
        if not infusions:
            continue
        first = min(infusions, key=lambda i: i.date)
        own = sorted((r for r in rows if r.subject_id == participant.subject_id), key=lambda r: r.date)
        oxygen_at_baseline = any(_on_oxygen(r) and _is_pre_dose(r, first) for r in own)
        baselines: dict[str, Row] = {}
        for row in own:
            if _is_pre_dose(row, first):
                baselines[_analyte_key(row)] = row  # rows are in date order: the last one wins
        baseline_grades: dict[str, int] = {}
        for row in baselines.values():
            graded_baseline = _grade(row, None)
            if graded_baseline is None or graded_baseline.term in _GRADED_FROM_BASELINE:
                continue  # CTCAE grades these as multiples of an abnormal baseline already: their grade is a worsening
            if graded_baseline.grade > baseline_grades.get(graded_baseline.term, 0):
                baseline_grades[graded_baseline.term] = graded_baseline.grade
        by_term: dict[str, list[tuple[Row, LabGrade]]] = {}
        for row in own:
            if _is_pre_dose(row, first):
                continue
            grade = _grade(row, baselines.get(_analyte_key(row)), oxygen_at_baseline)
            if grade is not None and grade.term in SUGGESTED_TERMS:
                by_term.setdefault(grade.term, []).append((row, grade))
        for term, graded in by_term.items():
            for sg in _episodes(participant.subject_id, graded, data.adverse_events, baseline_grades.get(term, 0)):
                hit = term in _LIVER and any((sg.subject_id, day) in hy_law for day in
                                             {r.date for r, _ in graded if sg.date <= r.date <= sg.last_abnormal})
                suggestions.append(replace(sg, flags=(HY_LAW_FLAG,)) if hit else sg)
    return sorted(suggestions, key=lambda s: (s.subject_id, s.date, s.term))
