"""Each step of the life cycle, its rules and refusals, through the services the views and API call."""

from __future__ import annotations

import pytest

from trialdesk.edc.audit.models import AuditEntry
from trialdesk.edc.dosing.models import Infusion
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.screening.models import EligibilitySignoff, ScreeningEntry
from trialdesk.edc.visits.models import Visit
from trialdesk.trial.errors import ConductError

from .conftest import PASSWORD, at_days_ago, days_ago


def counts() -> tuple[int, ...]:
    return (ScreeningEntry.objects.count(), EligibilitySignoff.objects.count(), Participant.objects.count(), Infusion.objects.count(),
            AuditEntry.objects.count())


def test_manual_screening_stores_a_worksheet_with_every_criterion_needing_review(trial) -> None:  # type: ignore[no-untyped-def]
    e = trial.screen()
    assert e.number == "S-0001" and e.source == "manual"
    assert {c["status"] for c in e.snapshot["criteria"]} == {"needs_review"}
    assert e.protocol_version == "1.0" and e.data_as_of == e.screened_on


def test_signoff_missing_an_attestation_is_refused_and_nothing_stored(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.screening.service import sign_off

    e = trial.screen()
    before = counts()
    with pytest.raises(ConductError) as err:
        sign_off(users["pi"], e, answers={}, decisions={}, password=PASSWORD, printed_name="Pi Tester")
    assert err.value.field.startswith("answer_")
    assert counts() == before


def test_signoff_with_a_wrong_password_is_refused(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.screening.service import sign_off
    from trialdesk.edc.web import protocol

    from .conftest import eligible_answers

    e = trial.screen()
    answers, _ = eligible_answers(protocol())
    decisions = {c["id"]: ("met" if c["id"].startswith("I") else "not_met") for c in e.snapshot["criteria"]}
    before = counts()
    with pytest.raises(ConductError) as err:
        sign_off(users["pi"], e, answers=answers, decisions=decisions, password="wrong", printed_name="Pi Tester")
    assert err.value.field == "password" and counts() == before


def test_signed_eligible_screening_is_marked_eligible(trial) -> None:  # type: ignore[no-untyped-def]
    e = trial.screen()
    s = trial.sign(e)
    e.refresh_from_db()
    assert s.overall == "eligible" and e.outcome == "eligible" and s.signed


def test_screen_fail_records_the_failing_criterion_and_rescreening_links_back(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.screening.service import rescreen

    e = trial.screen()
    trial.sign(e, eligible=False)
    e.refresh_from_db()
    assert e.outcome == "screen_failed" and e.failed_criteria == ["E10"]
    again = rescreen(users["coordinator"], e, screened_on=days_ago(1))
    assert again.previous == e and again.number == "S-0002"
    with pytest.raises(ConductError, match="already re-screened"):
        rescreen(users["coordinator"], e, screened_on=days_ago(1))


def test_candidates_csv_becomes_screening_entries_with_prescreen_snapshots(users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.screening.service import import_candidates

    text = ("rank,person_id,overall,items_to_check,unknown_criteria,needs_review_criteria\n"
            "1,42,needs_review,2,E3,I4\n2,43,needs_review,1,,I4\n")
    entries = import_candidates(users["coordinator"], text, as_of=days_ago(3), screened_on=days_ago(1))
    assert [e.source_ref for e in entries] == ["OMOP person 42", "OMOP person 43"]
    statuses = {c["id"]: c["status"] for c in entries[0].snapshot["criteria"]}
    assert statuses["E3"] == "unknown" and statuses["I1"] == "met" and entries[0].data_as_of == days_ago(3)


def test_candidates_csv_with_an_unknown_criterion_is_refused_whole(users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.screening.service import import_candidates

    text = "rank,person_id,overall,items_to_check,unknown_criteria,needs_review_criteria\n1,42,needs_review,1,,I4\n2,43,x,1,E99,\n"
    with pytest.raises(ConductError, match="line 3"):
        import_candidates(users["coordinator"], text, as_of=days_ago(3), screened_on=days_ago(1))
    assert ScreeningEntry.objects.count() == 0


def test_consent_without_a_copy_given_is_refused(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import record_consent

    e = trial.screen()
    with pytest.raises(ConductError) as err:
        record_consent(users["coordinator"], e, icf_version="1.0", signed_at=at_days_ago(1), obtained_by="C", copy_given=False)
    assert err.value.field == "copy_given"


def test_first_enrolment_gets_subject_001(trial) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    p.screening.refresh_from_db()
    assert p.subject_id == "001" and p.screening.outcome == "enrolled"


def test_enrolment_without_signed_eligibility_is_refused(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import enrol

    e = trial.screen()
    trial.consent(e)
    before = counts()
    with pytest.raises(ConductError, match="sign the eligibility"):
        enrol(users["coordinator"], e, enrolled_on=days_ago(1))
    assert counts() == before


def test_enrolment_before_consent_is_refused(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import enrol

    e = trial.ready()
    with pytest.raises(ConductError, match="before consent"):
        enrol(users["coordinator"], e, enrolled_on=days_ago(31))


def test_eleventh_enrolment_is_refused(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import enrol

    ids = [trial.enrol(f"P{i}").subject_id for i in range(10)]
    assert ids[0] == "001" and ids[-1] == "010"
    eleventh = trial.ready("Eleventh")
    before = counts()
    with pytest.raises(ConductError) as err:
        enrol(users["coordinator"], eleventh, enrolled_on=days_ago(1))
    assert "target of 10" in err.value.message
    assert counts() == before


def test_enrolment_while_paused_is_refused(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import enrol, record_pause

    e = trial.ready()
    record_pause(users["dsmb"], rule_id="S1", action="", since=days_ago(2), description="grade 4 related event")
    with pytest.raises(ConductError, match="S1"):
        enrol(users["coordinator"], e, enrolled_on=days_ago(1))


def test_first_infusion_in_range_generates_the_visit_schedule(trial) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    inf = trial.infuse(p)
    assert inf.dose_per_kg == pytest.approx(750_000)
    codes = list(Visit.objects.filter(participant=p).values_list("code", flat=True))
    assert codes[:3] == ["SCREENING", "D0", "D1"] and len(codes) == 10
    d0 = Visit.objects.get(participant=p, code="D0")
    assert d0.done_on == inf.date and not d0.out_of_window


def test_dose_outside_the_range_is_refused_and_nothing_stored(trial) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    before = counts()
    with pytest.raises(ConductError) as err:
        trial.infuse(p, total_cells=0.49e6 * 70)
    assert err.value.field == "total_cells" and counts() == before
    assert not Visit.objects.exists()


def test_infusion_for_a_withdrawn_participant_is_refused(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import withdraw

    p = trial.enrol()
    withdraw(users["coordinator"], p, at=at_days_ago(22), reason="moved away")
    p.refresh_from_db()
    assert p.status == "withdrawn"
    with pytest.raises(ConductError, match="withdrawn"):
        trial.infuse(p)


def test_infusion_correction_recomputes_and_rechecks_the_dose(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.dosing.service import edit_infusion

    inf = trial.infuse(trial.enrol())
    with pytest.raises(ConductError, match="above"):
        edit_infusion(users["coordinator"], inf, changes={"weight_kg": 50.0}, reason="scale error", version=inf.version)
    fixed = edit_infusion(users["coordinator"], inf, changes={"weight_kg": 60.0}, reason="scale error", version=inf.version)
    assert fixed.dose_per_kg == pytest.approx(875_000) and fixed.version == 2


def test_visit_out_of_window_is_flagged_and_a_future_visit_refused(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.service import flag, record_visit

    p = trial.enrol()
    trial.infuse(p, ago=20)
    d7 = Visit.objects.get(participant=p, code="D7")
    with pytest.raises(ConductError, match="future"):
        record_visit(users["coordinator"], d7, done_on=days_ago(-1), version=d7.version)
    with pytest.raises(ConductError, match="give the reason it was done out of window"):
        record_visit(users["coordinator"], d7, done_on=days_ago(20 - 10), version=d7.version)
    v = record_visit(users["coordinator"], d7, done_on=days_ago(20 - 10), version=d7.version, out_of_window_reason="travelling")
    assert v.out_of_window and flag(v) == "out_of_window"
    d1 = Visit.objects.get(participant=p, code="D1")
    assert flag(d1) == "missed"


def test_visit_form_is_saved_and_a_correction_needs_a_reason(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.service import record_visit, save_form

    p = trial.enrol()
    trial.infuse(p, ago=20)
    d1 = Visit.objects.get(participant=p, code="D1")
    d1 = record_visit(users["coordinator"], d1, done_on=days_ago(19), version=d1.version)
    entry = save_form(users["coordinator"], d1, "laboratory", {"lb_date": days_ago(19), "alt": 30.0, "alt_uln": 40.0})
    assert entry.data == {"lb_date": days_ago(19).isoformat(), "alt": 30.0, "alt_uln": 40.0}
    with pytest.raises(ConductError, match="reason"):
        save_form(users["coordinator"], d1, "laboratory", {"lb_date": days_ago(19), "alt": 31.0}, version=entry.version)
    with pytest.raises(ConductError, match="lower limit"):
        save_form(users["coordinator"], d1, "laboratory", {"lb_date": days_ago(19), "alt": 31.0, "alt_lln": 50.0, "alt_uln": 40.0},
                  reason="x", version=entry.version)


def test_off_study_needs_a_reason_and_stops_infusions(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import take_off_study

    p = trial.enrol()
    with pytest.raises(ConductError, match="reason"):
        take_off_study(users["pi"], p, on=days_ago(1), reason="", version=p.version)
    p = take_off_study(users["pi"], p, on=days_ago(1), reason="investigator decision", version=p.version)
    with pytest.raises(ConductError, match="off study"):
        trial.infuse(p, ago=0)


def test_locked_casebook_refuses_changes(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.dosing.service import edit_infusion
    from trialdesk.edc.participants.service import set_lock

    inf = trial.infuse(trial.enrol())
    trial.sign_casebook(inf.participant)
    set_lock(users["data_manager"], inf.participant, locked=True, reason="")
    with pytest.raises(ConductError, match="locked"):
        edit_infusion(users["coordinator"], inf, changes={"lot": "LOT-2"}, reason="typo", version=inf.version)


def test_queries_go_open_answered_closed_and_are_never_deleted(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.quality.service import answer_query, close_query, raise_query

    p = trial.enrol()
    q = raise_query(users["monitor"], p, target="enrolment: enrolled_on", text="Source shows a different date")
    with pytest.raises(ConductError):
        close_query(users["monitor"], q, version=q.version)
    q = answer_query(users["coordinator"], q, answer="Checked: the date is right", version=q.version)
    q = close_query(users["monitor"], q, version=q.version)
    assert q.status == "closed"
    with pytest.raises(PermissionError):
        q.delete()


def test_source_verification_is_for_the_version_verified(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.dosing.service import edit_infusion
    from trialdesk.edc.quality.service import verified, verify_source

    inf = trial.infuse(trial.enrol())
    verify_source(users["monitor"], inf.participant, inf)
    assert verified(inf)
    inf = edit_infusion(users["coordinator"], inf, changes={"lot": "LOT-2"}, reason="typo", version=inf.version)
    assert not verified(inf)


def test_trial_data_snapshot_is_de_identified(trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.snapshot import trial_data

    trial.infuse(trial.enrol())
    cut = trial_data(days_ago(0))
    assert [p.subject_id for p in cut.participants] == ["001"]
    assert cut.participants[0].age_at_enrolment > 18 and cut.infusions[0].dose_per_kg == pytest.approx(750_000)
    assert "Lovelace" not in cut.model_dump_json()
    assert trial_data(days_ago(100)).participants == []


