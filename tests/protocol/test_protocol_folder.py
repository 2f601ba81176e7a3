"""A protocol is a folder: protocol.yaml, its own value_sets/ and forms.yaml; a command without a
protocol does not guess when more than one is installed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trialdesk.cli import app
from trialdesk.protocol import loader
from trialdesk.protocol.loader import ProtocolError, choose, installed, load, locate, protocol_forms, protocol_value_sets

AETHER = loader.builtin_protocol_dir() / "nct02013700"
FIRST = loader.builtin_protocol_dir() / "nct03929120"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the AETHER folder to break."""
    return Path(shutil.copytree(AETHER, tmp_path / "aether"))


def test_both_layouts_are_installed_and_load_by_id() -> None:
    known = installed()
    assert known["nct03929120"] == FIRST                    # the first trial's folder
    assert known["nct02013700"] == AETHER                   # the second trial's folder
    assert locate("nct03929120").forms == FIRST / "forms.yaml"
    assert load("nct03929120").id == "nct03929120"
    assert load("nct02013700").id == "nct02013700"


def test_a_folder_loads_by_path_with_its_own_value_sets_and_forms(folder: Path) -> None:
    files = locate(folder)
    assert (files.protocol.name, files.value_sets, files.forms) == ("protocol.yaml", folder / "value_sets", folder / "forms.yaml")
    assert load(folder).identification.nct_id == "NCT02013700"
    merged = protocol_value_sets(folder)
    assert {"ipf", "fvc", "dlco", "smoking_status", "antifibrotics"} <= set(merged)
    assert "connective_tissue_disease" in merged  # the library's, merged under the folder's


def test_the_folders_forms_carry_its_age_range_and_the_first_trial_keeps_its_own() -> None:
    age = protocol_forms("nct02013700").form("demographics").field("dm_age")
    assert (age.min, age.max) == (40, 90)  # an eligible 88-year-old is not refused
    first = protocol_forms("nct03929120").form("demographics").field("dm_age")
    assert (first.min, first.max) == (18, 80)


def test_a_value_set_id_in_both_the_folder_and_the_library_names_both_files(folder: Path) -> None:
    (folder / "value_sets" / "clash.yaml").write_text(
        "- id: ild\n  title: mine\n  provenance: {source: x, date: 2026-12-07}\n  codes: [{system: ICD10CM, code: J84}]\n")
    with pytest.raises(ProtocolError) as err:
        load(folder)
    text = str(err.value)
    assert "clash.yaml" in text and "ctd_ild.yaml" in text and "value set 'ild'" in text


def test_a_value_set_missing_from_both_places_says_where_to_add_it(folder: Path) -> None:
    shutil.rmtree(folder / "value_sets")
    with pytest.raises(ProtocolError, match=r"protocol.yaml:\d+ eligibility.criteria\[2\].computable: value set 'ipf' is not defined"):
        load(folder)


def test_a_form_a_visit_names_must_exist_naming_file_line_and_fix(folder: Path) -> None:
    text = (folder / "protocol.yaml").read_text()
    (folder / "protocol.yaml").write_text(text.replace("forms: [demographics, smoking_history,", "forms: [demographics, smoking,"))
    with pytest.raises(ProtocolError) as err:
        load(folder)
    msg = str(err.value)
    line = next(i for i, row in enumerate((folder / "protocol.yaml").read_text().splitlines(), 1) if "smoking," in row)
    assert msg.startswith(f"protocol.yaml:{line} schedule.visits[0].forms[1]: visit SCREENING names form 'smoking'")
    assert "fix the name (known: " in msg and "smoking_history" in msg and "or add the form there" in msg


def test_a_single_file_protocols_visits_are_checked_against_the_package_forms(tmp_path: Path) -> None:
    src = (FIRST / "protocol.yaml").read_text()
    bad = tmp_path / "p.yaml"
    bad.write_text(src.replace("forms: [vital_signs, infusion, spo2, adverse_events]}", "forms: [vital_signs, infusions]}", 1))
    with pytest.raises(ProtocolError, match=r"names form 'infusions', which trialdesk/protocol/forms\.yaml does not define"):
        load(bad)


def test_a_folder_without_protocol_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match=r"holds a protocol\.yaml; this one has none"):
        load(tmp_path)


def test_an_unknown_id_lists_the_installed_ones() -> None:
    with pytest.raises(ProtocolError, match="known ids: nct02013700, nct03929120"):
        load("nct00000000")


