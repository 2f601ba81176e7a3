"""The DSMB report's tables against the hand-counted data cut in tests/safety/fixtures.py.

Treatment-emergent AEs (onset from the first infusion to day 183): A1, A2, A3, A5, A6, A7, A9.
A4 (nausea before 001's first infusion) and A8 (fatigue on day 223) appear only per infusion.
"""

from __future__ import annotations

import re

import pytest

from tests.safety.fixtures import at, trial_data
from trialdesk.safety.dsmb_pdf import render_pdf
from trialdesk.safety.dsmb_report import DsmbReport, build_report, render_html
from trialdesk.safety.stopping_rules import DsmbDecision, evaluate


@pytest.fixture(scope="module")
def report(protocol) -> DsmbReport:  # type: ignore[no-untyped-def]
    data = trial_data()
    return build_report(data, protocol, evaluate(data, protocol))


def test_enrolment_counts_screened_enrolled_and_infused(report: DsmbReport) -> None:
    t = report.table("enrolment")
    counts = {row[0]: row[1] for row in t.rows}
    assert counts == {"Screened": 6, "Screen failed": 2, "Pending eligibility sign-off": 0, "Enrolled": 4, "Enrolment target": 10,
                      "Received infusion 1": 3,
                      "Received infusion 2": 2, "On study": 2, "Completed follow-up": 0, "Withdrawn": 1, "Off study (other)": 1}


def test_entries_awaiting_sign_off_are_not_counted_as_screened(protocol) -> None:  # type: ignore[no-untyped-def]
    from tests.safety.fixtures import SCREENING
    from trialdesk.analysis.participant_flow import participant_flow
    from trialdesk.trial.records import ScreeningEntry

    waiting = [ScreeningEntry(screening_id=f"S9{n}", screened_on=at(f"2020-06-0{n}").date(), outcome="pending") for n in (1, 2)]
    signed = ScreeningEntry(screening_id="S93", screened_on=at("2020-06-03").date(), outcome="eligible")
    data = trial_data(screening=[*SCREENING, *waiting, signed])
    counts = {row[0]: row[1] for row in build_report(data, protocol, evaluate(data, protocol)).table("enrolment").rows}
    # 6 decided in the fixture + 1 signed eligible (not yet enrolled) = 7 screened; the 2 unsigned entries are shown apart
    assert (counts["Screened"], counts["Screen failed"], counts["Pending eligibility sign-off"]) == (7, 2, 2)
    flow = participant_flow(data, protocol)
    assert (flow.screened, flow.pending, flow.eligible_not_enrolled) == (counts["Screened"], counts["Pending eligibility sign-off"], 1)


def test_participant_status_shows_doses_and_study_days(report: DsmbReport) -> None:
    t = report.table("participants")
    assert t.row("001") == ("001", "on study", 2, "0.50, 1.00", 254, 5)
    assert t.row("003") == ("003", "withdrawn", 1, "1.00", 11, 1)
    assert t.row("004") == ("004", "enrolled", 0, "-", "-", 0)


def test_per_infusion_counts_the_primary_outcome(report: DsmbReport) -> None:
    t = report.table("per_infusion")
    # infused, events, participants with an event, related, grade >= 3, serious
    assert t.row("Infusion 1")[1:] == (3, 3, 2, 2, 1, 1)  # A1, A2 (001), A7 (003)
    assert t.row("Infusion 2")[1:] == (2, 4, 2, 2, 3, 2)  # A3 (001), A5, A6, A9 (002)
    assert t.row("Before first infusion")[2:] == (1, 1, 0, 0, 0)  # A4
    assert t.row("After follow-up window")[2:] == (1, 1, 0, 0, 0)  # A8


def test_per_dose_level_counts_infusions_and_their_events(report: DsmbReport) -> None:
    t = report.table("per_dose")
    assert t.row("0.5 × 10⁶ cells/kg")[1:] == (3, 2, 5, 2, 2, 3, 2)  # 001#1, 002#1, 002#2; A1, A2, A5, A6, A9
    assert t.row("1.0 × 10⁶ cells/kg")[1:] == (2, 2, 2, 2, 2, 1, 1)  # 001#2, 003#1; A3, A7


def test_by_soc_and_term_with_soc_totals(report: DsmbReport) -> None:
    t = report.table("by_soc_term")
    resp = "Respiratory, thoracic and mediastinal disorders"
    assert t.row(resp, "All terms")[2:] == (2, 1, 0, 0, 1, 0, 1)
    assert t.row(resp, "Hypoxia")[2:] == (1, 1, 0, 0, 1, 0, 0)
    assert t.row("Immune system disorders", "Anaphylaxis")[2:] == (1, 1, 0, 0, 0, 1, 0)
    assert sum(int(c) for c, term in zip(t.column("events"), t.column("term"), strict=True) if term == "All terms") == 7
    assert "Nausea" not in t.column("term") and "Fatigue" not in t.column("term")


def test_by_grade_counts_events_and_participants_at_their_worst_grade(report: DsmbReport) -> None:
    t = report.table("by_grade")
    assert [row[1:] for row in t.rows] == [(2, 0), (1, 1), (2, 0), (1, 1), (1, 1), (7, 3)]


