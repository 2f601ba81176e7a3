"""Deaths, DSMB decisions, the MedWatch 3500A summary and infusion attribution in the trial desk:
the refusals a clinician expects (grade 5 for a term without one, an infusion or visit after a death,
enrolment or dosing after a DSMB stop, a decision by a coordinator), all audited."""

from __future__ import annotations

from typing import Any

import pytest

from trialdesk.edc.adverse_events.models import AdverseEvent, DeathReport, DsmbDecision
from trialdesk.edc.audit.models import AuditEntry
from trialdesk.edc.participants.models import Participant, Pause
from trialdesk.edc.signatures.models import Signature
from trialdesk.trial.errors import ConductError

from .conftest import PASSWORD, at_days_ago, days_ago
from .test_adverse_events import record

FATAL = {"term": "Respiratory failure", "grade": 5, "onset": days_ago(2), "serious": True, "seriousness": ["death"],
         "relatedness": "unlikely", "outcome": "fatal", "learned_at": at_days_ago(2, 12), "description": "found unresponsive"}


def died(trial) -> tuple[Participant, AdverseEvent]:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p, ago=25)
    return p, record(trial, p, **FATAL)


def death_form(ae: AdverseEvent, **overrides: Any) -> dict[str, Any]:
    return {"adverse_event": str(ae.pk), "date_of_death": days_ago(2).isoformat(), "causes": "Respiratory failure\nProgression of ILD",
            "autopsy": "unknown", "relatedness": "unlikely", "narrative": "admitted with dyspnoea; died the same night"} | overrides


def decision_form(kind: str = "stop", **overrides: Any) -> dict[str, Any]:
    return {"kind": kind, "report_cutoff": days_ago(1).isoformat(), "decided_on": days_ago(0).isoformat(),
            "rationale": "a related grade 4 event and a death in 2 of 3 participants", "modifications": "",
            "printed_name": "Dsmb Tester", "password": PASSWORD} | overrides


# --- deaths ----------------------------------------------------------------------------------------


def test_grade_5_for_a_term_without_a_grade_5_is_refused_and_nothing_stored(trial) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p)
    with pytest.raises(ConductError) as err:
        record(trial, p, **(FATAL | {"term": "Headache"}))
    assert err.value.field == "grade" and AdverseEvent.objects.count() == 0


def test_an_infusion_after_a_grade_5_event_is_refused_even_before_the_death_report(trial) -> None:  # type: ignore[no-untyped-def]
    p, _ = died(trial)
    with pytest.raises(ConductError, match="died on"):
        trial.infuse(p, ago=0, number=2)
    assert p.infusions.count() == 1


