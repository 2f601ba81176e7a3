"""Define-XML 2.1 of an SDTM export, and its reviewer's guide (HTML and PDF).

Define-XML 2.1 (CDISC): one ODM 1.3.2 document whose MetaDataVersion describes each dataset
(``ItemGroupDef`` with its ``def:Class``, ``def:Structure``, keys and the ``def:leaf`` naming the XPT
file), each variable (``ItemDef``: data type, length, label, origin) and the values of each
controlled variable (``CodeList``: the values the export holds, with the NCI code of the CDISC
codelist as an ``Alias`` where the metadata names one; MedDRA, CTCAE, LOINC and RxNorm as
``ExternalCodeList``). Comments (``def:CommentDef``) say what a reviewer must know: AEDECOD holds the
CTCAE term when no MedDRA distribution was given, and how the de-identified dates are shifted.

It is validated against the Define-XML 2.1 schema as the ``odmlib`` package ships it
(``odmlib/schemas/define/2.1/define2-1-0.xsd``, which redefines the ODM 1.3.2 foundation schema
shipped beside it): :func:`validate` (a test dependency; nothing is downloaded at run time).

Hand-written (ElementTree) rather than generated with odmlib's object model: the document is small,
and its content (which comment, which origin) is what needs reviewing, not the XML plumbing.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trialdesk.analysis.sdtm import Sdtm

ODM = "http://www.cdisc.org/ns/odm/v1.3"
DEF = "http://www.cdisc.org/ns/def/v2.1"
XLINK = "http://www.w3.org/1999/xlink"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SDTMIG = "3.3"
CT_VERSION = "2021-12-17"  # the CDISC/NCI SDTM controlled terminology release the codelists named in the metadata follow

STRUCTURE = {"DM": "One record per subject", "AE": "One record per adverse event per subject",
             "EX": "One record per infusion per subject",
             "VS": "One record per vital sign measurement per time point per visit per subject",
             "LB": "One record per lab test per visit per subject",
             "DS": "One record per disposition status or protocol milestone per subject",
             "TS": "One record per trial summary parameter value", "TA": "One record per planned Element per Arm",
             "TE": "One record per planned Element", "CM": "One record per recorded medication per subject",
             "MH": "One record per medical history event per subject", "DV": "One record per protocol deviation per subject",
             "RE": "One record per respiratory test per visit per subject", "FT": "One record per functional test per visit per subject"}
_EXTERNAL = {"MedDRA": "MEDDRA", "LOINC": "LOINC", "ISO 3166-1 alpha-3": "ISO 3166-1 alpha-3", "CTCAE v5.0 grade": "CTCAE",
             "ICD-10-CM code when recorded": "ICD-10-CM", "RxNorm (RXCUI when recorded)": "RXNORM"}
_DERIVED = re.compile(r"^(USUBJID|..SEQ|..DY|..STDY|..ENDY|EPOCH|VISITNUM|RFSTDTC|RFENDTC|RFPENDTC|RFXSTDTC|RFXENDTC|DTHFL|ACTARMCD|ACTARM"
                      r"|LBSTRESC|LBSTRESN|LBSTRESU|LBSTNRLO|LBSTNRHI|LBNRIND|LBBLFL|..STRESC|..STRESN|..STRESU|AEDECOD|AEPTCD|AEHLT|AEHLTCD"
                      r"|AEHLGT|AEHLGTCD|AEBODSYS|AEBDSYCD|AESOC|AESOCCD|AELLT|AELLTCD|AEACN|EXDOSE|AGE)$")
_ASSIGNED = {"STUDYID", "DOMAIN", "SITEID", "ARMCD", "ARM", "COUNTRY", "AGEU", "VISIT", "LBCAT", "FTCAT", "DVSCAT", "EXDOSU", "EXDOSFRM",
             "EXROUTE", "EXTRT", "LBTESTCD", "LBTEST", "VSTESTCD", "VSTEST", "RETESTCD", "RETEST", "FTTESTCD", "FTTEST", "DSCAT", "DSDECOD"}


def _el(parent: ET.Element, tag: str, ns: str = ODM, text: str | None = None, **attrs: str | None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ns}}}{tag}", {_attr(k): v for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def _attr(name: str) -> str:
    if name.startswith("def_"):
        return f"{{{DEF}}}{name[4:]}"
    if name.startswith("xlink_"):
        return f"{{{XLINK}}}{name[6:]}"
    return name


def _description(parent: ET.Element, text: str) -> None:
    t = _el(_el(parent, "Description"), "TranslatedText", text=text)
    t.set(XML_LANG, "en")


#: the keys of the trial design datasets (reference data: no subject)
TRIAL_DESIGN_KEYS = {"TS": ["STUDYID", "TSPARMCD", "TSSEQ"], "TA": ["STUDYID", "ARMCD", "TAETORD"], "TE": ["STUDYID", "ETCD"]}


def _origin(domain: str, name: str) -> tuple[str, str | None]:
    if domain in ("TS", "TA", "TE"):
        return "Protocol", None
    if name in _ASSIGNED:
        return "Assigned", "Sponsor"
    if _DERIVED.match(name):
        return "Derived", "Sponsor"
    return "Collected", "Investigator"


def _data_type(values: list[Any], kind: str, name: str) -> str:
    if kind == "Num":
        return "integer" if all(float(v).is_integer() for v in values) else "float"
    if name.endswith("DTC") and values and all(re.fullmatch(r"\d{4}-\d\d-\d\d", str(v)) for v in values):
        return "date"
    if name.endswith("DTC") and values:
        return "datetime"
    return "text"


def define_xml(sdtm: Sdtm, created: dt.datetime | None = None) -> str:
    """The Define-XML 2.1 document of ``sdtm`` (``created`` fixes CreationDateTime for tests)."""
    from trialdesk.analysis.sdtm import CLASSES, LABELS, VARIABLES

    protocol = sdtm.protocol
    study_id = protocol.identification.nct_id if protocol else "STUDY"
    ET.register_namespace("", ODM)
    ET.register_namespace("def", DEF)
    ET.register_namespace("xlink", XLINK)
    stamp = (created or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    root = ET.Element(f"{{{ODM}}}ODM", {
        "FileType": "Snapshot", "FileOID": f"DEFINE.{study_id}.SDTM.{sdtm.cutoff or ''}", "CreationDateTime": stamp, "ODMVersion": "1.3.2",
        "Originator": "trialdesk", "SourceSystem": "trialdesk", f"{{{DEF}}}Context": "Submission"})
    study = _el(root, "Study", OID=f"S.{study_id}")
    gv = _el(study, "GlobalVariables")
    _el(gv, "StudyName", text=study_id)
    _el(gv, "StudyDescription", text=protocol.identification.official_title if protocol else study_id)
    _el(gv, "ProtocolName", text=f"{study_id} v{protocol.version}" if protocol else study_id)
    mdv = _el(study, "MetaDataVersion", OID="MDV.SDTM", Name=f"{study_id} SDTM data cut {sdtm.cutoff}",
              Description=("Identified export (real dates)" if sdtm.identified else "De-identified export (dates shifted per participant)"),
              def_DefineVersion="2.1.0", def_CommentOID="COM.EXPORT")
    standards = _el(mdv, "Standards", DEF)
    _el(standards, "Standard", DEF, OID="STD.SDTMIG", Name="SDTMIG", Type="IG", Version=SDTMIG, Status="Final")
    _el(standards, "Standard", DEF, OID="STD.CT", Name="CDISC/NCI", Type="CT", PublishingSet="SDTM", Version=CT_VERSION, Status="Final")
    supplemental = _el(mdv, "SupplementalDoc", DEF)
    _el(supplemental, "DocumentRef", DEF, leafID="LF.GUIDE")

    items: list[tuple[str, str, Any, list[Any]]] = []  # (item OID, domain, variable, values)
    for domain, variables in VARIABLES.items():
        frame = sdtm.domains[domain]
        ig = _el(mdv, "ItemGroupDef", OID=f"IG.{domain}", Name=domain, Repeating="No" if domain == "DM" else "Yes", Domain=domain,
                 SASDatasetName=domain, IsReferenceData="Yes" if domain in TRIAL_DESIGN_KEYS else "No", Purpose="Tabulation",
                 def_Structure=STRUCTURE[domain], def_ArchiveLocationID=f"LF.{domain}", def_StandardOID="STD.SDTMIG",
                 def_HasNoData="Yes" if frame.empty else None)
        _description(ig, LABELS[domain])
        keys = TRIAL_DESIGN_KEYS.get(domain) or ["STUDYID", "USUBJID", *([] if domain == "DM" else [f"{domain}SEQ"])]
        for order, var in enumerate(variables, start=1):
            required = var.name in ("STUDYID", "DOMAIN", "USUBJID", f"{domain}SEQ", "TSPARMCD", "TSPARM")
            _el(ig, "ItemRef", ItemOID=f"IT.{domain}.{var.name}", OrderNumber=str(order), Mandatory="Yes" if required else "No",
                KeySequence=str(keys.index(var.name) + 1) if var.name in keys else None)
            values = [v for v in frame[var.name].tolist() if v is not None and v == v and v != ""] if not frame.empty else []
            items.append((f"IT.{domain}.{var.name}", domain, var, values))
        _el(ig, "Class", DEF, Name=CLASSES[domain])
        leaf = _el(ig, "leaf", DEF, ID=f"LF.{domain}", xlink_href=f"{domain.lower()}.xpt")
        _el(leaf, "title", DEF, text=f"{domain.lower()}.xpt")

    codelists: list[tuple[str, str, str, list[str], str]] = []  # (OID, name, data type, values, codelist spec)
    comments: dict[str, str] = {}
    for oid, domain, var, values in items:
        data_type = _data_type(values, var.type, var.name)
        length = None
        if data_type in ("text", "integer", "float"):
            length = str(max([1, *(len(str(v).encode("utf-8")) if var.type == "Char" else len(f"{v:g}") for v in values)]))
        comment = None
        if var.name == "AEDECOD":
            comment = "COM.AEDECOD"
            comments[comment] = ("MedDRA preferred term from the licensed distribution given to the export"
                                 f" (MedDRA {sdtm.meddra_version or 'version not stated'})." if sdtm.meddra_used else
                                 "No MedDRA distribution was given to this export: AEDECOD holds the CTCAE v5.0 term, which is a MedDRA"
                                 " lowest level term (AELLT), not the MedDRA preferred term; AEPTCD, AEHLT and AEHLGT are empty.")
        if var.name.endswith("DTC") and not sdtm.identified and domain not in TRIAL_DESIGN_KEYS:
            comment = "COM.DATESHIFT"
            comments[comment] = ("De-identified: every date of a participant is shifted back by the same number of days (1 to 365,"
                                 " from a keyed hash of USUBJID); intervals and study days are exact, calendar dates are not real.")
        item = _el(mdv, "ItemDef", OID=oid, Name=var.name, DataType=data_type, Length=length,
                   SignificantDigits="4" if data_type == "float" else None, SASFieldName=var.name, def_CommentOID=comment)
        _description(item, var.label)
        cl = var.codelist
        if cl and cl != "ISO 8601" and var.type == "Char":
            cl_oid = f"CL.{domain}.{var.name}"
            _el(item, "CodeListRef", CodeListOID=cl_oid)
            codelists.append((cl_oid, f"{var.name} ({cl})"[:120], "text", sorted({str(v) for v in values}), cl))
        elif cl in _EXTERNAL and var.type == "Num":
            cl_oid = f"CL.{domain}.{var.name}"
            _el(item, "CodeListRef", CodeListOID=cl_oid)
            codelists.append((cl_oid, f"{var.name} ({cl})", "integer", [], cl))
        origin_type, source = _origin(domain, var.name)
        _el(item, "Origin", DEF, Type=origin_type, Source=source)

    for cl_oid, name, data_type, values, spec in codelists:
        codelist = _el(mdv, "CodeList", OID=cl_oid, Name=name, DataType=data_type)
        dictionary = _EXTERNAL.get(spec)
        if dictionary == "MEDDRA" and not sdtm.meddra_used and cl_oid.endswith(("AEDECOD", "AELLT", "AELLTCD")):
            _el(codelist, "ExternalCodeList", Dictionary="CTCAE", Version="5.0")
        elif dictionary:
            version = sdtm.meddra_version if dictionary == "MEDDRA" else ("5.0" if dictionary == "CTCAE" else None)
            _el(codelist, "ExternalCodeList", Dictionary=dictionary, Version=version or "unspecified")
        else:
            for value in values:
                _el(codelist, "EnumeratedItem", CodedValue=value)
            if not values:
                _el(codelist, "ExternalCodeList", Dictionary=spec[:100] or "sponsor-defined", Version="not applicable")
            code = re.search(r"\((C\d+)\)", spec)
            if code and values:
                _el(codelist, "Alias", Context="nci:ExtCodeID", Name=code.group(1))

    comments["COM.EXPORT"] = (("Identified export: real dates." if sdtm.identified else
                               "De-identified export: subjects by USUBJID only; dates shifted per participant.")
                              + " " + " ".join(sdtm.warnings))
    for oid, text in comments.items():
        c = _el(mdv, "CommentDef", DEF, OID=oid)
        _description(c, text.strip())
    guide = _el(mdv, "leaf", DEF, ID="LF.GUIDE", xlink_href="reviewers_guide.html")
    _el(guide, "title", DEF, text="Reviewer's guide (HTML; reviewers_guide.pdf beside it)")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def schema_path() -> str:
    """The Define-XML 2.1 schema as the pinned test dependency odmlib ships it."""
    from importlib import resources

    return str(resources.files("odmlib.schemas") / "define" / "2.1" / "define2-1-0.xsd")


def validate(text: str) -> list[str]:
    """Schema errors of a Define-XML 2.1 document ([] when valid); needs ``xmlschema`` and ``odmlib`` (test dependencies)."""
    import xmlschema

    schema = xmlschema.XMLSchema(schema_path())
    return [f"{e.path}: {e.reason}" for e in schema.iter_errors(text)]


# --- reviewer's guide ----------------------------------------------------------------------


def guide_sections(sdtm: Sdtm) -> list[tuple[str, list[str]]]:
    """The reviewer's guide as (heading, paragraphs), rendered to HTML and PDF."""
    from trialdesk.analysis.sdtm import LABELS, dose_unit

    p = sdtm.protocol
    study = p.identification.nct_id if p else "the study"
    sections: list[tuple[str, list[str]]] = [
        ("Study", [f"{study}: {p.identification.official_title}." if p else study,
                   f"Data cut of {sdtm.cutoff}. SDTMIG {SDTMIG}; codelists named by their NCI codes, declared against the CDISC/NCI SDTM"
                   f" terminology of {CT_VERSION} (the values were not checked one by one against that release); Define-XML 2.1.0 in"
                   " define.xml (validated against the Define-XML 2.1 schema); the same metadata as a table in define.csv."]),
        ("Datasets", [f"{d.lower()}.xpt ({LABELS[d]}): {len(f)} record{'s' if len(f) != 1 else ''}." for d, f in sdtm.domains.items()]),
        ("Dates", ["Identified export: every --DTC is the real date." if sdtm.identified else
                   "De-identified export: every date of a participant is shifted back by one offset of 1 to 365 days drawn from a"
                   " keyed hash (HMAC-SHA256) of USUBJID. The offset is not in the export. Intervals, study days (--DY) and the order"
                   " of events are exact; day of week and season are not. TS keeps the trial's public dates."]),
        ("Adverse event coding", [
            "AETERM is the investigator's verbatim text when the EDC kept it, else the CTCAE v5.0 term the investigator chose."
            " AETOXGR is the CTCAE v5.0 grade. AELLT/AELLTCD are the CTCAE term and its MedDRA lowest level term code; AESOC/AESOCCD"
            " and AEBODSYS/AEBDSYCD the system organ class (its code from the CTCAE table's 'Other, specify' row of that SOC).",
            (f"MedDRA {sdtm.meddra_version or ''} was given: AEDECOD is the preferred term, with AEPTCD, AEHLT, AEHLGT and the primary"
             " SOC path." if sdtm.meddra_used else
             "No MedDRA distribution was given: AEDECOD holds the CTCAE v5.0 term (a MedDRA lowest level term), not the MedDRA"
             " preferred term, and AEPTCD, AEHLT and AEHLGT are empty. Re-export with --meddra to code to preferred terms.")]),
        ("Conformance notes", [
            "EPOCH: SCREENING before the first infusion, TREATMENT from the first to the last infusion, FOLLOW-UP after it.",
            "LB: LBSTRESN/LBSTRESU in SI units converted with UCUM (creatinine and bilirubin umol/L, haemoglobin g/L, counts 10^9/L);"
            " converted values have four significant digits. LBBLFL marks the last result on or before the first infusion.",
            "Sponsor-defined terms: RETESTCD FVCPP and DLCOPP (percent predicted), the FT six-minute-walk test codes, LBCAT, DVCAT"
            " (the deviation log's categories) and DVSCAT (AUTOMATIC or SITE ENTERED). AEREL uses the 5-point scale of the protocol.",
            "DV holds subject-level deviations only; deviations of the site with no participant are listed in the deviation log.",
            f"EX: EXDOSE in {dose_unit(p) if p else 'the protocol unit'} (the protocol's dose unit, a sponsor extension of UNIT)."]),
    ]
    if sdtm.warnings or sdtm.note:
        sections.append(("Warnings of this export", [*sdtm.warnings, *([sdtm.note] if sdtm.note else [])]))
    return sections


def guide_html(sdtm: Sdtm) -> str:
    title = f"SDTM reviewer's guide — {sdtm.protocol.identification.nct_id if sdtm.protocol else ''}, data cut {sdtm.cutoff}"
    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, paragraphs in guide_sections(sdtm):
        body.append(f"<h2>{html.escape(heading)}</h2>")
        body += [f"<p>{html.escape(p)}</p>" for p in paragraphs]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + html.escape(title) + "</title>"
            "<style>body{font-family:sans-serif;max-width:48em;margin:2em auto;line-height:1.45}h2{margin-top:1.4em}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def guide_pdf(sdtm: Sdtm) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    title = f"SDTM reviewer's guide - {sdtm.protocol.identification.nct_id if sdtm.protocol else ''}, data cut {sdtm.cutoff}"
    pdf.multi_cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
    for heading, paragraphs in guide_sections(sdtm):
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.multi_cell(0, 6, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        for text in paragraphs:
            pdf.multi_cell(0, 5, text.encode("latin-1", "replace").decode("latin-1"), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
    return bytes(pdf.output())
