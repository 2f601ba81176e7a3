"""A participant's death: the death report, and the rules that follow from a death.

Readings:

- A death on study is a CTCAE v5.0 grade 5 adverse event ("death related to AE"); CTCAE allows
  grade 5 only for terms that define it (``Ctcae.validate_grade`` refuses e.g. grade 5 Headache,
  checked in :mod:`trialdesk.safety.adverse_events`). The death report records what the AE form
  does not: the date of death, the cause(s), whether an autopsy was done, the investigator's
  relation to the study product and a narrative, and it links to that grade 5 AE.
- The relation on the report must agree with the linked AE's relatedness: the stopping rules and
  the SAE clocks read the AE, and two answers to one question would leave the DSMB with both.
- A participant is dead from the date on the death report, or, before the report is written, from
  the onset of their grade 5 AE (:func:`died_on`). No infusion and no visit may be recorded on
  or after that day (:func:`check_alive`), and the report takes the participant off study with the reason
  ``death``. Going off study "for death" any other way is refused (:func:`check_off_study_reason`):
  a death needs its report.
- A grade 5 AE without a death report is listed as a report due (:func:`deaths_without_report`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from trialdesk.trial.errors import ConductError
from trialdesk.trial.records import AdverseEvent, Relatedness

Autopsy = Literal["yes", "no", "unknown"]
AUTOPSY: dict[Autopsy, str] = {"yes": "Yes", "no": "No", "unknown": "Unknown"}
#: the off-study reason a death report writes (followed by the causes)
OFF_STUDY_DEATH = "death"
_DEATH_WORDS = re.compile(r"\b(death|died|dead|deceased|passed away|expired|fatal)\b", re.IGNORECASE)


@dataclass(frozen=True)
class DeathReport:
    subject_id: str
    date_of_death: dt.date
    causes: tuple[str, ...]
    autopsy: Autopsy
    relatedness: Relatedness
    narrative: str
    ae_id: str | None  # the grade 5 adverse event it reports


def check_death_report(report: DeathReport, *, ae: AdverseEvent | None, enrolled_on: dt.date, already_reported: bool,
                       today: dt.date) -> None:
    """Refuse with a :class:`ConductError` naming the field, or return."""
    if already_reported:
        raise ConductError("subject_id", f"a death report for {report.subject_id} is already recorded; correct that report instead")
    if ae is None:
        raise ConductError("ae_id", f"record the death as a CTCAE grade 5 adverse event for {report.subject_id} first (the event"
                                    " that caused it, or 'Death NOS'), then link it here")
    if ae.subject_id != report.subject_id:
        raise ConductError("ae_id", f"{ae.id} is an adverse event of {ae.subject_id}, not of {report.subject_id}")
    if ae.grade != 5:
        raise ConductError("ae_id", f"{ae.id} ({ae.term}) is grade {ae.grade}; a death report links the grade 5 (fatal) event —"
                                    " update that AE to grade 5 first")
    if report.date_of_death > today:
        raise ConductError("date_of_death", f"the date of death ({report.date_of_death}) cannot be in the future")
    if report.date_of_death < enrolled_on:
        raise ConductError("date_of_death", f"the date of death ({report.date_of_death}) is before enrolment ({enrolled_on})")
    if report.date_of_death < ae.onset:
        raise ConductError("date_of_death", f"the date of death ({report.date_of_death}) is before the onset of {ae.id}"
                                            f" ({ae.onset}); correct one of them")
    if not [c for c in report.causes if c.strip()]:
        raise ConductError("causes", "give the cause(s) of death, one per line (immediate cause first)")
    if report.autopsy not in AUTOPSY:
        raise ConductError("autopsy", f"{report.autopsy!r}: answer yes, no or unknown")
    if report.relatedness != ae.relatedness:
        raise ConductError("relatedness", f"{ae.id} is recorded as {ae.relatedness!r} related to the study product; give the same"
                                          " relation here, or update the AE first if the assessment changed")
    if not report.narrative.strip():
        raise ConductError("narrative", "write the narrative: the course of events leading to death, treatment given, and sources")


def died_on(subject_id: str, reports: Iterable[DeathReport], aes: Iterable[AdverseEvent]) -> dt.date | None:
    """The date of death on the report, or else the onset of a grade 5 AE; None while alive."""
    reported = [r.date_of_death for r in reports if r.subject_id == subject_id]
    if reported:
        return min(reported)
    fatal = [ae.onset for ae in aes if ae.subject_id == subject_id and ae.grade == 5]
    return min(fatal) if fatal else None


def check_alive(subject_id: str, died: dt.date | None, on: dt.date, *, procedure: str, field: str = "date") -> None:
    """No procedure (infusion, visit) on or after the day of death. One dated before it may still be
    entered late (it happened); after the death report the participant is off study and the
    off-study checks refuse new infusions whatever their date."""
    if died is not None and on >= died:
        raise ConductError(field, f"{subject_id} died on {died}; no {procedure} may be recorded on or after the day of death ({on})")


def check_off_study_reason(reason: str) -> None:
    """Going off study for death is done by the death report, which the trial needs for every death."""
    if _DEATH_WORDS.search(reason):
        raise ConductError("off_study_reason", "a death is recorded with the death report (date, causes, autopsy, relation"
                                               " to the study product, narrative), which takes the participant off study;"
                                               " use 'Record death' on the participant's page")


def deaths_without_report(aes: Sequence[AdverseEvent], reports: Iterable[DeathReport]) -> list[AdverseEvent]:
    """Grade 5 AEs of participants with no death report yet."""
    reported = {r.subject_id for r in reports}
    return [ae for ae in aes if ae.grade == 5 and ae.subject_id not in reported]


__all__ = ["AUTOPSY", "OFF_STUDY_DEATH", "Autopsy", "DeathReport", "check_alive", "check_death_report", "check_off_study_reason",
           "deaths_without_report", "died_on"]
