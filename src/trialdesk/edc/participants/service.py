"""Consent, enrolment, withdrawal, off-study, casebook lock and stopping-rule pauses.
Each rule is the core's (:mod:`trialdesk.trial`); this module reads and writes the records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from trialdesk.edc.audit import trail
from trialdesk.edc.context import lock_audit_chain
from trialdesk.edc.participants.models import Consent, Participant, Pause
from trialdesk.edc.screening.models import ScreeningEntry
from trialdesk.edc.screening.service import signed_decision
from trialdesk.edc.web import protocol, today
from trialdesk.trial import consent as core_consent
from trialdesk.trial.death import check_off_study_reason
from trialdesk.trial.enrolment import Candidate, Enrolled, check_enrolment
from trialdesk.trial.errors import ConductError
from trialdesk.trial.pause import check_lift


def _serialise() -> None:
    lock_audit_chain()


def record_consent(user: Any, entry: ScreeningEntry, *, icf_version: str, signed_at: dt.datetime, obtained_by: str,
                   copy_given: bool) -> Consent:
    c = core_consent.Consent(icf_version, signed_at, obtained_by, copy_given, site_zone=timezone.get_default_timezone())
    core_consent.check_consent(c, now=timezone.now())
    if entry.consents.filter(withdrawn_at__isnull=True).exists():
        raise ConductError("icf_version", f"{entry.number} already has a consent in force; withdraw it before a new consent")
    return trail.create(Consent(screening=entry, icf_version=icf_version.strip(), signed_at=signed_at, obtained_by=obtained_by.strip(),
                                copy_given=copy_given), user)


def current_consent(entry: ScreeningEntry) -> Consent | None:
    return entry.consents.order_by("-signed_at").first()


def enrolled() -> list[Enrolled]:
    from trialdesk.edc.dosing.models import Infusion

    firsts = dict(Infusion.objects.filter(number=1).values_list("participant_id", "date"))
    return [Enrolled(p.subject_id, p.screening.number, firsts.get(p.pk), p.planned_first_infusion)
            for p in Participant.objects.select_related("screening").order_by("subject_id")]


def enrol(user: Any, entry: ScreeningEntry, *, enrolled_on: dt.date, planned_first_infusion: dt.date | None = None) -> Participant:
    """Enrol under the next subject id, or refuse (nothing stored) with the core's reason."""
    with transaction.atomic():
        _serialise()
        entry = ScreeningEntry.objects.get(pk=entry.pk)
        signed, overall = signed_decision(entry)
        consent = current_consent(entry)
        candidate = Candidate(entry.number, signed, overall, consent.core() if consent else None, enrolled_on, planned_first_infusion)
        subject_id = check_enrolment(protocol(), candidate, enrolled(), pauses=Pause.in_force(), today=today())
        if entry.birth_date is None or entry.sex == "unknown":
            raise ConductError("birth_date", "record the date of birth and sex on the screening entry before enrolment")
        assert consent is not None
        try:
            participant = trail.create(Participant(subject_id=subject_id, screening=entry, consent=consent, enrolled_on=enrolled_on,
                                                   planned_first_infusion=planned_first_infusion), user)
        except IntegrityError as e:
            raise ConductError("subject_id",
                    f"subject id {subject_id} or screening {entry.number} is already enrolled; reload and retry") from e
        trail.update(entry, user, changes={"outcome": "enrolled"}, reason=f"enrolled as {subject_id}", version=entry.version)
    return participant


def withdraw(user: Any, participant: Participant, *, at: dt.datetime, reason: str) -> Participant:
    with transaction.atomic():
        consent = participant.current_consent()
        core = core_consent.withdraw(consent.core(), at, reason, now=timezone.now())
        trail.update(consent, user, changes={"withdrawn_at": core.withdrawn_at, "withdrawal_reason": core.withdrawal_reason},
                     reason="consent withdrawn", version=consent.version)
        changes = {"status": "withdrawn", "off_study_on": core.withdrawn_on, "off_study_reason": f"consent withdrawn: {reason}"}
        return trail.update(participant, user, changes=changes, reason="consent withdrawn", version=participant.version)


def take_off_study(user: Any, participant: Participant, *, on: dt.date, reason: str, version: int) -> Participant:
    if participant.status != "on_study":
        raise ConductError("status", f"{participant.subject_id} is already {participant.get_status_display().lower()}")
    if on > today():
        raise ConductError("off_study_on", "the date cannot be in the future")
    if on < participant.enrolled_on:
        raise ConductError("off_study_on", f"the date is before enrolment ({participant.enrolled_on})")
    if not reason.strip():
        raise ConductError("off_study_reason", "give the reason the participant went off study")
    check_off_study_reason(reason)
    return trail.update(participant, user, changes={"status": "off_study", "off_study_on": on, "off_study_reason": reason.strip()},
                        reason="taken off study", version=version)


def set_lock(user: Any, participant: Participant, *, locked: bool, reason: str) -> Participant:
    """Lock (only over the principal investigator's signature that holds for the casebook now) or unlock."""
    if locked:
        from trialdesk.edc.casebook.service import check_may_lock

        check_may_lock(participant)
    return trail.update(participant, user, changes={"locked": locked, "locked_by": user if locked else None,
                                                    "locked_at": timezone.now() if locked else None},
                        reason=reason or ("casebook locked" if locked else "casebook unlocked"), version=participant.version)


def record_pause(user: Any, *, rule_id: str, action: str, since: dt.date, description: str) -> Pause:
    rules = {r.id: r for r in protocol().safety.stopping_rules}
    if rule_id not in rules:
        raise ConductError("rule_id", f"no stopping rule {rule_id!r} in the protocol; known: {', '.join(rules)}")
    if since > today():
        raise ConductError("since", "a pause cannot start in the future")
    return trail.create(Pause(rule_id=rule_id, action=action or rules[rule_id].action, since=since, description=description), user)


def lift_pause(user: Any, pause: Pause, *, on: dt.date, note: str) -> Pause:
    check_lift(pause.core())
    if not note.strip():
        raise ConductError("lift_note", "record the DSMB's decision that lifts the pause")
    return trail.update(pause, user, changes={"lifted_on": on, "lift_note": note}, reason="lifted by the DSMB", version=pause.version)


def complete_study(user: Any, participant: Participant, *, on: dt.date, version: int) -> Participant:
    """The participant finished the protocol's follow-up (their last scheduled visit) on ``on``."""
    if participant.status != "on_study":
        raise ConductError("status", f"{participant.subject_id} is already {participant.get_status_display().lower()}")
    if on > today():
        raise ConductError("off_study_on", "the date cannot be in the future")
    last = participant.visits.order_by("-day").first()
    if last is None or last.done_on is None or on < last.done_on:
        raise ConductError("off_study_on", "a participant completes the study on or after the date of the last scheduled visit;"
                                           " enter that visit first")
    return trail.update(participant, user, changes={"status": "completed", "off_study_on": on,
                                                    "off_study_reason": "completed the protocol's follow-up"},
                        reason="completed the study", version=version)
