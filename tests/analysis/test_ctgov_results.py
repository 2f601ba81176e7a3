"""The resultsSection against the field names of ClinicalTrials.gov API v2 and the hand count."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from tests.analysis.fixtures import empty_data
from trialdesk.analysis.ctgov_results import RACES, ThresholdError, check_results, results_json, results_section
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
    "moreInfoModule": {"limitationsAndCaveats", "certainAgreement", "pointOfContact"},
    "CertainAgreement": {"piSponsorEmployee", "restrictionType", "restrictiveAgreement", "otherDetails"},
    "PointOfContact": {"title", "organization", "email", "phone", "phoneExt"},
    "study": {"resultsSection", "documentSection"},
    "largeDocumentModule": {"noSap", "largeDocs"},
    "LargeDoc": {"typeAbbrev", "hasProtocol", "hasSap", "hasIcf", "label", "date", "uploadDate", "filename", "size"},
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


def test_every_field_name_is_api_v2(data: TrialData, disclosed: Protocol) -> None:
    study = json.loads(results_json(data, disclosed))
    _keys_within(study, "study")
    rs = study["resultsSection"]
    _keys_within(rs, "resultsSection")
    more = rs["moreInfoModule"]
    _keys_within(more, "moreInfoModule")
    _keys_within(more["certainAgreement"], "CertainAgreement")
    _keys_within(more["pointOfContact"], "PointOfContact")
    large = study["documentSection"]["largeDocumentModule"]
    _keys_within(large, "largeDocumentModule")
    for d in large["largeDocs"]:
        _keys_within(d, "LargeDoc")
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
        assert e["assessmentType"] in ("SYSTEMATIC_ASSESSMENT", "NON_SYSTEMATIC_ASSESSMENT")
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
    # the baseline population is STARTED (S01, S02, S03; S04 was never infused): 54, 61, 70, mean 61.7;
    # squared deviations 58.78 + 0.44 + 69.44 = 128.67; sqrt(128.67 / 2) = 8.0
    assert (age["value"], age["spread"]) == ("61.7", "8.0")
    sex = {c["title"]: c["measurements"][0]["value"] for c in measures["Sex: Female, Male"]["classes"][0]["categories"]}
    assert sex == {"Female": "2", "Male": "1"}
    race = {c["title"]: c["measurements"][0]["value"] for c in measures["Race (NIH/OMB)"]["classes"][0]["categories"]}
    assert (race["White"], race["Asian"], race["Black or African American"], race["Unknown or Not Reported"]) == ("1", "1", "1", "0")
    eth = {c["title"]: c["measurements"][0]["value"] for c in measures["Ethnicity (NIH/OMB)"]["classes"][0]["categories"]}
    assert eth == {"Hispanic or Latino": "1", "Not Hispanic or Latino": "2", "Unknown or Not Reported": "0"}


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


def _rs(data: TrialData, protocol: Protocol) -> dict[str, Any]:
    return results_section(data, protocol)["resultsSection"]


def _categories(rs: dict[str, Any], title: str) -> dict[str, str]:
    (m,) = [m for m in rs["baselineCharacteristicsModule"]["measures"] if m["title"] == title]
    return {c["title"]: c["measurements"][0]["value"] for c in m["classes"][0]["categories"]}


def test_race_and_ethnicity_are_the_demographics_form_codes_one_participant_of_each_category(protocol: Protocol) -> None:
    from trialdesk.protocol.forms import load_forms
    from trialdesk.trial.records import Infusion, Participant

    demographics = load_forms().form("demographics")
    races = [c.code for c in demographics.field("dm_race").choices]
    ethnicities = [c.code for c in demographics.field("dm_ethnicity").choices]
    people = [Participant(subject_id=f"P{i}", age_at_enrolment=50, sex="female", race=race, ethnicity=ethnicities[i % 3],
                          consented_on=dt.date(2020, 1, 1), enrolled_on=dt.date(2020, 1, 2)) for i, race in enumerate(races)]
    infusions = [Infusion(subject_id=p.subject_id, number=1, date=dt.date(2020, 1, 10), weight_kg=70, total_cells=35e6, lot="L",
                          donor_id="D") for p in people]
    cut = TrialData(protocol_id="nct03929120", cutoff=dt.date(2020, 9, 1), participants=people, infusions=infusions)
    rs = _rs(cut, protocol)
    race = _categories(rs, "Race (NIH/OMB)")
    # every category of the form is a ClinicalTrials.gov category and counts its one participant
    assert race == {c.label: "1" for c in demographics.field("dm_race").choices}
    assert list(race) == list(RACES)
    assert _categories(rs, "Ethnicity (NIH/OMB)") == {
        "Hispanic or Latino": "3", "Not Hispanic or Latino": "2", "Unknown or Not Reported": "2"}
    # a value that is not one of the form's codes is not guessed
    odd = cut.model_copy(update={"participants": [p.model_copy(update={"race": "Caucasian"}) for p in people]})
    assert _categories(_rs(odd, protocol), "Race (NIH/OMB)")["Unknown or Not Reported"] == str(len(people))


def test_every_module_counts_the_same_population(data: TrialData, protocol: Protocol) -> None:
    rs = _rs(data, protocol)
    flow = rs["participantFlowModule"]
    started = {m["type"]: m["achievements"][0]["numSubjects"] for m in flow["periods"][0]["milestones"]}["STARTED"]
    base = rs["baselineCharacteristicsModule"]
    overall = base["denoms"][0]["counts"][0]["value"]
    (om,) = rs["outcomeMeasuresModule"]["outcomeMeasures"]
    (group,) = rs["adverseEventsModule"]["eventGroups"]
    assert started == overall == om["denoms"][0]["counts"][0]["value"] == str(group["seriousNumAtRisk"]) == "3"
    # S04 was enrolled and never infused: said where the numbers differ from enrolment
    assert "1 enrolled participant had received no infusion at the data cut" in flow["preAssignmentDetails"]
    assert "1 enrolled participant with no infusion at the data cut is not included" in base["populationDescription"]
    for m in base["measures"]:
        if m["paramType"] == "COUNT_OF_PARTICIPANTS":
            assert sum(int(c["measurements"][0]["value"]) for c in m["classes"][0]["categories"]) == 3, m["title"]


def test_assessment_type_is_per_event(data: TrialData, protocol: Protocol) -> None:
    ae = _rs(data, protocol)["adverseEventsModule"]
    kinds = {(e["term"], e["assessmentType"]) for e in ae["seriousEvents"] + ae["otherEvents"]}
    assert kinds == {
        ("Hypoxia", "SYSTEMATIC_ASSESSMENT"),  # suggested by the SpO2 at the day-1 visit
        ("Lung infection", "NON_SYSTEMATIC_ASSESSMENT"),  # learned the day after onset, no visit that day
        ("Respiratory failure", "NON_SYSTEMATIC_ASSESSMENT"),
        ("Infusion related reaction", "SYSTEMATIC_ASSESSMENT"),  # learned at the infusion visit D0
        ("Fever", "SYSTEMATIC_ASSESSMENT"),  # at the infusion 2 visit D28
        ("Cough", "NON_SYSTEMATIC_ASSESSMENT"),  # volunteered by phone
        ("Nausea", "SYSTEMATIC_ASSESSMENT"),  # A6 at M6, C2 at D7
    }


def test_assessment_type_reads_the_site_calendar_and_the_visits_that_ask_about_adverse_events(data: TrialData,
                                                                                              protocol: Protocol) -> None:
    from trialdesk.analysis.ctgov_results import assessment_type

    a3 = next(a for a in data.adverse_events if a.id == "A3")  # S01's infusion 2 visit D28 was on 2020-02-17
    late_evening = dt.datetime(2020, 2, 18, 2, 30, tzinfo=dt.UTC)  # 21:30 on 2020-02-17 in Jacksonville
    assert assessment_type(a3.model_copy(update={"learned_at": late_evening}), data, protocol) == "SYSTEMATIC_ASSESSMENT"
    next_morning = dt.datetime(2020, 2, 18, 14, 0, tzinfo=dt.UTC)
    assert assessment_type(a3.model_copy(update={"learned_at": next_morning}), data, protocol) == "NON_SYSTEMATIC_ASSESSMENT"
    # a visit that was not done, or whose forms do not ask about adverse events, is not a systematic assessment
    missed = data.model_copy(update={"visits": [v.model_copy(update={"status": "missed"}) if v.code == "D28" else v for v in data.visits]})
    assert assessment_type(a3, missed, protocol) == "NON_SYSTEMATIC_ASSESSMENT"
    from trialdesk.trial.records import VisitRecord

    screening_only = data.model_copy(update={"visits": [VisitRecord(subject_id="S01", code="SCREENING", date=dt.date(2020, 2, 17))]})
    assert assessment_type(a3, screening_only, protocol) == "NON_SYSTEMATIC_ASSESSMENT"
    assert assessment_type(a3.model_copy(update={"learned_at": None}), data, protocol) is None


def test_a_term_found_both_ways_has_a_row_for_each_and_an_unknown_way_is_named(data: TrialData, protocol: Protocol) -> None:
    c2_by_phone = [a.model_copy(update={"learned_at": dt.datetime(2020, 3, 6, 15, tzinfo=dt.UTC)}) if a.id == "C2" else a
                   for a in data.adverse_events]
    ae = _rs(data.model_copy(update={"adverse_events": c2_by_phone}), protocol)["adverseEventsModule"]
    nausea = [(e["assessmentType"], e["stats"][0]["numEvents"]) for e in ae["otherEvents"] if e["term"] == "Nausea"]
    assert nausea == [("SYSTEMATIC_ASSESSMENT", 1), ("NON_SYSTEMATIC_ASSESSMENT", 1)]
    unknown = [a.model_copy(update={"learned_at": None}) if a.id == "A4" else a for a in data.adverse_events]
    doc = results_section(data.model_copy(update={"adverse_events": unknown}), protocol)
    (cough,) = [e for e in doc["resultsSection"]["adverseEventsModule"]["otherEvents"] if e["term"] == "Cough"]
    assert "assessmentType" not in cough and "A4" in cough["notes"]
    assert any("'Cough'" in p and "assessmentType" in p for p in check_results(doc))


def test_more_information_and_documents_come_from_the_protocol_file(data: TrialData, disclosed: Protocol) -> None:
    doc = results_section(data, disclosed)
    more = doc["resultsSection"]["moreInfoModule"]
    assert more["pointOfContact"] == {"title": "Andy Abril, M.D.", "organization": "Mayo Clinic", "email": "results@example.org",
                                      "phone": "904-555-0100"}
    assert more["certainAgreement"] == {"piSponsorEmployee": True}
    docs = doc["documentSection"]["largeDocumentModule"]["largeDocs"]
    assert [(d["typeAbbrev"], d["hasProtocol"], d["hasSap"], d["date"]) for d in docs] == [
        ("Prot", True, False, "2019-06-03"), ("SAP", False, True, "2019-06-03")]


def test_the_complete_record_passes_the_prs_review(data: TrialData, disclosed: Protocol) -> None:
    assert check_results(results_section(data, disclosed)) == []


def test_the_check_names_what_the_protocol_file_still_lacks(data: TrialData, protocol: Protocol) -> None:
    problems = check_results(results_section(data, protocol))
    assert any(p.startswith("moreInfoModule.pointOfContact.email") for p in problems)
    assert any(p.startswith("moreInfoModule.pointOfContact.phone") for p in problems)
    assert any("study protocol is missing" in p for p in problems)
    assert any("statistical analysis plan is missing" in p for p in problems)
    assert len(problems) == 4, problems


def _broken(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    keys = path.split("/")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    last = keys[-1]
    if value is _DELETE:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "named"), [
    ("resultsSection/moreInfoModule", _DELETE, "resultsSection.moreInfoModule: missing"),
    ("resultsSection/participantFlowModule/periods/0/milestones/0/achievements/0/numSubjects", "4", "STARTED 4 is not COMPLETED"),
    ("resultsSection/baselineCharacteristicsModule/denoms/0/counts/0/value", "4", "categories of group BG000 add up to 3, not its 4"),
    ("resultsSection/baselineCharacteristicsModule/measures/0/classes/0/categories/0/measurements/0/spread", _DELETE,
     "standard deviation is missing"),
    ("resultsSection/outcomeMeasuresModule/outcomeMeasures/0/unitOfMeasure", "NA", "placeholder"),
    ("resultsSection/adverseEventsModule/frequencyThreshold", "6", "above 5 %"),
    ("resultsSection/adverseEventsModule/eventGroups/0/seriousNumAffected", 0, "below the 1 affected by one serious event"),
    ("resultsSection/adverseEventsModule/eventGroups/0/otherNumAffected", 4, "otherNumAffected 4 is above otherNumAtRisk 3"),
    ("resultsSection/adverseEventsModule/seriousEvents/0/stats/0/numAffected", 2, "2 affected but 1 events"),
    ("resultsSection/adverseEventsModule/eventGroups/0/deathsNumAffected", 0, "records 1 death(s) but all-cause mortality counts 0"),
    ("resultsSection/adverseEventsModule/frequencyThreshold", "40", "not above the 40 % threshold"),
    ("documentSection/largeDocumentModule/largeDocs/1", _DELETE, "statistical analysis plan is missing"),
])
def test_the_check_names_each_problem(data: TrialData, disclosed: Protocol, path: str, value: Any, named: str) -> None:
    problems = check_results(_broken(results_section(data, disclosed), path, value))
    assert any(named in p for p in problems), problems
