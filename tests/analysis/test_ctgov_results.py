"""The resultsSection against the field names of ClinicalTrials.gov API v2 and the hand count."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.analysis.fixtures import empty_data
from trialdesk.analysis.ctgov_results import ThresholdError, results_json, results_section
from trialdesk.analysis.data_cut import NoParticipantsError
from trialdesk.protocol.model import Protocol
from trialdesk.trial.records import TrialData

# API v2 study-structure field names (see the module docstring for where they were checked)
API_V2 = {
    "resultsSection": {"participantFlowModule", "baselineCharacteristicsModule", "outcomeMeasuresModule", "adverseEventsModule",
                       "moreInfoModule"},
    "participantFlowModule": {"preAssignmentDetails", "recruitmentDetails", "typeUnitsAnalyzed", "groups", "periods"},
    "FlowGroup": {"id", "title", "description"},
    "FlowPeriod": {"title", "milestones", "dropWithdraws"},
    "FlowMilestone": {"type", "comment", "achievements"},
    "DropWithdraw": {"type", "comment", "reasons"},
    "FlowStats": {"groupId", "comment", "numSubjects", "numUnits"},
    "baselineCharacteristicsModule": {"populationDescription", "typeUnitsAnalyzed", "groups", "denoms", "measures"},
    "Denom": {"units", "counts"},
    "DenomCount": {"groupId", "value"},
    "BaselineMeasure": {"title", "description", "populationDescription", "paramType", "dispersionType", "unitOfMeasure",
                        "calculatePct", "denomUnitsSelected", "denoms", "classes"},
    "MeasureClass": {"title", "denoms", "categories"},
    "MeasureCategory": {"title", "measurements"},
    "Measurement": {"groupId", "value", "spread", "lowerLimit", "upperLimit", "comment"},
    "OutcomeMeasure": {"type", "title", "description", "populationDescription", "reportingStatus", "anticipatedPostingDate",
                       "paramType", "dispersionType", "unitOfMeasure", "calculatePct", "timeFrame", "typeUnitsAnalyzed",
                       "denomUnitsSelected", "groups", "denoms", "classes", "analyses"},
    "adverseEventsModule": {"frequencyThreshold", "timeFrame", "description", "allCauseMortalityComment", "eventGroups",
                            "seriousEvents", "otherEvents"},
    "EventGroup": {"id", "title", "description", "deathsNumAffected", "deathsNumAtRisk", "seriousNumAffected", "seriousNumAtRisk",
                   "otherNumAffected", "otherNumAtRisk"},
    "AdverseEvent": {"term", "organSystem", "sourceVocabulary", "assessmentType", "notes", "stats"},
    "EventStats": {"groupId", "numEvents", "numAffected", "numAtRisk"},
}


def _keys_within(node: dict[str, Any], kind: str) -> None:
    assert set(node) <= API_V2[kind], f"{kind}: not API v2 fields: {sorted(set(node) - API_V2[kind])}"


def _check_measure(m: dict[str, Any], kind: str) -> None:
    _keys_within(m, kind)
    for d in m.get("denoms", []):
        _keys_within(d, "Denom")
        for c in d["counts"]:
            _keys_within(c, "DenomCount")
            assert isinstance(c["value"], str)
    for cls in m["classes"]:
        _keys_within(cls, "MeasureClass")
        for d in cls.get("denoms", []):
            _keys_within(d, "Denom")
        for cat in cls["categories"]:
            _keys_within(cat, "MeasureCategory")
            for meas in cat["measurements"]:
                _keys_within(meas, "Measurement")
                assert isinstance(meas["value"], str)


def test_every_field_name_is_api_v2(data: TrialData, protocol: Protocol) -> None:
    rs = json.loads(results_json(data, protocol))["resultsSection"]
    _keys_within(rs, "resultsSection")
    flow = rs["participantFlowModule"]
    _keys_within(flow, "participantFlowModule")
    for g in flow["groups"]:
        _keys_within(g, "FlowGroup")
    for period in flow["periods"]:
        _keys_within(period, "FlowPeriod")
        for m in period["milestones"]:
            _keys_within(m, "FlowMilestone")
            for s in m["achievements"]:
                _keys_within(s, "FlowStats")
                assert isinstance(s["numSubjects"], str)
        for d in period.get("dropWithdraws", []):
            _keys_within(d, "DropWithdraw")
            for s in d["reasons"]:
                _keys_within(s, "FlowStats")
    base = rs["baselineCharacteristicsModule"]
    _keys_within(base, "baselineCharacteristicsModule")
    for m in base["measures"]:
        _check_measure(m, "BaselineMeasure")
    for m in rs["outcomeMeasuresModule"]["outcomeMeasures"]:
        _check_measure(m, "OutcomeMeasure")
    ae = rs["adverseEventsModule"]
    _keys_within(ae, "adverseEventsModule")
    assert isinstance(ae["frequencyThreshold"], str)
    for g in ae["eventGroups"]:
        _keys_within(g, "EventGroup")
        assert all(isinstance(g[k], int) for k in g if k.endswith(("Affected", "AtRisk")))
    for e in ae["seriousEvents"] + ae["otherEvents"]:
        _keys_within(e, "AdverseEvent")
        assert e["sourceVocabulary"] == "CTCAE (5.0)"
        assert e["assessmentType"] == "SYSTEMATIC_ASSESSMENT"
        for s in e["stats"]:
            _keys_within(s, "EventStats")


def test_adverse_events_module_matches_the_hand_count(data: TrialData, protocol: Protocol) -> None:
    ae = results_section(data, protocol)["resultsSection"]["adverseEventsModule"]
    (group,) = ae["eventGroups"]
    assert {k: v for k, v in group.items() if k.endswith(("Affected", "AtRisk"))} == {
        "deathsNumAffected": 1, "deathsNumAtRisk": 3,
        "seriousNumAffected": 2, "seriousNumAtRisk": 3,  # S02 (hypoxia, lung infection), S03 (respiratory failure)
        "otherNumAffected": 2, "otherNumAtRisk": 3,  # S01 and S03; the pre-treatment headache and day-187 fatigue are out
    }
    serious = {e["term"]: (e["organSystem"], e["stats"][0]["numEvents"], e["stats"][0]["numAffected"]) for e in ae["seriousEvents"]}
    assert serious == {
        "Hypoxia": ("Respiratory, thoracic and mediastinal disorders", 1, 1),
        "Lung infection": ("Infections and infestations", 1, 1),
        "Respiratory failure": ("Respiratory, thoracic and mediastinal disorders", 1, 1),
    }
    other = {e["term"]: (e["stats"][0]["numEvents"], e["stats"][0]["numAffected"], e["stats"][0]["numAtRisk"]) for e in ae["otherEvents"]}
    assert other == {"Infusion related reaction": (1, 1, 3), "Fever": (1, 1, 3), "Cough": (1, 1, 3), "Nausea": (2, 2, 3)}
    assert ae["frequencyThreshold"] == "0"
    assert "6 months" in ae["timeFrame"]


def test_outcome_measure_is_the_primary_outcome_as_registered(data: TrialData, protocol: Protocol) -> None:
    (om,) = results_section(data, protocol)["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"]
    registered = protocol.outcomes.primary[0]
    assert (om["type"], om["title"], om["description"], om["timeFrame"]) == (
        "PRIMARY", registered.measure, registered.description, registered.time_frame)
    counts = {c["title"]: c["categories"][0]["measurements"][0]["value"] for c in om["classes"]}
    assert counts == {"Infusion 1": "4", "Infusion 2": "4", "All infusions": "8"}


def test_participant_flow_and_baseline(data: TrialData, protocol: Protocol) -> None:
    rs = results_section(data, protocol)["resultsSection"]
    milestones = {m["type"]: m["achievements"][0]["numSubjects"] for m in rs["participantFlowModule"]["periods"][0]["milestones"]}
    assert milestones == {"STARTED": "3", "Received Infusion 1": "3", "Received Infusion 2": "2", "COMPLETED": "1", "NOT COMPLETED": "2"}
    measures = {m["title"]: m for m in rs["baselineCharacteristicsModule"]["measures"]}
    age = measures["Age, Continuous"]["classes"][0]["categories"][0]["measurements"][0]
    # 54, 61, 70, 45: mean 57.5; squared deviations 12.25 + 12.25 + 156.25 + 156.25 = 337; sqrt(337 / 3) = 10.6
    assert (age["value"], age["spread"]) == ("57.5", "10.6")
    sex = {c["title"]: c["measurements"][0]["value"] for c in measures["Sex: Female, Male"]["classes"][0]["categories"]}
    assert sex == {"Female": "2", "Male": "2"}
    race = {c["title"]: c["measurements"][0]["value"] for c in measures["Race (NIH/OMB)"]["classes"][0]["categories"]}
    assert (race["White"], race["Asian"], race["Black or African American"]) == ("2", "1", "1")
    eth = {c["title"]: c["measurements"][0]["value"] for c in measures["Ethnicity (NIH/OMB)"]["classes"][0]["categories"]}
    assert eth == {"Hispanic or Latino": "1", "Not Hispanic or Latino": "2", "Unknown or Not Reported": "1"}


def test_threshold_above_five_percent_is_refused(data: TrialData, protocol: Protocol) -> None:
    with pytest.raises(ThresholdError, match="at most 5 %"):
        results_section(data, protocol, frequency_threshold=6)
    ae = results_section(data, protocol, frequency_threshold=5)["resultsSection"]["adverseEventsModule"]
    assert ae["frequencyThreshold"] == "5"
    assert len(ae["otherEvents"]) == 4  # every term affects 1 of 3 or more, above 5 %


def test_empty_cut_is_refused_or_recorded(protocol: Protocol) -> None:
    with pytest.raises(NoParticipantsError):
        results_section(empty_data(), protocol)
    rs = results_section(empty_data(), protocol, allow_empty=True)["resultsSection"]
    assert "allow_empty" in rs["participantFlowModule"]["recruitmentDetails"]
