"""Define-XML 2.1 of the SDTM export, validated against the Define-XML 2.1 schema, and the reviewer's guide."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from trialdesk.analysis.define import DEF, ODM, define_xml, validate
from trialdesk.analysis.meddra import MedDRA
from trialdesk.analysis.sdtm import DOMAINS, VARIABLES, build_sdtm
from trialdesk.protocol.model import Protocol
from trialdesk.trial.records import TrialData

MEDDRA = Path(__file__).resolve().parents[1] / "fixtures" / "meddra"
N = {"odm": ODM, "def": DEF}
CREATED = dt.datetime(2020, 9, 1, tzinfo=dt.UTC)


def test_define_is_valid_define_xml_2_1(data: TrialData, protocol: Protocol) -> None:
    assert validate(define_xml(build_sdtm(data, protocol), created=CREATED)) == []
    assert validate(define_xml(build_sdtm(data, protocol, identified=True, meddra=MedDRA.load(MEDDRA)), created=CREATED)) == []


def test_the_schema_refuses_a_broken_define(data: TrialData, protocol: Protocol) -> None:
    text = define_xml(build_sdtm(data, protocol), created=CREATED)
    assert validate(text.replace(' def:Context="Submission"', ""))  # def:Context is required on ODM
    assert validate(text.replace('<def:Class Name="EVENTS" />', '<def:Class Name="NOT A CLASS" />'))


def test_define_describes_every_dataset_and_variable(data: TrialData, protocol: Protocol) -> None:
    root = ET.fromstring(define_xml(build_sdtm(data, protocol), created=CREATED))
    mdv = root.find("odm:Study/odm:MetaDataVersion", N)
    assert mdv is not None and mdv.get(f"{{{DEF}}}DefineVersion") == "2.1.0"
    groups = {g.get("Name"): g for g in mdv.findall("odm:ItemGroupDef", N)}
    assert list(groups) == list(DOMAINS)
    for domain, g in groups.items():
        refs = [r.get("ItemOID") for r in g.findall("odm:ItemRef", N)]
        assert refs == [f"IT.{domain}.{v.name}" for v in VARIABLES[domain]]
        leaf = g.find("def:leaf", N)
        assert leaf is not None and leaf.get("{http://www.w3.org/1999/xlink}href") == f"{domain.lower()}.xpt"
    ae_keys = {r.get("ItemOID"): r.get("KeySequence") for r in groups["AE"].findall("odm:ItemRef", N) if r.get("KeySequence")}
    assert ae_keys == {"IT.AE.STUDYID": "1", "IT.AE.USUBJID": "2", "IT.AE.AESEQ": "3"}
    items = {i.get("OID"): i for i in mdv.findall("odm:ItemDef", N)}
    assert items["IT.AE.AESTDY"].get("DataType") == "integer" and items["IT.LB.LBSTRESN"].get("DataType") == "float"
    origin = items["IT.AE.AETERM"].find("def:Origin", N)
    assert origin is not None and (origin.get("Type"), origin.get("Source")) == ("Collected", "Investigator")
    aeser = mdv.find("odm:CodeList[@OID='CL.AE.AESER']", N)
    assert aeser is not None
    assert [e.get("CodedValue") for e in aeser.findall("odm:EnumeratedItem", N)] == ["N", "Y"]
    alias = aeser.find("odm:Alias", N)
    assert alias is not None and alias.get("Name") == "C66742"


def _comment(text: str, oid: str) -> str:
    root = ET.fromstring(text)
    node = root.find(f".//def:CommentDef[@OID='{oid}']/odm:Description/odm:TranslatedText", N)
    assert node is not None and node.text
    return node.text


@pytest.mark.parametrize("with_meddra", [False, True])
def test_define_says_what_aedecod_holds(data: TrialData, protocol: Protocol, with_meddra: bool) -> None:
    sdtm = build_sdtm(data, protocol, meddra=MedDRA.load(MEDDRA) if with_meddra else None)
    text = define_xml(sdtm, created=CREATED)
    comment = _comment(text, "COM.AEDECOD")
    root = ET.fromstring(text)
    external = root.find(".//odm:CodeList[@OID='CL.AE.AEDECOD']/odm:ExternalCodeList", N)
    assert external is not None
    if with_meddra:
        assert "MedDRA preferred term" in comment and external.get("Dictionary") == "MEDDRA"
        assert "0.0 (fixture)" in comment and external.get("Version") == "0.0 (fixture)"
    else:
        assert "AEDECOD holds the CTCAE v5.0 term" in comment and external.get("Dictionary") == "CTCAE"
    assert "shifted back" in _comment(text, "COM.DATESHIFT")


def test_the_export_folder_has_every_file_and_the_guide_says_what_a_reviewer_must_know(data: TrialData, protocol: Protocol,
                                                                                        tmp_path: Path) -> None:
    written = {p.name for p in build_sdtm(data, protocol).write(tmp_path)}
    assert written == {f"{d.lower()}.{ext}" for d in DOMAINS for ext in ("csv", "xpt")} | {
        "define.csv", "define.xml", "reviewers_guide.html", "reviewers_guide.pdf", "export.json"}
    assert validate((tmp_path / "define.xml").read_text(encoding="utf-8")) == []
    guide = (tmp_path / "reviewers_guide.html").read_text(encoding="utf-8")
    assert "AEDECOD holds the CTCAE v5.0 term" in guide and "shifted back by one offset" in guide
    assert "ae.xpt (Adverse Events): 10 records." in guide
    assert (tmp_path / "reviewers_guide.pdf").read_bytes().startswith(b"%PDF")
