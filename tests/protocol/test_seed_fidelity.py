"""The protocol file must say exactly what the registry says: every verbatim field is
checked against the registry record in shared/seed, so the file cannot drift."""

from __future__ import annotations

import re

import pytest

from tests.conftest import SEED


def _seed() -> str:
    if not SEED.exists():
        pytest.fail(f"the registry record {SEED} is missing; CI must lay shared/ beside the clone")
    return SEED.read_text(encoding="utf-8")


def _bullets(section: str) -> list[str]:
    text = _seed()
    start = text.index(section)
    block = text[start:].split("\n", 1)[1]
    items = []
    for line in block.splitlines():
        m = re.match(r"^\s*•\s(.*)$", line)
        if m:
            items.append(m.group(1).strip())
        elif items and line.strip() and not line.startswith(" "):
            break
    return items


def test_four_inclusion_criteria_are_word_for_word_the_registry(protocol) -> None:  # type: ignore[no-untyped-def]
    seed = _bullets("Inclusion Criteria")
    assert len(seed) == 4
    assert [c.text for c in protocol.eligibility.inclusions] == seed
    assert [c.id for c in protocol.eligibility.inclusions] == ["I1", "I2", "I3", "I4"]


def test_eleven_exclusion_criteria_are_word_for_word_the_registry(protocol) -> None:  # type: ignore[no-untyped-def]
    seed = _bullets("Exclusion Criteria")
    assert len(seed) == 11
    assert [c.text for c in protocol.eligibility.exclusions] == seed
    assert [c.id for c in protocol.eligibility.exclusions] == [f"E{i}" for i in range(1, 12)]


def test_titles_summary_arm_and_outcome_are_the_registry_text(protocol) -> None:  # type: ignore[no-untyped-def]
    seed = _seed()
    lines = [line.strip() for line in seed.splitlines()]
    assert protocol.identification.brief_title == lines[2]
    assert protocol.identification.official_title in lines
    assert protocol.description.brief_summary in lines
    arm = protocol.arms[0]
    row = next(line for line in lines if line.startswith(arm.label))
    assert row == arm.label + protocol.interventions[0].name + arm.description
    outcome = protocol.outcomes.primary[0]
    assert outcome.description in lines
    assert f"{outcome.measure}{outcome.time_frame}" in lines
    assert protocol.outcomes.secondary == []


def test_identity_status_design_and_site_match_the_registry(protocol) -> None:  # type: ignore[no-untyped-def]
    seed = _seed()
    assert protocol.identification.nct_id in seed
    assert protocol.status.overall_status in seed
    assert "Phase 1" in seed and protocol.design.phases == ["PHASE1"]
    assert protocol.design.study_type in seed and protocol.design.intervention_model in seed
    assert f"Target Recruitment\n{protocol.enrolment.target}\n" in seed
    assert protocol.sponsorship.lead_sponsor.name == "Mayo Clinic"
    assert protocol.conditions == ["Interstitial Lung Disease", "Connective Tissue Diseases"]
    assert all(c in seed for c in protocol.conditions)
    loc = protocol.locations[0]
    assert loc.facility in seed and f"{loc.city}, {loc.state}, {loc.country}" in seed
    assert f"Biological: {protocol.interventions[0].name}" in seed
    assert protocol.eligibility.sex == "ALL" and "Sex\nAll" in seed


def test_dates_and_investigator_are_those_of_the_record(protocol) -> None:  # type: ignore[no-untyped-def]
    s = protocol.status
    assert (str(s.start_date.date), str(s.primary_completion_date.date), str(s.completion_date.date)) == (
        "2019-11-05", "2021-07-27", "2022-02-17")
    assert {s.start_date.type, s.primary_completion_date.type, s.completion_date.type} == {"ACTUAL"}
    assert protocol.sponsorship.responsible_party.investigator_full_name == "Andy Abril, M.D."
