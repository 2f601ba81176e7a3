"""Recording adverse events and what follows from them: the core decides (grading, dates,
relatedness, seriousness, expectedness, stopping rules, SAE clocks, suggestions); this module
reads and writes the records, pauses the trial when a rule triggers and sends the SAE notice; it
also records death reports (the participant goes off study), the DSMB's signed decisions (which lift
pauses, pause, or stop the trial for good) and prints the MedWatch 3500A summary of an SAE (audited).

Pauses: after every AE save the stopping rules run on the whole data cut, and a rule in force
with no pause in force gets one (the existing enrolment and dosing checks then refuse). A pause
is never lifted here, even when a corrected AE no longer meets the rule: lifting is the DSMB's
decision (the pauses page), and each lifted pause is handed back to the rules as the DSMB's
``resume`` decision, so the same evidence does not pause the trial again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from trialdesk.edc.accounts.models import User
from trialdesk.edc.adverse_events.models import AdverseEvent, DeathReport, DismissedSuggestion, DsmbDecision, FollowUp, SaeReport
from trialdesk.edc.audit import trail
from trialdesk.edc.context import lock_audit_chain, trial_context
from trialdesk.edc.participants.models import Participant, Pause
from trialdesk.edc.permissions import allowed
from trialdesk.protocol.model import Protocol
from trialdesk.safety.adverse_events import adverse_event_from_form
from trialdesk.safety.attribution import Attribution, attribute, attribute_all
from trialdesk.safety.medwatch import FollowUpNote, MedwatchForm, Reporter, build_medwatch
from trialdesk.safety.sae_clock import DueReport, FollowUpReceived, SubmittedReport, due_reports
from trialdesk.safety.stopping_rules import DsmbDecision as RuleDecision
from trialdesk.safety.stopping_rules import SafetyStatus, evaluate
from trialdesk.safety.suggestions import Suggestion, suggest_adverse_events
from trialdesk.terminology.ctcae import catalogue
from trialdesk.trial import death as core_death
from trialdesk.trial.dsmb_decision import Decision, check_decision, consequences
from trialdesk.trial.errors import ConductError
from trialdesk.trial.pause import check_lift
from trialdesk.trial.records import AdverseEvent as CoreAdverseEvent
from trialdesk.trial.records import TrialData

#: the fields a coordinator enters (the rest is filled by the core)
FIELDS = ("verbatim_term", "term", "grade", "description",
          "onset", "resolved", "serious", "seriousness", "relatedness", "outcome", "action_taken",
          "learned_at", "suggested_from")


def protocol() -> Protocol:
    return trial_context().protocol


def today() -> dt.date:
    """The site's calendar date."""
    return trial_context().today


def site_tz() -> ZoneInfo:
    return trial_context().tz


def cut(cutoff: dt.date | None = None, *, without: int | None = None) -> TrialData:
    """The EDC's data cut with its adverse events (``without``: leave that AE out, to check a change to it)."""
    from trialdesk.edc.safety.service import assessments_in_force
    from trialdesk.edc.snapshot import trial_data
    from trialdesk.trial.records import FollowUpInformation, SafetyReportSubmission

    base = trial_data(cutoff or today())
    ids = {p.subject_id for p in base.participants}
    rows = AdverseEvent.objects.select_related("participant").filter(onset__lte=base.cutoff).exclude(pk=without).order_by("pk")
    assessed = assessments_in_force()
    aes = []
    for row in rows:
        if row.participant.subject_id not in ids:
            continue
        core = row.core()
        a = assessed.get(row.pk)
        aes.append(core if a is None else core.model_copy(update={"expected": a.expected, "expectedness_assessed_by": a.assessor()}))
    shown = {ae.id for ae in aes}
    reports = [SafetyReportSubmission(ae_id=r.adverse_event.ae_id, rule_id=r.rule_id, submitted_at=r.submitted_at)
               for r in SaeReport.objects.select_related("adverse_event") if r.adverse_event.ae_id in shown]
    follow_ups = [FollowUpInformation(ae_id=f.adverse_event.ae_id, received_at=f.received_at)
                  for f in FollowUp.objects.select_related("adverse_event") if f.adverse_event.ae_id in shown]
    data = base.model_copy(update={"adverse_events": aes, "safety_reports": reports, "follow_up_information": follow_ups})
    from trialdesk.edc.quality.deviations import late_sae_reports, stored

    late = [d for d in late_sae_reports(data) if d.date <= data.cutoff]
    return data.model_copy(update={"deviations": stored(data.cutoff) + late})


