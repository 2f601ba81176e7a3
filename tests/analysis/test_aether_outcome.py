"""AETHER's primary outcome is reported as its protocol defines it, not the first trial's way.

AETHER (NCT02013700) counts participants with a treatment-emergent *serious* adverse event within
4 weeks of the infusion, by cohort. In this cut one participant of cohort C1 has a serious event
(hospitalisation for dyspnoea on day 10) and a non-serious headache on day 12; the first trial's
logic (every adverse event per infusion) would count 2 events. The primary-outcome report, the
DSMB report and the ClinicalTrials.gov results must all say 1.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.trial.aether_data import ae, cut, subjects
from trialdesk.analysis.commands import export_app, report_app
from trialdesk.analysis.ctgov_results import check_results, results_section
from trialdesk.analysis.outcome_report import measure_report
from trialdesk.analysis.primary_outcome import NoOutcomeMeasureError, primary_outcome
from trialdesk.protocol.loader import load
from trialdesk.protocol.model import Protocol
from trialdesk.safety.dsmb_report import build_report
from trialdesk.safety.stopping_rules import evaluate
from trialdesk.trial.records import TrialData

runner = CliRunner()


@pytest.fixture(scope="module")
def aether() -> Protocol:
    return load("nct02013700")


@pytest.fixture(scope="module")
def data() -> TrialData:
    return cut(subjects(), [
        ae("A1", "C1-1", 10, serious=True),
        ae("A2", "C1-1", 12, serious=False, grade=1, term="Headache"),
    ])


def test_the_first_trials_logic_is_refused_for_aether(data: TrialData, aether: Protocol) -> None:
    # all AEs per infusion would count 2 events: not AETHER's measure, so it is refused, naming the measure to report
    with pytest.raises(NoOutcomeMeasureError, match="counts its primary outcome as its outcome measure 'primary_te_sae'"):
        primary_outcome(data, aether)


def test_the_primary_outcome_counts_one_participant_with_a_serious_event_in_cohort_c1(data: TrialData, aether: Protocol) -> None:
    report = measure_report(aether, data)
    assert [(r.group, r.analysed, r.count) for r in report.rows] == [("C1", 3, 1), ("C2", 3, 0), ("C3", 3, 0)]
    assert report.total == 1 and report.counted_ids == {"A1"}
    assert report.rows[0].label == "Cohort C1 (20 × 10⁶ cells)"
    assert report.definition == ("participants with at least one serious, treatment-emergent adverse events,"
                                 " from infusion 1 (day 0) to day 28")


def test_the_cohort_is_read_from_the_dose_when_no_assignment_is_given(aether: Protocol) -> None:
    late = cut(subjects(), [ae("A1", "C3-1", 28, serious=True), ae("A2", "C3-2", 29, serious=True)])
    assert [r.count for r in measure_report(aether, late).rows] == [0, 0, 1]  # day 28 counts, day 29 does not


def test_the_report_command_writes_the_measure_not_the_per_infusion_count(data: TrialData, tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(data.model_dump_json(), encoding="utf-8")
    result = runner.invoke(report_app, ["primary-outcome", "--data", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "out" / "primary_outcome_measure.csv").open(encoding="utf-8")))
    assert [(r["group"], r["participants"], r["events_counted"]) for r in rows] == [("C1", "1", "A1"), ("C2", "0", ""), ("C3", "0", "")]
    assert rows[0]["proportion"] == "0.3333"
    events = {r["ae_id"]: r["counted"] for r in csv.DictReader((tmp_path / "out" / "primary_outcome_measure_events.csv").open())}
    assert events == {"A1": "Y", "A2": "N"}
    assert not (tmp_path / "out" / "primary_outcome_counts.csv").exists()


def test_ctgov_results_post_one_participant_by_cohort(data: TrialData, aether: Protocol, tmp_path: Path) -> None:
    doc = results_section(data, aether)
    [om] = doc["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"]
    assert om["type"] == "PRIMARY" and om["paramType"] == "COUNT_OF_PARTICIPANTS" and om["unitOfMeasure"] == "Participants"
    assert [g["title"] for g in om["groups"]] == ["Cohort C1 (20 × 10⁶ cells)", "Cohort C2 (100 × 10⁶ cells)",
                                                  "Cohort C3 (200 × 10⁶ cells)"]
    values = [m["value"] for m in om["classes"][0]["categories"][0]["measurements"]]
    assert values == ["1", "0", "0"]
    assert [c["value"] for c in om["denoms"][0]["counts"]] == ["3", "3", "3"]
    assert "serious" in om["description"] and "day 28" in om["description"]
    assert not [p for p in check_results(doc) if "outcomeMeasures" in p]
    path = tmp_path / "cut.json"
    path.write_text(data.model_dump_json(), encoding="utf-8")
    assert runner.invoke(export_app, ["ctgov-results", "--data", str(path), "--out", str(tmp_path / "r.json")]).exit_code == 0
    posted = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert posted["resultsSection"]["outcomeMeasuresModule"] == doc["resultsSection"]["outcomeMeasuresModule"]


def test_the_dsmb_report_shows_the_primary_measure_by_cohort(data: TrialData, aether: Protocol) -> None:
    report = build_report(data, aether, evaluate(data, aether))
    table = next(t for t in report.tables if t.key == "primary_measure")
    assert table.rows == (("Cohort C1 (20 × 10⁶ cells)", 3, 1, "A1"), ("Cohort C2 (100 × 10⁶ cells)", 3, 0, "-"),
                          ("Cohort C3 (200 × 10⁶ cells)", 3, 0, "-"))
    assert next(t for t in report.tables if t.key == "per_infusion").title == "AEs per infusion"


def test_the_first_trial_keeps_its_registered_count(aether: Protocol) -> None:
    first = load("nct03929120")
    assert not first.outcome_measures  # its report stays the per-infusion count of every event


# --- the dose as AETHER states it: a total dose in 10⁶ cells, never divided by weight ---------------------------


def test_the_dsmb_report_groups_by_the_protocols_dose_levels_in_its_unit(data: TrialData, aether: Protocol) -> None:
    report = build_report(data, aether, evaluate(data, aether))
    per_dose = next(t for t in report.tables if t.key == "per_dose")
    assert [row[:3] for row in per_dose.rows] == [("DL1 (20 × 10⁶ cells)", 3, 3), ("DL2 (100 × 10⁶ cells)", 3, 3),
                                                 ("DL3 (200 × 10⁶ cells)", 3, 3)]
    people = next(t for t in report.tables if t.key == "participants")
    assert people.columns[3] == "dose (× 10⁶ cells)"
    assert {row[0]: row[3] for row in people.rows}["C2-1"] == "100"  # 100 × 10⁶ cells whatever the weight (80 kg)


def test_medwatch_states_the_total_dose(data: TrialData, aether: Protocol) -> None:
    import datetime as dt

    from trialdesk.safety.medwatch import build_medwatch

    form = build_medwatch(data.adverse_events[0], data, aether, report_date=dt.date(2014, 2, 1))
    described = "\n".join(b.value for s in form.sections for b in s.blocks)
    assert "#1: 20 × 10⁶ cells (20,000,000 cells at 80.0 kg), once, intravenous" in described
    assert "follows infusion 1 of 2014-01-06 (20 × 10⁶ cells)" in described
    assert "cells/kg" not in described


def test_sdtm_ex_records_the_total_dose_in_the_protocols_unit(data: TrialData, aether: Protocol) -> None:
    from trialdesk.analysis.sdtm import build_sdtm

    ex = build_sdtm(data, aether).domains["EX"]
    assert sorted(set(ex["EXDOSE"])) == [20.0, 100.0, 200.0] and set(ex["EXDOSU"]) == {"10^6 cells"}  # files keep ASCII


def test_sdtm_arms_are_the_cohorts_of_the_dose_given(data: TrialData, aether: Protocol) -> None:
    from trialdesk.analysis.sdtm import build_sdtm

    dm = build_sdtm(data, aether).domains["DM"].set_index("SUBJID")
    assert (dm.loc["C1-1", "ARMCD"], dm.loc["C3-2", "ACTARMCD"]) == ("C1", "C3")
    assert dm.loc["C2-1", "ARM"] == dm.loc["C2-1", "ACTARM"] == "Cohort C2 (100 × 10^6 cells)"  # files keep ASCII


def test_the_participant_flow_names_the_registered_time_frame(data: TrialData, aether: Protocol) -> None:
    from trialdesk.analysis.participant_flow import participant_flow

    assert participant_flow(data, aether).completed_label == "Completed 4 weeks post-infusion"
    assert participant_flow(data, load("nct03929120"), allow_empty=True).completed_label == "Completed 6 months"


def test_ctgov_adverse_events_are_reported_by_cohort(data: TrialData, aether: Protocol) -> None:
    doc = results_section(data, aether)
    module = doc["resultsSection"]["adverseEventsModule"]
    groups = {g["id"]: g for g in module["eventGroups"]}
    assert [g["title"] for g in groups.values()] == ["Cohort C1 (20 × 10⁶ cells)", "Cohort C2 (100 × 10⁶ cells)",
                                                     "Cohort C3 (200 × 10⁶ cells)"]
    assert [(g["seriousNumAffected"], g["seriousNumAtRisk"]) for g in groups.values()] == [(1, 3), (0, 3), (0, 3)]
    [serious] = module["seriousEvents"]
    assert serious["term"] == "Dyspnoea"
    assert [(st["groupId"], st["numEvents"], st["numAffected"]) for st in serious["stats"]] == [("EG000", 1, 1), ("EG001", 0, 0),
                                                                                               ("EG002", 0, 0)]
    [other] = module["otherEvents"]  # the headache: 1 of 3 in C1 is above a 0 % threshold
    assert other["term"] == "Headache" and other["stats"][0]["numAffected"] == 1
    # the synthetic cut records no day the site learned of an event, so only the assessment type is open
    assert [p for p in check_results(doc) if ("adverseEventsModule" in p or "eventGroups" in p) and "assessmentType" not in p] == []
