"""Marking a record entered in error (rules: :mod:`trialdesk.trial.voiding`); audited like any change."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from trialdesk.edc.audit import trail
from trialdesk.edc.context import lock_audit_chain
from trialdesk.trial.voiding import check_void


def _what(obj: Any) -> str:
    from trialdesk.edc.adverse_events.models import AdverseEvent
    from trialdesk.edc.dosing.models import CohortAssignment, Infusion

    if isinstance(obj, AdverseEvent):
        return obj.ae_id
    if isinstance(obj, CohortAssignment):
        return f"the assignment of {obj.participant.subject_id} to cohort {obj.cohort}"
    if isinstance(obj, Infusion):
        return f"infusion {obj.number} of {obj.participant.subject_id}"
    return f"the {obj.form.replace('_', ' ')} form of {obj.visit.participant.subject_id} at {obj.visit.name}"


def mark_entered_in_error(user: Any, obj: Any, *, reason: str, version: int) -> Any:
    from trialdesk.edc.adverse_events.models import AdverseEvent, DeathReport
    from trialdesk.edc.dosing.models import CohortAssignment, Infusion

    with transaction.atomic():
        lock_audit_chain()
        current = type(obj)._base_manager.get(pk=obj.pk)
        later = None
        if isinstance(current, Infusion):
            later = Infusion.objects.filter(participant_id=current.participant_id, number__gt=current.number).order_by("-number") \
                .values_list("number", flat=True).first()
        death = isinstance(current, AdverseEvent) and DeathReport.objects.filter(adverse_event_id=current.pk).exists()
        dosed = isinstance(current, CohortAssignment) and Infusion.objects.filter(participant_id=current.participant_id).exists()
        text = check_void(_what(current), reason=reason, already=current.entered_in_error, later_infusion=later, death_report=death,
                          dosed_in_cohort=dosed)
        return trail.update(current, user, changes={"error_reason": text}, reason=f"entered in error: {text}", version=version)
