"""A hand-counted data cut of NCT03929120 (window: 183 days from the first infusion).

S01  infusions 2020-01-20 (0.5 x 10^6/kg) and 2020-02-17 (1.0); completed 6 months.
     A1 Headache        g1 unrelated   2020-01-10  before the first infusion: not counted
     A2 Infusion rel. r g2 possibly    2020-01-20  infusion day 1: infusion 1
     A3 Fever           g1 probably    2020-02-17  infusion day 2: infusion 2
     A4 Cough           g1 unrelated   2020-03-01  after the second infusion: infusion 2
     A6 Nausea          g1 unlikely    2020-07-21  day 183, last day of the window: infusion 2
     A5 Fatigue         g1 unrelated   2020-07-25  day 187: after the window, not counted
S02  infusions 2020-02-03 (0.5) and 2020-03-02 (0.5); on study.
     B1 Hypoxia         g3 possibly    2020-02-04  serious (hospitalisation): infusion 1
     B2 Lung infection  g3 unrelated   2020-03-10  serious (hospitalisation): infusion 2
S03  infusion 2020-03-02 (1.0); died 2020-04-15.
     C2 Nausea          g1 unlikely    2020-03-05  infusion 1
     C1 Respiratory f.  g5 unrelated   2020-04-15  serious (death), fatal: infusion 1
S04  enrolled, never infused, withdrew consent 2020-03-20.

Assessment (when the site learned of it, America/New_York): systematic when at a scheduled visit with the AE
form that was done that day (A2 D0, A3 D28, A6 M6, C2 D7) or suggested by a result (B1, SpO2 at D1);
non-systematic otherwise (A1, A4 by phone, B2, C1).

Counted: 8 events (infusion 1: A2 B1 C2 C1 = 4; infusion 2: A3 A4 A6 B2 = 4).
Related (possibly+): A2 A3 B1 = 3 events in S01, S02.  Grade >= 3: B1 B2 C1 = 3 events in S02, S03.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from trialdesk.terminology.ctcae import Ctcae
from trialdesk.trial.records import (
    AdverseEvent,
    ConcomitantMedication,
    FunctionTest,
    Infusion,
    LabResult,
    MedicalHistoryItem,
    Participant,
    ProtocolDeviation,
    ScreeningEntry,
    TrialData,
    VisitRecord,
    VitalSign,
)

D = dt.date.fromisoformat
_CTCAE = Ctcae.load()
_NY = dt.timezone(dt.timedelta(hours=-5))


def _learned(day: str) -> dt.datetime:
    """10:00 in Jacksonville (EST) on ``day``."""
    return dt.datetime.fromisoformat(f"{day}T10:00:00").replace(tzinfo=_NY)


def _ae(id_: str, subject: str, term: str, grade: int, onset: str, relatedness: str, **kw: Any) -> AdverseEvent:
    t = _CTCAE.term(term)
    return AdverseEvent(id=id_, subject_id=subject, term=t.term, meddra_code=int(t.meddra_code), soc=t.soc, grade=grade,
                        onset=D(onset), relatedness=relatedness, **kw)  # type: ignore[arg-type]


def _inf(subject: str, number: int, date: str, weight: float, cells: float) -> Infusion:
    return Infusion(subject_id=subject, number=number, date=D(date), weight_kg=weight, total_cells=cells, lot=f"LOT-{number}",
                    donor_id="DONOR-7")


def trial_data() -> TrialData:
    return TrialData(
        protocol_id="nct03929120",
        cutoff=D("2020-09-01"),
        screening=[
            ScreeningEntry(screening_id="SCR-001", screened_on=D("2020-01-02"), outcome="enrolled"),
            ScreeningEntry(screening_id="SCR-002", screened_on=D("2020-01-09"), outcome="screen_failed", failed_criteria=["E3"]),
            ScreeningEntry(screening_id="SCR-003", screened_on=D("2020-01-16"), outcome="enrolled"),
            ScreeningEntry(screening_id="SCR-004", screened_on=D("2020-01-23"), outcome="screen_failed", failed_criteria=["E8", "E3"]),
            ScreeningEntry(screening_id="SCR-005", screened_on=D("2020-02-10"), outcome="enrolled"),
            ScreeningEntry(screening_id="SCR-006", screened_on=D("2020-02-20"), outcome="withdrew_before_enrolment", reason="moved away"),
            ScreeningEntry(screening_id="SCR-007", screened_on=D("2020-02-27"), outcome="enrolled"),
        ],
        participants=[
            Participant(subject_id="S01", screening_id="SCR-001", age_at_enrolment=54, sex="female", race="white",
                        ethnicity="not_hispanic_or_latino", consented_on=D("2020-01-02"), enrolled_on=D("2020-01-06"),
                        status="completed", off_study_on=D("2020-07-21"), off_study_reason="completed 6 months"),
            Participant(subject_id="S02", screening_id="SCR-003", age_at_enrolment=61, sex="male", race="black_or_african_american",
                        ethnicity="hispanic_or_latino", consented_on=D("2020-01-16"), enrolled_on=D("2020-01-20")),
            Participant(subject_id="S03", screening_id="SCR-005", age_at_enrolment=70, sex="female", race="asian",
                        ethnicity="not_hispanic_or_latino", consented_on=D("2020-02-10"), enrolled_on=D("2020-02-14"),
                        status="off_study", off_study_on=D("2020-04-15"), off_study_reason="death"),
            Participant(subject_id="S04", screening_id="SCR-007", age_at_enrolment=45, sex="male", race="white",
                        consented_on=D("2020-02-27"), enrolled_on=D("2020-03-02"), status="withdrawn", off_study_on=D("2020-03-20"),
                        off_study_reason="withdrawal of consent by the participant"),
        ],
        infusions=[
            _inf("S01", 1, "2020-01-20", 70, 35e6),
            _inf("S01", 2, "2020-02-17", 70, 70e6),
            _inf("S02", 1, "2020-02-03", 80, 40e6),
            _inf("S02", 2, "2020-03-02", 80, 40e6),
            _inf("S03", 1, "2020-03-02", 60, 60e6),
        ],
        adverse_events=[
            _ae("A1", "S01", "Headache", 1, "2020-01-10", "unrelated",
                learned_at=_learned("2020-01-10"), outcome="recovered", resolved=D("2020-01-11")),
            _ae("A2", "S01", "Infusion related reaction", 2, "2020-01-20", "possibly",
                verbatim_term="chills and flushing during the infusion",
                action_taken="infusion_interrupted",
                learned_at=_learned("2020-01-20"), outcome="recovered", resolved=D("2020-01-20"),
                expected=True),
            _ae("A3", "S01", "Fever", 1, "2020-02-17", "probably",
                learned_at=_learned("2020-02-17"), outcome="recovered", expected=True),
            _ae("A4", "S01", "Cough", 1, "2020-03-01", "unrelated",
                learned_at=_learned("2020-03-01")),
            _ae("A5", "S01", "Fatigue", 1, "2020-07-25", "unrelated",
                learned_at=_learned("2020-07-26")),
            _ae("A6", "S01", "Nausea", 1, "2020-07-21", "unlikely",
                learned_at=_learned("2020-07-21")),
            _ae("B1", "S02", "Hypoxia", 3, "2020-02-04", "possibly",
                suggested_from="SpO2 88 % at D1", action_taken="treatment_given", serious=True, seriousness=["hospitalisation"],
                outcome="recovered",
                resolved=D("2020-02-09")),
            _ae("B2", "S02", "Lung infection", 3, "2020-03-10", "unrelated",
                learned_at=_learned("2020-03-11"), serious=True, seriousness=["hospitalisation"],
                outcome="recovering"),
            _ae("C2", "S03", "Nausea", 1, "2020-03-05", "unlikely",
                learned_at=_learned("2020-03-09"), outcome="recovered"),
            _ae("C1", "S03", "Respiratory failure", 5, "2020-04-15", "unrelated",
                learned_at=_learned("2020-04-15"), serious=True, seriousness=["death"], outcome="fatal",
                resolved=D("2020-04-15")),
        ],
        labs=[
            LabResult(subject_id="S01", visit="SCREENING", date=D("2020-01-02"), loinc="1742-6", test="ALT", value=25, unit="U/L",
                      range_low=7, range_high=56),
            LabResult(subject_id="S01", visit="D1", date=D("2020-01-21"), loinc="718-7", test="Hemoglobin", value=11.0, unit="g/dL",
                      range_low=12, range_high=16),
            LabResult(subject_id="S02", visit="D1", date=D("2020-02-04"), loinc="1920-8", test="AST", value=80, unit="U/L",
                      range_low=10, range_high=40),
            # creatinine in mg/dL at screening and in umol/L (another laboratory) at D7: LBSTRESU is umol/L for both
            LabResult(subject_id="S02", visit="SCREENING", date=D("2020-01-16"), loinc="2160-0", test="Creatinine", value=1.1,
                      unit="mg/dL", range_low=0.6, range_high=1.2),
            LabResult(subject_id="S02", visit="D7", date=D("2020-02-10"), loinc="2160-0", test="Creatinine", value=90,
                      unit="umol/L", range_low=53, range_high=106),
            LabResult(subject_id="S02", visit="SCREENING", date=D("2020-01-10"), loinc="2160-0", test="Creatinine", value=1.0,
                      unit="mg/dL", range_low=0.6, range_high=1.2),
        ],
        function_tests=[
            FunctionTest(subject_id="S01", visit="SCREENING", date=D("2020-01-02"), test="FVC", value=2.41, unit="L"),
            FunctionTest(subject_id="S01", visit="SCREENING", date=D("2020-01-02"), test="DLCOPP", value=48.0, unit="%"),
            FunctionTest(subject_id="S01", visit="SCREENING", date=D("2020-01-02"), test="SIXMWD", value=380, unit="m"),
            FunctionTest(subject_id="S01", visit="M6", date=D("2020-07-21"), test="FVC", value=2.55, unit="L"),
            FunctionTest(subject_id="S01", visit="M6", date=D("2020-07-21"), test="SIXMWD", value=402, unit="m"),
        ],
        concomitant_medications=[
            ConcomitantMedication(id="CM1", subject_id="S01", medication="Mycophenolate mofetil 1000 mg BID", rxnorm_code="68149",
                                  indication="ILD", dose=1000, dose_unit="mg", route="oral", frequency="BID",
                                  start_date=D("2019-06-01"), ongoing=True),
            ConcomitantMedication(id="CM2", subject_id="S02", medication="paracetamol", indication="fever", dose=500, dose_unit="mg",
                                  route="oral", start_date=D("2020-02-04"), end_date=D("2020-02-06")),
        ],
        medical_history=[
            MedicalHistoryItem(id="MH1", subject_id="S01", term="Systemic sclerosis", icd10cm_code="M34.9", start_date=D("2015-03-01"),
                               ongoing=True),
            MedicalHistoryItem(id="MH2", subject_id="S02", term="Appendectomy", start_date=D("1990-05-01"), end_date=D("1990-05-01")),
        ],
        deviations=[
            ProtocolDeviation(id="DV1", subject_id="S02", date=D("2020-03-06"), category="visit out of window",
                              description="D28 visit on day 33, window day 25-31", source="automatic"),
            ProtocolDeviation(id="DV2", subject_id=None, date=D("2020-02-01"), category="consent",
                              description="site used an outdated consent version for screening", source="manual", reason="version control"),
        ],
        vitals=[
            VitalSign(subject_id="S01", visit="D0", date=D("2020-01-20"), test="SYSBP", value=120, unit="mmHg", timepoint="PRE-INFUSION"),
            VitalSign(subject_id="S01", visit="D0", date=D("2020-01-20"), test="PULSE", value=72, unit="beats/min",
                      timepoint="PRE-INFUSION"),
            VitalSign(subject_id="S01", visit="D0", date=D("2020-01-20"), test="SPO2", value=95, unit="%"),
            VitalSign(subject_id="S02", visit="D0", date=D("2020-02-03"), test="TEMP", value=38.4, unit="C", timepoint="1H POST"),
        ],
        visits=[
            VisitRecord(subject_id="S01", code="D0", date=D("2020-01-20")),
            VisitRecord(subject_id="S01", code="D28", date=D("2020-02-17")),
            VisitRecord(subject_id="S01", code="M6", date=D("2020-07-21")),
            VisitRecord(subject_id="S03", code="D7", date=D("2020-03-09")),
            VisitRecord(subject_id="S02", code="D0", date=D("2020-02-03")),
        ],
    )


def empty_data() -> TrialData:
    return TrialData(protocol_id="nct03929120", cutoff=D("2019-12-01"))