def _checked(participant: Participant, values: dict[str, Any], *, ae_id: str, without: int | None,
             data: TrialData | None = None) -> CoreAdverseEvent:
    """The core's verdict on the entered values; MedDRA code and SOC come from the catalogue's term."""
    fields = {k: v for k, v in values.items() if k in FIELDS}
    from trialdesk.trial.crf_checks import ae_outcome_problems
    from trialdesk.trial.errors import ConductErrors

    problems = ae_outcome_problems(fields.get("outcome"), fields.get("resolved"))
    if problems:
        raise ConductErrors(problems)
    fields["seriousness"] = list(fields.get("seriousness") or [])
    fields["suggested_from"] = fields.get("suggested_from") or None
    fields["verbatim_term"] = (fields.get("verbatim_term") or "").strip() or None
    term = catalogue().get(str(fields.get("term", "")))
    if term is not None:
        fields.update(term=term.term, meddra_code=int(term.meddra_code), soc=term.soc)
    else:
        fields.update(meddra_code=0, soc="")  # the core refuses the term, naming it
    fields.update(id=ae_id, subject_id=participant.subject_id)
    return adverse_event_from_form(fields, data or cut(without=without), protocol(), catalogue(), site_tz())


def _stored(core: CoreAdverseEvent) -> dict[str, Any]:
    return {"verbatim_term": core.verbatim_term or "",
            "term": core.term, "meddra_code": str(core.meddra_code), "soc": core.soc, "grade": core.grade, "description": core.description,
            "onset": core.onset, "resolved": core.resolved, "serious": core.serious, "seriousness": list(core.seriousness),
            "relatedness": core.relatedness, "outcome": core.outcome, "action_taken": core.action_taken,
            "learned_at": core.learned_at, "suggested_from": core.suggested_from or ""}


def record_adverse_event(user: Any, participant: Participant, **values: Any) -> AdverseEvent:
    """Store the AE, or refuse (nothing stored) with the core's reason naming the field."""
    with transaction.atomic():
        lock_audit_chain()
        participant = Participant.objects.select_related("screening").get(pk=participant.pk)
        before = cut()  # read once: the data cut after the save is this one with the new AE at the end
        core = _checked(participant, values, ae_id="new", without=None, data=before)
        ae = trail.create(AdverseEvent(participant=participant, **_stored(core)), user)
        after = [*before.adverse_events, ae.core()] if ae.onset <= before.cutoff else before.adverse_events
        apply_stopping_rules(user, before.model_copy(update={"adverse_events": after}))
    if ae.serious:
        notify_sae(ae)
    return ae


def edit_adverse_event(user: Any, ae: AdverseEvent, *, changes: dict[str, Any], reason: str, version: int) -> AdverseEvent:
    """Correct or update an AE (outcome, resolution, grade...): re-checked whole by the core, with a reason."""
    with transaction.atomic():
        lock_audit_chain()
        was_serious = AdverseEvent.objects.get(pk=ae.pk).serious
        merged = {name: changes.get(name, getattr(ae, name)) for name in FIELDS}
        core = _checked(ae.participant, merged, ae_id=ae.ae_id, without=ae.pk)
        _keep_death_report_consistent(user, ae, core)
        ae = trail.update(ae, user, changes=_stored(core), reason=reason, version=version)
        apply_stopping_rules(user)
    if ae.serious and not was_serious:
        notify_sae(ae)
    return ae


def add_follow_up(user: Any, ae: AdverseEvent, *, received_at: dt.datetime, information: str) -> FollowUp:
    if not information.strip():
        raise ConductError("information", "write the new information (what changed, from which source)")
    if received_at > timezone.now():
        raise ConductError("received_at", "the information cannot be received in the future")
    if received_at.astimezone(site_tz()).date() < ae.onset:
        raise ConductError("received_at", f"the information cannot be received before the event's onset ({ae.onset})")
    return trail.create(FollowUp(adverse_event=ae, received_at=received_at, information=information.strip()), user)


