"""The life cycle through the pages and the REST API: refusals name the field, store nothing."""

from __future__ import annotations

from trialdesk.edc.audit.models import AuditEntry
from trialdesk.edc.dosing.models import Infusion
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.screening.models import ScreeningEntry

from .conftest import PASSWORD, days_ago


def _infusion_form(**kw):  # type: ignore[no-untyped-def]
    data = {"date": days_ago(20).isoformat(), "started_at": "09:00", "stopped_at": "09:40", "weight_kg": "70", "total_cells": "52500000",
            "lot": "LOT-1", "donor_id": "D-7", "before_sbp": "120", "interrupted": "no"}
    data.update(kw)
    return data


def test_coordinator_screens_by_hand_through_the_page(client_as) -> None:  # type: ignore[no-untyped-def]
    r = client_as("coordinator").post("/screening/", {"given_name": "Grace", "family_name": "Hopper", "mrn": "M1",
            "birth_date": "1950-01-01",
                                                      "sex": "female", "screened_on": days_ago(1).isoformat()})
    assert r.status_code == 302 and r["Location"] == "/screening/S-0001/"


def test_screening_dated_in_the_future_is_refused_on_the_page(client_as) -> None:  # type: ignore[no-untyped-def]
    r = client_as("coordinator").post("/screening/", {"given_name": "G", "family_name": "H", "sex": "female",
                                                      "screened_on": days_ago(-2).isoformat()})
    assert r.status_code == 200 and "future" in r.content.decode() and not ScreeningEntry.objects.exists()


