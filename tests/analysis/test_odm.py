from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from importlib import resources

import pytest
import xmlschema

from tests.analysis.fixtures import empty_data
from trialdesk.analysis.data_cut import NoParticipantsError
from trialdesk.analysis.odm import NS, odm_xml
from trialdesk.protocol.model import Protocol
from trialdesk.trial.records import TrialData

N = {"odm": NS}


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    # the CDISC ODM 1.3.2 schema as the odmlib package ships it (tests/fixtures/odm/README.md)
    return xmlschema.XMLSchema(str(resources.files("odmlib.schemas") / "odm" / "1.3.2" / "ODM1-3-2.xsd"))


def _xml(data: TrialData, protocol: Protocol, **kw: bool) -> str:
    return odm_xml(data, protocol, created=dt.datetime(2020, 9, 1, tzinfo=dt.UTC), **kw)


def test_odm_is_valid_against_the_odm_1_3_2_schema(data: TrialData, protocol: Protocol, schema: xmlschema.XMLSchema) -> None:
    errors = list(schema.iter_errors(_xml(data, protocol)))
    assert errors == []


def test_schema_catches_a_broken_document(data: TrialData, protocol: Protocol, schema: xmlschema.XMLSchema) -> None:
    broken = _xml(data, protocol).replace('ODMVersion="1.3.2"', 'ODMVersion="1.3.2" Bogus="x"')
    assert not schema.is_valid(broken)


def test_definition_follows_the_schedule_and_forms(data: TrialData, protocol: Protocol) -> None:
    root = ET.fromstring(_xml(data, protocol))
    mdv = root.find("odm:Study/odm:MetaDataVersion", N)
    assert mdv is not None
    events = [e.get("OID") for e in mdv.findall("odm:StudyEventDef", N)]
    assert events == [f"SE.{v.code}" for v in protocol.schedule.visits] + ["SE.AE_LOG", "SE.UNSCHEDULED"]
    d28 = mdv.find("odm:StudyEventDef[@OID='SE.D28']", N)
    assert d28 is not None
    assert [f.get("FormOID") for f in d28.findall("odm:FormRef", N)] == ["F.VITAL_SIGNS", "F.LABORATORY", "F.INFUSION", "F.SPO2"]
    grade = mdv.find("odm:ItemDef[@OID='I.AE_GRADE']", N)
    assert grade is not None and grade.get("DataType") == "integer"
    assert mdv.find("odm:CodeList[@OID='CL.AE_GRADE']", N) is not None
    assert mdv.find("odm:ItemDef[@OID='I.INF_DATE']", N) is not None


def test_clinical_data_is_de_identified(data: TrialData, protocol: Protocol) -> None:
    root = ET.fromstring(_xml(data, protocol))
    subjects = [s.get("SubjectKey") for s in root.findall("odm:ClinicalData/odm:SubjectData", N)]
    assert subjects == ["S01", "S02", "S03", "S04"]
    values = {i.get("ItemOID") for i in root.iter(f"{{{NS}}}ItemData")}
    assert "I.INF_DATE" not in values and "I.AE_ONSET" not in values
    s01 = root.find("odm:ClinicalData/odm:SubjectData[@SubjectKey='S01']", N)
    assert s01 is not None
    log = s01.find("odm:StudyEventData[@StudyEventOID='SE.AE_LOG']/odm:FormData", N)
    assert log is not None and len(log.findall("odm:ItemGroupData", N)) == 6
    d0 = s01.find("odm:StudyEventData[@StudyEventOID='SE.D0']", N)
    assert d0 is not None
    sysbp = d0.find(".//odm:ItemData[@ItemOID='I.SYSBP']", N)
    assert sysbp is not None and sysbp.get("Value") == "120"
    spo2 = d0.find("odm:FormData[@FormOID='F.SPO2']//odm:ItemData[@ItemOID='I.OXYSAT']", N)
    assert spo2 is not None and spo2.get("Value") == "95"


def test_empty_cut_is_refused_or_recorded(protocol: Protocol, schema: xmlschema.XMLSchema) -> None:
    with pytest.raises(NoParticipantsError):
        _xml(empty_data(), protocol)
    text = _xml(empty_data(), protocol, allow_empty=True)
    assert schema.is_valid(text)
    assert "allow_empty" in (ET.fromstring(text).get("Description") or "")


def test_lung_function_and_six_minute_walk_are_in_their_forms(data: TrialData, protocol: Protocol) -> None:
    root = ET.fromstring(_xml(data, protocol))
    s01 = root.find("odm:ClinicalData/odm:SubjectData[@SubjectKey='S01']", N)
    assert s01 is not None
    screening = s01.find("odm:StudyEventData[@StudyEventOID='SE.SCREENING']", N)
    assert screening is not None
    pft = {i.get("ItemOID"): i.get("Value") for i in screening.findall("odm:FormData[@FormOID='F.PULMONARY_FUNCTION']//odm:ItemData", N)}
    assert pft == {"I.FVC": "2.41", "I.DLCO_PCT": "48"}
    walk = s01.find("odm:StudyEventData[@StudyEventOID='SE.M6']/odm:FormData[@FormOID='F.SIX_MINUTE_WALK']//odm:ItemData", N)
    assert walk is not None and (walk.get("ItemOID"), walk.get("Value")) == ("I.SMW_DISTANCE", "402")  # an integer field


def test_an_unscheduled_visit_is_a_repeat_of_the_declared_unscheduled_event(data: TrialData, protocol: Protocol,
                                                                            schema: xmlschema.XMLSchema) -> None:
    """Vital signs taken at the desk's unscheduled visit U1 go under SE.UNSCHEDULED, repeat key U1 (an event the
    metadata declares, repeating), never under an event OID the study does not define."""
    from trialdesk.trial.records import VisitRecord, VitalSign

    first = data.vitals[0]
    extra = VitalSign(subject_id=first.subject_id, visit="U1", date=first.date + dt.timedelta(days=40), test="SYSBP",
                      value=151, unit="mmHg")
    visit = VisitRecord(subject_id=first.subject_id, code="U1", date=extra.date, unscheduled=True)
    text = _xml(data.model_copy(update={"vitals": [*data.vitals, extra], "visits": [*data.visits, visit]}), protocol)
    assert list(schema.iter_errors(text)) == []
    root = ET.fromstring(text)
    mdv = root.find("odm:Study/odm:MetaDataVersion", N)
    assert mdv is not None
    declared = {e.get("OID"): e for e in mdv.findall("odm:StudyEventDef", N)}
    unscheduled = declared["SE.UNSCHEDULED"]
    assert unscheduled.get("Repeating") == "Yes" and unscheduled.get("Type") == "Unscheduled"
    assert "F.VITAL_SIGNS" in {f.get("FormOID") for f in unscheduled.findall("odm:FormRef", N)}
    used = {e.get("StudyEventOID") for e in root.iter(f"{{{NS}}}StudyEventData")}
    assert used <= set(declared), used - set(declared)
    subject = root.find(f"odm:ClinicalData/odm:SubjectData[@SubjectKey='{first.subject_id}']", N)
    assert subject is not None
    u1 = subject.find("odm:StudyEventData[@StudyEventOID='SE.UNSCHEDULED'][@StudyEventRepeatKey='U1']", N)
    assert u1 is not None and u1.find(".//odm:ItemData[@ItemOID='I.SYSBP']", N).get("Value") == "151"  # type: ignore[union-attr]