def record_report(user: Any, ae: AdverseEvent, *, rule_id: str, submitted_at: dt.datetime) -> SaeReport:
    """Record a report (or a notification of the participating investigators) as submitted; an aggregate
    report is recorded under ``<aggregate id>/<rule id>`` on the AE that made the aggregate rule fire."""
    safety = protocol().safety
    rules = {r.id for r in safety.sae_reporting} | {f"{a.id}/{r}" for a in safety.aggregate_reports for r in a.reports}
    if rule_id not in rules:
        raise ConductError("rule_id", f"no SAE reporting rule {rule_id!r} in the protocol; known: {', '.join(sorted(rules))}")
    if not ae.serious:
        raise ConductError("rule_id", f"{ae.ae_id} is not serious; only serious events are reported under the SAE rules")
    if submitted_at > timezone.now():
        raise ConductError("submitted_at", "a report cannot be submitted in the future")
    return trail.create(SaeReport(adverse_event=ae, rule_id=rule_id, submitted_at=submitted_at), user)


# --- stopping rules ------------------------------------------------------------------------------


def dsmb_decisions() -> list[RuleDecision]:
    """Each pause the DSMB lifted, as its decision to resume (at the instant it was lifted)."""
    return [RuleDecision(p.rule_id, p.updated_at, "resume", "DSMB") for p in Pause.objects.filter(lifted_on__isnull=False)]


def safety_status(data: TrialData | None = None) -> SafetyStatus:
    return evaluate(data or cut(), protocol(), dsmb_decisions(), site_tz())


def apply_stopping_rules(user: Any, data: TrialData | None = None) -> list[Pause]:
    """Evaluate the rules on the current data; add a pause for each rule in force that has none. Returns the new pauses."""
    status = safety_status(data)
    open_rules = set(Pause.objects.filter(lifted_on__isnull=True).values_list("rule_id", flat=True))
    created = []
    for core in status.pauses(site_tz()):
        if core.rule_id in open_rules:
            continue
        evidence = ", ".join(status.rule(core.rule_id).evidence)
        created.append(trail.create(Pause(rule_id=core.rule_id, action=core.action, since=core.since,
                                          description=f"{core.description} (triggered by {evidence}; recorded automatically)"), user))
    return created


# --- SAE clocks and notice --------------------------------------------------------------------------


def reports_due(data: TrialData | None = None, now: dt.datetime | None = None) -> list[DueReport]:
    submitted = [SubmittedReport(r.adverse_event.ae_id, r.rule_id, r.submitted_at)
                 for r in SaeReport.objects.select_related("adverse_event")]
    follow_ups = [FollowUpReceived(f.adverse_event.ae_id, f.received_at)
                  for f in FollowUp.objects.select_related("adverse_event").filter(adverse_event__serious=True)]
    return due_reports(data or cut(), protocol(), now or timezone.now(), submitted, follow_ups, site_tz())


def notice_recipients() -> list[str]:
    """Everyone with an e-mail address whose role sees the safety dashboard."""
    users = User.objects.filter(is_active=True).exclude(email="")
    return sorted({u.email for u in users if allowed(u, "view_safety_dashboard")})


def _expectedness_text(ae: AdverseEvent) -> str:
    from trialdesk.edc.safety.service import current_assessment

    a = current_assessment(ae)
    return "not yet assessed by the sponsor-investigator" if a is None else f"{'expected' if a.expected else 'unexpected'} ({a.assessor()})"


