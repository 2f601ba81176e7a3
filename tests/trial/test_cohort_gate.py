"""The desk's cohort gate for AETHER: cohort C2 (100 × 10^6 cells) opens only with the DSMB's signed
decision reviewing cohort C1 after its 28-day DLT window has closed, and only if the 3+3 rule escalates;
participants are assigned to an open cohort with a place, and their first dose is that cohort's level."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.trial.aether_data import EXPANSION_CELLS, START, ae, cut, expansion, infusion_day, subjects
from trialdesk.protocol.loader import load
from trialdesk.protocol.model import Protocol
from trialdesk.trial.cohort_gate import assignable, check_assignment, check_first_dose, signed_cohort_decisions
from trialdesk.trial.dsmb_decision import Decision
from trialdesk.trial.errors import ConductError

C1_CLOSES = infusion_day("C1-3") + dt.timedelta(days=29)  # the first day after the last C1 participant's 28-day window


@pytest.fixture(scope="module")
def aether() -> Protocol:
    return load("nct02013700")


def continue_(cutoff: dt.date, signed: str = "Dr DSMB Chair", kind: str = "continue") -> Decision:
    return Decision(kind, cutoff + dt.timedelta(days=2), cutoff, "C1 reviewed: no DLT", signed_by=signed)  # type: ignore[arg-type]


def c2_dose(aether: Protocol, events: list, decisions: list[Decision]) -> str:  # type: ignore[type-arg]
    """The first dose of C2's first participant, assigned to C2 (the assignment is not checked here)."""
    assigned = {**subjects(("C1",)), "C2-1": "C2"}
    data = cut(assigned, events, undosed=("C2-1",))
    return check_first_dose(aether, data, assigned, decisions, "C2-1", 100e6, 80, C1_CLOSES + dt.timedelta(days=5)).id


def test_the_second_cohort_is_closed_without_a_dsmb_decision(aether: Protocol) -> None:
    with pytest.raises(ConductError, match="cohort C2 \\(DL2\\) is not open: it opens only with the DSMB's signed decision after"
                                           " cohort C1's DLT window \\(28 days\\)"):
        c2_dose(aether, [], [])


def test_a_signed_review_after_the_window_closed_opens_it(aether: Protocol) -> None:
    assert c2_dose(aether, [], [continue_(C1_CLOSES)]) == "C2"
    [read] = signed_cohort_decisions(aether, cut(subjects(("C1",)), []), subjects(("C1",)), [continue_(C1_CLOSES)])
    assert (read.reviewed_cohort, read.decision, read.opens) == ("C1", "escalate", "C2")


def test_a_review_of_data_cut_the_day_before_the_window_closed_opens_nothing(aether: Protocol) -> None:
    with pytest.raises(ConductError, match=r"cohort C2 .* is not open"):
        c2_dose(aether, [], [continue_(C1_CLOSES - dt.timedelta(days=1))])


def test_an_unsigned_decision_counts_for_nothing(aether: Protocol) -> None:
    with pytest.raises(ConductError, match="is not open"):
        c2_dose(aether, [], [continue_(C1_CLOSES, signed="")])


def test_one_dlt_in_three_keeps_the_dose_and_the_next_cohort_closed(aether: Protocol) -> None:
    events = [ae("A1", "C1-2", 10, serious=True)]  # AETHER's DLT: a serious event within 28 days
    [read] = signed_cohort_decisions(aether, cut(subjects(("C1",)), events), subjects(("C1",)), [continue_(C1_CLOSES)])
    assert (read.decision, read.opens) == ("stay", None)
    with pytest.raises(ConductError, match="is not open"):
        c2_dose(aether, events, [continue_(C1_CLOSES)])


def test_a_dsmb_stop_closes_every_cohort(aether: Protocol) -> None:
    with pytest.raises(ConductError, match="the DSMB stopped dose finding"):
        c2_dose(aether, [], [continue_(C1_CLOSES, kind="stop")])


def test_the_first_cohort_is_open_and_its_third_member_is_dosed(aether: Protocol) -> None:
    assigned = subjects(("C1",))
    data = cut(assigned, [], undosed=("C1-3",))
    assert check_first_dose(aether, data, assigned, [], "C1-3", 20e6, 80, infusion_day("C1-2") + dt.timedelta(days=7)).id == "C1"


def test_a_dose_between_levels_is_refused_naming_the_levels(aether: Protocol) -> None:
    with pytest.raises(ConductError, match="is not dose levels DL1 20, DL2 100, DL3 200"):
        check_first_dose(aether, cut({"C1-1": "C1"}, [], undosed=("C1-1",)), {"C1-1": "C1"}, [], "C1-1", 60e6, 80, C1_CLOSES)


