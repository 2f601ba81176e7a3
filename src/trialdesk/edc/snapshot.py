"""A data cut for the Django-free core: :func:`trial_data` turns what the EDC holds into a
:class:`trialdesk.trial.records.TrialData`, de-identified (subject ids, age and sex only)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from trialdesk.trial.records import (
    FunctionTest,
    Infusion,
    LabResult,
    Participant,
    ScreeningEntry,
    TrialData,
    VisitRecord,
    VitalSign,
)

# forms.yaml field -> (SDTM test code, unit) for vital signs captured at visits
_VITALS = {"sysbp": ("SYSBP", "mmHg"), "diabp": ("DIABP", "mmHg"), "pulse": ("PULSE", "beats/min"), "resp": ("RESP", "breaths/min"),
           "temp": ("TEMP", "C"), "weight": ("WEIGHT", "kg"), "oxysat": ("SPO2", "%")}
# laboratory field -> (LOINC, test name)
_LABS = {"hgb": ("718-7", "Hemoglobin"), "wbc": ("6690-2", "Leukocytes"), "neut": ("751-8", "Neutrophils"),
         "lym": ("731-0", "Lymphocytes"), "plat": ("777-3", "Platelets"), "creat": ("2160-0", "Creatinine"),
         "ast": ("1920-8", "Aspartate aminotransferase"), "alt": ("1742-6", "Alanine aminotransferase"),
         # added for CTCAE v5.0 grading and Hy's law (safety, issue 18)
         "tbili": ("1975-2", "Bilirubin"), "alp": ("6768-6", "Alkaline phosphatase"), "ggt": ("2324-2", "Gamma-glutamyltransferase"),
         "inr": ("6301-6", "INR"), "aptt": ("14979-9", "aPTT"), "fibrinogen": ("3255-7", "Fibrinogen"), "albumin": ("1751-7", "Albumin"),
         "sodium": ("2951-2", "Sodium"), "potassium": ("2823-3", "Potassium"), "glucose": ("2345-7", "Glucose")}


# lung function (pulmonary_function form) and six-minute walk (six_minute_walk form): field -> test code
_FUNCTION_TESTS = {"fvc": "FVC", "fvc_pct": "FVCPP", "fev1": "FEV1", "dlco_pct": "DLCOPP", "smw_distance": "SIXMWD",
                   "smw_spo2_nadir": "SIXMWSPO2", "smw_borg": "BORG"}


def _age(birth: dt.date | None, on: dt.date) -> int:
    if birth is None:
        return 0
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def core_infusion(row: Any) -> Infusion:
    """The core's record of a stored infusion (``row`` with its participant loaded)."""
    return Infusion(subject_id=row.participant.subject_id, number=row.number, date=row.date, weight_kg=row.weight_kg,
                    total_cells=row.total_cells, lot=row.lot, donor_id=row.donor_id, interrupted=row.interrupted)