def notify_sae(ae: AdverseEvent) -> int:
    """E-mail the new SAE and the reports it calls for (subject id only: no names)."""
    recipients = notice_recipients()
    if not recipients:
        return 0
    due = [r for r in reports_due() if r.ae_id == ae.ae_id]
    lines = [f"A serious adverse event was recorded for subject {ae.participant.subject_id}.", "",
             f"{ae.ae_id}: {ae.term} (CTCAE v5.0 grade {ae.grade}), onset {ae.onset}",
             f"Seriousness: {', '.join(ae.seriousness_labels())}",
             f"Relatedness: {ae.relatedness}; expectedness: {_expectedness_text(ae)}",
             f"Site learned of it: {timezone.localtime(ae.learned_at):%Y-%m-%d %H:%M %Z}" if ae.learned_at else "", "",
             "Reports due:"]
    lines += [f"- {r.rule_id} to {r.recipient}: due {r.due_at:%Y-%m-%d %H:%M %Z}"
              + (" (if the sponsor-investigator assesses it unexpected)" if r.pending_assessment else "") for r in due] or ["- none"]
    subject = f"[{protocol().identification.nct_id}] SAE {ae.ae_id}: subject {ae.participant.subject_id}, {ae.term} grade {ae.grade}"
    sent = send_mail(subject, "\n".join(lines), None, recipients)
    trail.append(None, "notify", model=ae._meta.label, object_id=str(ae.pk), subject_id=ae.audit_subject(),
                 screening_id=ae.audit_screening(), form=ae.FORM, changes={"sae_notice": [None, ", ".join(recipients)]})
    return sent


# --- suggestions from labs and vital signs ------------------------------------------------------------


@dataclass(frozen=True)
class OpenSuggestion:
    suggestion: Suggestion

    @property
    def key(self) -> str:
        s = self.suggestion
        return f"{s.subject_id}|{s.term}|{s.date.isoformat()}"


def open_suggestions(data: TrialData | None = None) -> list[OpenSuggestion]:
    """Suggestions neither recorded as an AE nor dismissed."""
    dismissed = {(d.participant.subject_id, d.term.casefold(), d.onset)
                 for d in DismissedSuggestion.objects.select_related("participant")}
    return [OpenSuggestion(s) for s in suggest_adverse_events(data or cut())
            if s.recorded_as is None and (s.subject_id, s.term.casefold(), s.date) not in dismissed]


def dismiss_suggestion(user: Any, key: str, *, reason: str) -> DismissedSuggestion:
    if not reason.strip():
        raise ConductError("reason", "give the reason this is not an adverse event (e.g. a lab error, a known baseline condition)")
    found = next((s for s in open_suggestions() if s.key == key), None)
    if found is None:
        raise ConductError("suggestion", "this suggestion is no longer open (recorded as an AE or dismissed); reload the list")
    s = found.suggestion
    participant = Participant.objects.get(subject_id=s.subject_id)
    return trail.create(DismissedSuggestion(participant=participant, term=s.term, onset=s.date, grade=s.grade, source=s.source_label,
                                            reason=reason.strip()), user)


# --- infusion attribution (the core's one implementation, shown on the pages) ----------------------


def attributions(data: TrialData | None = None) -> dict[str, Attribution]:
    """Each AE's attribution to the infusion it follows, by AE id (``AE-<pk>``)."""
    return dict(attribute_all(data or cut(), protocol()))


def attributions_of(aes: list[AdverseEvent], cutoff: dt.date | None = None) -> dict[str, Attribution]:
    """The attribution of these AEs only, by AE id: what :func:`attributions` gives for them, reading only their
    participants' infusions (a page showing one participant's AEs need not build the whole trial's data cut).
    As in the data cut, an AE with onset after the cut-off, or of a participant enrolled after it, has none."""
    from trialdesk.edc.dosing.models import Infusion
    from trialdesk.edc.snapshot import core_infusion

    cutoff = cutoff or today()
    aes = [ae for ae in aes if ae.onset <= cutoff and ae.participant.enrolled_on <= cutoff]
    rows = Infusion.objects.select_related("participant").filter(participant_id__in={ae.participant_id for ae in aes}, date__lte=cutoff)
    infusions = [core_infusion(i) for i in rows]
    days = protocol().safety.ae_follow_up_days
    spec = protocol().study_intervention.dose_spec
    return {ae.ae_id: attribute(ae.core(), infusions, days, spec) for ae in aes}


# --- deaths --------------------------------------------------------------------------------------


def death_report_of(participant: Participant) -> DeathReport | None:
    return DeathReport.objects.select_related("adverse_event").filter(participant=participant).first()


