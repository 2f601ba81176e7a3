"""Visits from the protocol schedule (computed by the core), visit dates and their forms."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from trialdesk.edc.audit import trail
from trialdesk.edc.audit.trail import StaleEdit
from trialdesk.edc.context import lock_audit_chain
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.visits.crf import definition, range_problems, to_json
from trialdesk.edc.visits.models import FormEntry, Visit
from trialdesk.edc.web import protocol, today
from trialdesk.trial.crf_checks import entry_problems, outside_window
from trialdesk.trial.death import check_alive
from trialdesk.trial.deviations import out_of_window_text
from trialdesk.trial.errors import ConductError, ConductErrors
from trialdesk.trial.schedule import ScheduledVisit, check_visit_date, visit_flag, visit_schedule


def generate(user: Any, participant: Participant, first_infusion: dt.date) -> list[Visit]:
    """Create the participant's visits from the first infusion date (once)."""
    if participant.visits.exists():
        return list(participant.visits.all())
    screened = participant.screening.screened_on
    out = []
    for v in visit_schedule(protocol(), first_infusion):
        # the screening visit (before day 0) took place on the screening date
        done = screened if v.day < 0 else None
        out.append(trail.create(Visit(participant=participant, code=v.code, name=v.name, day=v.day, target=v.target, earliest=v.earliest,
                                      latest=v.latest, infusion_number=v.infusion, forms=list(v.forms), done_on=done,
                                      out_of_window=done is not None and not v.in_window(done)), user))
    return out


def _scheduled(v: Visit) -> ScheduledVisit:
    return ScheduledVisit(v.code, v.name, v.day, v.target, v.earliest, v.latest, tuple(v.forms), v.infusion_number)


def mark_infusion_visit(user: Any, participant: Participant, number: int, day: dt.date) -> None:
    visit = participant.visits.filter(infusion_number=number).first()
    if visit is not None and visit.done_on is None:
        trail.update(visit, user, changes={"done_on": day, "out_of_window": not _scheduled(visit).in_window(day)},
                     reason=f"infusion {number} recorded", version=visit.version)


def _deviation(user: Any, participant: Participant, day: dt.date, description: str, reason: str) -> None:
    from trialdesk.edc.quality.models import Deviation

    trail.create(Deviation(participant=participant, date=day, category="visit_out_of_window", description=description,
                           source="automatic", reason=reason.strip(), reported_by=user if getattr(user, "pk", None) else None), user)


def record_visit(user: Any, visit: Visit, *, done_on: dt.date, reason: str = "", version: int, out_of_window_reason: str = "") -> Visit:
    """The visit's date; out of its window it needs the reason, and is logged as a protocol deviation."""
    participant = visit.participant
    flag = check_visit_date(_scheduled(visit), done_on, consented_on=participant.current_consent().core().signed_on,
                            enrolled_on=participant.enrolled_on, today=today())
    from trialdesk.edc.adverse_events.service import died_on

    check_alive(participant.subject_id, died_on(participant), done_on, procedure="visit")
    if participant.status != "on_study" and (participant.off_study_on is None or done_on >= participant.off_study_on):
        status = participant.get_status_display().lower()
        raise ConductError("date", f"{participant.subject_id} is {status} from {participant.off_study_on}")
    out = flag == "out_of_window" and not visit.unscheduled  # an unscheduled visit's window is its date
    if out and not out_of_window_reason.strip():
        raise ConductError("out_of_window_reason", f"{done_on} is outside the window of {visit.name} ({visit.earliest} to {visit.latest});"
                                                   " correct the date, or give the reason it was done out of window (it is then"
                                                   " logged as a protocol deviation)")
    with transaction.atomic():
        moved = {"target": done_on, "earliest": done_on, "latest": done_on,
                 "day": visit.day + (done_on - visit.target).days} if visit.unscheduled else {}
        saved = trail.update(visit, user, changes={"done_on": done_on, "out_of_window": out, **moved},
                             reason=reason or ("visit date entered" if visit.done_on is None else ""), version=version)
        if out and (visit.done_on != done_on):
            _deviation(user, participant, done_on, out_of_window_text(f"{visit.name} visit", done_on, visit.earliest, visit.latest),
                       out_of_window_reason)
    return saved


def flag(visit: Visit, as_of: dt.date | None = None) -> str:
    return visit_flag(_scheduled(visit), visit.done_on, as_of or today())


