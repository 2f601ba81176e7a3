"""Results by group: an AETHER data cut at an interim point, cohorts C1 and C2 dosed, C3 not yet open.

By hand (day 0 = infusion day; cohort from the dose: C1 20 × 10⁶ cells, C2 100 × 10⁶ cells):

| subject | cohort | sex    | age | at the cut                          |
|---------|--------|--------|-----|-------------------------------------|
| C1-1    | C1     | female | 60  | completed                           |
| C1-2    | C1     | male   | 70  | completed                           |
| C1-3    | C1     | male   | 80  | withdrawn: withdrew consent         |
| C2-1    | C2     | female | 50  | on study                            |
| C2-2    | C2     | male   | 66  | off study: adverse event            |
| C2-3    | -      | female | 45  | enrolled, not yet infused           |

Participant flow: C1 started 3, completed 2, not completed 1 (withdrawal by subject); C2 started 2, completed 0,
not completed 2 (adverse event 1, still on study 1). Baseline: C1 3, C2 2, total 5; age C1 70.0 (SD 10.0), C2 58.0
(SD 11.3), total 65.2 (SD 11.2); female 1 / 1 / 2, male 2 / 1 / 3. C3 has nobody and is not a group yet.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.trial.aether_data import ae, cut, infusion_day, subjects
from trialdesk.analysis.ctgov_results import check_results, results_section
from trialdesk.analysis.define import define_xml, validate
from trialdesk.analysis.sdtm import build_sdtm
from trialdesk.protocol.loader import load
from trialdesk.protocol.model import Protocol
from trialdesk.trial import groups
from trialdesk.trial.errors import ConductError
from trialdesk.trial.records import TrialData

PEOPLE: dict[str, dict[str, Any]] = {
    "C1-1": {"sex": "female", "age_at_enrolment": 60, "status": "completed"},
    "C1-2": {"sex": "male", "age_at_enrolment": 70, "status": "completed"},
    "C1-3": {"sex": "male", "age_at_enrolment": 80, "status": "withdrawn", "off_study_reason": "withdrew consent"},
    "C2-1": {"sex": "female", "age_at_enrolment": 50},
    "C2-2": {"sex": "male", "age_at_enrolment": 66, "status": "off_study", "off_study_reason": "adverse event"},
    "C2-3": {"sex": "female", "age_at_enrolment": 45},
}


@pytest.fixture(scope="module")
def aether() -> Protocol:
    return load("nct02013700")


@pytest.fixture(scope="module")
def interim() -> TrialData:
    data = cut(subjects(("C1", "C2")), [ae("A1", "C2-2", 5, serious=True)], cutoff=dt.date(2014, 4, 1))
    people = []
    for p in data.participants:
        extra = dict(PEOPLE[p.subject_id])
        if extra.get("status") in ("withdrawn", "off_study"):
            extra["off_study_on"] = infusion_day(p.subject_id) + dt.timedelta(days=14)
        people.append(p.model_copy(update=extra))
    infusions = [i for i in data.infusions if i.subject_id != "C2-3"]
    return data.model_copy(update={"participants": people, "infusions": infusions})


def _by_group(entries: list[dict[str, Any]], key: str = "numSubjects") -> list[str]:
    return [e[key] for e in entries]


def test_the_participant_flow_has_one_column_per_cohort_dosed(interim: TrialData, aether: Protocol) -> None:
    flow = results_section(interim, aether)["resultsSection"]["participantFlowModule"]
    assert [(g["id"], g["title"]) for g in flow["groups"]] == [("FG000", "Cohort C1 (20 × 10⁶ cells)"),
                                                               ("FG001", "Cohort C2 (100 × 10⁶ cells)")]
    [period] = flow["periods"]
    milestones = {m["type"]: _by_group(m["achievements"]) for m in period["milestones"]}
    assert milestones == {"STARTED": ["3", "2"], "Received Infusion 1": ["3", "2"], "COMPLETED": ["2", "0"], "NOT COMPLETED": ["1", "2"]}
    drops = {d["type"]: _by_group(d["reasons"]) for d in period["dropWithdraws"]}
    assert drops == {"Adverse Event": ["0", "1"], "Withdrawal by Subject": ["1", "0"], "Still on study at the data cut": ["0", "1"]}
    assert "1 enrolled participant had received no infusion" in flow["preAssignmentDetails"]
    events = results_section(interim, aether)["resultsSection"]["adverseEventsModule"]["eventGroups"]
    assert [(g["title"], g["seriousNumAffected"], g["seriousNumAtRisk"]) for g in events] == [
        ("Cohort C1 (20 × 10⁶ cells)", 0, 3), ("Cohort C2 (100 × 10⁶ cells)", 1, 2)]  # the same groups


def test_the_baseline_has_each_cohort_and_the_total(interim: TrialData, aether: Protocol) -> None:
    base = results_section(interim, aether)["resultsSection"]["baselineCharacteristicsModule"]
    assert [(g["id"], g["title"]) for g in base["groups"]] == [("BG000", "Cohort C1 (20 × 10⁶ cells)"),
                                                               ("BG001", "Cohort C2 (100 × 10⁶ cells)"), ("BG002", "Total")]
    assert _by_group(base["denoms"][0]["counts"], "value") == ["3", "2", "5"]
    measures = {m["title"]: m for m in base["measures"]}
    age = measures["Age, Continuous"]["classes"][0]["categories"][0]["measurements"]
    assert [(a["value"], a["spread"]) for a in age] == [("70.0", "10.0"), ("58.0", "11.3"), ("65.2", "11.2")]
    sexes = {c["title"]: _by_group(c["measurements"], "value") for c in measures["Sex: Female, Male"]["classes"][0]["categories"]}
    assert sexes == {"Female": ["1", "1", "2"], "Male": ["2", "1", "3"]}
    assert "1 enrolled participant with no infusion" in base["populationDescription"]
    problems = check_results(results_section(interim, aether))
    assert [p for p in problems if "participantFlow" in p or "baseline" in p] == []


def test_a_total_that_does_not_add_up_is_named(interim: TrialData, aether: Protocol) -> None:
    doc = results_section(interim, aether)
    doc["resultsSection"]["baselineCharacteristicsModule"]["denoms"][0]["counts"][2]["value"] = "6"
    assert any("BG002 (Total): 6 participants, but the groups add up to 5" in p for p in check_results(doc))


# --- SDTM: arms by cohort, and the trial design datasets ------------------------------------------


def test_sdtm_dm_arms_are_cohorts_and_an_undosed_participant_is_not_yet_assigned(interim: TrialData, aether: Protocol) -> None:
    dm = build_sdtm(interim, aether).domains["DM"].set_index("SUBJID")
    assert list(dm["ARMCD"]) == ["C1", "C1", "C1", "C2", "C2", "NOTASSGN"]
    assert (dm.loc["C2-3", "ARM"], dm.loc["C2-3", "ACTARMCD"], dm.loc["C2-3", "ACTARM"]) == ("Not Assigned", "NOTTRT", "Not Treated")


def test_sdtm_ta_and_te_give_each_cohort_its_elements(interim: TrialData, aether: Protocol) -> None:
    sdtm = build_sdtm(interim, aether)
    ta, te = sdtm.domains["TA"], sdtm.domains["TE"]
    assert sorted(set(ta["ARMCD"])) == ["C1", "C2", "C3"]  # the planned arms, dosed or not
    c2 = ta[ta["ARMCD"] == "C2"]
    assert list(zip(c2["TAETORD"], c2["ETCD"], c2["EPOCH"], strict=True)) == [(1, "SCRN", "SCREENING"), (2, "DL2", "TREATMENT"),
                                                                              (3, "FU", "FOLLOW-UP")]
    assert set(c2["ARM"]) == {"Cohort C2 (100 × 10^6 cells)"}
    assert list(te["ETCD"]) == ["SCRN", "DL1", "DL2", "DL3", "FU"]
    assert te.set_index("ETCD").loc["DL2", "ELEMENT"].endswith(", 100 × 10^6 cells")
    dm_arms = set(zip(sdtm.domains["DM"]["ARMCD"], sdtm.domains["DM"]["ARM"], strict=True)) - {("NOTASSGN", "Not Assigned")}
    assert dm_arms <= set(zip(ta["ARMCD"], ta["ARM"], strict=True))


def test_the_first_trials_ta_is_its_one_arm(data: TrialData, protocol: Protocol) -> None:
    sdtm = build_sdtm(data, protocol)
    ta = sdtm.domains["TA"]
    assert set(ta["ARM"]) == {protocol.arms[0].label} and list(ta["ETCD"]) == ["SCRN", "TRT", "FU"]
    assert set(sdtm.domains["DM"]["ARM"]) == {protocol.arms[0].label}
    rs = results_section(data, protocol)["resultsSection"]  # and its results keep one group, with no total
    assert [g["id"] for g in rs["participantFlowModule"]["groups"]] == ["FG000"]
    assert [g["title"] for g in rs["baselineCharacteristicsModule"]["groups"]] == [protocol.arms[0].label]


def test_define_xml_stays_valid_with_cohorts(interim: TrialData, aether: Protocol) -> None:
    text = define_xml(build_sdtm(interim, aether), created=dt.datetime(2014, 4, 1, tzinfo=dt.UTC))
    assert validate(text) == []
    assert 'OID="IG.TA"' in text and 'OID="IG.TE"' in text


def test_a_dose_level_given_in_two_cohorts_is_refused_naming_the_participant(interim: TrialData, aether: Protocol) -> None:
    assert aether.dose_finding is not None
    cohorts = [*aether.dose_finding.cohorts, aether.dose_finding.cohorts[0].model_copy(update={"id": "C1B"})]
    expanded = aether.model_copy(update={"dose_finding": aether.dose_finding.model_copy(update={"cohorts": cohorts})})
    with pytest.raises(ConductError, match="C1-1's dose level DL1 is given in cohorts C1, C1B"):
        groups.assigned_group(expanded, interim, "C1-1")


def test_the_participant_flow_table_and_diagram_count_each_cohort(interim: TrialData, aether: Protocol, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.analysis.participant_flow import participant_flow

    flow = participant_flow(interim, aether)
    assert [(g.code, g.started, g.completed, g.withdrawn, g.ongoing) for g in flow.by_group] == [("C1", 3, 2, 1, 0), ("C2", 2, 0, 1, 1)]
    rows = [line for line in flow.to_csv().splitlines() if line.startswith("group,")]
    assert rows[:4] == ["group,Cohort C1 (20 × 10⁶ cells): started,3", "group,Cohort C1 (20 × 10⁶ cells): completed,2",
                        "group,Cohort C1 (20 × 10⁶ cells): withdrawn,1", "group,Cohort C1 (20 × 10⁶ cells): ongoing,0"]
    svg = flow.diagram(tmp_path)[0].read_text(encoding="utf-8")
    assert "Cohort C2 (100 × 10⁶ cells): started 2, completed 0, withdrawn 1, ongoing 1" in svg


def test_the_first_trials_flow_has_no_group_rows(data: TrialData, protocol: Protocol) -> None:
    from trialdesk.analysis.participant_flow import participant_flow

    flow = participant_flow(data, protocol)
    assert flow.by_group == () and not any(line.startswith("group,") for line in flow.to_csv().splitlines())


def test_a_dose_matching_no_level_is_refused_naming_the_participant(aether: Protocol, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from trialdesk.analysis.commands import export_app

    data = cut(subjects(("C1",)), [])
    odd = [i.model_copy(update={"total_cells": 50e6}) if i.subject_id == "C1-2" else i for i in data.infusions]
    path = tmp_path / "cut.json"
    path.write_text(data.model_copy(update={"infusions": odd}).model_dump_json(), encoding="utf-8")
    for command in (["ctgov-results", "--out", str(tmp_path / "r.json")], ["sdtm", "--out", str(tmp_path / "sdtm")]):
        result = CliRunner().invoke(export_app, [*command, "--data", str(path)])
        assert result.exit_code == 1, result.output
        assert "C1-2's first infusion matches no dose level" in result.output and "Traceback" not in result.output


def test_ts_counts_the_arms_ta_lists(interim: TrialData, aether: Protocol, data: TrialData, protocol: Protocol) -> None:
    for cut_, trial in ((interim, aether), (data, protocol)):
        sdtm = build_sdtm(cut_, trial)
        ts = dict(zip(sdtm.domains["TS"]["TSPARMCD"], sdtm.domains["TS"]["TSVAL"], strict=False))
        assert ts["NARMS"] == str(sdtm.domains["TA"]["ARMCD"].nunique())
    assert ts["NARMS"] == "1"  # the first trial: its one arm, as before


def test_a_group_title_outside_4_to_62_characters_is_named(interim: TrialData, aether: Protocol) -> None:
    doc = results_section(interim, aether)
    assert not [p for p in check_results(doc) if "arm/group title" in p]
    doc["resultsSection"]["participantFlowModule"]["groups"][1]["title"] = "C2"
    doc["resultsSection"]["adverseEventsModule"]["eventGroups"][0]["title"] = "x" * 63
    problems = [p for p in check_results(doc) if "arm/group title" in p]
    assert len(problems) == 2
    assert problems[0].startswith("participantFlowModule.groups FG001: the title 'C2' has 2 characters")
    assert problems[1].startswith("adverseEventsModule.eventGroups EG000:") and "63 characters" in problems[1]