def died_on(participant: Participant) -> dt.date | None:
    """The date of death on the report, or else the onset of the participant's grade 5 AE (core rule)."""
    report = death_report_of(participant)
    fatal = [ae.core() for ae in AdverseEvent.objects.filter(participant=participant, grade=5).select_related("participant")]
    return core_death.died_on(participant.subject_id, [report.core()] if report else [], fatal)


def deaths_due() -> list[AdverseEvent]:
    """Grade 5 AEs whose participant has no death report yet."""
    reported = set(DeathReport.objects.values_list("participant_id", flat=True))
    return list(AdverseEvent.objects.select_related("participant").filter(grade=5).exclude(participant_id__in=reported).order_by("pk"))


def record_death(user: Any, participant: Participant, *, adverse_event: AdverseEvent | None, date_of_death: dt.date, causes: str,
                 autopsy: str, relatedness: str, narrative: str) -> DeathReport:
    """Store the death report and take the participant off study (reason: death), or refuse with nothing stored."""
    with transaction.atomic():
        lock_audit_chain()
        participant = Participant.objects.select_related("screening").get(pk=participant.pk)
        report = core_death.DeathReport(participant.subject_id, date_of_death, tuple(c.strip() for c in causes.splitlines() if c.strip()),
                                        autopsy, relatedness, narrative.strip(),  # type: ignore[arg-type]
                                        adverse_event.ae_id if adverse_event else None)
        core_death.check_death_report(report, ae=adverse_event.core() if adverse_event else None, enrolled_on=participant.enrolled_on,
                                      already_reported=DeathReport.objects.filter(participant=participant).exists(), today=today())
        assert adverse_event is not None
        stored = trail.create(DeathReport(participant=participant, adverse_event=adverse_event, date_of_death=date_of_death,
                                          causes="\n".join(report.causes), autopsy=autopsy, relatedness=relatedness,
                                          narrative=report.narrative), user)
        if participant.status == "on_study":
            trail.update(participant, user, changes={"status": "off_study", "off_study_on": date_of_death,
                                                     "off_study_reason": f"{core_death.OFF_STUDY_DEATH}: {'; '.join(report.causes)}"},
                         reason="death report recorded", version=participant.version)
    return stored


def _keep_death_report_consistent(user: Any, ae: AdverseEvent, core: CoreAdverseEvent) -> None:
    """An AE a death report links stays grade 5; a change of its relatedness is carried to the report."""
    report = DeathReport.objects.filter(adverse_event=ae).first()
    if report is None:
        return
    if core.grade != 5:
        raise ConductError("grade", f"{ae.ae_id} is the fatal event of {ae.participant.subject_id}'s death report; it stays grade 5")
    if core.onset > report.date_of_death:
        raise ConductError("onset", f"the onset cannot be after the date of death on the death report ({report.date_of_death})")
    if core.relatedness != report.relatedness:
        trail.update(report, user, changes={"relatedness": core.relatedness}, reason=f"relatedness of {ae.ae_id} changed",
                     version=report.version)


# --- MedWatch 3500A summary ----------------------------------------------------------------------


def medwatch(user: Any, ae: AdverseEvent, *, fmt: str) -> MedwatchForm:
    """The 3500A-style summary of a serious AE; each print is audited."""
    if not ae.serious:
        raise ConductError("serious", f"{ae.ae_id} is not serious; the MedWatch 3500A summary is for serious adverse events")
    participant = ae.participant
    data = cut()
    core_ae = next((a for a in data.adverse_events if a.id == ae.ae_id), ae.core())
    birth = participant.screening.birth_date
    age = None
    if birth is not None:
        age = ae.onset.year - birth.year - ((ae.onset.month, ae.onset.day) < (birth.month, birth.day))
    from trialdesk.edc.dosing.models import Infusion

    premedication = dict(Infusion.objects.filter(participant=participant).values_list("number", "premedication"))
    report = death_report_of(participant)
    pi = next((o for o in protocol().overall_officials if o.role == "PRINCIPAL_INVESTIGATOR"), None)
    reporter = Reporter(name=pi.name, institution=pi.affiliation or "") if pi else None  # None: the form lists E1 as missing
    form = build_medwatch(core_ae, data, protocol(), report_date=today(), reporter=reporter, age_at_event=age,
                          premedication=premedication,
                          follow_ups=[FollowUpNote(f.received_at, f.information) for f in ae.follow_ups.all()],
                          death=report.core() if report and report.adverse_event_id == ae.pk else None, tz=site_tz())
    trail.append(user, "print", model=ae._meta.label, object_id=str(ae.pk), subject_id=ae.audit_subject(),
                 screening_id=ae.audit_screening(), form="medwatch_3500a",
                 changes={"medwatch_3500a": [None, f"{fmt}; missing: {', '.join(form.missing) or 'none'}"]})
    return form


