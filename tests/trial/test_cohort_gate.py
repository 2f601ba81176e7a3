"""The desk's cohort gate for AETHER: cohort C2 (100 × 10^6 cells) opens only with the DSMB's signed
decision reviewing cohort C1 after its 28-day DLT window has closed, and only if the 3+3 rule escalates."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.trial.aether_data import ae, cut, infusion_day, subjects
from trialdesk.protocol.loader import load
from trialdesk.protocol.model import Protocol
from trialdesk.trial.cohort_gate import check_first_dose, signed_cohort_decisions
from trialdesk.trial.dsmb_decision import Decision
from trialdesk.trial.errors import ConductError

C1_CLOSES = infusion_day("C1-3") + dt.timedelta(days=29)  # the first day after the last C1 participant's 28-day window


@pytest.fixture(scope="module")
def aether() -> Protocol:
    return load("nct02013700")


def continue_(cutoff: dt.date, signed: str = "Dr DSMB Chair", kind: str = "continue") -> Decision:
    return Decision(kind, cutoff + dt.timedelta(days=2), cutoff, "C1 reviewed: no DLT", signed_by=signed)  # type: ignore[arg-type]


def c2_dose(aether: Protocol, events: list, decisions: list[Decision]) -> str:  # type: ignore[type-arg]
    data = cut(subjects(("C1",)), events)
    return check_first_dose(aether, data, decisions, 100e6, 80, C1_CLOSES + dt.timedelta(days=5)).id


def test_the_second_cohort_is_closed_without_a_dsmb_decision(aether: Protocol) -> None:
    with pytest.raises(ConductError, match="cohort C2 \\(DL2\\) is not open: it opens only with the DSMB's signed decision after"
                                           " cohort C1's DLT window \\(28 days\\)"):
        c2_dose(aether, [], [])


def test_a_signed_review_after_the_window_closed_opens_it(aether: Protocol) -> None:
    assert c2_dose(aether, [], [continue_(C1_CLOSES)]) == "C2"
    [read] = signed_cohort_decisions(aether, cut(subjects(("C1",)), []), [continue_(C1_CLOSES)])
    assert (read.reviewed_cohort, read.decision, read.opens) == ("C1", "escalate", "C2")


def test_a_review_of_data_cut_the_day_before_the_window_closed_opens_nothing(aether: Protocol) -> None:
    with pytest.raises(ConductError, match=r"cohort C2 .* is not open"):
        c2_dose(aether, [], [continue_(C1_CLOSES - dt.timedelta(days=1))])


def test_an_unsigned_decision_counts_for_nothing(aether: Protocol) -> None:
    with pytest.raises(ConductError, match="is not open"):
        c2_dose(aether, [], [continue_(C1_CLOSES, signed="")])


def test_one_dlt_in_three_keeps_the_dose_and_the_next_cohort_closed(aether: Protocol) -> None:
    events = [ae("A1", "C1-2", 10, serious=True)]  # AETHER's DLT: a serious event within 28 days
    [read] = signed_cohort_decisions(aether, cut(subjects(("C1",)), events), [continue_(C1_CLOSES)])
    assert (read.decision, read.opens) == ("stay", None)
    with pytest.raises(ConductError, match="is not open"):
        c2_dose(aether, events, [continue_(C1_CLOSES)])


def test_a_dsmb_stop_closes_every_cohort(aether: Protocol) -> None:
    with pytest.raises(ConductError, match="the DSMB stopped dose finding"):
        c2_dose(aether, [], [continue_(C1_CLOSES, kind="stop")])


def test_the_first_cohort_is_open_and_takes_three(aether: Protocol) -> None:
    two = cut({"C1-1": "C1", "C1-2": "C1"}, [])
    assert check_first_dose(aether, two, [], 20e6, 80, infusion_day("C1-2") + dt.timedelta(days=7)).id == "C1"
    with pytest.raises(ConductError, match="cohort C1 is full \\(3 dosed\\)"):
        check_first_dose(aether, cut(subjects(("C1",)), []), [], 20e6, 80, C1_CLOSES)


def test_a_dose_between_levels_is_refused_naming_the_levels(aether: Protocol) -> None:
    with pytest.raises(ConductError, match="is not dose levels DL1 20, DL2 100, DL3 200"):
        check_first_dose(aether, cut({}, []), [], 60e6, 80, C1_CLOSES)


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
    rows = cohort_rows(aether, data, [], C1_CLOSES)
    assert [(r.cohort, r.dosed, r.with_dlt, r.window_closed) for r in rows] == [("C1", 3, 1, True), ("C2", 0, 0, False),
                                                                               ("C3", 0, 0, False)]
    assert rows[0].state == "full; DLT window closed: awaiting the DSMB's review"
    assert rows[1].state == "waits for the DSMB's signed review of cohort C1"
    before = cohort_rows(aether, data, [], C1_CLOSES - dt.timedelta(days=1))
    assert before[0].state == "full; DLT window open" and not before[0].window_closed