def test_the_boin_decision_table_shown_to_the_dsmb_has_the_published_boundaries(aether: Protocol) -> None:
    from trialdesk.protocol.model import EscalationRule
    from trialdesk.trial.cohort_gate import rule_table

    assert aether.dose_finding is not None
    boin = EscalationRule(design="boin", target_toxicity=0.3, reason="test")
    p = aether.model_copy(update={"dose_finding": aether.dose_finding.model_copy(update={"escalation": boin})})
    title, columns, rows = rule_table(p)
    assert title == "BOIN decision table, target DLT rate 30%" and columns[1] == "escalate if DLTs ≤"
    # Liu & Yuan's table for a 30 % target: escalate at 0/3 and 1/6, de-escalate at 2/3 and 3/6, eliminate at 3/3 and 4/6
    assert rows[:2] == [("3", "0", "2", "3"), ("6", "1", "3", "4")]


def test_the_cohort_table_says_what_each_cohort_waits_for(aether: Protocol) -> None:
    from trialdesk.trial.cohort_gate import cohort_rows

    data = cut(subjects(("C1",)), [ae("A1", "C1-1", 3, serious=True)])
    rows = cohort_rows(aether, data, subjects(("C1",)), [], C1_CLOSES)
    assert [(r.cohort, r.assigned, r.dosed, r.with_dlt, r.window_closed) for r in rows] == [
        ("C1", ("C1-1", "C1-2", "C1-3"), 3, 1, True), ("C2", (), 0, 0, False), ("C3", (), 0, 0, False)]
    assert rows[0].state == "full; DLT window closed: awaiting the DSMB's review"
    assert rows[1].state == "waits for the DSMB's signed review of cohort C1"
    before = cohort_rows(aether, data, subjects(("C1",)), [], C1_CLOSES - dt.timedelta(days=1))
    assert before[0].state == "full; DLT window open" and not before[0].window_closed


# --- assignment: recorded, never inferred from the dose --------------------------------------------------------------


def test_a_participant_is_assigned_to_an_open_cohort_with_a_place(aether: Protocol) -> None:
    assigned = {"C1-1": "C1", "C1-2": "C1"}
    data = cut({**assigned, "C1-3": "C1"}, [], undosed=("C1-2", "C1-3"))
    assert check_assignment(aether, data, assigned, [], "C1-3", "C1").id == "C1"
    assert [c.id for c in assignable(aether, data, assigned, [])] == ["C1"]


def test_a_full_cohort_takes_no_one_more_even_before_its_members_are_dosed(aether: Protocol) -> None:
    assigned = subjects(("C1",))
    data = cut({**assigned, "C2-1": "C2"}, [], undosed=("C1-2", "C1-3", "C2-1"))
    with pytest.raises(ConductError, match=r"cohort C1 is full: its 3 places are assigned \(C1-1, C1-2, C1-3\)"):
        check_assignment(aether, data, assigned, [], "C2-1", "C1")
    assert assignable(aether, data, assigned, []) == []  # C1 full, C2 not open: the desk offers nothing


def test_a_participant_who_left_before_the_first_infusion_frees_the_place(aether: Protocol) -> None:
    assigned = subjects(("C1",))
    data = cut({**assigned, "C2-1": "C2"}, [], undosed=("C1-3", "C2-1"))
    left = [p.model_copy(update={"status": "withdrawn", "off_study_on": p.enrolled_on}) if p.subject_id == "C1-3" else p
            for p in data.participants]
    data = data.model_copy(update={"participants": left})
    assert check_assignment(aether, data, assigned, [], "C2-1", "C1").id == "C1"


def test_a_cohort_not_open_is_refused_naming_the_review_it_waits_for(aether: Protocol) -> None:
    assigned = subjects(("C1",))
    data = cut({**assigned, "C2-1": "C2"}, [], undosed=("C2-1",))
    with pytest.raises(ConductError, match=r"cohort C2 \(DL2\) is not open: it opens only with the DSMB's signed decision after"
                                           r" cohort C1's DLT window \(28 days\) has closed"):
        check_assignment(aether, data, assigned, [], "C2-1", "C2")
    assert check_assignment(aether, data, assigned, [continue_(C1_CLOSES)], "C2-1", "C2").id == "C2"
    assert [c.id for c in assignable(aether, data, assigned, [continue_(C1_CLOSES)])] == ["C2"]


