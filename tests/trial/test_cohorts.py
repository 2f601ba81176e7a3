"""Cohorts and escalation in conduct (NCT02013700): a cohort is reviewed once its 4-week DLT window
has closed, the 3+3 rule decides, and only the DSMB's signed decision opens the next cohort."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.trial.aether_data import ae, cut, infusion_day, subjects
from trialdesk.protocol.loader import load
from trialdesk.protocol.model import Cohort, Protocol
from trialdesk.trial.cohorts import SignedCohortDecision, check_gap, open_cohorts, open_next, require_open, review
from trialdesk.trial.errors import ConductError

MIAMI = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def aether() -> Protocol:
    return load("nct02013700")


def _closes() -> dt.date:
    return infusion_day("C1-3") + dt.timedelta(days=29)  # last infusion + 28-day window, the next day


def _signed(decision: str = "escalate", opens: str | None = "C2", on: dt.date | None = None,
            by: str = "Dr DSMB Chair") -> SignedCohortDecision:
    day = on or _closes()
    return SignedCohortDecision("C1", decision, opens, by, dt.datetime(day.year, day.month, day.day, 10, tzinfo=MIAMI),  # type: ignore[arg-type]
                                "No treatment-emergent SAE in cohort 1.")


def test_a_cohort_is_not_reviewed_before_its_dlt_window_has_closed(aether: Protocol) -> None:
    data = cut(subjects(("C1",)), [])
    with pytest.raises(ConductError, match="is open until"):
        review(aether, data, subjects(("C1",)), "C1", _closes() - dt.timedelta(days=1))
    assert review(aether, data, subjects(("C1",)), "C1", _closes()).outcome.decision == "escalate"


def test_a_cohort_not_fully_dosed_is_not_reviewed(aether: Protocol) -> None:
    two = {s: c for s, c in subjects(("C1",)).items() if s != "C1-3"}
    with pytest.raises(ConductError, match="2 of 3 participants dosed"):
        review(aether, cut(two, []), two, "C1", dt.date(2016, 1, 1))


def test_no_serious_event_in_the_window_opens_the_next_dose(aether: Protocol) -> None:
    r = review(aether, cut(subjects(("C1",)), [ae("A1", "C1-1", 5, serious=False)]), subjects(("C1",)), "C1", _closes())
    assert (r.outcome.decision, r.next_cohort, r.with_dlt) == ("escalate", "C2", ())


def test_a_serious_event_on_day_28_counts_and_on_day_29_does_not(aether: Protocol) -> None:
    on_28 = review(aether, cut(subjects(("C1",)), [ae("A1", "C1-2", 28, serious=True)]), subjects(("C1",)), "C1", _closes())
    assert on_28.with_dlt == ("C1-2",) and on_28.outcome.decision == "stay"
    assert on_28.next_cohort is None and "protocol amendment" in on_28.note
    on_29 = review(aether, cut(subjects(("C1",)), [ae("A1", "C1-2", 29, serious=True)]), subjects(("C1",)), "C1", _closes())
    assert on_29.with_dlt == () and on_29.outcome.decision == "escalate"


def test_two_participants_with_a_dlt_at_the_first_dose_stop_dose_finding(aether: Protocol) -> None:
    events = [ae("A1", "C1-1", 3, serious=True), ae("A2", "C1-3", 10, serious=True)]
    r = review(aether, cut(subjects(("C1",)), events), subjects(("C1",)), "C1", _closes())
    assert r.outcome.decision == "stop" and r.outcome.mtd is None


def test_a_dose_from_a_cohort_not_yet_open_is_refused_until_the_dsmb_signs(aether: Protocol) -> None:
    assert require_open(aether, "C1", []).id == "C1"
    with pytest.raises(ConductError, match="cohort C2 \\(DL2\\) is not open: it opens only with the DSMB's signed decision"):
        require_open(aether, "C2", [])
    assert require_open(aether, "C2", [_signed()]).id == "C2"
    with pytest.raises(ConductError, match="C3"):
        require_open(aether, "C3", [_signed()])
    assert open_cohorts(aether, [_signed()]) == ["C1", "C2"]


def test_the_dsmb_decision_must_be_signed_dated_after_the_window_and_not_bolder_than_the_rule(aether: Protocol) -> None:
    clean = review(aether, cut(subjects(("C1",)), []), subjects(("C1",)), "C1", _closes())
    assert open_next(aether, clean, _signed()) == "C2"
    with pytest.raises(ConductError) as unsigned:
        open_next(aether, clean, _signed(by="  "))
    assert unsigned.value.field == "signed_by"
    with pytest.raises(ConductError, match="signed before"):
        open_next(aether, clean, _signed(on=_closes() - dt.timedelta(days=1)))
    assert open_next(aether, clean, _signed("stop", None)) is None  # more cautious than the rule: allowed
    one_dlt = review(aether, cut(subjects(("C1",)), [ae("A1", "C1-1", 2, serious=True)]), subjects(("C1",)), "C1", _closes())
    with pytest.raises(ConductError, match=r"decides 'stay'.*not 'escalate'"):
        open_next(aether, one_dlt, _signed())


def test_sentinel_and_within_cohort_gaps() -> None:
    cohort = Cohort(id="C1", dose_level="DL1", size=3, sentinel=1, sentinel_gap_days=7, within_cohort_gap_days=2)
    d0 = dt.date(2024, 3, 1)
    check_gap(cohort, [], d0)  # the sentinel
    with pytest.raises(ConductError, match="waits 7 days, until 2024-03-08"):
        check_gap(cohort, [d0], d0 + dt.timedelta(days=6))
    check_gap(cohort, [d0], d0 + dt.timedelta(days=7))
    with pytest.raises(ConductError, match="2 days apart"):
        check_gap(cohort, [d0, d0 + dt.timedelta(days=7)], d0 + dt.timedelta(days=8))
    check_gap(cohort, [d0, d0 + dt.timedelta(days=7)], d0 + dt.timedelta(days=9))
    with pytest.raises(ConductError, match="full"):
        check_gap(cohort, [d0, d0, d0], d0 + dt.timedelta(days=30))


def test_200_million_cells_are_refused_while_only_the_20_million_cohort_is_open(aether: Protocol) -> None:
    from trialdesk.trial.cohorts import check_cohort_dose

    assert check_cohort_dose(aether, "C1", [], 20e6).text == "20 × 10⁶ cells (DL1)"
    with pytest.raises(ConductError, match="cohort C3 \\(DL3\\) is not open"):
        check_cohort_dose(aether, "C3", [], 200e6)
    with pytest.raises(ConductError, match="is not level DL1"):
        check_cohort_dose(aether, "C1", [], 200e6)  # the open cohort's own level only
    assert check_cohort_dose(aether, "C2", [_signed()], 100e6).level.id == "DL2"  # type: ignore[union-attr]


def test_with_a_boin_rule_the_same_review_follows_boins_boundaries(aether: Protocol) -> None:
    from trialdesk.protocol.model import EscalationRule

    assert aether.dose_finding is not None
    boin = aether.model_copy(update={"dose_finding": aether.dose_finding.model_copy(
        update={"escalation": EscalationRule(design="boin", target_toxicity=0.3, reason="test")})})
    clean = review(boin, cut(subjects(("C1",)), []), subjects(("C1",)), "C1", _closes())
    assert (clean.outcome.decision, clean.next_cohort) == ("escalate", "C2")            # 0/3 <= 0.236
    one = review(boin, cut(subjects(("C1",)), [ae("A1", "C1-1", 2, serious=True)]), subjects(("C1",)), "C1", _closes())
    assert one.outcome.decision == "stay" and one.next_cohort is None                   # 1/3 between 0.236 and 0.358
    three = [ae(f"A{k}", f"C1-{k}", 2, serious=True) for k in (1, 2, 3)]
    assert review(boin, cut(subjects(("C1",)), three), subjects(("C1",)), "C1", _closes()).outcome.decision == "stop"  # 3/3 eliminates