def _two_installed(tmp_path: Path, default: str | None) -> Path:
    folder = tmp_path / "installed"
    shutil.copytree(AETHER, folder / "nct02013700")
    shutil.copytree(AETHER.parent / "nct03929120", folder / "nct03929120")
    if default is not None:
        (folder / "installation.yaml").write_text(f"default: {default}\n", encoding="utf-8")
    return folder


def test_no_protocol_named_with_two_installed_and_no_default_refuses_and_lists_them(monkeypatch: pytest.MonkeyPatch,
                                                                                      tmp_path: Path) -> None:
    monkeypatch.delenv("TRIALDESK_PROTOCOL", raising=False)
    folder = _two_installed(tmp_path, None)
    with pytest.raises(ProtocolError, match=r"2 protocols are installed \(nct02013700, nct03929120\); say which one"):
        choose(None, folder)
    assert choose("nct02013700", folder) == "nct02013700"
    monkeypatch.setenv("TRIALDESK_PROTOCOL", "nct03929120")
    assert choose(None, folder) == "nct03929120"
    monkeypatch.delenv("TRIALDESK_PROTOCOL")
    only = tmp_path / "only"
    shutil.copytree(AETHER, only / "nct02013700")
    assert choose(None, only) == "nct02013700"  # exactly one installed: it is the default


def test_the_installations_declared_default_is_used_and_said(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TRIALDESK_PROTOCOL", raising=False)
    folder = _two_installed(tmp_path, "nct02013700")
    assert choose(None, folder) == "nct02013700"
    said = capsys.readouterr().err
    assert "using nct02013700, this installation's default" in said and "nct03929120" in said
    assert "installation" not in installed(folder)  # the file declares; it is not a protocol
    assert choose("nct03929120", folder) == "nct03929120" and capsys.readouterr().err == ""  # named: nothing to say


def test_a_default_that_is_not_installed_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TRIALDESK_PROTOCOL", raising=False)
    folder = _two_installed(tmp_path, "nct99999999")
    with pytest.raises(ProtocolError, match=r"installation\.yaml.*'nct99999999', which is not installed"):
        choose(None, folder)


def test_the_shipped_installation_answers_for_the_first_trial_when_not_told(monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TRIALDESK_PROTOCOL", raising=False)
    assert choose(None) == "nct03929120"
    assert "no protocol named; using nct03929120" in capsys.readouterr().err


def test_the_cli_validates_a_folder_and_refuses_an_unknown_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIALDESK_PROTOCOL", raising=False)
    runner = CliRunner()
    ok = runner.invoke(app, ["protocol", "validate", "--protocol", str(AETHER)])
    assert ok.exit_code == 0 and "ok NCT02013700" in ok.output
    unknown = runner.invoke(app, ["protocol", "show", "--protocol", "nct00000000"])
    assert unknown.exit_code == 1
    assert "nct02013700, nct03929120" in re.sub(r"\s+", " ", unknown.output)
    shown = runner.invoke(app, ["protocol", "show", "nct02013700"], env={"COLUMNS": "200"})
    assert "dose levels DL1 20, DL2 100, DL3 200 × 10⁶ cells (±10%) in total" in shown.output


def test_a_cohort_at_a_dose_level_the_protocol_does_not_list_is_refused_at_its_line(folder: Path) -> None:
    text = (folder / "protocol.yaml").read_text()
    (folder / "protocol.yaml").write_text(text.replace("{id: C3, dose_level: DL3, size: 3}", "{id: C3, dose_level: DL4, size: 3}"))
    line = next(i for i, row in enumerate((folder / "protocol.yaml").read_text().splitlines(), 1) if "DL4" in row)
    with pytest.raises(ProtocolError, match=rf"protocol.yaml:{line} dose_finding.cohorts\[2\].dose_level: 'DL4' is not a dose level;"
                                            " known: DL1, DL2, DL3"):
        load(folder)


def test_an_outcome_measure_counting_dlts_needs_a_dlt_definition(tmp_path: Path) -> None:
    src = (FIRST / "protocol.yaml").read_text()
    bad = tmp_path / "p.yaml"
    bad.write_text(src + "\noutcome_measures:\n  - {id: d, title: DLTs, counts: participants, events: {dlt: true},"
                         " window: {days: 28}, primary: true}\n")
    with pytest.raises(ProtocolError, match=r"outcome_measures\[0\].events.dlt: counting DLTs needs a dose_finding section"):
        load(bad)


def test_an_edited_forms_file_is_read_again(folder: Path) -> None:
    assert protocol_forms(folder).form("demographics").field("dm_age").max == 90
    forms = folder / "forms.yaml"
    forms.write_text(forms.read_text().replace("min: 40, max: 90", "min: 40, max: 95"))
    assert protocol_forms(folder).form("demographics").field("dm_age").max == 95