def trial_data(cutoff: dt.date, protocol_id: str | None = None) -> TrialData:
    import django

    from trialdesk.edc import setup

    if not django.apps.apps.ready:
        setup()
    from trialdesk.edc.dosing.models import Infusion as InfusionRow
    from trialdesk.edc.participants.models import Participant as ParticipantRow
    from trialdesk.edc.screening.models import ScreeningEntry as ScreeningRow
    from trialdesk.edc.visits.crf import definition
    from trialdesk.edc.visits.models import FormEntry, Visit
    from trialdesk.edc.web import protocol

    rows = ParticipantRow.objects.select_related("screening", "consent").filter(enrolled_on__lte=cutoff)
    # race and ethnicity as the demographics form's codes (the latest entry of each participant)
    demographics: dict[str, dict[str, Any]] = {}
    for e in FormEntry.objects.select_related("visit__participant").filter(form="demographics").order_by("pk"):
        demographics[e.visit.participant.subject_id] = e.data
    from trialdesk.edc.dosing.models import CohortAssignment

    cohorts = dict(CohortAssignment.objects.filter(assigned_on__lte=cutoff).values_list("participant_id", "cohort"))
    participants = []
    for p in rows:
        consent = p.consent  # the consent in force (what current_consent() reads, one query per participant)
        status = p.status if (p.off_study_on is None or p.off_study_on <= cutoff) else "on_study"
        participants.append(Participant(
            subject_id=p.subject_id, screening_id=p.screening.number, age_at_enrolment=_age(p.screening.birth_date, p.enrolled_on),
            sex=p.screening.sex, race=str(demographics.get(p.subject_id, {}).get("dm_race") or "unknown_or_not_reported"),
            ethnicity=str(demographics.get(p.subject_id, {}).get("dm_ethnicity") or "unknown_or_not_reported"),
            consented_on=consent.core().signed_on, enrolled_on=p.enrolled_on, status=status,  # type: ignore[arg-type]
            off_study_on=p.off_study_on if status != "on_study" else None, off_study_reason=p.off_study_reason or None,
            cohort=cohorts.get(p.pk)))
    ids = {p.subject_id for p in participants}
    infusions = [core_infusion(i) for i in InfusionRow.objects.select_related("participant").filter(date__lte=cutoff)
                 if i.participant.subject_id in ids]
    screening = [ScreeningEntry(screening_id=s.number, screened_on=s.screened_on,
                                outcome={"rescreened": "screen_failed"}.get(s.outcome, s.outcome),  # type: ignore[arg-type]
                                failed_criteria=list(s.failed_criteria), reason=s.fail_note or None)
                 for s in ScreeningRow.objects.filter(screened_on__lte=cutoff)]
    visits = [VisitRecord(subject_id=v.participant.subject_id, code=v.code, date=v.done_on if v.done_on and v.done_on <= cutoff else None,
                          status="done" if v.done_on and v.done_on <= cutoff else ("missed" if v.latest < cutoff else "scheduled"),
                          unscheduled=v.unscheduled)
              for v in Visit.objects.select_related("participant") if v.participant.subject_id in ids]
    labs: list[LabResult] = []
    vitals: list[VitalSign] = []
    function_tests: list[FunctionTest] = []
    # infusions, forms (and, in adverse_events.service.cut, AEs) are read through ``objects``, which leaves out every
    # record marked entered in error (trialdesk.edc.records.Voidable): the data cut never holds one
    for e in FormEntry.objects.select_related("visit__participant"):
        sid, code, data = e.visit.participant.subject_id, e.visit.code, e.data
        if sid not in ids:
            continue
        day = next((dt.date.fromisoformat(v) for k, v in data.items() if k.endswith("_date")), e.visit.done_on)
        if day is None or day > cutoff:
            continue
        fields: dict[str, Any] = {f.name: f for f in definition(e.form).fields}
        for name, value in data.items():
            if name in _LABS and e.form == "laboratory":
                loinc, test = _LABS[name]
                labs.append(LabResult(subject_id=sid, visit=code, date=day, loinc=loinc, test=test, value=float(value),
                                      unit=fields[name].unit or "", range_low=data.get(f"{name}_lln"), range_high=data.get(f"{name}_uln")))
            elif name in _FUNCTION_TESTS and e.form in ("pulmonary_function", "six_minute_walk") and value is not None:
                function_tests.append(FunctionTest(subject_id=sid, visit=code, date=day, test=_FUNCTION_TESTS[name],  # type: ignore[arg-type]
                                                   value=float(value), unit=fields[name].unit or ""))
            elif name in _VITALS:
                test, unit = _VITALS[name]
                spo2: dict[str, Any] = {}
                if test == "SPO2":  # the SpO2 form's context, which hypoxia grading needs (rest or exertion, oxygen)
                    rest = data.get("spo2_at_rest")
                    spo2 = {"at_rest": None if rest in (None, "") else rest in (True, "yes", "Y", "true", 1),
                            "oxygen_l_min": None if data.get("spo2_o2_flow") in (None, "") else float(data["spo2_o2_flow"])}
                vitals.append(VitalSign(subject_id=sid, visit=code, date=day, test=test, value=float(value), unit=unit,  # type: ignore[arg-type]
                                        timepoint=data.get("vs_timepoint"), **spo2))
    from trialdesk.edc.visits.history import history, medications

    return TrialData(protocol_id=protocol_id or protocol().id, cutoff=cutoff, screening=screening, participants=participants,
                     infusions=infusions, labs=labs, vitals=vitals, visits=visits,
                     function_tests=function_tests,
                     concomitant_medications=[m for m in medications(cutoff) if m.subject_id in ids],
                     medical_history=[h for h in history(cutoff) if h.subject_id in ids])