def test_a_visit_after_the_death_is_refused(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.service import record_visit

    p, _ = died(trial)
    visit = p.visits.exclude(infusion_number=1).order_by("day").first()
    with pytest.raises(ConductError, match="died on"):
        record_visit(users["coordinator"], visit, done_on=days_ago(1), version=visit.version)


def test_the_death_report_takes_the_participant_off_study_and_is_audited(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p, ae = died(trial)
    page = client_as("pi").get(f"/participants/{p.subject_id}/").content.decode()
    assert "death report due" in page and "Record death" in page
    assert "Record infusion 2" not in page and "Withdrawal of consent" not in page
    response = client_as("pi").post(f"/participants/{p.subject_id}/death/", death_form(ae))
    assert response.status_code == 302
    p.refresh_from_db()
    assert (p.status, p.off_study_on, p.off_study_reason) == ("off_study", days_ago(2), "death: Respiratory failure; Progression of ILD")
    report = DeathReport.objects.get()
    assert report.adverse_event == ae and report.cause_list() == ("Respiratory failure", "Progression of ILD")
    assert AuditEntry.objects.filter(form="death_report", action="create", subject_id=p.subject_id).count() == 1
    shown = client_as("pi").get(f"/participants/{p.subject_id}/death/").content.decode()
    assert "Progression of ILD" in shown and "admitted with dyspnoea" in shown
    with pytest.raises(ConductError, match=r"died on|off study"):
        trial.infuse(p, ago=0, number=2)


def test_a_death_report_without_a_fatal_ae_is_refused_on_the_field(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p)
    ae = record(trial, p, term="Lung infection", grade=3, serious=True, seriousness=["hospitalisation"])
    assert f"AE-{ae.pk}" not in client_as("pi").get(f"/participants/{p.subject_id}/death/").content.decode()  # only grade 5 AEs offered
    response = client_as("pi").post(f"/participants/{p.subject_id}/death/", death_form(ae, adverse_event=""))
    assert response.status_code == 422 and "CTCAE grade 5 adverse event" in response.content.decode()
    assert DeathReport.objects.count() == 0 and Participant.objects.get().status == "on_study"


def test_a_death_report_whose_relation_differs_from_the_ae_is_refused(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p, ae = died(trial)
    response = client_as("pi").post(f"/participants/{p.subject_id}/death/", death_form(ae, relatedness="probably"))
    assert response.status_code == 422 and "&#x27;unlikely&#x27;" in response.content.decode() and DeathReport.objects.count() == 0


def test_a_coordinator_may_not_record_a_death_report(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p, ae = died(trial)
    assert client_as("coordinator").post(f"/participants/{p.subject_id}/death/", death_form(ae)).status_code == 403


def test_off_study_for_death_without_the_death_report_is_refused(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import take_off_study

    p = trial.enrol()
    with pytest.raises(ConductError) as err:
        take_off_study(users["pi"], p, on=days_ago(1), reason="patient died at home", version=p.version)
    assert err.value.field == "off_study_reason" and "death report" in err.value.message


def test_the_fatal_ae_of_a_death_report_stays_grade_5(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import edit_adverse_event, record_death

    p, ae = died(trial)
    record_death(users["pi"], p, adverse_event=ae, date_of_death=days_ago(2), causes="Respiratory failure", autopsy="no",
                 relatedness="unlikely", narrative="as above")
    with pytest.raises(ConductError) as err:
        edit_adverse_event(users["coordinator"], ae, changes={"grade": 4, "outcome": "not_recovered", "seriousness": ["life_threatening"]},
                           reason="regraded", version=ae.version)
    assert err.value.field == "grade"
    ae = edit_adverse_event(users["coordinator"], ae, changes={"relatedness": "possibly"}, reason="PI reassessed", version=ae.version)
    assert DeathReport.objects.get().relatedness == "possibly"


# --- DSMB decisions ------------------------------------------------------------------------------------


def test_a_dsmb_decision_by_a_coordinator_is_forbidden(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    assert client_as("coordinator").post("/safety/dsmb/decisions/", decision_form()).status_code == 403
    assert DsmbDecision.objects.count() == 0 and Pause.objects.count() == 0


def test_a_dsmb_decision_with_a_wrong_password_stores_nothing(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    before = AuditEntry.objects.count()
    response = client_as("dsmb").post("/safety/dsmb/decisions/", decision_form(password="wrong"))
    assert response.status_code == 422 and "password" in response.content.decode()
    assert (DsmbDecision.objects.count(), Pause.objects.count(), AuditEntry.objects.count()) == (0, 0, before)


def test_a_dsmb_stop_halts_enrolment_and_dosing_for_good(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import enrol, lift_pause

    p = trial.enrol()
    waiting = trial.ready("Grace")
    assert client_as("dsmb").post("/safety/dsmb/decisions/", decision_form("stop")).status_code == 302
    decision = DsmbDecision.objects.get()
    assert Signature.objects.get(model="adverse_events.DsmbDecision").meaning == "DSMB decision: Stop the trial"
    stop = Pause.objects.get()
    assert (stop.rule_id, stop.action) == ("DSMB", "stop_trial")
    with pytest.raises(ConductError, match=r"trial is stopped.*for good"):
        enrol(users["coordinator"], waiting, enrolled_on=days_ago(0))
    with pytest.raises(ConductError, match="trial is stopped"):
        trial.infuse(p)
    with pytest.raises(ConductError, match="final"):
        lift_pause(users["dsmb"], stop, on=days_ago(0), note="changed our minds")
    again = client_as("dsmb").post("/safety/dsmb/decisions/", decision_form("continue"))
    assert again.status_code == 422 and DsmbDecision.objects.count() == 1
    page = client_as("pi").get("/safety/dsmb/decisions/").content.decode()
    assert "Stop the trial" in page and "stopped by the DSMB" in page and "Dsmb Tester" in page
    report = client_as("dsmb").get("/safety/dsmb/").content.decode()
    assert "stopped by the DSMB on" in report and decision.rationale in report
    assert AuditEntry.objects.filter(form="dsmb_decision", action__in=("create", "sign")).count() == 2


def test_a_dsmb_continue_lifts_the_pauses_in_force(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import enrol, record_pause

    record_pause(users["pi"], rule_id="S1", action="", since=days_ago(2), description="grade 4 related event")
    response = client_as("dsmb").post("/safety/dsmb/decisions/", decision_form("continue_with_modifications",
                                                                               modifications="premedicate with paracetamol"))
    assert response.status_code == 302
    assert Pause.objects.get().lifted_on == days_ago(0) and not Pause.in_force()
    assert enrol(users["coordinator"], trial.ready(), enrolled_on=days_ago(0)).subject_id == "001"


def test_continue_with_modifications_needs_the_modifications(client_as, users) -> None:  # type: ignore[no-untyped-def]
    response = client_as("dsmb").post("/safety/dsmb/decisions/", decision_form("continue_with_modifications"))
    assert response.status_code == 422 and DsmbDecision.objects.count() == 0


# --- MedWatch 3500A -------------------------------------------------------------------------------------


def test_site_roles_print_the_medwatch_summary_with_missing_fields_listed(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p)
    ae = record(trial, p, term="Lung infection", grade=3, serious=True, seriousness=["hospitalisation"], description="")
    html = client_as("coordinator").get(f"/adverse-events/{ae.pk}/medwatch/").content.decode()
    onset = ae.onset
    age = onset.year - 1960 - ((onset.month, onset.day) < (5, 1))  # born 1960-05-01 (conftest)
    for text in ("A. Patient information", "001 (subject id; in confidence)", f"{age} years", "Female", "70.0 kg (at infusion 1",
                 "#1: LOT-1", "intravenous", "missing: IND #", "missing: Verbatim description (site)"):
        assert text in html
    pdf = client_as("pi").get(f"/adverse-events/{ae.pk}/medwatch.pdf")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    prints = AuditEntry.objects.filter(form="medwatch_3500a", action="print", subject_id="001")
    assert prints.count() == 2 and "G5 IND #" in str(prints.first().changes)


def test_the_medwatch_summary_is_for_site_roles_and_serious_events_only(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p)
    sae = record(trial, p, term="Lung infection", grade=3, serious=True, seriousness=["hospitalisation"])
    assert client_as("dsmb").get(f"/adverse-events/{sae.pk}/medwatch/").status_code == 403
    assert client_as("sponsor").get(f"/adverse-events/{sae.pk}/medwatch.pdf").status_code == 403
    mild = record(trial, p)
    assert client_as("coordinator").get(f"/adverse-events/{mild.pk}/medwatch/").status_code == 302
    assert not AuditEntry.objects.filter(form="medwatch_3500a").exists()


# --- attribution -----------------------------------------------------------------------------------------


def test_each_ae_shows_the_infusion_it_follows(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p, ago=20)
    ae = record(trial, p, onset=days_ago(17), learned_at=at_days_ago(17))
    before = record(trial, p, term="Nausea", grade=1, onset=days_ago(22), learned_at=at_days_ago(22))
    expected = "infusion 1 (0.75 × 10⁶ cells/kg), 3 days after it"
    c = client_as("monitor")
    assert expected in c.get("/adverse-events/").content.decode()
    assert expected in c.get(f"/adverse-events/{ae.pk}/").content.decode()
    page = c.get(f"/participants/{p.subject_id}/").content.decode()
    assert expected in page and "before the first infusion (pre-treatment)" in page
    assert before.onset < ae.onset


def test_the_safety_dashboard_lists_death_reports_due_and_the_dsmb_stop(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p, ae = died(trial)
    page = client_as("monitor").get("/safety/").content.decode()
    assert f"{p.subject_id} ({ae.ae_id})" in page
    client_as("pi").post(f"/participants/{p.subject_id}/death/", death_form(ae))
    client_as("dsmb").post("/safety/dsmb/decisions/", decision_form("stop"))
    page = client_as("monitor").get("/safety/").content.decode()
    assert f"{p.subject_id} ({ae.ae_id})" not in page
    assert f"The trial is stopped by the DSMB&#x27;s decision of {days_ago(0)}" in page
    assert "The trial is stopped by the DSMB" in client_as("coordinator").get("/").content.decode()


def test_a_death_report_is_corrected_with_a_reason_and_moves_the_off_study_date(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p, ae = died(trial)
    client_as("pi").post(f"/participants/{p.subject_id}/death/", death_form(ae))
    report = DeathReport.objects.get()
    fix = {"date_of_death": days_ago(1).isoformat(), "causes": "Respiratory failure", "autopsy": "yes", "relatedness": "unlikely",
           "narrative": "died after midnight", "version": report.version}
    refused = client_as("pi").post(f"/participants/{p.subject_id}/death/", fix | {"reason": ""})
    assert refused.status_code == 422 and DeathReport.objects.get().version == 1
    assert client_as("pi").post(f"/participants/{p.subject_id}/death/", fix | {"reason": "death certificate"}).status_code == 302
    p.refresh_from_db()
    assert (DeathReport.objects.get().autopsy, p.off_study_on) == ("yes", days_ago(1))
    assert AuditEntry.objects.filter(form="death_report", action="update", reason="death certificate").count() == 1
    # the monitor reads the report; only an investigator corrects it
    assert client_as("monitor").get(f"/participants/{p.subject_id}/death/").status_code == 200
    assert client_as("monitor").post(f"/participants/{p.subject_id}/death/", fix | {"reason": "x"}).status_code == 403
