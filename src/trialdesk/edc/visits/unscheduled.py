"""Unscheduled visits: a visit the protocol's schedule does not have, added to a participant with its date, the reason
and the forms done at it. Its window is its date (it cannot be out of window or missed); it is numbered U1, U2... per
participant and sits among the scheduled visits by its study day."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from trialdesk.edc.audit import trail
from trialdesk.edc.context import lock_audit_chain
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.visits.models import Visit
from trialdesk.edc.web import protocol, today
from trialdesk.trial.errors import ConductError
from trialdesk.trial.schedule import ScheduledVisit, check_visit_date

#: pages recorded elsewhere, never a form of a visit
NOT_VISIT_FORMS = ("infusion", "adverse_events")


def visit_forms() -> list[tuple[str, str]]:
    """The forms an unscheduled visit may hold: every form the protocol's schedule asks at some visit, in schedule order."""
    from trialdesk.edc.visits.crf import catalogue

    cat = catalogue()
    seen: list[str] = []
    for v in protocol().schedule.visits:
        seen += [f for f in v.forms if f not in seen and f not in NOT_VISIT_FORMS and f in cat.ids]
    return [(f, cat.form(f).title) for f in seen]


def add_unscheduled_visit(user: Any, participant: Participant, *, done_on: dt.date, reason: str, forms: list[str]) -> Visit:
    """Add the visit, or refuse (nothing stored) naming the field."""
    from trialdesk.edc.adverse_events.service import died_on
    from trialdesk.edc.participants.templatetags.desk import first_infusion_date
    from trialdesk.trial.death import check_alive

    if not reason.strip():
        raise ConductError("reason", "say why the participant is seen outside the schedule (e.g. new cough, repeat of an abnormal ALT)")
    allowed = dict(visit_forms())
    unknown = [f for f in forms if f not in allowed]
    if unknown:
        raise ConductError("forms", f"no visit form {unknown[0]!r}; choose from {', '.join(allowed.values())}")
    if not forms:
        raise ConductError("forms", "choose the forms done at the visit")
    if participant.status != "on_study" and (participant.off_study_on is None or done_on >= participant.off_study_on):
        raise ConductError("done_on", f"{participant.subject_id} is {participant.get_status_display().lower()} from"
                                      f" {participant.off_study_on}")
    check_alive(participant.subject_id, died_on(participant), done_on, procedure="visit")
    day0 = first_infusion_date(participant) or participant.enrolled_on
    day = (done_on - day0).days
    with transaction.atomic():
        lock_audit_chain()
        number = Visit.objects.filter(participant=participant, unscheduled=True).count() + 1
        code = f"U{number}"
        try:
            check_visit_date(ScheduledVisit(code, "", day, done_on, done_on, done_on, tuple(forms)), done_on,
                             consented_on=participant.current_consent().core().signed_on, enrolled_on=participant.enrolled_on,
                             today=today())
        except ConductError as e:
            raise ConductError("done_on", e.message) from None
        return trail.create(Visit(participant=participant, code=code, name=f"Unscheduled visit {number}", day=day, target=done_on,
                                  earliest=done_on, latest=done_on, forms=list(forms), done_on=done_on, unscheduled=True,
                                  unscheduled_reason=reason.strip()), user)
