"""The expectedness assessment in the trial desk (21 CFR 312.32(a)): its own page, the reference safety
information's suggestion shown with its reason, never pre-filled, the sponsor-investigator's call,
changed only with a reason, audited; the IND reports on the dashboard follow it."""

from __future__ import annotations

from typing import Any

import pytest

from trialdesk.edc.audit.models import AuditEntry
from trialdesk.edc.safety.models import ExpectednessAssessment
from trialdesk.trial.errors import ConductError

from .conftest import at_days_ago, days_ago


def _hypoxia(trial, participant, grade: int = 4, **kw: Any):  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import record_adverse_event

    values: dict[str, Any] = {"term": "Hypoxia", "grade": grade, "description": "", "onset": days_ago(19), "resolved": None,
                              "serious": True, "seriousness": ["life_threatening"], "relatedness": "possibly", "outcome": "recovering",
                              "action_taken": "none", "learned_at": at_days_ago(19, hour=12), "suggested_from": ""}
    return record_adverse_event(trial.users["coordinator"], participant, **(values | kw))


@pytest.fixture
def grade_4_hypoxia(trial):  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p, ago=20)  # the hypoxia starts the day after the infusion
    return _hypoxia(trial, p)


def _reports(ae) -> list[tuple[str, bool]]:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import reports_due

    return [(r.rule_id, r.pending_assessment) for r in reports_due() if r.ae_id == ae.ae_id and r.clock_start == ae.learned_at]


def test_the_page_shows_the_suggestion_with_its_reason_and_no_answer_chosen(grade_4_hypoxia, client_as) -> None:  # type: ignore[no-untyped-def]
    page = client_as("pi").get(f"/adverse-events/{grade_4_hypoxia.pk}/expectedness/").content.decode()
    assert "<b>unexpected</b>: Hypoxia is listed up to grade 2; grade 4 is more severe than listed" in page
    assert "not yet assessed" in page and "checked" not in page


def test_grade_4_hypoxia_beyond_the_brochure_assessed_unexpected_needs_7_and_15_day_reports(grade_4_hypoxia, trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.safety.service import assess_expectedness, current_assessment

    assert _reports(grade_4_hypoxia) == [("R1", False), ("R2", True), ("R3", True), ("R5", True)]
    assess_expectedness(trial.users["pi"], grade_4_hypoxia, expected=False, reason="")  # agrees with the suggestion
    assert _reports(grade_4_hypoxia) == [("R1", False), ("R2", False), ("R3", False), ("R5", False)]
    a = current_assessment(grade_4_hypoxia)
    assert a is not None and a.assessed_by == trial.users["pi"] and "more severe than listed" in a.reason
    assert AuditEntry.objects.filter(form="expectedness", action="create", subject_id="001").count() == 1


def test_assessing_against_the_suggestion_needs_a_reason_and_stores_nothing_without_one(grade_4_hypoxia, client_as) -> None:  # type: ignore[no-untyped-def]
    r = client_as("pi").post(f"/adverse-events/{grade_4_hypoxia.pk}/expectedness/", {"expected": "yes", "reason": ""})
    assert r.status_code == 422 and 'data-field="reason"' in r.content.decode()
    assert ExpectednessAssessment.objects.count() == 0
    r = client_as("pi").post(f"/adverse-events/{grade_4_hypoxia.pk}/expectedness/",
                             {"expected": "yes", "reason": "IB v4 lists grade 4 hypoxia within 24 h"})
    assert r.status_code == 302 and ExpectednessAssessment.objects.get().expected is True


def test_no_choice_is_refused_since_nothing_is_pre_filled(grade_4_hypoxia, trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.safety.service import assess_expectedness

    with pytest.raises(ConductError) as err:
        assess_expectedness(trial.users["pi"], grade_4_hypoxia, expected=None, reason="")
    assert err.value.field == "expected"


def test_a_coordinator_sees_the_page_but_may_not_make_the_sponsor_investigators_call(grade_4_hypoxia, client_as) -> None:  # type: ignore[no-untyped-def]
    c = client_as("coordinator")
    assert c.get(f"/adverse-events/{grade_4_hypoxia.pk}/expectedness/").status_code == 200
    assert c.post(f"/adverse-events/{grade_4_hypoxia.pk}/expectedness/", {"expected": "no", "reason": "x"}).status_code == 403
    assert ExpectednessAssessment.objects.count() == 0


def test_a_change_of_assessment_needs_a_reason(grade_4_hypoxia, trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.safety.service import assess_expectedness, current_assessment

    assess_expectedness(trial.users["pi"], grade_4_hypoxia, expected=False, reason="")
    with pytest.raises(ConductError) as err:
        assess_expectedness(trial.users["pi"], grade_4_hypoxia, expected=False, reason="  ")
    assert err.value.field == "reason" and "assessed before" in err.value.message
    assess_expectedness(trial.users["pi"], grade_4_hypoxia, expected=True, reason="IB amended: listed up to grade 4")
    current = current_assessment(grade_4_hypoxia)
    assert current is not None and current.expected is True and grade_4_hypoxia.expectedness_assessments.count() == 2


def test_a_new_grade_makes_the_assessment_lapse_until_it_is_assessed_again(grade_4_hypoxia, trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import edit_adverse_event
    from trialdesk.edc.safety.service import assess_expectedness, current_assessment

    assess_expectedness(trial.users["pi"], grade_4_hypoxia, expected=True, reason="judged listed")
    ae = edit_adverse_event(trial.users["coordinator"], grade_4_hypoxia, changes={"grade": 3, "seriousness": ["hospitalisation"]},
                            reason="regraded", version=grade_4_hypoxia.version)
    assert current_assessment(ae) is None
    assert [pending for rule, pending in _reports(ae) if rule != "R1"] == [True, True]


def test_the_ae_detail_shows_the_full_report_history(grade_4_hypoxia, client_as) -> None:  # type: ignore[no-untyped-def]
    page = client_as("coordinator").get(f"/adverse-events/{grade_4_hypoxia.pk}/").content.decode()
    assert "Report history" in page and "All participating investigators" in page and "FDA (7-day IND safety report)" in page
    assert "if assessed unexpected" in page


def test_the_dashboard_lists_the_ind_reports_and_the_aggregate_rule(grade_4_hypoxia, client_as) -> None:  # type: ignore[no-untyped-def]
    page = client_as("monitor").get("/safety/").content.decode()
    assert "awaiting the expectedness assessment" in page and "FDA (IND safety report)" in page
    assert "312.32(c)(1)(iv)" in page and "AGG1 Hypoxia: 1 of 1 infused" in page


def test_a_hy_law_draw_is_on_the_dashboard_and_flags_its_suggestions(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import FormEntry, Visit

    p = trial.enrol()
    trial.infuse(p, ago=20)
    visit = Visit.objects.filter(participant=p).exclude(code="D0").order_by("pk").first()
    day = days_ago(15).isoformat()
    FormEntry.objects.create(visit=visit, form="laboratory", data={
        "lb_date": day, "alt": 130.0, "alt_lln": 7.0, "alt_uln": 40.0, "tbili": 2.5, "tbili_lln": 0.1, "tbili_uln": 1.2, "alp": 300.0})
    page = client_as("monitor").get("/safety/").content.decode()
    assert "Hy&#x27;s law" in page and "3.2 × ULN" in page
    assert "1 value(s) lack the laboratory's normal range" in page  # ALP without its range
    suggestions = client_as("coordinator").get("/adverse-events/suggestions/").content.decode()
    assert 'class="badge open flag">Hy&#x27;s law' in suggestions and "cannot be graded with CTCAE v5.0" in suggestions
