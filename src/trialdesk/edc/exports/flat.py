"""The data manager's flat export by form, read from the trial desk's records at a data cut (what is in force: a record
entered in error is left out) and built by :mod:`trialdesk.analysis.flat_export`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from trialdesk.analysis.flat_export import Column, FlatExport, Table, build, form_columns
from trialdesk.edc.web import protocol
from trialdesk.trial.dose import PER_KG_IN_MILLIONS, plain_unit
from trialdesk.trial.dose import amount as dose_amount

_BASIS = {"per_kg": "per kg of body weight", "per_m2": "per m² of body surface area", "total": "total"}


def _choices(model: Any, name: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in model._meta.get_field(name).flatchoices}


def _columns(model: Any, names: list[str], types: dict[str, str] | None = None) -> list[Column]:
    out = [Column("subject_id", "Subject id")]
    for name in names:
        f = model._meta.get_field(name)
        kind = (types or {}).get(name) or ("date" if f.get_internal_type() == "DateField" else "datetime" if
                                           f.get_internal_type() == "DateTimeField" else "boolean" if
                                           f.get_internal_type() == "BooleanField" else "integer" if "Integer" in
                                           f.get_internal_type() else "float" if f.get_internal_type() == "FloatField" else
                                           "choice" if f.choices else "text")
        out.append(Column(name, str(f.verbose_name), kind, codes=_choices(model, name) if f.choices else {}))
    return out


def _rows(records: Any, names: list[str]) -> list[dict[str, Any]]:
    out = []
    for r in records:
        row: dict[str, Any] = {"subject_id": r.participant.subject_id}
        for n in names:
            v = getattr(r, n)
            row[n] = ", ".join(v) if isinstance(v, list) else v
        out.append(row)
    return out


def flat_export(cutoff: dt.date, *, identified: bool) -> FlatExport:
    from trialdesk.edc.adverse_events.models import AdverseEvent
    from trialdesk.edc.dosing.models import Infusion
    from trialdesk.edc.participants.models import Participant
    from trialdesk.edc.visits.crf import RANGED_FORMS, catalogue
    from trialdesk.edc.visits.models import ConcomitantMedication, FormEntry, MedicalHistoryItem, Visit
    from trialdesk.trial.form_status import status

    cat = catalogue()
    ids = set(Participant.objects.filter(enrolled_on__lte=cutoff).values_list("subject_id", flat=True))
    first: dict[str, dt.date | None] = {sid: None for sid in ids}
    for inf in Infusion.objects.select_related("participant").order_by("date"):
        sid = inf.participant.subject_id
        if sid in first and first[sid] is None:
            first[sid] = inf.date
    tables: list[Table] = []
    visit_names = ["code", "name", "day", "target", "earliest", "latest", "done_on", "out_of_window", "unscheduled",
                   "unscheduled_reason", "not_done_reason"]
    visits = Visit.objects.select_related("participant").filter(participant__subject_id__in=ids).order_by("participant", "day")
    tables.append(Table("visits", "Visits", _columns(Visit, visit_names, {"day": "integer", "unscheduled_reason": "narrative",
                                                                          "not_done_reason": "narrative"}),
                        _rows([v for v in visits if v.target <= cutoff or (v.done_on and v.done_on <= cutoff)], visit_names)))
    entries = (FormEntry.objects.select_related("visit__participant")
               .filter(visit__participant__subject_id__in=ids, visit__done_on__lte=cutoff).order_by("visit__participant", "visit__day"))
    by_form: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        v = e.visit
        by_form.setdefault(e.form, []).append({
            "subject_id": v.participant.subject_id, "visit": v.code, "visit_name": v.name, "unscheduled": v.unscheduled,
            "visit_date": v.done_on, "status": status(cat, e.form, e.data if not e.not_done_reason else None, e.not_done_reason)
            if e.form in cat.ids else "", "not_done_reason": e.not_done_reason, **e.data})
    for form in cat.forms:
        if not form.visit_form:
            continue
        tables.append(Table(form.id, form.title, form_columns(cat, form.id, ranged=form.id in RANGED_FORMS), by_form.get(form.id, [])))
    inf_names = ["number", "date", "started_at", "stopped_at", "weight_kg", "total_cells", "lot", "donor_id",
                 "premedication", "interrupted", "interruptions"]
    inf_types = {"started_at": "text", "stopped_at": "text", "premedication": "narrative", "interruptions": "narrative"}
    # the dose as the protocol states it (per kg, per m² or total), in its unit, computed from what was measured
    spec = protocol().study_intervention.dose_spec or PER_KG_IN_MILLIONS
    inf_columns = _columns(Infusion, inf_names, inf_types)
    at = next(i for i, c in enumerate(inf_columns) if c.name == "total_cells") + 1
    inf_columns.insert(at, Column("dose", f"dose ({_BASIS[spec.basis]})", "float", unit=plain_unit(spec.unit).removeprefix("×").strip()))
    infusions = list(Infusion.objects.select_related("participant").filter(participant__subject_id__in=ids, date__lte=cutoff)
                     .order_by("participant", "number"))
    inf_rows = [{**row, "dose": round(dose_amount(spec, i.total_cells, weight_kg=i.weight_kg), 4)}
                for i, row in zip(infusions, _rows(infusions, inf_names), strict=True)]
    tables.append(Table("infusions", "Infusions", inf_columns, inf_rows))
    ae_names = ["term", "meddra_code", "soc", "grade", "onset", "resolved", "serious", "seriousness", "relatedness", "outcome",
                "action_taken", "learned_at"]
    aes = AdverseEvent.objects.select_related("participant").filter(participant__subject_id__in=ids, onset__lte=cutoff)
    ae_rows = [{"ae_id": a.ae_id, **r} for a, r in zip(aes.order_by("participant", "onset", "pk"),
                                                         _rows(aes.order_by("participant", "onset", "pk"), ae_names), strict=True)]
    tables.append(Table("adverse_events", "Adverse events", [Column("ae_id", "AE id"), *_columns(AdverseEvent, ae_names,
                        {"seriousness": "text"})], ae_rows))
    cm_names = ["medication", "rxnorm_code", "indication", "dose", "dose_unit", "route", "frequency", "start_date", "end_date", "ongoing"]
    tables.append(Table("concomitant_medications", "Concomitant medications", _columns(ConcomitantMedication, cm_names),
                        _rows(ConcomitantMedication.objects.select_related("participant").filter(participant__subject_id__in=ids),
                              cm_names)))
    mh_names = ["term", "icd10cm_code", "start_date", "end_date", "ongoing"]
    tables.append(Table("medical_history", "Medical history", _columns(MedicalHistoryItem, mh_names),
                        _rows(MedicalHistoryItem.objects.select_related("participant").filter(participant__subject_id__in=ids),
                              mh_names)))
    return build(tables, day0=first, identified=identified)
