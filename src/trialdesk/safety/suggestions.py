"""Adverse events suggested by laboratory values and vital signs, for a coordinator to confirm or dismiss.

Each result after a participant's first infusion is graded with CTCAE v5.0
(:func:`~trialdesk.terminology.lab_grading.grade_lab`, whose thresholds are data) for the terms in
:data:`SUGGESTED_TERMS`; a value reaching grade 1 or more suggests that term.

Readings:

- **Baseline** is the participant's last value of the same analyte before the first infusion. Labs
  dated on the day of the first infusion count as baseline (they are drawn before the dose);
  vital signs on that day count as baseline only when their ``timepoint`` says pre-dose ("pre..."),
  so a fever an hour after the infusion is not mistaken for baseline. The baseline's own normal range
  decides whether it was abnormal, which for ALT and AST switches grading to multiples of baseline.
- **After the first infusion**: a later date, or the infusion day for a vital sign not marked pre-dose.
- **Episodes**: one suggestion per term per episode. An episode of a term starts with a value graded
  1 or more and ends with the next value of that term graded 0 (back to normal); values that cannot
  be graded (a missing normal range) neither continue nor end it. The suggestion carries the episode's
  first abnormal date (the onset) and its worst grade, with the row that gave the worst grade as source.
- **Hypoxia** from SpO2 is taken at rest unless the vital sign's timepoint mentions exercise or exertion;
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
from dataclasses import dataclass
from typing import Literal

from trialdesk.terminology import units
from trialdesk.terminology.lab_grading import LabGrade, LabGradingError, grade_lab
from trialdesk.trial.records import AdverseEvent, Infusion, LabResult, TrialData, VitalSign

__all__ = ["SUGGESTED_TERMS", "Suggestion", "suggest_adverse_events"]

#: the CTCAE terms the issue asks to suggest from data
SUGGESTED_TERMS = frozenset(
    {
        "Alanine aminotransferase increased", "Aspartate aminotransferase increased", "Creatinine increased", "Anemia",
        "Neutrophil count decreased", "Platelet count decreased", "White blood cell decreased", "Lymphocyte count decreased",
        "Hypoxia", "Fever",
    }
)  # fmt: skip

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

    @property
    def source_label(self) -> str:
        return f"{self.source.test} {self.source.value:g} {self.source.unit} on {self.source.date} ({self.source.visit})"


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


def _grade(row: Row, baseline: Row | None) -> LabGrade | None:
    names = [row.loinc, row.test] if isinstance(row, LabResult) else [row.test]
    context: Literal["exercise"] | None = (
        "exercise" if isinstance(row, VitalSign) and row.timepoint and _EXERCISE.search(row.timepoint) else None
    )
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


def _episodes(subject_id: str, graded: Sequence[tuple[Row, LabGrade]], aes: Sequence[AdverseEvent]) -> list[Suggestion]:
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
            _recorded(subject_id, worst.term, start, end, aes),
        ))
        episode.clear()

    for row, grade in graded:
        if grade.grade >= 1:
            episode.append((row, grade))
        else:
            close()
    close()
    return out


def suggest_adverse_events(data: TrialData) -> list[Suggestion]:
    """The suggested AEs of every participant, by subject, onset and term."""
    rows: list[Row] = [*data.labs, *(v for v in data.vitals if v.test in _GRADED_VITALS)]
    suggestions: list[Suggestion] = []
    for participant in data.participants:
        infusions = data.infusions_of(participant.subject_id)
        if not infusions:
            continue
        first = min(infusions, key=lambda i: i.date)
        own = sorted((r for r in rows if r.subject_id == participant.subject_id), key=lambda r: r.date)
        by_term: dict[str, list[tuple[Row, LabGrade]]] = {}
        baselines: dict[str, Row] = {}
        for row in own:
            key = _analyte_key(row)
            if _is_pre_dose(row, first):
                baselines[key] = row  # rows are in date order: the last one wins
                continue
            grade = _grade(row, baselines.get(key))
            if grade is not None and grade.term in SUGGESTED_TERMS:
                by_term.setdefault(grade.term, []).append((row, grade))
        for graded in by_term.values():
            suggestions.extend(_episodes(participant.subject_id, graded, data.adverse_events))
    return sorted(suggestions, key=lambda s: (s.subject_id, s.date, s.term))