def test_by_relatedness(report: DsmbReport) -> None:
    t = report.table("by_relatedness")
    assert t.row("Definitely")[1:] == (1, 1, 1, 1)
    assert t.row("Possibly")[1:] == (2, 2, 1, 0)
    assert t.row("Unlikely")[1:] == (2, 2, 1, 1)
    assert t.row("Related (possibly or more)")[1:] == (4, 3, 2, 1)


def test_sae_listing_and_deaths(report: DsmbReport) -> None:
    assert report.table("sae_listing").column("AE") == ["A5", "A9", "A7"]
    assert report.table("sae_listing").row("A7") == ("A7", "003", "Anaphylaxis", 4, 0, 1, "definitely", "not yet assessed",
                                                     "life threatening", "recovered", 1)
    assert report.table("deaths").rows == (("002", "A9", "Respiratory failure", 112, "unrelated"),)


def test_stopping_rule_status_and_the_pause(report: DsmbReport) -> None:
    t = report.table("stopping_rules")
    assert t.row("S2")[3:] == ("2 / 2", "A7, A6", "IN FORCE")
    assert t.row("BAYES")[-1] == "not triggered"
    # participant 002's death was judged unrelated, and still pauses: "any death" (S4)
    assert t.row("S4")[3:] == ("1 / 1", "A9", "IN FORCE")
    assert report.status_sentence == "Enrolment and dosing are paused (rule S1, S2, S3, S4, S6) until the DSMB records a decision."
    assert report.bayes_sentence.startswith("2 of 3 observed with a qualifying event: posterior Beta(2.5, 5.5)")


def test_after_the_dsmb_resumes_the_report_says_so(protocol) -> None:  # type: ignore[no-untyped-def]
    data = trial_data()
    resume = [DsmbDecision(r, at("2020-03-20 15:00"), "resume", "Chair") for r in ("S1", "S2", "S3", "S6")]
    resume.append(DsmbDecision("S4", at("2020-06-03 15:00"), "resume", "Chair"))  # after reviewing the death of 1 June
    r = build_report(data, protocol, evaluate(data, protocol, resume))
    assert r.status_sentence.startswith("No stopping rule is in force")
    assert r.table("stopping_rules").row("S1")[-1] == "resumed by DSMB"


def test_the_html_page_holds_every_table_the_swimmer_plot_and_nothing_identifying(report: DsmbReport) -> None:
    html = render_html(report)
    for key in ("enrolment", "per_infusion", "per_dose", "by_soc_term", "by_grade", "by_relatedness", "sae_listing", "deaths",
                "stopping_rules", "swimmer"):
        assert f'id="{key}"' in html
    assert "data cut-off <strong>2020-09-30</strong>" in html and "<svg" in html and "@media print" in html
    # de-identified: no screening numbers, lots, donors, or calendar dates other than the cut-off
    assert not re.search(r"\bS0\d\b|LOT-|DONOR", html)
    dates = set(re.findall(r"\b20\d\d-\d\d-\d\d\b", html))
    assert dates == {"2020-09-30"}


def test_the_pdf_is_a_pdf_and_the_same_cut_gives_the_same_file(report: DsmbReport) -> None:
    pdf = render_pdf(report)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert render_pdf(report) == pdf


def test_dsmb_decisions_are_listed_and_a_stop_heads_the_report(protocol) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from trialdesk.trial.dsmb_decision import Decision

    data = trial_data()
    decisions = [Decision("pause", dt.date(2020, 3, 12), dt.date(2020, 3, 11), "anaphylaxis in 003", signed_by="Chair — DSMB decision"),
                 Decision("stop", dt.date(2020, 6, 5), dt.date(2020, 6, 3), "a second severe related event and a death"),
                 Decision("continue", dt.date(2020, 10, 5), dt.date(2020, 10, 1), "after the cut-off: not in this report")]
    r = build_report(data, protocol, evaluate(data, protocol), decisions)
    assert r.status_sentence == "The trial was stopped by the DSMB on 2020-06-05: no further enrolment or dosing."
    t = r.table("dsmb_decisions")
    assert t.column("decision") == ["Pause enrolment and dosing", "Stop the trial"]
    assert t.row("2020-03-12")[-1] == "Chair — DSMB decision" and t.row("2020-06-05")[-1] == "unsigned"
    assert 'id="dsmb_decisions"' in render_html(r)


# --- 21 CFR 312.32 in the report (issue 18) ---------------------------------------------------------------------

def test_the_report_lists_the_ind_reports_with_days_not_dates(report: DsmbReport) -> None:
    t = report.table("ind_reports")
    a7 = [row for row in t.rows if row[0] == "A7"]
    assert [(row[2], row[4]) for row in a7] == [("R1", "24 h"), ("R2", "7 calendar days"), ("R3", "15 calendar days"),
                                               ("R5", "15 calendar days")]
    assert all("if assessed unexpected" in str(row[-1]) for row in a7 if row[2] != "R1")
    assert not any("2020-" in str(cell) for row in t.rows for cell in row)  # de-identified: no calendar dates of events


def test_the_report_states_the_reference_safety_information_and_the_new_rules(report: DsmbReport) -> None:
    rsi = report.table("reference_safety_information")
    assert rsi.row("Hypoxia")[1:3] == (2, "within 24 h of an infusion")
    assert report.table("aggregate_reports").row("AGG1", "Hypoxia")[-1] == "not fired"
    assert report.table("stopping_rules").row("S5")[-1] == "not triggered"
    assert report.table("sae_listing").row("A7")[7] == "not yet assessed"
    assert report.table("hy_law").rows == ()
