"""The desk serving AETHER refuses a first dose from a cohort not yet open: cohort C2 (100 × 10⁶ cells)
waits for the DSMB's signed review of cohort C1; C1's own doses go through, in its unit, whatever the weight."""

from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.trial.errors import ConductError

from .conftest import PASSWORD, days_ago


def enrol_for_aether(trial, name: str, ago: int = 25):  # type: ignore[no-untyped-def]
    """Screen, sign (every inclusion attested met, every exclusion not), consent and enrol, as the PI and coordinator would."""
    from trialdesk.edc.participants.service import enrol
    from trialdesk.edc.screening.service import sign_off
    from trialdesk.edc.web import protocol
    from trialdesk.trial.signoff import open_criteria

    p = protocol()
    role = {c.id: c.role for c in p.eligibility.criteria}
    entry = trial.screen(name, screened_ago=ago + 15)
    answers = {aid: role[cid] == "inclusion" for cid, aid, _ in p.attestation_items()}
    decisions = {cid: ("met" if role[cid] == "inclusion" else "not_met") for cid in open_criteria(p, entry.snapshot)}
    pi = trial.users["pi"]
    sign_off(pi, entry, answers=answers, decisions=decisions, password=PASSWORD, printed_name=pi.get_full_name())
    entry.refresh_from_db()
    trial.consent(entry, ago=ago + 5)
    entry.refresh_from_db()
    return enrol(trial.users["coordinator"], entry, enrolled_on=days_ago(ago))


@pytest.mark.django_db
def test_the_desk_refuses_a_dose_from_the_next_cohort_before_the_dsmb_opens_it(settings, trial) -> None:  # type: ignore[no-untyped-def]
    settings.TRIALDESK_PROTOCOL = "nct02013700"
    people = [enrol_for_aether(trial, name) for name in ("Ann", "Bea", "Cy", "Di")]
    for k, p in enumerate(people[:3]):
        given = trial.infuse(p, ago=20 - k, total_cells=20e6, weight=60.0 + 10 * k)
        assert given.dose_text == "20 × 10⁶ cells"
    with pytest.raises(ConductError, match="cohort C2 \\(DL2\\) is not open: it opens only with the DSMB's signed decision"):
        trial.infuse(people[3], ago=10, total_cells=100e6)
    with pytest.raises(ConductError, match="cohort C1 is full \\(3 dosed\\)"):
        trial.infuse(people[3], ago=10, total_cells=20e6)
    assert not people[3].infusions.exists()  # nothing stored on refusal


@pytest.mark.django_db
def test_the_first_trial_has_no_cohort_gate(trial) -> None:  # type: ignore[no-untyped-def]
    assert trial.infuse(trial.enrol("Ann")).dose_text == "0.75 × 10⁶ cells/kg"


@pytest.mark.django_db
def test_the_dsmbs_signed_review_of_cohort_1_opens_cohort_2_on_the_desk(settings, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import record_dsmb_decision
    from trialdesk.edc.web import today

    settings.TRIALDESK_PROTOCOL = "nct02013700"
    people = [enrol_for_aether(trial, name, ago=80) for name in ("Ann", "Bea", "Cy", "Di")]
    for k, p in enumerate(people[:3]):
        trial.infuse(p, ago=62 - k, total_cells=20e6)
    page = client_as("dsmb").get("/safety/dsmb/decisions/").content.decode()
    assert "waits for the DSMB&#x27;s signed review of cohort C1" in page and "full; DLT window closed" in page
    assert "3+3 rule" in page and "DL2 (100 × 10⁶ cells)" in page
    dsmb = trial.users["dsmb"]
    closed_on = days_ago(60) + dt.timedelta(days=29)  # the day after the last C1 participant's 28-day window
    record_dsmb_decision(dsmb, kind="continue", decided_on=today(), report_cutoff=closed_on, rationale="C1: no DLT in 3",
                         password=PASSWORD, printed_name=dsmb.get_full_name())
    assert trial.infuse(people[3], ago=1, total_cells=100e6).dose_text == "100 × 10⁶ cells"
    page = client_as("dsmb").get("/safety/dsmb/decisions/").content.decode()
    assert "reviewed by the DSMB: escalate, opens C2" in page
