"""Safety in the trial desk: the trial context services share, and the sponsor-investigator's
expectedness assessment of each adverse event (the rule is the core's,
:mod:`trialdesk.safety.expectedness`; this module records who decided what, when and why).

Readings:

- The assessment is never pre-filled: an AE has none until a person records one. The page shows what
  the reference safety information suggests, with its reason; the person chooses.
- A reason is required when the assessment differs from the suggestion, and when it replaces an
  earlier assessment (a change); agreeing with the suggestion the first time needs none (the
  suggestion's reason is stored with it).
- An assessment holds for the term, grade and onset the AE had when it was made; a later change to
  any of them makes the AE "not yet assessed" again (see ``ExpectednessAssessment.holds_for``).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from trialdesk.edc.adverse_events.models import AdverseEvent
from trialdesk.edc.audit import trail
from trialdesk.edc.context import TrialContext, lock_audit_chain, trial_context
from trialdesk.edc.safety.models import ExpectednessAssessment
from trialdesk.safety.expectedness import ExpectednessSuggestion, suggest_expectedness
from trialdesk.trial.errors import ConductError

__all__ = ["TrialContext", "assess_expectedness", "assessments_in_force", "context", "current_assessment", "suggestion_for"]


def context() -> TrialContext:
    return trial_context()


def suggestion_for(ae: AdverseEvent, ctx: TrialContext | None = None) -> ExpectednessSuggestion:
    """What the protocol's reference safety information says of the AE as it is stored now."""
    from trialdesk.edc.dosing.models import Infusion
    from trialdesk.edc.snapshot import core_infusion

    ctx = ctx or context()
    infusions = [core_infusion(i) for i in Infusion.objects.select_related("participant").filter(participant=ae.participant)]
    return suggest_expectedness(ae.core(), infusions, ctx.protocol, ctx.tz)


def current_assessment(ae: AdverseEvent) -> ExpectednessAssessment | None:
    """The assessment in force for the AE as it is now (None: not yet assessed, or assessed before a change)."""
    latest = ae.expectedness_assessments.select_related("assessed_by").order_by("assessed_at", "pk").last()
    return latest if latest is not None and latest.holds_for(ae) else None


def assessments_in_force() -> dict[int, ExpectednessAssessment]:
    """AE pk -> the assessment in force, for every assessed AE (one query)."""
    latest: dict[int, ExpectednessAssessment] = {}
    for a in ExpectednessAssessment.objects.select_related("adverse_event", "assessed_by").order_by("assessed_at", "pk"):
        latest[a.adverse_event_id] = a
    return {pk: a for pk, a in latest.items() if a.holds_for(a.adverse_event)}


def assess_expectedness(user: Any, ae: AdverseEvent, *, expected: bool | None, reason: str) -> ExpectednessAssessment:
    """Record the sponsor-investigator's assessment, or refuse (nothing stored) naming the field."""
    if expected is None:
        raise ConductError("expected", "choose expected or unexpected: the assessment is yours to make, nothing is pre-filled")
    reason = reason.strip()
    with transaction.atomic():
        lock_audit_chain()
        ae = AdverseEvent.objects.select_related("participant__screening").get(pk=ae.pk)
        suggestion = suggestion_for(ae)
        earlier = ae.expectedness_assessments.order_by("assessed_at", "pk").last()
        if expected != suggestion.expected and not reason:
            raise ConductError("reason", f"the reference safety information suggests {suggestion.label} ({suggestion.reason});"
                                         " give the reason for assessing it otherwise")
        if earlier is not None and not reason:
            raise ConductError("reason", f"{ae.ae_id} was assessed before ({'expected' if earlier.expected else 'unexpected'});"
                                         " give the reason for the new assessment")
        return trail.create(ExpectednessAssessment(
            adverse_event=ae, expected=expected, reason=reason or f"as the reference safety information says: {suggestion.reason}",
            suggestion=f"{suggestion.label}: {suggestion.reason}", assessed_by=user, assessed_at=timezone.now(),
            for_term=ae.term, for_grade=ae.grade, for_onset=ae.onset), user)
