"""A protocol that says neither how its primary outcome is counted (``outcome_measures``) nor that it is every adverse
event per infusion (``outcomes.primary[0].infusion_time_frame``) is refused, never counted some other trial's way;
the first trial, which names the per-infusion reading, keeps its count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trialdesk.analysis.commands import export_app, report_app
from trialdesk.analysis.ctgov_results import results_section
from trialdesk.analysis.primary_outcome import NoOutcomeMeasureError, primary_outcome
from trialdesk.protocol.loader import load, resolve
from trialdesk.protocol.model import Protocol
from trialdesk.trial.records import TrialData

runner = CliRunner()


def _without_reading(protocol: Protocol) -> Protocol:
    primary = protocol.outcomes.primary[0].model_copy(update={"infusion_time_frame": None})
    return protocol.model_copy(update={"outcomes": protocol.outcomes.model_copy(update={"primary": [primary]})})


def test_the_first_trial_names_its_per_infusion_reading_and_is_counted(data: TrialData, protocol: Protocol) -> None:
    assert protocol.outcomes.primary[0].infusion_time_frame is not None and not protocol.outcome_measures
    assert primary_outcome(data, protocol).total.events > 0


def test_without_a_measure_or_a_reading_the_count_is_refused_saying_what_to_add(data: TrialData, protocol: Protocol) -> None:
    bare = _without_reading(protocol)
    with pytest.raises(NoOutcomeMeasureError, match="add an outcome_measures entry with primary: true"):
        primary_outcome(data, bare)
    with pytest.raises(NoOutcomeMeasureError):
        results_section(data, bare)


def _strip_block(text: str, key: str) -> str:
    """``text`` without the YAML block ``key:`` (its line and the lines indented below it)."""
    out: list[str] = []
    indent: int | None = None
    for line in text.splitlines(keepends=True):
        depth = len(line) - len(line.lstrip())
        if indent is not None and (not line.strip() or depth > indent):
            continue
        indent = depth if line.strip().startswith(f"{key}:") else None
        if indent is None:
            out.append(line)
    return "".join(out)


def test_the_commands_refuse_it_in_one_line(data: TrialData, protocol: Protocol, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "bare"
    shutil.copytree(resolve(protocol.id).parent, folder)
    path = folder / "protocol.yaml"
    path.write_text(_strip_block(path.read_text(encoding="utf-8"), "infusion_time_frame"), encoding="utf-8")
    assert load(str(folder)).outcomes.primary[0].infusion_time_frame is None
    cut = tmp_path / "cut.json"
    cut.write_text(data.model_dump_json(), encoding="utf-8")
    result = runner.invoke(report_app, ["primary-outcome", "--data", str(cut), "--out", str(tmp_path / "out"), "--protocol", str(folder)])
    assert result.exit_code == 1 and "does not say how its primary outcome is counted" in result.output
    result = runner.invoke(export_app, ["ctgov-results", "--data", str(cut), "--out", str(tmp_path / "r.json"), "--protocol", str(folder)])
    assert result.exit_code == 1 and "does not say how its primary outcome is counted" in result.output
    assert not (tmp_path / "r.json").exists()
    ok = runner.invoke(export_app, ["ctgov-results", "--data", str(cut), "--out", str(tmp_path / "r.json")])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["resultsSection"]["outcomeMeasuresModule"]
