"""Recording an infusion: the core decides, this module stores and schedules the visits."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from trialdesk.edc.audit import trail
from trialdesk.edc.context import lock_audit_chain
from trialdesk.edc.dosing.models import CohortAssignment, Infusion
from trialdesk.edc.participants.models import Participant, Pause
from trialdesk.edc.participants.service import enrolled
from trialdesk.edc.web import protocol, today
from trialdesk.trial.dosing import DosingParticipant, InfusionEntry, check_dose, check_infusion
from trialdesk.trial.errors import ConductError

PHASES = ("before", "during", "after")
#: vital signs around an infusion: code, label, lowest and highest plausible value (the form and the API are held to the same)
VITALS = (("sbp", "Systolic BP (mmHg)", 50, 260), ("dbp", "Diastolic BP (mmHg)", 20, 160), ("pulse", "Pulse (/min)", 20, 250),
          ("temp", "Temperature (°C)", 32, 43), ("spo2", "SpO2 (%)", 50, 100))

FIELDS = ("date", "started_at", "stopped_at", "weight_kg", "total_cells", "lot", "donor_id", "premedication", "vitals",
          "interrupted", "interruptions")


def _times(data: dict[str, Any]) -> None:
    start, stop = data.get("started_at"), data.get("stopped_at")
    if start is not None and stop is not None and stop <= start:
        raise ConductError("stopped_at", f"the infusion stopped ({stop:%H:%M}) before it started ({start:%H:%M}); correct the times")
    for name in ("lot", "donor_id"):
        if not str(data.get(name) or "").strip():
            raise ConductError(name, "record the product's lot and donor id (chain of identity)")
    _vitals(data.get("vitals") or {})


def _vitals(vitals: Any) -> None:
    """Vital signs as the form takes them: known phases and codes, each value within its plausible range."""
    ranges = {code: (label, low, high) for code, label, low, high in VITALS}
    if not isinstance(vitals, dict):
        raise ConductError("vitals", "give vital signs as {phase: {code: value}}")
    for phase, values in vitals.items():
        if phase not in PHASES or not isinstance(values, dict):
            raise ConductError("vitals", f"{str(phase)[:40]!r} is not a phase of an infusion; use {', '.join(PHASES)}")
        for code, value in values.items():
            if code not in ranges:
                raise ConductError("vitals", f"{str(code)[:40]!r} is not a vital sign recorded at infusion; use {', '.join(ranges)}")
            label, low, high = ranges[code]
            if not isinstance(value, int | float) or not low <= value <= high:
                raise ConductError("vitals", f"{phase}: {label} {value!r} is outside {low}–{high}; check the value and its unit")


def record_infusion(user: Any, participant: Participant, *, number: int | None = None, **data: Any) -> Infusion:
    """Store the infusion or refuse with the core's reason; nothing is stored on refusal.

    ``number`` None: the participant's next infusion, counted under the same lock as the insert (two
    simultaneous requests cannot both take the same number; the second is checked as the one after)."""
    with transaction.atomic():
        lock_audit_chain()
        participant = Participant.objects.select_related("screening").get(pk=participant.pk)
        previous = [(i.number, i.date) for i in participant.infusions.all()]
        if number is None:
            number = len(previous) + 1
        from trialdesk.edc.adverse_events.service import died_on

        who = DosingParticipant(participant.subject_id, participant.status, participant.enrolled_on,
                                participant.current_consent().core(), previous, died_on=died_on(participant))
        entry = InfusionEntry(number, data["date"], float(data["weight_kg"]), float(data["total_cells"]))
        dose = check_infusion(protocol(), who, entry, others=enrolled(), pauses=Pause.in_force(), today=today())
        if number == 1 and protocol().dose_finding is not None:  # a dose-finding trial: the assigned cohort, open, at its level
            from trialdesk.edc.adverse_events.service import cut, recorded_decisions
            from trialdesk.trial.cohort_gate import check_first_dose

            check_first_dose(protocol(), cut(), CohortAssignment.in_force(), recorded_decisions(), participant.subject_id,
                             entry.total_cells, entry.weight_kg, entry.date)
        _times(data)
        infusion = trail.create(Infusion(participant=participant, number=number, dose_per_kg=dose,
                                         **{k: v for k, v in data.items() if k in FIELDS}), user)
        from trialdesk.edc.visits.service import generate, mark_infusion_visit

        if number == 1:
            generate(user, participant, data["date"])
        mark_infusion_visit(user, participant, number, data["date"])
    return infusion


def edit_infusion(user: Any, infusion: Infusion, *, changes: dict[str, Any], reason: str, version: int) -> Infusion:
    """Correct an infusion record: the dose is recomputed and re-checked against the protocol."""
    weight = float(changes.get("weight_kg", infusion.weight_kg))
    cells = float(changes.get("total_cells", infusion.total_cells))
    day: dt.date = changes.get("date", infusion.date)
    if day > today():
        raise ConductError("date", "an infusion cannot be dated in the future")
    dose = check_dose(protocol(), InfusionEntry(infusion.number, day, weight, cells))
    assignment = CohortAssignment.objects.filter(participant=infusion.participant_id).first()
    if infusion.number == 1 and assignment is not None and protocol().dose_finding is not None:
        from trialdesk.trial.cohort_gate import check_cohort_level

        check_cohort_level(protocol(), assignment.participant.subject_id, protocol().dose_finding.cohort(assignment.cohort), cells,
                           weight)
    merged = {k: changes.get(k, getattr(infusion, k)) for k in FIELDS}
    _times(merged)
    return trail.update(infusion, user, changes={**{k: v for k, v in changes.items() if k in FIELDS}, "dose_per_kg": dose},
                        reason=reason, version=version)


# --- cohorts (a protocol with dose finding) --------------------------------------------------------------------------


def cohort_choices() -> list[tuple[str, str]]:
    """The cohorts a participant may be assigned to now (open, with a place), as the desk offers them."""
    from trialdesk.edc.adverse_events.service import cut, recorded_decisions
    from trialdesk.trial.cohort_gate import assignable
    from trialdesk.trial.dose import dose_text

    p = protocol()
    spec = p.study_intervention.dose_spec
    assert spec is not None and p.dose_finding is not None
    levels = {lv.id: lv for lv in spec.levels}
    return [(c.id, f"{c.id}: {c.dose_level} ({levels[c.dose_level].label or dose_text(spec, levels[c.dose_level].amount)})")
            for c in assignable(p, cut(), CohortAssignment.in_force(), recorded_decisions())]


def cohort_states() -> list[tuple[str, str]]:
    """Each cohort and its state in words (open, full, what it waits for), as the DSMB's cohort table says it."""
    from trialdesk.edc.adverse_events.service import cut, recorded_decisions
    from trialdesk.trial.cohort_gate import cohort_rows

    return [(r.cohort, r.state) for r in cohort_rows(protocol(), cut(), CohortAssignment.in_force(), recorded_decisions(), today())]


def assign_cohort(user: Any, participant: Participant, *, cohort: str) -> CohortAssignment:
    """Assign the participant to a dose cohort, or refuse (nothing stored) with the core's reason: the cohort is not
    open (and the review it waits for), full, dose finding stopped, or the participant already assigned or dosed."""
    from trialdesk.edc.adverse_events.service import cut, recorded_decisions
    from trialdesk.trial.cohort_gate import check_assignment

    if protocol().dose_finding is None:
        raise ConductError("cohort", f"protocol {protocol().id} has no dose cohorts; there is nothing to assign")
    with transaction.atomic():
        lock_audit_chain()  # two coordinators assigning the last place at once: the second sees the first
        participant = Participant.objects.get(pk=participant.pk)
        check_assignment(protocol(), cut(), CohortAssignment.in_force(), recorded_decisions(), participant.subject_id, cohort)
        return trail.create(CohortAssignment(participant=participant, cohort=cohort, assigned_on=today()), user)
