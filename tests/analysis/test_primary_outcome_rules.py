"""The primary outcome's documented rules: one dose-level rounding, each infusion's time frame a protocol
setting, events after it shown and never dropped, a pre-existing event that worsens counted anew."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tests.safety.fixtures import ae, d, infusion, participant, trial_data
from trialdesk.analysis.primary_outcome import dose_level, primary_outcome
from trialdesk.protocol.model import InfusionTimeFrame, Protocol
from trialdesk.safety.attribution import dose_group
from trialdesk.safety.attribution import dose_level as level_of
from trialdesk.safety.dsmb_report import build_report
from trialdesk.safety.stopping_rules import evaluate
from trialdesk.trial.records import MedicalHistoryItem

ONE = [participant("001", "2020-01-06")]
TWO_INFUSIONS = [infusion("001", 1, "2020-01-20", 0.5), infusion("001", 2, "2020-02-17", 0.65)]  # day 0 and day 28


def _with_frame(protocol: Protocol, anchor: str, days: int = 183) -> Protocol:
    frame = InfusionTimeFrame(anchor=anchor, days=days, reason="test setting.")  # type: ignore[arg-type]
    primary = protocol.outcomes.primary[0].model_copy(update={"infusion_time_frame": frame})
    return protocol.model_copy(update={"outcomes": protocol.outcomes.model_copy(update={"primary": [primary]})})


def test_a_dose_of_0_65_million_per_kg_is_the_0_7_level_in_every_table(protocol: Protocol) -> None:
    second = TWO_INFUSIONS[1]
    assert dose_level(protocol, second) == "0.7"
    assert dose_group(protocol.study_intervention.dose_spec, second).label == "0.7 × 10⁶ cells/kg"
    data = trial_data(participants=ONE, infusions=TWO_INFUSIONS, adverse_events=[ae("E", "001", "Headache", 1, "2020-02-18")])
    assert [r.key for r in primary_outcome(data, protocol).rows if r.scope == "dose_level"] == ["0.5", "0.7"]
    report = build_report(data, protocol, evaluate(data, protocol))
    assert "0.7 × 10⁶ cells/kg" in {row[0] for row in report.table("per_dose").rows}


def test_a_dose_just_below_a_half_step_stays_in_the_lower_level() -> None:
    assert level_of(649_999.0, 100_000) == 600_000.0 and level_of(650_000.0, 100_000) == 700_000.0
    assert level_of(649_999.99999999994, 100_000) == 700_000.0 and level_of(0.64999999999999994, 0.1) == 0.7


def test_the_nct03929120_time_frame_runs_183_days_from_the_first_infusion_and_says_why(protocol: Protocol) -> None:
    frame = protocol.outcomes.primary[0].infusion_time_frame
    assert frame is not None and (frame.anchor, frame.days) == ("first_infusion", 183) and "155" in frame.reason


def test_an_event_on_day_190_reported_at_the_month_6_visit_is_shown_outside_the_time_frame(protocol: Protocol, tmp_path: Path) -> None:
    late = ae("L", "001", "Cough", 1, "2020-07-28")  # day 190: inside the M6 visit window (183 +/- 14), after day 183
    data = trial_data(participants=ONE, infusions=TWO_INFUSIONS, adverse_events=[late, ae("E", "001", "Headache", 1, "2020-07-20")])
    result = primary_outcome(data, protocol)
    assert result.total.events == 1 and [(a.event.id, a.day) for a in result.outside_time_frame] == [("L", 190)]
    result.to_csv(tmp_path)
    rows = {r["ae_id"]: r for r in csv.DictReader(io.StringIO((tmp_path / "primary_outcome_events.csv").read_text()))}
    assert (rows["L"]["counted"], rows["L"]["excluded_because"], rows["E"]["counted"]) == ("N", "after_time_frame", "Y")
    result.plot(tmp_path)
    assert "after the time frame: 1 event(s): L (day 190)" in (tmp_path / "primary_outcome.svg").read_text()


def test_with_each_infusion_anchored_the_second_infusion_has_its_own_183_days(protocol: Protocol) -> None:
    late = ae("L", "001", "Cough", 1, "2020-07-28")  # 162 days after infusion 2
    data = trial_data(participants=ONE, infusions=TWO_INFUSIONS, adverse_events=[late])
    assert primary_outcome(data, protocol).row("infusion", "2").events == 0
    assert primary_outcome(data, _with_frame(protocol, "each_infusion")).row("infusion", "2").events == 1


def test_a_pre_existing_event_that_worsens_after_an_infusion_counts_as_a_new_event_at_the_new_grade(protocol: Protocol,
                                                                                                     tmp_path: Path) -> None:
    before = ae("P", "001", "Dyspnea", 1, "2020-01-15")  # unresolved at the first infusion
    worse = ae("W", "001", "Dyspnea", 3, "2020-02-20")
    data = trial_data(participants=ONE, infusions=TWO_INFUSIONS, adverse_events=[before, worse])
    result = primary_outcome(data, protocol)
    assert result.row("infusion", "2").grade_3_plus_events == 1 and result.total.events == 1  # P itself is pre-treatment
    assert result.worsening == {"W": "P (grade 1)"}
    result.to_csv(tmp_path)
    rows = {r["ae_id"]: r for r in csv.DictReader(io.StringIO((tmp_path / "primary_outcome_events.csv").read_text()))}
    assert rows["W"]["worsening_of"] == "P (grade 1)" and rows["P"]["excluded_because"] == "before_first_infusion"


def test_a_pre_existing_event_resolved_before_the_first_infusion_is_not_what_a_later_event_worsens(protocol: Protocol) -> None:
    before = ae("P", "001", "Dyspnea", 1, "2020-01-10", resolved=d("2020-01-12"))
    data = trial_data(participants=ONE, infusions=TWO_INFUSIONS, adverse_events=[before, ae("W", "001", "Dyspnea", 3, "2020-02-20")])
    assert primary_outcome(data, protocol).worsening == {}


def test_an_ongoing_medical_history_condition_that_worsens_is_named(protocol: Protocol) -> None:
    history = [MedicalHistoryItem(id="MH-1", subject_id="001", term="Cough", ongoing=True)]
    data = trial_data(participants=ONE, infusions=TWO_INFUSIONS, adverse_events=[ae("W", "001", "Cough", 2, "2020-02-20")],
                      medical_history=history)
    assert primary_outcome(data, protocol).worsening == {"W": "medical history MH-1"}