def test_no_assignment_once_the_dsmb_stopped_dose_finding(aether: Protocol) -> None:
    assigned = {"C1-1": "C1"}
    data = cut({**assigned, "C1-2": "C1"}, [], undosed=("C1-2",))
    with pytest.raises(ConductError, match="the DSMB stopped dose finding; no cohort is open"):
        check_assignment(aether, data, assigned, [continue_(infusion_day("C1-1"), kind="stop")], "C1-2", "C1")


def test_a_participant_is_assigned_once(aether: Protocol) -> None:
    assigned = {"C1-1": "C1"}
    with pytest.raises(ConductError, match="C1-1 is already assigned to cohort C1"):
        check_assignment(aether, cut(assigned, [], undosed=("C1-1",)), assigned, [], "C1-1", "C1")


def test_a_first_dose_needs_an_assignment(aether: Protocol) -> None:
    with pytest.raises(ConductError, match="C1-1 has no cohort; assign them to an open cohort before the first infusion"):
        check_first_dose(aether, cut({"C1-1": "C1"}, [], undosed=("C1-1",)), {}, [], "C1-1", 20e6, 80, START)


def test_the_first_dose_is_the_assigned_cohorts_level_naming_both_levels(aether: Protocol) -> None:
    assigned = {**subjects(("C1",)), "C2-1": "C2"}
    data = cut(assigned, [], undosed=("C2-1",))
    opened = [continue_(C1_CLOSES)]
    on = C1_CLOSES + dt.timedelta(days=5)
    with pytest.raises(ConductError, match=r"C2-1 is assigned to cohort C2 at DL2 \(100 × 10⁶ cells\); this dose, 20 × 10⁶ cells,"
                                           r" is DL1 \(20 × 10⁶ cells\); give the cohort's dose level"):
        check_first_dose(aether, data, assigned, opened, "C2-1", 20e6, 80, on)
    assert check_first_dose(aether, data, assigned, opened, "C2-1", 100e6, 80, on).id == "C2"


def test_a_dose_level_given_in_two_cohorts_is_told_apart_by_the_assignment(aether: Protocol) -> None:
    p = expansion(aether)
    events = [ae("A1", "C1-2", 10, serious=True)]  # one DLT in three: the 3+3 rule stays at DL1, in the expansion cohort
    assigned = {**subjects(("C1",)), "C2-1": "C2"}
    data = cut(assigned, events, undosed=("C2-1",), cells=EXPANSION_CELLS)
    with pytest.raises(ConductError, match=r"cohort C2 \(DL1\) is not open"):
        check_first_dose(p, data, assigned, [], "C2-1", 20e6, 80, C1_CLOSES)
    [read] = signed_cohort_decisions(p, data, assigned, [continue_(C1_CLOSES)])
    assert (read.reviewed_cohort, read.decision, read.opens) == ("C1", "stay", "C2")
    assert check_first_dose(p, data, assigned, [continue_(C1_CLOSES)], "C2-1", 20e6, 80, C1_CLOSES).id == "C2"


def test_an_expansion_cohort_left_unused_does_not_hold_up_the_next_review(aether: Protocol) -> None:
    """C1 escalates straight to C3 (DL2); the DSMB's next review is of C3, not of the expansion cohort never opened."""
    from trialdesk.trial.cohort_gate import cohort_rows

    p = expansion(aether)
    assigned = {**subjects(("C1",)), **subjects(("C3",))}
    data = cut(assigned, [], cells=EXPANSION_CELLS)
    c3_closes = infusion_day("C3-3") + dt.timedelta(days=29)
    reads = signed_cohort_decisions(p, data, assigned, [continue_(C1_CLOSES), continue_(c3_closes)])
    assert [(r.reviewed_cohort, r.decision, r.opens) for r in reads] == [("C1", "escalate", "C3"), ("C3", "escalate", None)]
    rows = cohort_rows(p, data, assigned, [continue_(C1_CLOSES)], c3_closes)
    assert rows[1].state == "waits for the DSMB's signed review of cohort C3"


def test_the_sentinel_and_gap_are_counted_over_the_cohorts_assigned_members(aether: Protocol) -> None:
    p = expansion(aether, sentinel=1, sentinel_gap_days=7, within_cohort_gap_days=2)
    assigned = {"C1-1": "C1", "C1-2": "C1"}
    data = cut(assigned, [], undosed=("C1-2",), cells=EXPANSION_CELLS)
    sentinel = infusion_day("C1-1")
    with pytest.raises(ConductError, match=r"cohort C1: after the sentinel \(dosed .*\) the next participant waits 7 days"):
        check_first_dose(p, data, assigned, [], "C1-2", 20e6, 80, sentinel + dt.timedelta(days=6))
    assert check_first_dose(p, data, assigned, [], "C1-2", 20e6, 80, sentinel + dt.timedelta(days=7)).id == "C1"
