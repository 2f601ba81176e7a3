"""CDISC ODM 1.3.2: the study definition and the clinical data of a data cut, in one XML file
that OpenClinica and LibreClinica import.

The definition comes from the protocol and the forms: Protocol lists a StudyEventRef per visit
of the schedule plus the adverse-event log; each StudyEventDef refers to the forms the schedule
names at that visit; each form has one ItemGroupDef with its fields as ItemDefs (DataType from
the field's type) and choice fields with CodeLists. The clinical data places each record in its
visit and form: vital signs and SpO2 by visit and time point, laboratory results, lung function
and six-minute walks by visit and date, infusions at their infusion visits, demographics at screening, adverse events in the log.

De-identified always: subjects by their study id, and date and datetime items are defined but
left out of the clinical data (ODM has no study-day convention; SDTM carries the dates when an
authorised user asks for them). OIDs: ``SE.<visit>``, ``F.<FORM>``, ``IG.<FORM>``, ``I.<FIELD>``,
``CL.<FIELD>``.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable

from trialdesk.analysis.data_cut import check_enrolled
from trialdesk.analysis.sdtm import LAB_TESTS, VITAL_TESTS
from trialdesk.protocol.forms import FormCatalogue, FormField, load_forms
from trialdesk.protocol.model import Protocol
from trialdesk.trial.records import TrialData

NS = "http://www.cdisc.org/ns/odm/v1.3"
AE_LOG = "AE_LOG"
UNSCHEDULED = "UNSCHEDULED"
_DATATYPE = {"text": "text", "integer": "integer", "float": "float", "date": "date", "datetime": "datetime", "choice": "text",
             "yesno": "boolean"}
# the data cut's lung-function and six-minute-walk tests -> (form, field) of protocol/forms.yaml
_FUNCTION_FIELDS = {"FVC": ("pulmonary_function", "fvc"), "FVCPP": ("pulmonary_function", "fvc_pct"),
                    "FEV1": ("pulmonary_function", "fev1"), "DLCOPP": ("pulmonary_function", "dlco_pct"),
                    "SIXMWD": ("six_minute_walk", "smw_distance"),
                    "SIXMWSPO2": ("six_minute_walk", "smw_spo2_nadir"), "BORG": ("six_minute_walk", "smw_borg")}
_LENGTH = {"text": 200, "integer": 10, "float": 16, "choice": 64}


def _oid(prefix: str, name: str) -> str:
    return f"{prefix}.{name.upper()}"


def _el(parent: ET.Element, tag: str, **attrs: str | None) -> ET.Element:
    return ET.SubElement(parent, f"{{{NS}}}{tag}", {k: v for k, v in attrs.items() if v is not None})


def _text(parent: ET.Element, tag: str, text: str) -> None:
    t = _el(_el(parent, tag), "TranslatedText")
    t.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    t.text = text


def _item_def(mdv: ET.Element, f: FormField) -> None:
    kind = "integer" if f.type == "choice" and all(c.code.isdigit() for c in f.choices) else f.type
    item = _el(mdv, "ItemDef", OID=_oid("I", f.name), Name=f.name, DataType=_DATATYPE[kind],
               Length=str(_LENGTH[kind]) if kind in _LENGTH else None, SignificantDigits="3" if kind == "float" else None)
    _text(item, "Question", f.label + (f" ({f.unit})" if f.unit else ""))
    if f.min is not None or f.max is not None:
        for comparator, value in (("GE", f.min), ("LE", f.max)):
            if value is not None:
                check = _el(item, "RangeCheck", Comparator=comparator, SoftHard="Soft")
                _el(check, "CheckValue").text = f"{value:g}"
                _text(check, "ErrorMessage", f"{f.label}: expected {'at least' if comparator == 'GE' else 'at most'} {value:g}")
    if f.type == "choice":
        _el(item, "CodeListRef", CodeListOID=_oid("CL", f.name))


def _definition(study: ET.Element, protocol: Protocol, forms: FormCatalogue) -> None:
    gv = _el(study, "GlobalVariables")
    _el(gv, "StudyName").text = protocol.identification.nct_id
    _el(gv, "StudyDescription").text = protocol.identification.brief_title
    _el(gv, "ProtocolName").text = f"{protocol.identification.nct_id} v{protocol.version}"
    mdv = _el(study, "MetaDataVersion", OID="MDV.1", Name=f"{protocol.id} v{protocol.version}")
    prot = _el(mdv, "Protocol")
    visits = [*protocol.schedule.visits]
    for order, v in enumerate(visits, start=1):
        _el(prot, "StudyEventRef", StudyEventOID=_oid("SE", v.code), OrderNumber=str(order), Mandatory="Yes")
    _el(prot, "StudyEventRef", StudyEventOID=_oid("SE", AE_LOG), OrderNumber=str(len(visits) + 1), Mandatory="No")
    _el(prot, "StudyEventRef", StudyEventOID=_oid("SE", UNSCHEDULED), OrderNumber=str(len(visits) + 2), Mandatory="No")
    for v in visits:
        se = _el(mdv, "StudyEventDef", OID=_oid("SE", v.code), Name=v.name, Repeating="No", Type="Scheduled")
        for order, form_id in enumerate(v.forms, start=1):
            if form_id != "adverse_events":
                _el(se, "FormRef", FormOID=_oid("F", form_id), OrderNumber=str(order), Mandatory="No")
    log = _el(mdv, "StudyEventDef", OID=_oid("SE", AE_LOG), Name="Adverse event log", Repeating="No", Type="Common")
    _el(log, "FormRef", FormOID=_oid("F", "adverse_events"), Mandatory="No")
    # an unscheduled visit (U1, U2... in the desk) is one repeat of this event, its code the StudyEventRepeatKey
    extra = _el(mdv, "StudyEventDef", OID=_oid("SE", UNSCHEDULED), Name="Unscheduled visit", Repeating="Yes", Type="Unscheduled")
    done_at_visits = list(dict.fromkeys(f for v in visits for f in v.forms if f not in ("adverse_events", "infusion")))
    for order, form_id in enumerate(done_at_visits, start=1):
        _el(extra, "FormRef", FormOID=_oid("F", form_id), OrderNumber=str(order), Mandatory="No")
    for form in forms.forms:
        fd = _el(mdv, "FormDef", OID=_oid("F", form.id), Name=form.title, Repeating="No")
        _el(fd, "ItemGroupRef", ItemGroupOID=_oid("IG", form.id), Mandatory="Yes")
    for form in forms.forms:
        ig = _el(mdv, "ItemGroupDef", OID=_oid("IG", form.id), Name=form.title, Repeating="Yes")
        for order, f in enumerate(form.fields, start=1):
            _el(ig, "ItemRef", ItemOID=_oid("I", f.name), OrderNumber=str(order), Mandatory="Yes" if f.required else "No")
    for form in forms.forms:
        for f in form.fields:
            _item_def(mdv, f)
    for form in forms.forms:
        for f in form.fields:
            if f.type == "choice":
                numeric = all(c.code.isdigit() for c in f.choices)
                cl = _el(mdv, "CodeList", OID=_oid("CL", f.name), Name=f.label, DataType="integer" if numeric else "text")
                for c in f.choices:
                    _text(_el(cl, "CodeListItem", CodedValue=c.code), "Decode", c.label)


Items = list[tuple[str, str]]


def _value(v: float | int | bool | str) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _clinical_data(odm: ET.Element, data: TrialData, protocol: Protocol, forms: FormCatalogue) -> None:
    known = {f.name for form in forms.forms for f in form.fields}
    dated = {f.name for form in forms.forms for f in form.fields if f.type in ("date", "datetime")}
    # subject -> visit -> form -> item groups (each a list of (field, value))
    found: dict[str, dict[str, dict[str, list[Items]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))

    def add(subject: str, visit: str, form: str, items: Iterable[tuple[str, float | int | bool | str | None]]) -> None:
        kept = [(n, _value(v)) for n, v in items if v is not None and n in known and n not in dated]
        if kept:
            found[subject][visit][form].append(kept)

    screening = protocol.schedule.visits[0].code
    for p in data.participants:
        race = p.race.casefold().replace(" ", "_")
        ethnicity = p.ethnicity.casefold().replace(" ", "_")
        race_codes = {c.code for c in forms.form("demographics").field("dm_race").choices}
        eth_codes = {c.code for c in forms.form("demographics").field("dm_ethnicity").choices}
        add(p.subject_id, screening, "demographics", [
            ("dm_age", p.age_at_enrolment), ("dm_sex", p.sex),
            ("dm_race", race if race in race_codes else "unknown_or_not_reported"),
            ("dm_ethnicity", ethnicity if ethnicity in eth_codes else "unknown_or_not_reported"),
        ])
    vitals: dict[tuple[str, str, str, dt.date], list[tuple[str, float | int | bool | str | None]]] = defaultdict(list)
    for vs in data.vitals:
        code = VITAL_TESTS[vs.test][0].lower()
        form = "spo2" if vs.test == "SPO2" else "vital_signs"
        value: float | int = round(vs.value) if forms.form(form).field(code).type == "integer" else vs.value
        key = (vs.subject_id, vs.visit, form, vs.date)
        if form == "vital_signs" and vs.timepoint:
            vitals[key].append(("vs_timepoint", vs.timepoint))
        vitals[key].append((code, value))
    for (subject, visit, form, _date), vs_items in sorted(vitals.items()):
        add(subject, visit, form, list(dict.fromkeys(vs_items)))
    labs: dict[tuple[str, str, dt.date], list[tuple[str, float | int | bool | str | None]]] = defaultdict(list)
    for lb in data.labs:
        code = LAB_TESTS.get(lb.loinc, (lb.test, ""))[0].lower()
        labs[(lb.subject_id, lb.visit, lb.date)].append((code, lb.value))
    for (subject, visit, _date), lb_items in sorted(labs.items()):
        add(subject, visit, "laboratory", lb_items)
    tests: dict[tuple[str, str, str, dt.date], list[tuple[str, float | int | bool | str | None]]] = defaultdict(list)
    for ft in data.function_tests:
        form, field = _FUNCTION_FIELDS[ft.test]
        kind = forms.form(form).field(field).type
        tests[(ft.subject_id, ft.visit, form, ft.date)].append((field, round(ft.value) if kind == "integer" else ft.value))
    for (subject, visit, form, _date), ft_items in sorted(tests.items()):
        add(subject, visit, form, ft_items)
    infusion_visit = {v.infusion: v.code for v in protocol.schedule.visits if v.infusion is not None}
    for inf in data.infusions:
        add(inf.subject_id, infusion_visit.get(inf.number, f"INFUSION_{inf.number}"), "infusion", [
            ("inf_number", inf.number), ("inf_weight", inf.weight_kg), ("inf_total_cells", inf.total_cells),
            ("inf_lot", inf.lot), ("inf_donor", inf.donor_id), ("inf_interrupted", inf.interrupted),
        ])
    for ae in sorted(data.adverse_events, key=lambda a: (a.subject_id, a.onset, a.id)):
        add(ae.subject_id, AE_LOG, "adverse_events", [
            ("ae_term", ae.term), ("ae_meddra", ae.meddra_code), ("ae_grade", str(ae.grade)), ("ae_serious", ae.serious),
            ("ae_relatedness", ae.relatedness), ("ae_expected", ae.expected), ("ae_outcome", ae.outcome),
            ("ae_action", ae.action_taken), ("ae_description", ae.description or None),
        ])

    cd = _el(odm, "ClinicalData", StudyOID=_study_oid(protocol), MetaDataVersionOID="MDV.1")
    for p in sorted(data.participants, key=lambda p: p.subject_id):
        sd = _el(cd, "SubjectData", SubjectKey=p.subject_id)
        visits = found.get(p.subject_id, {})
        order = [v.code for v in protocol.schedule.visits] + [AE_LOG]
        for visit in sorted(visits, key=lambda c: (order.index(c), "") if c in order else (len(order), c)):
            if visit in order:
                sed = _el(sd, "StudyEventData", StudyEventOID=_oid("SE", visit))
            else:  # an unscheduled visit: a repeat of the unscheduled event, keyed by its code
                sed = _el(sd, "StudyEventData", StudyEventOID=_oid("SE", UNSCHEDULED), StudyEventRepeatKey=visit)
            for form, groups in visits[visit].items():
                fd = _el(sed, "FormData", FormOID=_oid("F", form))
                for repeat, items in enumerate(groups, start=1):
                    igd = _el(fd, "ItemGroupData", ItemGroupOID=_oid("IG", form), ItemGroupRepeatKey=str(repeat))
                    for name, text in items:
                        _el(igd, "ItemData", ItemOID=_oid("I", name), Value=text)


def _study_oid(protocol: Protocol) -> str:
    return f"S.{protocol.identification.nct_id}"


def build_odm(data: TrialData, protocol: Protocol, forms: FormCatalogue | None = None, allow_empty: bool = False,
              created: dt.datetime | None = None) -> ET.ElementTree[ET.Element]:
    """The ODM document; ``created`` fixes CreationDateTime (tests), else now in UTC."""
    note = check_enrolled(data, "ODM export", allow_empty)
    forms = forms or load_forms()
    missing = sorted({f for v in protocol.schedule.visits for f in v.forms} - set(forms.ids))
    if missing:
        raise ValueError(f"the schedule names forms with no definition: {', '.join(missing)}; add them to the protocol's forms.yaml")
    ET.register_namespace("", NS)
    stamp = (created or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    description = f"{protocol.identification.nct_id}: data cut of {data.cutoff}, de-identified" + (f". {note}" if note else "")
    odm = ET.Element(f"{{{NS}}}ODM", {
        "FileType": "Snapshot", "Granularity": "All", "FileOID": f"F.{protocol.id}.{data.cutoff.isoformat()}",
        "CreationDateTime": stamp, "ODMVersion": "1.3.2", "Originator": "trialdesk", "SourceSystem": "trialdesk",
        "Description": description,
    })
    study = _el(odm, "Study", OID=_study_oid(protocol))
    _definition(study, protocol, forms)
    _clinical_data(odm, data, protocol, forms)
    ET.indent(odm)
    return ET.ElementTree(odm)


def odm_xml(data: TrialData, protocol: Protocol, forms: FormCatalogue | None = None, allow_empty: bool = False,
            created: dt.datetime | None = None) -> str:
    root = build_odm(data, protocol, forms, allow_empty, created).getroot()
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
