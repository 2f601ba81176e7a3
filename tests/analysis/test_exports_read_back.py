"""Issue 20's acceptance: the exports of a data cut shaped like the demo's, made with the commands the demo
runs, read back from the files and checked point by point as a PRS reviewer and an FDA data reviewer would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyreadstat
import pytest
from typer.testing import CliRunner

from trialdesk.analysis.commands import export_app
from trialdesk.analysis.define import validate
from trialdesk.analysis.sdtm import DOMAINS
from trialdesk.trial.records import TrialData

runner = CliRunner()


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory, data: TrialData) -> Path:
    folder = tmp_path_factory.mktemp("reports")
    cut = folder / "data_cut.json"
    cut.write_text(data.model_dump_json(indent=2), encoding="utf-8")
    for args in (["ctgov-results", "--data", str(cut), "--out", str(folder / "ctgov_results.json")],
                 ["sdtm", "--data", str(cut), "--out", str(folder / "sdtm")]):
        result = runner.invoke(export_app, args)
        assert result.exit_code == 0, result.output
    return folder


def _xpt(exports: Path, domain: str) -> Any:
    frame, _ = pyreadstat.read_xport(str(exports / "sdtm" / f"{domain.lower()}.xpt"))
    return frame


def test_ctgov_results_read_back(exports: Path) -> None:
    doc = json.loads((exports / "ctgov_results.json").read_text(encoding="utf-8"))
    rs = doc["resultsSection"]
    race = next(m for m in rs["baselineCharacteristicsModule"]["measures"] if m["title"].startswith("Race"))
    counts = {c["title"]: int(c["measurements"][0]["value"]) for c in race["classes"][0]["categories"]}
    assert counts["Unknown or Not Reported"] == 0 and sum(counts.values()) == 3  # filled from the form's codes
    assert rs["moreInfoModule"]["pointOfContact"]["organization"] == "Mayo Clinic"
    assert rs["moreInfoModule"]["certainAgreement"] == {"piSponsorEmployee": True}
    assert "largeDocumentModule" in doc["documentSection"]
    started = rs["participantFlowModule"]["periods"][0]["milestones"][0]
    assert started["type"] == "STARTED" and started["achievements"][0]["numSubjects"] == rs["baselineCharacteristicsModule"]["denoms"][0][
        "counts"][0]["value"] == "3"
    events = rs["adverseEventsModule"]["seriousEvents"] + rs["adverseEventsModule"]["otherEvents"]
    assert {e["assessmentType"] for e in events} == {"SYSTEMATIC_ASSESSMENT", "NON_SYSTEMATIC_ASSESSMENT"}
    checked = runner.invoke(export_app, ["ctgov-results", "--data", str(exports / "data_cut.json"), "--out", str(exports / "again.json"),
                                         "--check"])
    assert checked.exit_code == 1  # the protocol file still lacks the contact's e-mail and phone, the protocol and the SAP
    assert checked.output.count("problem:") == 4


def test_sdtm_read_back(exports: Path) -> None:
    assert {p.name for p in (exports / "sdtm").iterdir()} >= {f"{d.lower()}.xpt" for d in DOMAINS} | {"define.xml", "reviewers_guide.html"}
    ae = _xpt(exports, "AE").set_index("AESPID")
    assert (ae.loc["B1", "AELLT"], ae.loc["B1", "AELLTCD"], ae.loc["B1", "AESOCCD"], ae.loc["B1", "AEDECOD"]) == (
        "Hypoxia", 10021143.0, 10038738.0, "Hypoxia")
    assert ae.loc["A2", "AETERM"] == "chills and flushing during the infusion" and ae.loc["A2", "AEACN"] == "DRUG INTERRUPTED"
    assert set(ae["EPOCH"]) == {"SCREENING", "TREATMENT", "FOLLOW-UP"}
    lb = _xpt(exports, "LB")
    creat = lb[lb["LBTESTCD"] == "CREAT"]
    assert set(creat["LBSTRESU"]) == {"umol/L"} and set(creat["LBORRESU"]) == {"mg/dL", "umol/L"}
    assert {"LBSTNRLO", "LBSTNRHI", "LBNRIND", "LBBLFL", "LBCAT"} <= set(lb.columns) and "Y" in set(lb["LBBLFL"])
    dm = _xpt(exports, "DM")
    assert (dm["RFPENDTC"] != "").all() and (dm["RFICDTC"] != "").all()  # shifted, not blanked
    for domain in ("TS", "CM", "MH", "DV", "RE", "FT"):
        assert len(_xpt(exports, domain)) > 0, domain
    assert validate((exports / "sdtm" / "define.xml").read_text(encoding="utf-8")) == []
    guide = (exports / "sdtm" / "reviewers_guide.html").read_text(encoding="utf-8")
    assert "AEDECOD holds the CTCAE v5.0 term" in guide
    manifest = json.loads((exports / "sdtm" / "export.json").read_text(encoding="utf-8"))
    assert manifest["identified"] is False and manifest["meddra"] is None and manifest["sdtm_warnings"]
