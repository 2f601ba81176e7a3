from __future__ import annotations

import json
from pathlib import Path

import pyreadstat
from typer.testing import CliRunner

from tests.analysis.fixtures import empty_data
from trialdesk.analysis.commands import export_app, report_app
from trialdesk.protocol.model import Protocol
from trialdesk.trial.records import TrialData

runner = CliRunner()


def _cut(tmp_path: Path, data: TrialData) -> Path:
    path = tmp_path / "cut.json"
    path.write_text(data.model_dump_json(), encoding="utf-8")
    return path


def test_report_primary_outcome_prints_and_writes(data: TrialData, tmp_path: Path) -> None:
    result = runner.invoke(report_app, ["primary-outcome", "--data", str(_cut(tmp_path, data)), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Adverse Events" in result.output and "3/3" in result.output
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"primary_outcome_counts.csv", "primary_outcome.png", "primary_outcome.svg"}


def test_report_participant_flow(data: TrialData, tmp_path: Path) -> None:
    result = runner.invoke(report_app, ["participant-flow", "--data", str(_cut(tmp_path, data)), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "participant_flow.svg").exists()


def test_exports(data: TrialData, tmp_path: Path) -> None:
    cut = str(_cut(tmp_path, data))
    assert runner.invoke(export_app, ["ctgov-results", "--data", cut, "--out", str(tmp_path / "r.json")]).exit_code == 0
    assert "resultsSection" in json.loads((tmp_path / "r.json").read_text())
    assert runner.invoke(export_app, ["sdtm", "--data", cut, "--out", str(tmp_path / "sdtm")]).exit_code == 0
    frame, _ = pyreadstat.read_xport(str(tmp_path / "sdtm" / "ae.xpt"))
    assert len(frame) == 10
    assert runner.invoke(export_app, ["odm", "--data", cut, "--out", str(tmp_path / "odm.xml")]).exit_code == 0
    assert runner.invoke(export_app, ["redcap-dictionary", "--out", str(tmp_path / "dd.csv")]).exit_code == 0
    assert (tmp_path / "dd.csv").read_text().startswith("Variable / Field Name,Form Name,Section Header,")


def test_empty_cut_needs_the_flag(tmp_path: Path) -> None:
    cut = str(_cut(tmp_path, empty_data()))
    refused = runner.invoke(export_app, ["ctgov-results", "--data", cut, "--out", str(tmp_path / "r.json")])
    assert refused.exit_code == 1
    assert "no enrolled participant" in refused.output
    assert not (tmp_path / "r.json").exists()
    allowed = runner.invoke(export_app, ["ctgov-results", "--data", cut, "--out", str(tmp_path / "r.json"), "--allow-empty"])
    assert allowed.exit_code == 0


def test_bad_data_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"protocol_id": "nct03929120"}', encoding="utf-8")
    result = runner.invoke(export_app, ["sdtm", "--data", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "cutoff" in result.output


def test_ctgov_check_names_each_problem_and_fails(data: TrialData, tmp_path: Path) -> None:
    result = runner.invoke(export_app, ["ctgov-results", "--data", str(_cut(tmp_path, data)), "--out", str(tmp_path / "r.json"), "--check"])
    assert result.exit_code == 1, result.output
    assert "moreInfoModule.pointOfContact.email" in result.output and "statistical analysis plan is missing" in result.output
    assert "4 problem(s)" in result.output


def test_ctgov_check_passes_a_complete_record(data: TrialData, disclosed: Protocol, tmp_path: Path) -> None:
    from ruamel.yaml import YAML

    protocol_file = tmp_path / "nct03929120.yaml"
    with protocol_file.open("w", encoding="utf-8") as f:
        YAML(typ="safe").dump(disclosed.model_dump(mode="json", by_alias=True, exclude_none=True), f)
    result = runner.invoke(export_app, ["ctgov-results", "--data", str(_cut(tmp_path, data)), "--out", str(tmp_path / "r.json"),
                                        "--protocol", str(protocol_file), "--check"])
    assert result.exit_code == 0, result.output
    assert "no problem found" in result.output


def test_sdtm_warns_without_meddra_and_codes_with_it(data: TrialData, tmp_path: Path) -> None:
    cut = str(_cut(tmp_path, data))
    plain = runner.invoke(export_app, ["sdtm", "--data", cut, "--out", str(tmp_path / "plain")])
    assert plain.exit_code == 0, plain.output
    assert "warning:" in plain.output and "AEDECOD holds the CTCAE v5.0 term" in " ".join(plain.output.split())
    meddra = Path(__file__).resolve().parents[1] / "fixtures" / "meddra"
    coded = runner.invoke(export_app, ["sdtm", "--data", cut, "--out", str(tmp_path / "coded"), "--meddra", str(meddra)])
    assert coded.exit_code == 0, coded.output
    assert "AEDECOD holds the CTCAE" not in " ".join(coded.output.split())
    frame, _ = pyreadstat.read_xport(str(tmp_path / "coded" / "ae.xpt"))
    assert "Pyrexia (fixture PT)" in set(frame["AEDECOD"])
    missing = runner.invoke(export_app, ["sdtm", "--data", cut, "--out", str(tmp_path / "x"), "--meddra", str(tmp_path)])
    assert missing.exit_code == 1 and "llt.asc: not found" in " ".join(missing.output.split())
