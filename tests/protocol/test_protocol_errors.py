"""A protocol file with a mistake is refused with one line per problem that names the
file, the line and the field, and says what to do; nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import PROTOCOL_FILE
from trialdesk.cli import app
from trialdesk.protocol.loader import ProtocolError, load

runner = CliRunner()


def _variant(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    text = PROTOCOL_FILE.read_text(encoding="utf-8")
    assert text.count(old) >= count, f"fixture text {old!r} not in the protocol file"
    path = tmp_path / "nct03929120.yaml"
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return path


def _line_of(path: Path, fragment: str) -> int:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if fragment in line:
            return n
    raise AssertionError(fragment)


def _error(path: Path) -> str:
    with pytest.raises(ProtocolError) as info:
        load(path)
    return str(info.value)


def test_duplicate_criterion_id_names_file_line_and_field(tmp_path: Path) -> None:
    path = _variant(tmp_path, "- id: E3\n", "- id: E2\n")
    line = _line_of(path, "text: Severe interstitial lung disease") - 2  # the id, then its role, then its text
    assert _error(path) == f"nct03929120.yaml:{line} eligibility.criteria[6].id: duplicate id 'E2'; give each criterion its own number"


def test_missing_criterion_is_named(tmp_path: Path) -> None:
    path = _variant(tmp_path, "- id: E11\n", "- id: E12\n")
    assert "missing exclusion criterion 'E11'" in _error(path)


def test_unknown_field_is_refused_at_its_line(tmp_path: Path) -> None:
    path = _variant(tmp_path, "  masking: NONE\n", "  masking: NONE\n  blinding: open\n")
    line = _line_of(path, "blinding: open")
    assert _error(path) == f"nct03929120.yaml:{line} design.blinding: unknown field; check its spelling or remove it"


def test_dose_range_with_min_above_max_is_refused(tmp_path: Path) -> None:
    path = _variant(tmp_path, "dose: {min: 500000, max: 1000000", "dose: {min: 1000000, max: 500000")
    msg = _error(path)
    assert f":{_line_of(path, 'dose: {min: 1000000')} interventions[0].dose:" in msg
    assert "dose min (1,000,000) is greater than max (500,000); swap them" in msg


def test_dates_out_of_order_are_refused(tmp_path: Path) -> None:
    path = _variant(tmp_path, "completion_date: {date: 2022-02-17", "completion_date: {date: 2018-02-17")
    assert "completion_date 2018-02-17 is before primary_completion_date 2021-07-27" in _error(path)


def test_malformed_yaml_is_a_syntax_error_with_its_line(tmp_path: Path) -> None:
    path = _variant(tmp_path, "  overall_status: COMPLETED\n", "  overall_status: [COMPLETED\n")
    msg = _error(path)
    assert msg.startswith("nct03929120.yaml:") and "not valid YAML" in msg


def test_unknown_value_set_is_named(tmp_path: Path) -> None:
    path = _variant(tmp_path, "value_set: rituximab_or_cyclophosphamide", "value_set: rituximab_only")
    assert "value set 'rituximab_only' is not defined" in _error(path)


def test_unknown_criterion_kind_is_refused(tmp_path: Path) -> None:
    path = _variant(tmp_path, "computable: {kind: sex,", "computable: {kind: gender,")
    msg = _error(path)
    assert f"nct03929120.yaml:{_line_of(path, 'kind: gender')} eligibility.criteria[1].computable" in msg


def test_cli_validate_exits_1_with_one_line_per_problem(tmp_path: Path) -> None:
    path = _variant(tmp_path, "- id: E3\n", "- id: E2\n")
    result = runner.invoke(app, ["protocol", "validate", str(path)])
    assert result.exit_code == 1
    assert "duplicate id 'E2'" in result.output
    assert "Traceback" not in result.output


def test_cli_validate_accepts_the_shipped_protocol() -> None:
    result = runner.invoke(app, ["protocol", "validate", "nct03929120"])
    assert result.exit_code == 0, result.output
    assert "4 inclusion and 11 exclusion criteria" in result.output


def test_unknown_protocol_id_lists_the_known_ones() -> None:
    result = runner.invoke(app, ["protocol", "show", "nct99999999"])
    assert result.exit_code == 1
    assert "unknown protocol id" in result.output and "nct03929120" in result.output


def test_cli_show_prints_the_criteria_and_schedule() -> None:
    result = runner.invoke(app, ["protocol", "show", "nct03929120"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("NCT03929120", "Mayo Clinic", "Exposure to rituximab or cyclophosphamide", "Month 6", "S2"):
        assert text in result.output


def test_an_unknown_site_time_zone_names_its_line_and_an_example(tmp_path: Path) -> None:
    path = _variant(tmp_path, "time_zone: America/New_York", "time_zone: Florida/Jacksonville")
    line = _line_of(path, "time_zone: Florida/Jacksonville")
    message = _error(path)
    assert message.startswith(f"nct03929120.yaml:{line} locations[0].time_zone:")
    assert "unknown time zone 'Florida/Jacksonville'" in message and "IANA name" in message


def test_an_edited_value_set_file_is_read_again_and_a_broken_edit_is_refused(tmp_path: Path) -> None:
    """Value sets are parsed once per state of their folder; editing a file is seen at once."""
    import shutil
    import time

    from trialdesk.protocol.loader import load_value_sets
    from trialdesk.terminology.value_set import library_dir

    folder = tmp_path / "value_sets"
    shutil.copytree(library_dir(), folder)
    first = load_value_sets(folder)
    assert load_value_sets(folder) == first
    victim = next(f for f in sorted(folder.glob("*.yaml")) if "id: rituximab_or_cyclophosphamide" in f.read_text())
    time.sleep(0.01)
    victim.write_text(victim.read_text().replace("id: rituximab_or_cyclophosphamide", "id: rituximab_only"))
    edited = load_value_sets(folder)
    assert "rituximab_only" in edited and "rituximab_or_cyclophosphamide" not in edited
    victim.write_text("- not a value set\n")
    with pytest.raises(ProtocolError) as err:
        load_value_sets(folder)
    assert victim.name in str(err.value)


def test_a_comparison_in_a_unit_ucum_does_not_know_is_refused_at_its_line_with_the_fix(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'unit: "%", plausible: [0, 100]}\n', 'unit: "mg/furlong"}\n')
    message = _error(path)
    line = _line_of(path, "mg/furlong")
    assert f"nct03929120.yaml:{line} eligibility.criteria[" in message
    assert "computable.compare.unit: 'mg/furlong' is not a unit UCUM knows" in message
    assert "use a UCUM unit code" in message
    result = runner.invoke(app, ["protocol", "validate", str(path)])
    assert result.exit_code == 1 and "mg/furlong" in result.output


def test_a_laboratory_spelling_of_a_ucum_unit_is_refused_with_its_ucum_spelling(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'unit: "[IU]/L"}', 'unit: "IU/L"}')
    assert "'IU/L' is not a unit UCUM knows" in _error(path) and "write it as UCUM spells it: '[IU]/L'" in _error(path)


@pytest.mark.parametrize("unit", ["%", "mg/dL", "[IU]/L", "10*3/uL", "umol/L", "mm[Hg]", "g/L", "[arb'U]/mL"])
def test_any_unit_ucum_knows_is_accepted(tmp_path: Path, unit: str) -> None:
    path = _variant(tmp_path, 'unit: "%", plausible: [0, 100]}\n', f'unit: "{unit}", plausible: [0, 100]}}\n')
    assert load(path).eligibility.criteria


def test_a_criterion_whose_role_contradicts_its_number_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = _variant(tmp_path, "- id: E3\n      role: exclusion\n", "- id: E3\n      role: inclusion\n")
    message = _error(path)
    assert "criterion E3 is numbered as an exclusion but its role says inclusion" in message
    assert "number inclusions I1, I2, … and exclusions E1, E2, …" in message


def test_a_criterion_without_a_role_is_refused_at_its_line(tmp_path: Path) -> None:
    path = _variant(tmp_path, "- id: E3\n      role: exclusion\n", "- id: E3\n")
    assert "eligibility.criteria[6].role: required field is missing; add it" in _error(path)


def test_lasting_on_a_drug_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = _variant(tmp_path, "{kind: drug, value_set: rituximab_or_cyclophosphamide,",
                    "{kind: drug, lasting: true, value_set: rituximab_or_cyclophosphamide,")
    assert "'lasting' reads a condition as a state until it ends" in _error(path)


def test_an_oxygen_context_without_a_comparison_is_refused(tmp_path: Path) -> None:
    path = _variant(tmp_path, '        compare: {op: "<", value: 88, unit: "%", plausible: [0, 100]}\n', "        qualitative: {}\n")
    assert "an oxygen 'context' qualifies a numeric comparison; add 'compare'" in _error(path)


def test_a_measurement_that_can_decide_nothing_is_refused(tmp_path: Path) -> None:
    path = _variant(tmp_path, '{kind: measurement, value_set: hemoglobin, compare: {op: outside_range}}',
                    '{kind: measurement, value_set: hemoglobin}')
    assert "a measurement needs 'compare' (a number), 'qualitative' (an answer) or both" in _error(path)


def test_plausible_values_that_leave_out_the_threshold_are_refused_at_their_line(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'unit: "%", plausible: [0, 100]}\n', 'unit: "%", plausible: [90, 100]}\n')
    message = _error(path)
    assert f"nct03929120.yaml:{_line_of(path, 'plausible: [90, 100]')} eligibility.criteria[" in message
    assert "'plausible' [90, 100] must contain the value compared with (88)" in message
    result = runner.invoke(app, ["protocol", "validate", str(path)])
    assert result.exit_code == 1 and "plausible" in result.output
