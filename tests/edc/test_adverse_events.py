"""Adverse events in the trial desk: the core's refusals shown on the field they name with nothing
stored, stopping rules that pause the trial on save, SAE notices, suggestions from data, the DSMB report."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from trialdesk.edc.adverse_events.models import AdverseEvent, DismissedSuggestion
from trialdesk.edc.audit.models import AuditEntry
from trialdesk.edc.participants.models import Pause
from trialdesk.trial.errors import ConductError

from .conftest import at_days_ago, days_ago


def _ae(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"term": "Headache", "grade": 2, "description": "headache after the infusion", "onset": days_ago(10),
                              "resolved": None, "serious": False, "seriousness": [], "relatedness": "unrelated", "outcome": "recovering",
                              "action_taken": "none", "learned_at": at_days_ago(9), "suggested_from": ""}
    return values | overrides


def record(trial, participant, **overrides: Any) -> AdverseEvent:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import record_adverse_event

    return record_adverse_event(trial.users["coordinator"], participant, **_ae(**overrides))


def stored() -> tuple[int, int, int]:
    return AdverseEvent.objects.count(), Pause.objects.count(), AuditEntry.objects.count()


def _form(**overrides: Any) -> dict[str, Any]:
    values = _ae(**overrides)
    values.update(subject_id="001", onset=values["onset"].isoformat(), learned_at=values["learned_at"].strftime("%Y-%m-%dT%H:%M"),
                  resolved=values["resolved"] or "", serious={True: "yes", False: "no"}.get(values["serious"], values["serious"]))
    return values


def test_an_ae_is_stored_coded_from_the_catalogue_with_expectedness_not_yet_assessed(trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.safety.service import current_assessment

    p = trial.enrol()
    trial.infuse(p)
    ae = record(trial, p, term="headache")
    assert (ae.term, ae.meddra_code, ae.soc) == ("Headache", "10019211", "Nervous system disorders")
    assert current_assessment(ae) is None and ae.version == 1  # the sponsor-investigator's call, never filled in
    assert AuditEntry.objects.filter(form="adverse_event", action="create", subject_id="001").count() == 1


def test_a_grade_the_term_does_not_define_is_refused_naming_the_grade_and_nothing_is_stored(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p)
    before = stored()
    with pytest.raises(ConductError) as err:
        record(trial, p, term="Headache", grade=4)
    assert err.value.field == "grade" and "allowed grades: 1, 2, 3" in err.value.message
    assert stored() == before
    page = client_as("coordinator").post("/adverse-events/new/", _form(grade=4)).content.decode()
    assert 'data-field="grade"' in page and "defines no grade 4" in page
    assert stored() == before


def test_a_serious_ae_without_a_seriousness_criterion_is_refused(trial) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p)
    before = stored()
    with pytest.raises(ConductError) as err:
        record(trial, p, serious=True, seriousness=[])
    assert err.value.field == "seriousness" and stored() == before


def test_a_related_ae_before_any_infusion_is_refused(trial) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    before = stored()
    with pytest.raises(ConductError) as err:
        record(trial, p, relatedness="possibly")
    assert err.value.field == "relatedness" and "no infusion" in err.value.message
    assert stored() == before


def test_onset_before_consent_is_refused(trial) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    with pytest.raises(ConductError) as err:
        record(trial, p, onset=days_ago(31), learned_at=at_days_ago(31))
    assert err.value.field == "onset"


def test_a_grade_4_related_ae_pauses_enrolment_and_dosing_by_s1_and_the_next_infusion_is_refused(trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import enrol

    p = trial.enrol()
    trial.infuse(p, ago=20)
    record(trial, p, term="Pneumonitis", grade=4, relatedness="probably", serious=True, seriousness=["life_threatening"],
           outcome="recovering", onset=days_ago(5), learned_at=at_days_ago(5))
    pause = Pause.objects.get(lifted_on__isnull=True)
    assert (pause.rule_id, pause.action) == ("S1", "pause_enrolment_and_dosing") and "AE-" in pause.description
    with pytest.raises(ConductError, match="stopping rule S1"):
        trial.infuse(p, ago=0, number=2)
    second = trial.ready("Grace")
    with pytest.raises(ConductError, match="S1"):
        enrol(trial.users["coordinator"], second, enrolled_on=days_ago(0))
    # another AE save does not add a second pause for the same rule
    record(trial, p, onset=days_ago(4), learned_at=at_days_ago(4))
    assert Pause.objects.filter(lifted_on__isnull=True).count() == 1


def test_a_pause_lifted_by_the_dsmb_is_not_reimposed_on_the_same_evidence(trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import lift_pause

    p = trial.enrol()
    trial.infuse(p, ago=20)
    record(trial, p, term="Pneumonitis", grade=4, relatedness="possibly", serious=True, seriousness=["life_threatening"],
           onset=days_ago(5), learned_at=at_days_ago(5))
    lift_pause(trial.users["dsmb"], Pause.objects.get(), on=days_ago(0), note="DSMB: resume")
    record(trial, p, onset=days_ago(3), learned_at=at_days_ago(3))
    assert not Pause.objects.filter(lifted_on__isnull=True).exists()


def test_a_new_sae_is_e_mailed_with_its_due_reports_and_no_names(trial, users) -> None:  # type: ignore[no-untyped-def]
    users["pi"].email = "pi@example.org"
    users["pi"].save()
    p = trial.enrol()
    trial.infuse(p)
    record(trial, p, term="Pneumonitis", grade=3, relatedness="unlikely", serious=True, seriousness=["hospitalisation"],
           onset=days_ago(2), learned_at=at_days_ago(1))
    assert len(mail.outbox) == 1
    msg = mail.outbox[0]
    assert msg.to == ["pi@example.org"] and "SAE AE-" in msg.subject and "subject 001" in msg.subject
    assert "R1 to Sponsor and IRB" in msg.body and "Lovelace" not in msg.body and "Ada" not in msg.body
    record(trial, p)  # not serious: no notice
    assert len(mail.outbox) == 1


def test_the_safety_dashboard_lists_the_sae_reports_due(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p)
    ae = record(trial, p, term="Pneumonitis", grade=3, relatedness="possibly", serious=True, seriousness=["hospitalisation"],
                onset=days_ago(3), learned_at=at_days_ago(3))
    c = client_as("coordinator")
    page = c.get("/safety/").content.decode()
    assert "R1" in page and "R3" in page and "overdue" in page and "S2" in page
    c.post("/safety/", {"ae": ae.pk, "rule_id": "R1", "submitted_at": at_days_ago(3, hour=15).strftime("%Y-%m-%dT%H:%M")})
    assert ae.reports.get().rule_id == "R1"


def _lab_after_infusion(trial, participant) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import record_visit, save_form

    visit = Visit.objects.get(participant=participant, code="D7")
    visit = record_visit(trial.users["coordinator"], visit, done_on=days_ago(13), version=visit.version)
    save_form(trial.users["coordinator"], visit, "laboratory", {"lb_date": days_ago(13), "alt": 200.0, "alt_uln": 40.0})


def test_a_suggestion_from_labs_is_dismissed_only_with_a_reason(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import dismiss_suggestion, open_suggestions

    p = trial.enrol()
    trial.infuse(p, ago=20)
    _lab_after_infusion(trial, p)
    [open_] = open_suggestions()
    assert open_.suggestion.term == "Alanine aminotransferase increased" and open_.suggestion.date == days_ago(13)
    before = stored()
    with pytest.raises(ConductError) as err:
        dismiss_suggestion(trial.users["coordinator"], open_.key, reason="  ")
    assert err.value.field == "reason" and stored() == before
    c = client_as("coordinator")
    assert c.post("/adverse-events/suggestions/", {"key": open_.key, "reason": ""}).status_code == 422
    c.post("/adverse-events/suggestions/", {"key": open_.key, "reason": "haemolysed sample, repeat normal"})
    d = DismissedSuggestion.objects.get()
    assert d.reason == "haemolysed sample, repeat normal" and open_suggestions() == []
    assert AuditEntry.objects.filter(form="ae_suggestion", action="create").count() == 1


def test_a_confirmed_suggestion_opens_the_ae_form_prefilled_and_once_recorded_is_no_longer_open(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import open_suggestions

    p = trial.enrol()
    trial.infuse(p, ago=20)
    _lab_after_infusion(trial, p)
    page = client_as("coordinator").get("/adverse-events/suggestions/").content.decode()
    assert "/adverse-events/new/?subject_id=001" in page
    form = client_as("coordinator").get("/adverse-events/new/?subject_id=001&term=Alanine+aminotransferase+increased&grade=2").content
    assert b'value="Alanine aminotransferase increased"' in form and b"Grade 2" in form
    record(trial, p, term="Alanine aminotransferase increased", grade=2, onset=days_ago(13), learned_at=at_days_ago(13))
    assert open_suggestions() == []


def test_term_search_finds_terms_as_people_say_them(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    # "heart attack" is a synonym; MI has no grade 1 in CTCAE v5.0 (a "-"), which the form shows
    found = client_as("coordinator").get("/api/ctcae/search?q=heart att").json()
    assert found[0]["term"] == "Myocardial infarction" and found[0]["grades"]["1"] is None and found[0]["grades"]["3"]


def _shown_text(page: str) -> str:
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []

        def handle_data(self, data: str) -> None:
            self.parts.append(data)

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.parts.extend(v or "" for k, v in attrs if k in ("title", "alt", "aria-label", "value", "href"))

    parser = Text()
    parser.feed(page)
    return " ".join(parser.parts)


def test_the_dsmb_report_shows_no_names_and_downloads_as_pdf(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p)
    record(trial, p, term="Pneumonitis", grade=3, relatedness="possibly", serious=True, seriousness=["hospitalisation"],
           description="Ada Lovelace admitted", onset=days_ago(3), learned_at=at_days_ago(3))
    c = client_as("dsmb")
    page = c.get("/safety/dsmb/").content.decode()
    assert "001" in page and "Pneumonitis" in page
    # what a reader sees: the text and the attribute values a browser shows (not the plot's path geometry)
    shown = _shown_text(page)
    assert "Pneumonitis" in shown
    for identifying in ("Lovelace", "Ada", "MRN-", "S-0001", "1960"):
        assert identifying not in shown
    pdf = c.get("/safety/dsmb/pdf/")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert client_as("coordinator").get("/safety/dsmb/").status_code == 403
    ae_id = AdverseEvent.objects.get().pk
    assert "Ada Lovelace admitted" not in c.get(f"/adverse-events/{ae_id}/").content.decode()
    for url in ("/adverse-events/", "/safety/"):
        page = client_as("sponsor").get(url).content.decode()
        assert "Pneumonitis" in page and "Lovelace" not in page


def test_an_ae_is_followed_up_and_updated_with_a_reason_until_resolved(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p)
    ae = record(trial, p)
    c = client_as("coordinator")
    assert "Grade 2" in c.get(f"/adverse-events/{ae.pk}/edit/").content.decode()
    form = _form(outcome="recovered", resolved=days_ago(8).isoformat(), version=ae.version, reason="")
    assert 'data-field="reason"' in c.post(f"/adverse-events/{ae.pk}/edit/", form).content.decode()
    c.post(f"/adverse-events/{ae.pk}/edit/", form | {"reason": "resolved at the day-14 call"})
    ae.refresh_from_db()
    assert (ae.outcome, ae.resolved, ae.version) == ("recovered", days_ago(8), 2)
    bad = form | {"resolved": days_ago(12).isoformat(), "version": 2, "reason": "typo"}
    assert 'data-field="resolved"' in c.post(f"/adverse-events/{ae.pk}/edit/", bad).content.decode()
    c.post(f"/adverse-events/{ae.pk}/", {"received_at": at_days_ago(7).strftime("%Y-%m-%dT%H:%M"), "information": "GP letter"})
    assert ae.follow_ups.get().information == "GP letter"
    assert client_as("monitor").post(f"/adverse-events/{ae.pk}/", {"information": "x"}).status_code == 403


def test_every_clinical_judgement_on_the_ae_form_starts_unanswered(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    # a skipped field must never become an unrelated grade 1 event that the stopping rules then read
    import re

    trial.infuse(trial.enrol())
    page = client_as("coordinator").get("/adverse-events/new/").content.decode()
    for field in ("grade", "serious", "relatedness", "outcome", "action_taken"):
        select = re.search(rf'<select name="{field}"[^>]*>(.*?)</select>', page, flags=re.S)
        assert select, field
        options = re.findall(r'<option value="([^"]*)"( selected)?>', select.group(1))
        assert options[0] == ("", " selected"), f"{field} does not start empty"
        assert all(not chosen for _, chosen in options[1:]), f"{field} comes pre-selected"


def test_an_ae_with_its_judgements_left_empty_is_refused_each_at_its_field_and_nothing_is_stored(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.infuse(trial.enrol())
    before = stored()
    response = client_as("coordinator").post("/adverse-events/new/", _form(grade="", serious="", relatedness="", outcome="",
                                                                             action_taken=""))
    page = response.content.decode()
    for field in ("grade", "serious", "relatedness", "outcome", "action_taken"):
        assert f'data-field="{field}"' in page, f"no error shown at {field}"
    assert stored() == before


def test_a_complete_ae_form_is_stored_with_the_judgements_as_answered(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.infuse(trial.enrol())
    response = client_as("coordinator").post("/adverse-events/new/", _form(grade=2, relatedness="possibly", outcome="recovering",
                                                                             action_taken="treatment_given"))
    assert response.status_code == 302
    ae = AdverseEvent.objects.get()
    assert (ae.grade, ae.serious, ae.relatedness, ae.outcome, ae.action_taken) == (2, False, "possibly", "recovering", "treatment_given")


def test_the_death_report_asks_autopsy_and_relation_without_a_preselected_answer(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    import re

    p = trial.enrol()
    page = client_as("pi").get(f"/participants/{p.subject_id}/death/").content.decode()
    for field in ("autopsy", "relatedness"):
        select = re.search(rf'<select name="{field}"[^>]*>(.*?)</select>', page, flags=re.S)
        assert select and re.match(r'\s*<option value="" selected>', select.group(1)), field


def test_whether_an_infusion_was_interrupted_is_asked_not_assumed(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from .test_dose_and_weight_display import _infusion_form

    p = trial.enrol()
    response = client_as("coordinator").post(f"/participants/{p.subject_id}/infusions/new/", _infusion_form(interrupted=""))
    assert 'This field is required' in response.content.decode() and p.infusions.count() == 0


@pytest.mark.parametrize("served", ["nct03929120", "nct02013700"])
def test_the_relatedness_question_names_the_served_protocols_product(served, settings, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from html import unescape

    from trialdesk.protocol.loader import load

    settings.TRIALDESK_PROTOCOL = served
    product = load(served).study_intervention.name
    page = unescape(client_as("coordinator").get("/adverse-events/new/").content.decode())
    assert f"Relatedness to {product}" in page
    others = {load(p).study_intervention.name for p in ("nct03929120", "nct02013700")} - {product}
    assert not any(f"Relatedness to {o}" in page for o in others)
