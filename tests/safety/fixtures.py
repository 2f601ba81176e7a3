"""A hand-counted data cut for the safety tests, and small builders.

The trial on 2020-09-30 (NCT03929120, two infusions 28 days apart):

    001  consented 2020-01-06; infusion 1 on 2020-01-20 at 0.5 × 10⁶/kg, infusion 2 on 2020-02-17 at 1.0 × 10⁶/kg; on study
    002  consented 2020-02-01; infusions on 2020-02-10 and 2020-03-09, both 0.5 × 10⁶/kg; died 2020-06-01
    003  consented 2020-03-01; infusion 1 on 2020-03-09 at 1.0 × 10⁶/kg; withdrew 2020-03-20
    004  consented 2020-09-20; not yet infused

    AE   subject  term                        grade  onset       relatedness  serious                 attributed to
    A1   001      Infusion related reaction   2      2020-01-20  possibly     -                       infusion 1 (same day), 0.5
    A2   001      Headache                    1      2020-01-25  unlikely     -                       infusion 1, 0.5
    A3   001      Fever                       1      2020-02-17  probably     -                       infusion 2 (same day), 1.0
    A4   001      Nausea                      1      2020-01-15  unrelated    -                       before the first infusion
    A5   002      Lung infection              3      2020-03-20  unlikely     hospitalisation         infusion 2, 0.5
    A6   002      Hypoxia                     3      2020-03-10  possibly     -                       infusion 2, 0.5
    A7   003      Anaphylaxis                 4      2020-03-09  definitely   life-threatening        infusion 1 (same day), 1.0
    A8   001      Fatigue                     1      2020-08-30  unlikely     -                       day 223: after follow-up
    A9   002      Respiratory failure         5      2020-06-01  unrelated    death                   infusion 2, 0.5
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from trialdesk.terminology.ctcae import catalogue
from trialdesk.trial.records import AdverseEvent, Infusion, LabResult, Participant, ScreeningEntry, TrialData, VitalSign

NY = ZoneInfo("America/New_York")
CUTOFF = dt.date(2020, 9, 30)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def at(text: str, tz: ZoneInfo = NY) -> dt.datetime:
    """An aware instant at the site (or in ``tz``) from 'YYYY-MM-DD HH:MM'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


def participant(subject_id: str, consented: str, **kw: Any) -> Participant:
    base: dict[str, Any] = {"subject_id": subject_id, "age_at_enrolment": 60, "sex": "female", "consented_on": d(consented),
                            "enrolled_on": d(consented) + dt.timedelta(days=2)}
    base.update(kw)
    return Participant(**base)


def infusion(subject_id: str, number: int, date: str, dose_millions_per_kg: float, weight_kg: float = 80.0) -> Infusion:
    return Infusion(subject_id=subject_id, number=number, date=d(date), weight_kg=weight_kg,
                    total_cells=dose_millions_per_kg * 1e6 * weight_kg, lot=f"LOT-{subject_id}-{number}", donor_id="DONOR-7")


def ae(ae_id: str, subject_id: str, term: str, grade: int, onset: str, relatedness: str = "unrelated", **kw: Any) -> AdverseEvent:
    """An AE coded from the CTCAE catalogue (MedDRA code and SOC filled in)."""
    ctcae_term = catalogue().term(term)
    base: dict[str, Any] = {"id": ae_id, "subject_id": subject_id, "term": ctcae_term.term, "meddra_code": int(ctcae_term.meddra_code),
                            "soc": ctcae_term.soc, "grade": grade, "onset": d(onset), "relatedness": relatedness}
    if grade == 5:
        base.update(outcome="fatal", serious=True, seriousness=["death"])
    base.update(kw)
    return AdverseEvent(**base)


def lab(subject_id: str, date: str, test: str, value: float, unit: str, low: float | None = None, high: float | None = None,
        loinc: str = "") -> LabResult:
    return LabResult(subject_id=subject_id, visit="V", date=d(date), loinc=loinc, test=test, value=value, unit=unit,
                     range_low=low, range_high=high)


def vital(subject_id: str, date: str, test: str, value: float, unit: str, timepoint: str | None = None) -> VitalSign:
    return VitalSign(subject_id=subject_id, visit="V", date=d(date), test=test, value=value, unit=unit, timepoint=timepoint)  # type: ignore[arg-type]


PARTICIPANTS = [
    participant("001", "2020-01-06"),
    participant("002", "2020-02-01", status="off_study", off_study_on=d("2020-06-01"), off_study_reason="death"),
    participant("003", "2020-03-01", status="withdrawn", off_study_on=d("2020-03-20"), off_study_reason="withdrew consent"),
    participant("004", "2020-09-20", status="enrolled"),
]

INFUSIONS = [
    infusion("001", 1, "2020-01-20", 0.5),
    infusion("001", 2, "2020-02-17", 1.0),
    infusion("002", 1, "2020-02-10", 0.5),
    infusion("002", 2, "2020-03-09", 0.5),
    infusion("003", 1, "2020-03-09", 1.0, weight_kg=60.0),
]

ADVERSE_EVENTS = [
    ae("A1", "001", "Infusion related reaction", 2, "2020-01-20", "possibly", expected=True, resolved=d("2020-01-21"), outcome="recovered"),
    ae("A2", "001", "Headache", 1, "2020-01-25", "unlikely", expected=True),
    ae("A3", "001", "Fever", 1, "2020-02-17", "probably", expected=True),
    ae("A4", "001", "Nausea", 1, "2020-01-15", "unrelated", expected=True),
    ae("A5", "002", "Lung infection", 3, "2020-03-20", "unlikely", serious=True, seriousness=["hospitalisation"],
       learned_at=at("2020-03-21 09:00"), resolved=d("2020-04-02"), outcome="recovered"),
    ae("A6", "002", "Hypoxia", 3, "2020-03-10", "possibly", expected=True),
    ae("A7", "003", "Anaphylaxis", 4, "2020-03-09", "definitely", serious=True, seriousness=["life_threatening"],
       learned_at=at("2020-03-09 14:00"), resolved=d("2020-03-10"), outcome="recovered"),
    ae("A8", "001", "Fatigue", 1, "2020-08-30", "unlikely", expected=True),
    ae("A9", "002", "Respiratory failure", 5, "2020-06-01", "unrelated", learned_at=at("2020-06-01 10:00")),
]

SCREENING = [
    ScreeningEntry(screening_id=f"S{n:02d}", screened_on=d("2020-01-02") + dt.timedelta(days=20 * n), outcome=outcome)
    for n, outcome in enumerate(["enrolled", "screen_failed", "enrolled", "enrolled", "screen_failed", "enrolled"])
]


def trial_data(**kw: Any) -> TrialData:
    base: dict[str, Any] = {"protocol_id": "nct03929120", "cutoff": CUTOFF, "participants": PARTICIPANTS, "infusions": INFUSIONS,
                            "adverse_events": ADVERSE_EVENTS, "screening": SCREENING}
    base.update(kw)
    return TrialData(**base)