def save_form(user: Any, visit: Visit, form_id: str, cleaned: dict[str, Any], *, reason: str = "", version: int | None = None,
              out_of_window_reason: str = "") -> FormEntry:
    """First entry (``version`` None: the writer saw no saved entry) or a change of the entry read at ``version``.
    Every problem of the values is refused at once (:class:`ConductErrors`); an assessment out of its visit's window
    needs ``out_of_window_reason`` and is logged as a protocol deviation."""
    if form_id not in visit.forms:
        raise ConductError("form", f"form {form_id!r} is not due at visit {visit.code}; due: {', '.join(visit.forms)}")
    if visit.done_on is None:
        raise ConductError("form", f"enter the date of visit {visit.code} before its forms")
    form = definition(form_id)
    consent = visit.participant.current_consent()
    window = (visit.earliest, visit.latest)
    problems = entry_problems(form, cleaned, consented_on=consent.core().signed_on if consent else None, today=today(), window=window,
                              out_of_window_reason=out_of_window_reason)
    if problems:
        raise ConductErrors(problems)
    late = outside_window(form, cleaned, window)
    data = to_json(cleaned)
    if form_id == "laboratory":  # limits left empty: the range in force at the sample date, from the laboratory's ranges
        from trialdesk.edc.labs.service import fill_ranges

        data = fill_ranges(data)
    for field, problem in range_problems(data):
        raise ConductError(field, problem)
    for k, v in data.items():
        if k.endswith("_date") and dt.date.fromisoformat(v) > today():
            raise ConductError(k, "the date cannot be in the future")
    with transaction.atomic():
        # serialised with every audited write, so two first entries of one form cannot race to the unique constraint
        lock_audit_chain()
        existing = FormEntry.objects.filter(visit=visit, form=form_id).first()
        if existing is not None and version is None:  # the writer saw no entry, but someone saved one since: theirs is not overwritten
            raise StaleEdit(existing)
        was_late = existing is not None and outside_window(form, existing.data_values(form), window) == late
        saved = trail.create(FormEntry(visit=visit, form=form_id, data=data), user) if existing is None else \
            trail.update(existing, user, changes={"data": data}, reason=reason, version=version or 0)
        if existing is not None and saved.version != existing.version:  # a verified value that changed needs verifying again
            from trialdesk.edc.quality.service import lapse_verifications

            lapse_verifications(user, saved, existing.data)
        if late is not None and not was_late:
            _deviation(user, visit.participant, late,
                       out_of_window_text(f"{form.title} at the {visit.name} visit", late, visit.earliest, visit.latest),
                       out_of_window_reason)
        return saved


def mark_not_done(user: Any, visit: Visit, form_id: str, *, reason: str) -> FormEntry:
    """Record that a visit form was not done, with the reason (only a form with nothing entered)."""
    from trialdesk.trial.form_status import check_not_done

    if form_id not in visit.forms:
        raise ConductError("form", f"form {form_id!r} is not due at visit {visit.code}")
    text = check_not_done(reason)
    with transaction.atomic():
        lock_audit_chain()
        if FormEntry.objects.filter(visit=visit, form=form_id).exists():
            raise ConductError("not_done_reason", "values are entered on this form; mark them entered in error first if it was not done")
        return trail.create(FormEntry(visit=visit, form=form_id, data={}, not_done_reason=text), user)


def form_rows(visit: Visit) -> list[dict[str, Any]]:
    """The visit's own forms (not the infusion or AE pages) with each one's status."""
    from trialdesk.edc.visits.crf import catalogue
    from trialdesk.trial.form_status import LABELS, status, visit_forms

    cat = catalogue()
    entries = {e.form: e for e in visit.entries.all()}
    rows = []
    for form_id in visit_forms(cat, visit.forms):
        e = entries.get(form_id)
        st = status(cat, form_id, e.data if e else None, e.not_done_reason if e else "") if form_id in cat.ids else "not_started"
        rows.append({"id": form_id, "title": cat.form(form_id).title if form_id in cat.ids else form_id, "entry": e, "status": st,
                     "label": LABELS[st]})
    return rows


def missing_forms(as_of: dt.date) -> list[dict[str, Any]]:
    """Every visit form not started or incomplete at a visit that took place (on or before ``as_of``), per participant."""
    out = []
    for v in Visit.objects.select_related("participant").prefetch_related("entries").filter(done_on__isnull=False, done_on__lte=as_of):
        for row in form_rows(v):
            # an unscheduled visit's forms are the ones chosen for it: one never started is not missing, one begun is
            if row["status"] == "incomplete" or (row["status"] == "not_started" and not v.unscheduled):
                out.append({"visit": v, **row})
    return out
