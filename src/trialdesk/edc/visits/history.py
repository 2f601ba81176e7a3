"""Concomitant medications and medical history: entered per participant, checked by the core's record shapes
(:class:`trialdesk.trial.records.ConcomitantMedication`, :class:`~trialdesk.trial.records.MedicalHistoryItem`), read into
the data cut (``TrialData.concomitant_medications`` / ``medical_history``, from which SDTM CM and MH are built)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError

from trialdesk.edc.audit import trail
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.visits.models import ConcomitantMedication, MedicalHistoryItem
from trialdesk.edc.web import today
from trialdesk.trial import records as core
from trialdesk.trial.errors import ConductErrors

CM_FIELDS = ("medication", "rxnorm_code", "indication", "dose", "dose_unit", "route", "frequency", "start_date", "end_date", "ongoing")
MH_FIELDS = ("term", "icd10cm_code", "start_date", "end_date", "ongoing")


def _problems(shape: type[core._Record], values: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for name in ("start_date", "end_date"):
        d = values.get(name)
        if isinstance(d, dt.date) and d > today():
            problems.append((name, f"{d} is in the future; enter the date it started or ended"))
    if problems:
        return problems
    try:
        shape.model_validate({"id": "new", "subject_id": "x", **{k: (v if v != "" else None) for k, v in values.items()
                                                                if k not in ("medication", "term") or v}})
    except ValidationError as exc:
        for e in exc.errors():
            msg = str(e["msg"]).removeprefix("Value error, ")
            field = str(e["loc"][0]) if e["loc"] else ("end_date" if "end_date" in msg else "start_date")
            problems.append((field, msg.split(": ", 1)[-1]))
    return problems


def add(user: Any, participant: Participant, kind: str, values: dict[str, Any]) -> Any:
    """Store a concomitant medication (``kind`` "cm") or medical-history item ("mh"), or refuse every problem at once."""
    shape, model, fields = ((core.ConcomitantMedication, ConcomitantMedication, CM_FIELDS) if kind == "cm"
                            else (core.MedicalHistoryItem, MedicalHistoryItem, MH_FIELDS))
    clean = {k: values.get(k) for k in fields}
    problems = _problems(shape, clean)
    if problems:
        raise ConductErrors(problems)
    stored = {k: ("" if v is None and model._meta.get_field(k).get_internal_type() in ("CharField", "TextField") else v)
              for k, v in clean.items()}
    stored["ongoing"] = bool(stored.get("ongoing"))
    return trail.create(model(participant=participant, **stored), user)


def medications(cutoff: dt.date | None = None) -> list[core.ConcomitantMedication]:
    rows = ConcomitantMedication.objects.select_related("participant")
    return [core.ConcomitantMedication(id=m.record_id, subject_id=m.participant.subject_id, medication=m.medication,
                                       rxnorm_code=m.rxnorm_code or None, indication=m.indication or None, dose=m.dose,
                                       dose_unit=m.dose_unit or None, route=m.route or None, frequency=m.frequency or None,
                                       start_date=m.start_date, end_date=m.end_date, ongoing=m.ongoing)
            for m in rows if cutoff is None or m.start_date is None or m.start_date <= cutoff]


def history(cutoff: dt.date | None = None) -> list[core.MedicalHistoryItem]:
    rows = MedicalHistoryItem.objects.select_related("participant")
    return [core.MedicalHistoryItem(id=h.record_id, subject_id=h.participant.subject_id, term=h.term, icd10cm_code=h.icd10cm_code or None,
                                    start_date=h.start_date, end_date=h.end_date, ongoing=h.ongoing)
            for h in rows if cutoff is None or h.start_date is None or h.start_date <= cutoff]