# --- DSMB decisions ------------------------------------------------------------------------------


def recorded_decisions() -> list[Decision]:
    return [d.core() for d in DsmbDecision.objects.order_by("decided_on", "pk")]


def record_dsmb_decision(user: Any, *, kind: str, decided_on: dt.date, report_cutoff: dt.date, rationale: str, modifications: str = "",
                         password: str, printed_name: str) -> DsmbDecision:
    """Store and sign the decision, then lift or add pauses as it says; refused whole (nothing stored) on any error."""
    from trialdesk.edc.signatures.service import sign

    with transaction.atomic():
        lock_audit_chain()
        in_force = list(Pause.objects.select_for_update().filter(lifted_on__isnull=True).order_by("since", "pk"))
        decision = Decision(kind, decided_on, report_cutoff, rationale.strip(), modifications.strip())  # type: ignore[arg-type]
        check_decision(decision, pauses=[p.core() for p in in_force], today=today())
        stored = trail.create(DsmbDecision(kind=kind, decided_on=decided_on, report_cutoff=report_cutoff, rationale=decision.rationale,
                                           modifications=decision.modifications), user)
        sign(stored, user, password=password, printed_name=printed_name, meaning=f"DSMB decision: {stored.get_kind_display()}")
        effect = consequences(decision, [p.core() for p in in_force])
        lifted = {(p.rule_id, p.since, p.action) for p in effect.lift}
        for row in in_force:
            if (row.rule_id, row.since, row.action) in lifted:
                check_lift(row.core())
                trail.update(row, user, changes={"lifted_on": decided_on, "lift_note": f"DSMB decision {stored.pk}: {decision.rationale}"},
                             reason="lifted by the DSMB's decision", version=row.version)
        if effect.add is not None:
            trail.create(Pause(rule_id=effect.add.rule_id, action=effect.add.action, since=effect.add.since,
                               description=effect.add.description), user)
    return stored


def correct_death_report(user: Any, report: DeathReport, *, changes: dict[str, Any], reason: str, version: int) -> DeathReport:
    """Correct a death report (re-checked whole by the core, with a reason); a new date of death moves the off-study date."""
    with transaction.atomic():
        lock_audit_chain()
        report = DeathReport.objects.select_related("participant__screening", "adverse_event").get(pk=report.pk)
        fields = ("date_of_death", "causes", "autopsy", "relatedness", "narrative")
        merged = {name: changes.get(name, getattr(report, name)) for name in fields}
        causes = tuple(c.strip() for c in str(merged["causes"]).splitlines() if c.strip())
        participant = report.participant
        core_death.check_death_report(
            core_death.DeathReport(participant.subject_id, merged["date_of_death"], causes, merged["autopsy"], merged["relatedness"],
                                   str(merged["narrative"]).strip(), report.adverse_event.ae_id),
            ae=report.adverse_event.core(), enrolled_on=participant.enrolled_on, already_reported=False, today=today())
        merged.update(causes="\n".join(causes), narrative=str(merged["narrative"]).strip())
        old_date = report.date_of_death
        report = trail.update(report, user, changes=merged, reason=reason, version=version)
        if participant.off_study_reason.startswith(core_death.OFF_STUDY_DEATH) and participant.off_study_on == old_date:
            trail.update(participant, user, changes={"off_study_on": report.date_of_death,
                                                     "off_study_reason": f"{core_death.OFF_STUDY_DEATH}: {'; '.join(causes)}"},
                         reason="death report corrected", version=participant.version)
    return report
