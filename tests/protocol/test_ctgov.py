"""NCT03929120 goes to ClinicalTrials.gov as an API v2 study JSON and comes back as a
protocol file that keeps every registry field; a JSON that is not a study is refused
with one line per problem and nothing is written."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from tests.conftest import PROTOCOL_FILE
from trialdesk.cli import app
from trialdesk.protocol.ctgov import CtgovError, export_json, export_study, import_yaml, split_criteria
from trialdesk.protocol.loader import load
from trialdesk.protocol.model import Protocol

runner = CliRunner()


def _file_criteria() -> list[tuple[str, str]]:
    """(id, text) of every criterion, read from the protocol file itself, not through the model."""
    tree = YAML(typ="safe").load(PROTOCOL_FILE.read_text(encoding="utf-8"))
    return [(c["id"], c["text"]) for c in tree["eligibility"]["criteria"]]


def _registry_fields(p: Protocol) -> dict[str, Any]:
    """Every field of a protocol that ClinicalTrials.gov holds."""
    d = p.model_dump(mode="json", by_alias=True)

    def pick(item: dict[str, Any], *keys: str) -> dict[str, Any]:
        return {k: item[k] for k in keys}

    outcome = ("measure", "time_frame", "description")
    return {
        "identification": d["identification"],
        "status": d["status"],
        "sponsorship": d["sponsorship"],
        "overall_officials": d["overall_officials"],
        "description": pick(d["description"], "brief_summary", "detailed_description"),
        "conditions": d["conditions"],
        "keywords": d["keywords"],
        "design": d["design"],
        "arms": [pick(a, "label", "type", "description", "intervention_names") for a in d["arms"]],  # code: SDTM only
        "interventions": [pick(i, "type", "name", "description", "arm_group_labels", "other_names") for i in d["interventions"]],
        "eligibility": {
            **pick(d["eligibility"], "sex", "minimum_age", "maximum_age", "healthy_volunteers", "std_ages"),
            "criteria": [pick(c, "id", "text") for c in d["eligibility"]["criteria"]],
        },
        "outcomes": {
            "primary": [pick(o, *outcome) for o in d["outcomes"]["primary"]],
            "secondary": [pick(o, *outcome) for o in d["outcomes"]["secondary"]],
        },
        "locations": [pick(loc, "facility", "city", "state", "zip", "country") for loc in d["locations"]],
    }


def _round_trip(p: Protocol, tmp_path: Path) -> Protocol:
    study = tmp_path / "study.json"
    study.write_text(export_json(p), encoding="utf-8")
    imported = tmp_path / "imported.yaml"
    imported.write_text(import_yaml(study), encoding="utf-8")
    return load(imported)


def _section(study: dict[str, Any], heading: str) -> list[str]:
    """The bullet lines under one heading of the exported criteria text."""
    text = study["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
    block = text.split(f"{heading}\n\n", 1)[1].split("\n\n", 1)[0]
    return block.split("\n")


# --- export ---------------------------------------------------------------------------


def test_export_holds_nct03929120_phase1_completed_and_enrolment_of_10(protocol: Protocol) -> None:
    s = export_study(protocol)["protocolSection"]
    assert s["identificationModule"]["nctId"] == "NCT03929120"
    assert s["designModule"]["phases"] == ["PHASE1"]
    assert s["statusModule"]["overallStatus"] == "COMPLETED"
    assert s["designModule"]["enrollmentInfo"] == {"count": 10, "type": "ACTUAL"}


def test_export_names_mayo_clinic_as_sponsor_and_site_and_andy_abril_as_investigator(protocol: Protocol) -> None:
    s = export_study(protocol)["protocolSection"]
    assert s["sponsorCollaboratorsModule"]["leadSponsor"] == {"name": "Mayo Clinic", "class": "OTHER"}
    assert s["identificationModule"]["organization"] == {"fullName": "Mayo Clinic", "class": "OTHER"}
    assert s["contactsLocationsModule"]["locations"] == [
        {"facility": "Mayo Clinic in Florida", "city": "Jacksonville", "state": "Florida", "country": "United States"}
    ]
    assert s["sponsorCollaboratorsModule"]["responsibleParty"]["investigatorFullName"] == "Andy Abril, M.D."
    assert s["contactsLocationsModule"]["overallOfficials"][0]["role"] == "PRINCIPAL_INVESTIGATOR"


def test_export_holds_the_4_inclusion_and_11_exclusion_criteria_word_for_word(protocol: Protocol) -> None:
    study = export_study(protocol)
    criteria = _file_criteria()
    inclusion = [t for i, t in criteria if i.startswith("I")]
    exclusion = [t for i, t in criteria if i.startswith("E")]
    assert (len(inclusion), len(exclusion)) == (4, 11)
    # API v2 criteria are Markdown: '<' is written '\<' (as in 'SO2 \< 88% at rest'); nothing else changes
    assert [line.replace("\\<", "<") for line in _section(study, "Inclusion Criteria:")] == [f"* {t}" for t in inclusion]
    assert [line.replace("\\<", "<") for line in _section(study, "Exclusion Criteria:")] == [f"* {t}" for t in exclusion]
    text = study["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
    assert text.startswith("Inclusion Criteria:\n\n* Adults over 18 years of age and less than 80 years of age\n")
    assert "\n\nExclusion Criteria:\n\n* Patients with interstitial lung disease without evidence" in text
    assert "* Severe interstitial lung disease defined by the presence of severe hypoxemia at rest (SO2 \\< 88% at rest)" in text


def test_export_spells_fields_as_api_v2_does(protocol: Protocol) -> None:
    s = export_study(protocol)["protocolSection"]
    assert list(s) == [
        "identificationModule", "statusModule", "sponsorCollaboratorsModule", "descriptionModule", "conditionsModule",
        "designModule", "armsInterventionsModule", "outcomesModule", "eligibilityModule", "contactsLocationsModule",
    ]  # fmt: skip
    assert s["statusModule"]["startDateStruct"] == {"date": "2019-11-05", "type": "ACTUAL"}
    assert s["statusModule"]["primaryCompletionDateStruct"] == {"date": "2021-07-27", "type": "ACTUAL"}
    assert s["statusModule"]["completionDateStruct"] == {"date": "2022-02-17", "type": "ACTUAL"}
    assert s["designModule"]["designInfo"] == {
        "allocation": "NA",
        "interventionModel": "SINGLE_GROUP",
        "primaryPurpose": "TREATMENT",
        "maskingInfo": {"masking": "NONE"},
    }
    arm = s["armsInterventionsModule"]["armGroups"][0]
    assert arm["interventionNames"] == ["Biological: Allogeneic Bone Marrow Derived Mesenchymal Stem Cells (BMD-MSCs)"]
    intervention = s["armsInterventionsModule"]["interventions"][0]
    assert intervention["type"] == "BIOLOGICAL"
    assert intervention["armGroupLabels"] == ["Interstitial Lung Disease with Connective Tissue Disorder"]
    elig = s["eligibilityModule"]
    assert (elig["sex"], elig["minimumAge"], elig["maximumAge"]) == ("ALL", "18 Years", "80 Years")
    assert elig["healthyVolunteers"] is False
    assert elig["stdAges"] == ["ADULT", "OLDER_ADULT"]
    outcome = protocol.outcomes.primary[0]
    assert s["outcomesModule"]["primaryOutcomes"] == [
        {"measure": "Adverse Events", "description": outcome.description, "timeFrame": "6 months"}
    ]
    assert outcome.description is not None and outcome.description.startswith("Number of adverse events reported with infusion")
    # the registry shows no detailed description and no secondary outcome: none is written
    assert "detailedDescription" not in s["descriptionModule"]
    assert "secondaryOutcomes" not in s["outcomesModule"]


def test_export_json_is_indented_utf8_text_ending_in_a_newline(protocol: Protocol) -> None:
    text = export_json(protocol)
    assert text.startswith('{\n  "protocolSection": {\n')
    assert text.endswith("}\n")
    assert json.loads(text) == export_study(protocol)


# --- the round trip -------------------------------------------------------------------


def test_import_of_export_keeps_every_registry_field(protocol: Protocol, tmp_path: Path) -> None:
    assert _registry_fields(_round_trip(protocol, tmp_path)) == _registry_fields(protocol)


def _fuller(protocol: Protocol) -> Protocol:
    """NCT03929120 with every optional registry field filled, and awkward criteria texts."""
    d = protocol.model_dump(mode="json", by_alias=True, exclude_none=True)
    d["identification"].update(org_study_id="19-001234", acronym="MSC-ILD")
    d["sponsorship"]["collaborators"] = [{"name": "National Heart, Lung, and Blood Institute (NHLBI)", "class": "NIH"}]
    d["description"]["detailed_description"] = "First paragraph.\n\nSecond paragraph: with a colon, and 'quotes'."
    d["keywords"] = ["mesenchymal stem cells", "ILD"]
    d["interventions"][0]["other_names"] = ["BMD-MSC", "MSC"]
    arm = d["arms"][0]["label"]
    vitamin_d = {"type": "DIETARY_SUPPLEMENT", "name": "Vitamin D", "arm_group_labels": [arm], "description": "1000 IU daily"}
    d["interventions"].append(vitamin_d)
    d["arms"][0]["intervention_names"].append("Vitamin D")
    d["outcomes"]["secondary"] = [{"measure": "FVC", "time_frame": "Baseline and 6 months"}]
    d["locations"][0]["zip"] = "32224"
    d["locations"].append({"facility": "Mayo Clinic", "city": "Rochester", "state": "Minnesota", "country": "United States"})
    d["overall_officials"].append({"name": "Jane Doe, M.D.", "role": "SUB_INVESTIGATOR"})
    criteria = d["eligibility"]["criteria"]
    criteria[0]["text"] = "Age > 18 and < 80 years; BMI 18*2 \\ 40"
    criteria[1]["text"] = "Both of:\n* female or male\n* able to walk 50 m\n\nas judged at screening"
    return Protocol.model_validate(d)


def test_import_of_export_keeps_every_optional_registry_field_too(protocol: Protocol, tmp_path: Path) -> None:
    fuller = _fuller(protocol)
    study = export_study(fuller)["protocolSection"]
    arm = study["armsInterventionsModule"]["armGroups"][0]
    assert arm["interventionNames"][1] == "Dietary Supplement: Vitamin D"
    assert study["identificationModule"]["orgStudyIdInfo"] == {"id": "19-001234"}
    assert _registry_fields(_round_trip(fuller, tmp_path)) == _registry_fields(fuller)


def test_imported_criteria_are_verbatim_and_need_review(protocol: Protocol, tmp_path: Path) -> None:
    imported = _round_trip(protocol, tmp_path)
    assert [(c.id, c.text) for c in imported.eligibility.criteria] == _file_criteria()
    assert all(c.encoding == "needs_review" and c.computable is None for c in imported.eligibility.criteria)


def test_what_the_registry_lacks_gets_conservative_defaults_the_study_team_must_set(protocol: Protocol, tmp_path: Path) -> None:
    imported = _round_trip(protocol, tmp_path)
    assert (imported.id, imported.version) == ("nct03929120", "1.0")
    assert imported.enrolment.target == 10
    plan = imported.infusion_plan
    assert plan is not None and plan.count == 1
    assert "Not in the registry" in plan.reason and "study team" in plan.reason
    assert [v.code for v in imported.schedule.visits] == ["SCREENING", "D0", "EOS"]
    assert imported.schedule.reason is not None and "Not in the registry" in imported.schedule.reason
    assert imported.safety.ae_follow_up_days == 183  # the primary outcome's 6 months
    assert imported.safety.stopping_rules == []
    assert imported.enrolment.reason is not None and "study team" in imported.enrolment.reason
    # what the registry does not hold is not made up
    assert imported.description.plain_language_summary is None
    assert all(i.dose is None and i.route is None for i in imported.interventions)
    assert imported.outcomes.primary[0].time_frame_days is None


def test_imported_file_is_block_yaml_with_dates_as_dates_and_comments_on_defaults(protocol: Protocol, tmp_path: Path) -> None:
    study = tmp_path / "study.json"
    study.write_text(export_json(protocol), encoding="utf-8")
    text = import_yaml(study)
    assert "    date: 2019-11-05\n" in text
    assert "{" not in text
    assert "# Not in the registry: safety follow-up from the primary outcome's time frame (6 months), 183 days." in text
    assert "plain_language_summary" not in text and "\n    dose:" not in text


# --- free-text criteria ---------------------------------------------------------------


@pytest.mark.parametrize(
    "bullets", [["- ", "- ", "- "], ["* ", "* ", "* "], ["1. ", "2. ", "3. "], ["1) ", "2) ", "3) "], ["• ", "• ", "• "]]
)
def test_criteria_bulleted_with_dashes_stars_or_numbers_are_split_alike(bullets: list[str]) -> None:
    b1, b2, b3 = bullets
    text = (
        "Inclusion Criteria:\n\n"
        f"{b1}Adults over 18 years of age\n{b2}Both female and male\n\n"
        "Exclusion Criteria:\n\n"
        f"{b1}Pregnant or breast feeding\n{b2}Previous treatment with mesenchymal stem cells\n"
        f"{b3}Inability to provide informed consent\n"
    )
    assert split_criteria(text) == (
        ["Adults over 18 years of age", "Both female and male"],
        ["Pregnant or breast feeding", "Previous treatment with mesenchymal stem cells", "Inability to provide informed consent"],
    )


def test_sub_bullets_and_wrapped_lines_stay_with_their_criterion() -> None:
    text = (
        "Inclusion Criteria:\n\n"
        "1. Adequate organ function:\n   * Platelets ≥ 50,000 cells/mm3;\n   * Hemoglobin ≥ 8.0 g/dl\n"
        "2. Age \\> 18 years, written on\ntwo lines\n\n"
        "Exclusion Criteria:\n\n"
        "* Active infection\n"
    )
    assert split_criteria(text) == (
        [
            "Adequate organ function:\n* Platelets ≥ 50,000 cells/mm3;\n* Hemoglobin ≥ 8.0 g/dl",
            "Age > 18 years, written on\ntwo lines",
        ],
        ["Active infection"],
    )


def test_a_registry_study_with_dash_bullets_imports_as_numbered_items(protocol: Protocol, tmp_path: Path) -> None:
    study = export_study(protocol)
    study["protocolSection"]["eligibilityModule"]["eligibilityCriteria"] = (
        "Inclusion criteria\n- Adults over 18 years of age and less than 80 years of age\n- Both female and male\n"
        "Exclusion criteria\n1. Pregnant or breast feeding\n2. Age \\< 18 years\n"
    )
    path = tmp_path / "dashes.json"
    path.write_text(json.dumps(study), encoding="utf-8")
    out = tmp_path / "dashes.yaml"
    out.write_text(import_yaml(path), encoding="utf-8")
    assert [(c.id, c.text) for c in load(out).eligibility.criteria] == [
        ("I1", "Adults over 18 years of age and less than 80 years of age"),
        ("I2", "Both female and male"),
        ("E1", "Pregnant or breast feeding"),
        ("E2", "Age < 18 years"),
    ]


# --- the command line -----------------------------------------------------------------


def test_cli_exports_imports_and_the_imported_file_validates(tmp_path: Path) -> None:
    study, imported = tmp_path / "study.json", tmp_path / "nct03929120.yaml"
    result = runner.invoke(app, ["protocol", "export-ctgov", "nct03929120", "--out", str(study)])
    assert result.exit_code == 0, result.output
    assert json.loads(study.read_text(encoding="utf-8"))["protocolSection"]["identificationModule"]["nctId"] == "NCT03929120"
    result = runner.invoke(app, ["protocol", "import-ctgov", str(study), "--out", str(imported)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["protocol", "validate", str(imported)])
    assert result.exit_code == 0, result.output
    assert "4 inclusion and 11 exclusion criteria" in " ".join(result.output.split())


def _study_without(protocol: Protocol, *path: str) -> str:
    study = export_study(protocol)
    node = study
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return json.dumps(study)


def _study_with(protocol: Protocol, value: Any, *path: str | int) -> str:
    study: Any = export_study(protocol)
    node = study
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return json.dumps(study)


BAD_INPUTS = {
    "not_json": (
        lambda p: '{\n  "protocolSection": {\n    "identificationModule": {,\n',
        r"^study\.json:3:30: not valid JSON \(Expecting property name enclosed in double quotes\); fix it there",
    ),
    "no_protocol_section": (
        lambda p: json.dumps({"study": {}}),
        r"^study\.json: protocolSection is missing; is this a ClinicalTrials\.gov API v2 study\?$",
    ),
    "no_nct_id": (
        lambda p: _study_without(p, "protocolSection", "identificationModule", "nctId"),
        r"^study\.json: protocolSection\.identificationModule\.nctId is missing; is this a ClinicalTrials\.gov API v2 study\?$",
    ),
    "unknown_phase": (
        lambda p: _study_with(p, ["PHASE9"], "protocolSection", "designModule", "phases"),
        r"^study\.json: protocolSection\.designModule\.phases\[0\] 'PHASE9' is not an API v2 value.*EARLY_PHASE1, PHASE1,",
    ),
    "unknown_status": (
        lambda p: _study_with(p, "FINISHED", "protocolSection", "statusModule", "overallStatus"),
        r"^study\.json: protocolSection\.statusModule\.overallStatus 'FINISHED' is not an API v2 value .*COMPLETED",
    ),
    "arm_names_no_intervention": (
        lambda p: _study_with(p, ["Drug: Aspirin"], "protocolSection", "armsInterventionsModule",
            "armGroups", 0, "interventionNames"),
        r"^study\.json: protocolSection\.armsInterventionsModule\.armGroups\[0\]\.interventionNames\[0\] 'Drug: Aspirin' names",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_a_json_that_is_not_an_api_v2_study_is_refused_in_one_line_and_nothing_is_written(
    case: str, protocol: Protocol, tmp_path: Path
) -> None:
    make, expected = BAD_INPUTS[case]
    study, out = tmp_path / "study.json", tmp_path / "out.yaml"
    study.write_text(make(protocol), encoding="utf-8")
    with pytest.raises(CtgovError) as info:
        import_yaml(study)
    assert len(str(info.value).splitlines()) == 1
    assert re.search(expected, str(info.value)), str(info.value)
    result = runner.invoke(app, ["protocol", "import-ctgov", str(study), "--out", str(out)])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: study.json"), result.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [study]


def test_every_problem_of_a_study_is_named_on_its_own_line(protocol: Protocol, tmp_path: Path) -> None:
    study = export_study(protocol)
    study["protocolSection"]["eligibilityModule"]["sex"] = "BOTH"
    study["protocolSection"]["designModule"]["designInfo"]["maskingInfo"]["masking"] = "BLIND"
    del study["protocolSection"]["descriptionModule"]["briefSummary"]
    path = tmp_path / "study.json"
    path.write_text(json.dumps(study), encoding="utf-8")
    with pytest.raises(CtgovError) as info:
        import_yaml(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert any(line.startswith("study.json: protocolSection.eligibilityModule.sex 'BOTH'") for line in lines)
    masking = "study.json: protocolSection.designModule.designInfo.maskingInfo.masking 'BLIND'"
    assert any(line.startswith(masking) for line in lines)
    assert "study.json: protocolSection.descriptionModule.briefSummary is missing; a protocol needs it" in str(info.value)


def test_a_missing_study_file_is_named(tmp_path: Path) -> None:
    result = runner.invoke(app, ["protocol", "import-ctgov", str(tmp_path / "nowhere.json"), "--out", str(tmp_path / "x.yaml")])
    assert result.exit_code == 1
    assert "nowhere.json: no such file; check the path" in result.output
    assert not (tmp_path / "x.yaml").exists()


def test_registry_dates_out_of_order_are_refused_with_the_protocol_rule(protocol: Protocol, tmp_path: Path) -> None:
    path = tmp_path / "study.json"
    completion = {"date": "2018-01-31", "type": "ACTUAL"}
    study = _study_with(protocol, completion, "protocolSection", "statusModule", "completionDateStruct")
    path.write_text(study, encoding="utf-8")
    with pytest.raises(CtgovError) as info:
        import_yaml(path)
    assert str(info.value) == (
        "study.json: the protocol made from it is invalid at status: completion_date 2018-01-31 is before"
        " primary_completion_date 2021-07-27; correct one of them"
    )


def test_a_month_only_registry_date_stands_as_the_first_of_the_month_and_is_flagged(protocol: Protocol, tmp_path: Path) -> None:
    path = tmp_path / "study.json"
    start = {"date": "2019-11"}
    path.write_text(_study_with(protocol, start, "protocolSection", "statusModule", "startDateStruct"), encoding="utf-8")
    text = import_yaml(path)
    assert "# Check: protocolSection.statusModule.startDateStruct.date gives only the month 2019-11;" in text
    out = tmp_path / "p.yaml"
    out.write_text(text, encoding="utf-8")
    assert str(load(out).status.start_date.date) == "2019-11-01"


def test_a_search_answer_holding_one_study_imports_like_the_study(protocol: Protocol, tmp_path: Path) -> None:
    single, wrapped = tmp_path / "single.json", tmp_path / "wrapped.json"
    single.write_text(export_json(protocol), encoding="utf-8")
    wrapped.write_text(json.dumps({"studies": [export_study(protocol)]}), encoding="utf-8")
    assert import_yaml(wrapped).replace("wrapped.json", "single.json") == import_yaml(single)
    wrapped.write_text(json.dumps({"studies": [export_study(protocol)] * 2}), encoding="utf-8")
    with pytest.raises(CtgovError, match=r"^wrapped\.json: holds 2 studies; save one study per file and import each$"):
        import_yaml(wrapped)


# --- headings and ages as registries really write them -------------------------------


@pytest.mark.parametrize(("inclusion", "exclusion"), [
    ("Inclusion criteria include:", "Exclusion:"),
    ("INCLUSION CRITERIA", "EXCLUSION CRITERIA"),
    ("inclusion criteria:", "exclusion criteria"),
    ("Inclusion", "Exclusion"),
    ("**Inclusion Criteria:**", "**Exclusion Criteria:**"),
    ("Key Inclusion Criteria:", "Key Exclusion Criteria:"),
    ("1. Inclusion Criteria", "2. Exclusion Criteria:"),
    ("Inclusion Criteria are:", "Exclusion Criteria include"),
])
def test_registry_heading_variants_split_inclusions_from_exclusions(inclusion: str, exclusion: str) -> None:
    text = f"{inclusion}\n\n* Adults over 18 years\n* ILD on CT\n\n{exclusion}\n\n* Pregnant or breast feeding\n* HIV\n"
    assert split_criteria(text) == (["Adults over 18 years", "ILD on CT"], ["Pregnant or breast feeding", "HIV"])


def test_a_criterion_that_mentions_exclusion_is_not_a_heading() -> None:
    text = "Inclusion Criteria:\n* Exclusion of infection by chest CT\n* Inclusion in a registry\nExclusion Criteria:\n* HIV"
    assert split_criteria(text) == (["Exclusion of infection by chest CT", "Inclusion in a registry"], ["HIV"])


def test_a_study_whose_exclusion_heading_reads_exclusion_imports_its_exclusions_as_exclusions(
    protocol: Protocol, tmp_path: Path
) -> None:
    study = export_study(protocol)
    study["protocolSection"]["eligibilityModule"]["eligibilityCriteria"] = (
        "Inclusion criteria include:\n\n* Adults over 18 years of age\n* Both female and male\n\n"
        "Exclusion:\n\n* Pregnant or breast feeding\n* Medical history of HIV\n"
    )
    path = tmp_path / "exclusion.json"
    path.write_text(json.dumps(study), encoding="utf-8")
    out = tmp_path / "exclusion.yaml"
    out.write_text(import_yaml(path), encoding="utf-8")
    p = load(out)
    assert [c.text for c in p.eligibility.exclusions] == ["Pregnant or breast feeding", "Medical history of HIV"]
    assert [c.text for c in p.eligibility.inclusions] == ["Adults over 18 years of age", "Both female and male"]


@pytest.mark.parametrize(("minimum", "maximum", "expected"), [
    ("18 years", "N/A", ("18 Years", None)),
    ("18 Years", "80 Years", ("18 Years", "80 Years")),
    ("N/A", "n/a", (None, None)),
    ("6 Months", "65 year", ("6 Months", "65 Years")),
])
def test_registry_ages_are_read_and_na_means_no_limit(
    protocol: Protocol, tmp_path: Path, minimum: str, maximum: str, expected: tuple[str | None, str | None]
) -> None:
    study = export_study(protocol)
    study["protocolSection"]["eligibilityModule"].update(minimumAge=minimum, maximumAge=maximum)
    path = tmp_path / "ages.json"
    path.write_text(json.dumps(study), encoding="utf-8")
    out = tmp_path / "ages.yaml"
    out.write_text(import_yaml(path), encoding="utf-8")
    p = load(out)
    assert (p.eligibility.minimum_age, p.eligibility.maximum_age) == expected


def test_an_age_that_is_not_an_age_is_named_with_its_field(protocol: Protocol, tmp_path: Path) -> None:
    study = export_study(protocol)
    study["protocolSection"]["eligibilityModule"]["minimumAge"] = "eighteen"
    path = tmp_path / "bad_age.json"
    path.write_text(json.dumps(study), encoding="utf-8")
    with pytest.raises(CtgovError) as err:
        import_yaml(path)
    assert "eligibilityModule.minimumAge" in str(err.value) and "'eighteen'" in str(err.value)