def test_pi_signs_eligibility_on_the_page(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.web import protocol
    from trialdesk.trial.signoff import open_criteria

    e = trial.screen()
    data = {f"answer_{aid}": "no" for _, aid, _ in protocol().attestation_items()}
    data.update(answer_consent_and_compliance="yes", answer_ipaf="yes", answer_no_improvement="yes", printed_name="Pi Tester",
                password=PASSWORD)
    data.update({f"decision_{c}": ("met" if c.startswith("I") else "not_met") for c in open_criteria(protocol(), e.snapshot)})
    c = client_as("pi")
    assert c.post(f"/screening/{e.number}/sign/", {**data, "password": "nope"}).status_code == 422  # refused, nothing signed
    r = c.post(f"/screening/{e.number}/sign/", data)
    assert r.status_code == 302
    e.refresh_from_db()
    assert e.outcome == "eligible"
    assert "Signed: Pi Tester" in c.get(f"/screening/{e.number}/").content.decode()


def test_eleventh_enrolment_is_refused_on_the_page_and_through_the_api(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    for i in range(10):
        trial.enrol(f"P{i}")
    eleventh = trial.ready("Eleventh")
    n = (Participant.objects.count(), AuditEntry.objects.count())
    c = client_as("coordinator")
    page = c.post(f"/screening/{eleventh.number}/enrol/", {"enrolled_on": days_ago(1).isoformat()})
    assert page.status_code == 200 and "target of 10" in page.content.decode()
    api = c.post(f"/api/screening/{eleventh.number}/enrol", {"enrolled_on": days_ago(1).isoformat()}, content_type="application/json")
    assert api.status_code == 422 and api.json()["field"] == "enrolment" and "target of 10" in api.json()["detail"]
    assert (Participant.objects.count(), AuditEntry.objects.count()) == n


def test_dose_outside_the_range_is_refused_on_the_page_next_to_total_cells(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.enrol()
    n = AuditEntry.objects.count()
    r = client_as("coordinator").post("/participants/001/infusions/new/", _infusion_form(total_cells=str(0.49e6 * 70)))
    html = r.content.decode()
    assert r.status_code == 200 and 'data-field="total_cells"' in html and "below the protocol" in html
    assert not Infusion.objects.exists() and AuditEntry.objects.count() == n


def test_infusion_recorded_on_the_page_shows_the_computed_dose(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.enrol()
    c = client_as("coordinator")
    r = c.post("/participants/001/infusions/new/", _infusion_form())
    assert r.status_code == 302
    inf = Infusion.objects.get()
    assert inf.dose_per_kg == 750_000 and inf.vitals == {"before": {"sbp": 120.0}, "during": {}, "after": {}}


def test_api_infusion_for_someone_not_enrolled_is_refused(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.ready()
    body = {"date": days_ago(1).isoformat(), "started_at": "09:00", "weight_kg": 70, "total_cells": 52_500_000, "lot": "L", "donor_id": "D"}
    r = client_as("coordinator").post("/api/participants/001/infusions", body, content_type="application/json")
    assert r.status_code == 422 and r.json()["field"] == "participant" and "enrolled" in r.json()["detail"]
    assert not Infusion.objects.exists()


def test_api_dose_out_of_range_is_refused_and_in_range_accepted(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.enrol()
    c = client_as("coordinator")
    body = {"date": days_ago(20).isoformat(), "started_at": "09:00", "weight_kg": 70, "total_cells": 1.01e6 * 70, "lot": "L",
            "donor_id": "D"}
    r = c.post("/api/participants/001/infusions", body, content_type="application/json")
    assert r.status_code == 422 and r.json()["field"] == "total_cells" and not Infusion.objects.exists()
    r = c.post("/api/participants/001/infusions", {**body, "total_cells": 70_000_000}, content_type="application/json")
    assert r.status_code == 201
    assert (r.json()["dose"], r.json()["dose_unit"], r.json()["dose_basis"]) == (1.0, "10^6 cells/kg", "per_kg")
    assert "dose_per_kg" not in r.json()


def test_api_walks_screening_consent_and_enrolment(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    c = client_as("coordinator")
    r = c.post("/api/screening", {"given_name": "Ada", "family_name": "L", "birth_date": "1960-01-01", "sex": "female",
                                  "screened_on": days_ago(30).isoformat()}, content_type="application/json")
    assert r.status_code == 201 and r.json()["engine_overall"] == "needs_review"
    number = r.json()["number"]
    r = c.post(f"/api/screening/{number}/enrol", {"enrolled_on": days_ago(1).isoformat()}, content_type="application/json")
    assert r.status_code == 422 and "sign" in r.json()["detail"]
    trial.sign(ScreeningEntry.objects.get(number=number))
    consent = {"icf_version": "1.0", "signed_at": f"{days_ago(2).isoformat()}T10:00:00Z", "obtained_by": "C", "copy_given": True}
    assert c.post(f"/api/screening/{number}/consent", consent, content_type="application/json").status_code == 201
    r = c.post(f"/api/screening/{number}/enrol", {"enrolled_on": days_ago(1).isoformat()}, content_type="application/json")
    assert r.status_code == 201 and r.json()["subject_id"] == "001"


def test_openapi_schema_lists_the_endpoints(client_as) -> None:  # type: ignore[no-untyped-def]
    schema = client_as("coordinator").get("/api/openapi.json").json()
    assert "/api/participants/{subject_id}/infusions" in schema["paths"] and "/api/audit/verify" in schema["paths"]


def test_trial_data_api_gives_the_data_cut(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.infuse(trial.enrol())
    cut = client_as("dsmb").get(f"/api/trial-data?cutoff={days_ago(0).isoformat()}").json()
    assert cut["participants"][0]["subject_id"] == "001" and len(cut["infusions"]) == 1


# --- optimistic locking ---------------------------------------------------------------


def test_the_second_of_two_concurrent_editors_is_told_and_loses_nothing(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    e = trial.screen()
    form = {"given_name": "Ada", "family_name": "Lovelace", "mrn": "MRN-Ada", "birth_date": "1960-05-01", "sex": "female",
            "screened_on": e.screened_on.isoformat(), "version": "1"}
    first = client_as("coordinator").post(f"/screening/{e.number}/edit/", {**form, "mrn": "MRN-FIRST", "reason": "first fix"})
    assert first.status_code == 302
    second = client_as("pi").post(f"/screening/{e.number}/edit/", {**form, "mrn": "MRN-SECOND", "reason": "second fix"})
    html = second.content.decode()
    assert second.status_code == 200 and "changed by someone else" in html
    assert 'value="MRN-SECOND"' in html and "MRN-FIRST" in html  # the second writer's input kept, the saved value shown
    e.refresh_from_db()
    assert e.mrn == "MRN-FIRST" and e.version == 2


def test_infusion_edit_with_a_stale_version_is_refused(trial, users) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from trialdesk.edc.audit.trail import StaleEdit
    from trialdesk.edc.dosing.service import edit_infusion

    inf = trial.infuse(trial.enrol())
    edit_infusion(users["coordinator"], inf, changes={"lot": "LOT-A"}, reason="typo", version=1)
    with pytest.raises(StaleEdit):
        edit_infusion(users["pi"], inf, changes={"lot": "LOT-B"}, reason="typo", version=1)
    inf.refresh_from_db()
    assert inf.lot == "LOT-A"


def test_visit_pages_render(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.infuse(trial.enrol())
    c = client_as("coordinator")
    for url in ("/", "/participants/001/", "/participants/001/visits/D1/", "/participants/001/visits/D1/laboratory/", "/audit/",
                "/queries/", "/pauses/", "/screening/", "/screening/S-0001/"):
        assert c.get(url).status_code == 200, url
