"""``trialdesk safety reports --data DATA_CUT.json --now INSTANT``: every report due, submitted or overdue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.safety.fixtures import at, trial_data
from trialdesk.cli import app
from trialdesk.trial.records import SafetyReportSubmission


def _cut(tmp_path: Path) -> Path:
    data = trial_data(safety_reports=[SafetyReportSubmission(ae_id="A7", rule_id="R1", submitted_at=at("2020-03-09 20:00"))])
    path = tmp_path / "cut.json"
    path.write_text(data.model_dump_json(), encoding="utf-8")
    return path


def test_the_json_lists_each_report_with_its_clock_due_instant_zone_and_status(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["safety", "reports", "--data", str(_cut(tmp_path)), "--now", "2020-03-17T12:00:00+00:00",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    rows = {(r["ae_id"], r["rule_id"]): r for r in out["reports"]}
    assert rows["A7", "R1"]["status"] == "submitted" and rows["A7", "R1"]["submitted_at"] == "2020-03-09T20:00:00-04:00"
    assert rows["A7", "R2"]["status"] == "overdue" and rows["A7", "R2"]["recipient"] == "FDA (7-day IND safety report)"
    assert rows["A7", "R2"]["due_at"] == "2020-03-16T23:59:59.999999-04:00" and rows["A7", "R2"]["time_zone"] == "America/New_York"
    assert rows["A7", "R2"]["pending_assessment"] is True  # the fixture's anaphylaxis is not yet assessed
    assert rows["A7", "R3"]["status"] == "due" and rows["A5", "R1"]["clock_start"] == "2020-03-21T09:00:00-04:00"
    assert out["site_time_zone"] == "America/New_York"


def test_the_table_names_the_site_clock(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["safety", "reports", "--data", str(_cut(tmp_path)), "--now", "2020-03-17T12:00:00+00:00"],
                                env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    assert "site clock America/New_York" in result.output and "overdue" in result.output and "EDT" in result.output


def test_a_now_without_its_zone_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["safety", "reports", "--data", str(_cut(tmp_path)), "--now", "2020-03-17T12:00:00"])
    assert result.exit_code != 0 and "no time zone" in result.output


def test_a_broken_data_cut_is_refused_naming_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"protocol_id": "nct03929120"}), encoding="utf-8")
    result = CliRunner().invoke(app, ["safety", "reports", "--data", str(path), "--now", "2020-03-17T12:00:00+00:00"])
    assert result.exit_code != 0 and "bad.json: cutoff" in result.output


def test_without_protocol_the_cut_names_it_even_with_two_protocols_installed(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The data cut says whose it is: with no --protocol and no TRIALDESK_PROTOCOL, the reports follow the cut's protocol
    (as ``trialdesk report`` and ``export`` do), never a refusal to guess; a named protocol that does not exist is refused."""
    monkeypatch.delenv("TRIALDESK_PROTOCOL", raising=False)
    cut = str(_cut(tmp_path))
    result = CliRunner().invoke(app, ["safety", "reports", "--data", cut, "--now", "2020-03-17T12:00:00+00:00", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["protocol"] == "nct03929120"
    wrong = CliRunner().invoke(app, ["safety", "reports", "--data", cut, "--now", "2020-03-17T12:00:00+00:00", "--protocol", "nct00000000"])
    assert wrong.exit_code != 0 and "nct00000000" in " ".join(wrong.output.split())


def test_a_protocol_without_a_site_time_zone_is_refused_saying_what_to_set(tmp_path: Path) -> None:
    import shutil

    from trialdesk.protocol.loader import load, resolve
    from trialdesk.safety.site_time import NoSiteZoneError, site_zone
    from trialdesk.trial.records import TrialData

    cut = _cut(tmp_path)
    folder = tmp_path / "no_zone"
    shutil.copytree(resolve(TrialData.from_file(cut).protocol_id).parent, folder)
    text = (folder / "protocol.yaml").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines(keepends=True) if not line.lstrip().startswith("time_zone:")]
    assert len(lines) < len(text.splitlines())
    (folder / "protocol.yaml").write_text("".join(lines), encoding="utf-8")
    with pytest.raises(NoSiteZoneError, match=r"set locations\[\]\.time_zone"):
        site_zone(load(str(folder)))
    result = CliRunner().invoke(app, ["safety", "reports", "--data", str(cut), "--now", "2020-03-17T12:00:00+00:00",
                                      "--protocol", str(folder)])
    assert result.exit_code == 1
    assert "names no site time zone" in result.output and "Traceback" not in result.output
