"""CDISC SDTM domains of a data cut: DM, AE, EX, VS, LB and DS, as CSV and SAS transport (XPT v5),
with a variable-level metadata table (define-style: domain, variable, label, type, length, codelist).

Variable names, labels and controlled terms follow SDTMIG 3.3 and the CDISC NCI codelists named
in the metadata. Study days count from the reference start date, the first infusion (RFSTDTC):
that day is day 1, the day before is day -1, and there is no day 0.

De-identified by default: subjects by USUBJID/SUBJID only, and every --DTC left empty while the
--DY study days are kept. ``identified=True`` fills the dates; only a caller authorised to hold
them may ask (the EDC checks the role and audits the export).

AEDECOD is the CTCAE v5.0 term (CTCAE terms are MedDRA lowest level terms) and AELLTCD its
MedDRA code; AEBODSYS the MedDRA system organ class. Laboratory results keep the laboratory's
units: LBSTRESN/LBSTRESU repeat the original value and unit (no conversion is made here).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat

from trialdesk.analysis.data_cut import check_enrolled, first_infusion_dates, study_day
from trialdesk.analysis.disposition import dsdecod, sdtm_reason
from trialdesk.protocol.model import Protocol
from trialdesk.trial.records import TrialData

DOMAINS = ("DM", "AE", "EX", "VS", "LB", "DS")
DOSE_UNIT = "10^6 cells/kg"


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    type: str  # "Char" or "Num"
    codelist: str = ""


def _v(spec: str) -> list[Variable]:
    """Variables from lines ``NAME|Label|Char or Num|codelist``."""
    out = []
    for line in filter(None, (raw.strip() for raw in spec.splitlines())):
        name, label, kind, *rest = (part.strip() for part in line.split("|"))
        out.append(Variable(name, label, kind, rest[0] if rest else ""))
    return out


_COMMON = """
STUDYID|Study Identifier|Char
DOMAIN|Domain Abbreviation|Char|DOMAIN (C66734)
USUBJID|Unique Subject Identifier|Char
"""
VARIABLES: dict[str, list[Variable]] = {
    "DM": _v(_COMMON + """
SUBJID|Subject Identifier for the Study|Char
RFSTDTC|Subject Reference Start Date/Time|Char|ISO 8601
RFENDTC|Subject Reference End Date/Time|Char|ISO 8601
RFXSTDTC|Date/Time of First Study Treatment|Char|ISO 8601
RFXENDTC|Date/Time of Last Study Treatment|Char|ISO 8601
RFICDTC|Date/Time of Informed Consent|Char|ISO 8601
DTHDTC|Date/Time of Death|Char|ISO 8601
DTHFL|Subject Death Flag|Char|NY (C66742)
SITEID|Study Site Identifier|Char
AGE|Age|Num
AGEU|Age Units|Char|AGEU (C66781)
SEX|Sex|Char|SEX (C66731)
RACE|Race|Char|RACE (C74457)
ETHNIC|Ethnicity|Char|ETHNIC (C66790)
ARMCD|Planned Arm Code|Char
ARM|Description of Planned Arm|Char
ACTARMCD|Actual Arm Code|Char
ACTARM|Description of Actual Arm|Char
COUNTRY|Country|Char|ISO 3166-1 alpha-3
"""),
    "AE": _v(_COMMON + """
AESEQ|Sequence Number|Num
AESPID|Sponsor-Defined Identifier|Char
AETERM|Reported Term for the Adverse Event|Char
AELLTCD|Lowest Level Term Code|Num|MedDRA
AEDECOD|Dictionary-Derived Term|Char|CTCAE v5.0 / MedDRA
AEBODSYS|Body System or Organ Class|Char|MedDRA SOC
AETOXGR|Standard Toxicity Grade|Char|CTCAE v5.0 grade
AESER|Serious Event|Char|NY (C66742)
AEREL|Causality|Char|sponsor-defined: NOT RELATED, UNLIKELY RELATED, POSSIBLY RELATED, PROBABLY RELATED, DEFINITELY RELATED
AEOUT|Outcome of Adverse Event|Char|OUT (C66768)
AESDTH|Results in Death|Char|NY (C66742)
AESLIFE|Is Life Threatening|Char|NY (C66742)
AESHOSP|Requires or Prolongs Hospitalization|Char|NY (C66742)
AESDISAB|Persist or Signif Disability/Incapacity|Char|NY (C66742)
AESCONG|Congenital Anomaly or Birth Defect|Char|NY (C66742)
AESMIE|Other Medically Important Serious Event|Char|NY (C66742)
AESTDTC|Start Date/Time of Adverse Event|Char|ISO 8601
AEENDTC|End Date/Time of Adverse Event|Char|ISO 8601
AESTDY|Study Day of Start of Adverse Event|Num
AEENDY|Study Day of End of Adverse Event|Num
"""),
    "EX": _v(_COMMON + """
EXSEQ|Sequence Number|Num
EXTRT|Name of Treatment|Char
EXDOSE|Dose|Num
EXDOSU|Dose Units|Char|UNIT (C71620), sponsor extension 10^6 cells/kg
EXDOSFRM|Dose Form|Char|FRM (C66726)
EXROUTE|Route of Administration|Char|ROUTE (C66729)
EXLOT|Lot Number|Char
EXADJ|Reason for Dose Adjustment|Char
VISITNUM|Visit Number|Num
VISIT|Visit Name|Char
EXSTDTC|Start Date/Time of Treatment|Char|ISO 8601
EXENDTC|End Date/Time of Treatment|Char|ISO 8601
EXSTDY|Study Day of Start of Treatment|Num
EXENDY|Study Day of End of Treatment|Num
"""),
    "VS": _v(_COMMON + """
VSSEQ|Sequence Number|Num
VSTESTCD|Vital Signs Test Short Name|Char|VSTESTCD (C66741)
VSTEST|Vital Signs Test Name|Char|VSTEST (C67153)
VSORRES|Result or Finding in Original Units|Char
VSORRESU|Original Units|Char|VSRESU (C66770)
VSSTRESC|Character Result/Finding in Std Format|Char
VSSTRESN|Numeric Result/Finding in Standard Units|Num
VSSTRESU|Standard Units|Char|VSRESU (C66770)
VISITNUM|Visit Number|Num
VISIT|Visit Name|Char
VSTPT|Planned Time Point Name|Char
VSDTC|Date/Time of Measurements|Char|ISO 8601
VSDY|Study Day of Vital Signs|Num
"""),
    "LB": _v(_COMMON + """
LBSEQ|Sequence Number|Num
LBTESTCD|Lab Test or Examination Short Name|Char|LBTESTCD (C65047)
LBTEST|Lab Test or Examination Name|Char|LBTEST (C67154)
LBLOINC|LOINC Code|Char|LOINC
LBORRES|Result or Finding in Original Units|Char
LBORRESU|Original Units|Char|UNIT (C71620)
LBORNRLO|Reference Range Lower Limit in Orig Unit|Char
LBORNRHI|Reference Range Upper Limit in Orig Unit|Char
LBSTRESC|Character Result/Finding in Std Format|Char
LBSTRESN|Numeric Result/Finding in Standard Units|Num
LBSTRESU|Standard Units|Char|UNIT (C71620)
LBNRIND|Reference Range Indicator|Char|NRIND (C78736)
VISITNUM|Visit Number|Num
VISIT|Visit Name|Char
LBDTC|Date/Time of Specimen Collection|Char|ISO 8601
LBDY|Study Day of Specimen Collection|Num
"""),
    "DS": _v(_COMMON + """
DSSEQ|Sequence Number|Num
DSTERM|Reported Term for the Disposition Event|Char
DSDECOD|Standardized Disposition Term|Char|NCOMPLT (C66727) / PROTMLST (C114118)
DSCAT|Category for Disposition Event|Char|DSCAT (C74558)
DSSTDTC|Start Date/Time of Disposition Event|Char|ISO 8601
DSSTDY|Study Day of Start of Disposition Event|Num
"""),
}
LABELS = {"DM": "Demographics", "AE": "Adverse Events", "EX": "Exposure", "VS": "Vital Signs", "LB": "Laboratory Test Results",
          "DS": "Disposition"}

# CDISC controlled terms for the tests the trial records (LOINC -> LBTESTCD, LBTEST)
LAB_TESTS = {
    "1742-6": ("ALT", "Alanine Aminotransferase"), "1920-8": ("AST", "Aspartate Aminotransferase"),
    "2160-0": ("CREAT", "Creatinine"), "718-7": ("HGB", "Hemoglobin"), "6690-2": ("WBC", "Leukocytes"),
    "26464-8": ("WBC", "Leukocytes"), "751-8": ("NEUT", "Neutrophils"), "777-3": ("PLAT", "Platelets"),
    "26515-7": ("PLAT", "Platelets"), "731-0": ("LYM", "Lymphocytes"), "1975-2": ("BILI", "Bilirubin"),
}
VITAL_TESTS = {
    "SYSBP": ("SYSBP", "Systolic Blood Pressure"), "DIABP": ("DIABP", "Diastolic Blood Pressure"), "PULSE": ("PULSE", "Pulse Rate"),
    "RESP": ("RESP", "Respiratory Rate"), "TEMP": ("TEMP", "Temperature"), "SPO2": ("OXYSAT", "Oxygen Saturation"),
    "WEIGHT": ("WEIGHT", "Weight"),
}
SEX = {"female": "F", "male": "M", "unknown": "U"}
RACE = {
    "american indian or alaska native": "AMERICAN INDIAN OR ALASKA NATIVE", "asian": "ASIAN",
    "black or african american": "BLACK OR AFRICAN AMERICAN",
    "native hawaiian or other pacific islander": "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER",
    "white": "WHITE", "more than one race": "MULTIPLE", "unknown": "UNKNOWN",
}
ETHNIC = {"hispanic or latino": "HISPANIC OR LATINO", "not hispanic or latino": "NOT HISPANIC OR LATINO", "unknown": "UNKNOWN"}
AEREL = {"unrelated": "NOT RELATED", "unlikely": "UNLIKELY RELATED", "possibly": "POSSIBLY RELATED", "probably": "PROBABLY RELATED",
         "definitely": "DEFINITELY RELATED"}
AEOUT = {"recovered": "RECOVERED/RESOLVED", "recovering": "RECOVERING/RESOLVING", "not_recovered": "NOT RECOVERED/NOT RESOLVED",
         "recovered_with_sequelae": "RECOVERED/RESOLVED WITH SEQUELAE", "fatal": "FATAL", "unknown": "UNKNOWN"}
COUNTRY = {"united states": "USA"}


class SdtmError(ValueError):
    pass


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


@dataclass(frozen=True)
class Sdtm:
    """The domains as DataFrames (columns in metadata order) and the variable metadata."""

    domains: dict[str, pd.DataFrame]
    identified: bool
    note: str | None = None

    def metadata(self) -> pd.DataFrame:
        rows = []
        for domain, variables in VARIABLES.items():
            frame = self.domains[domain]
            for order, var in enumerate(variables, start=1):
                if var.type == "Num":
                    length = 8
                else:
                    values = frame[var.name].dropna().astype(str) if len(frame) else pd.Series([], dtype=str)
                    length = max([1, *(len(v.encode("utf-8")) for v in values)])
                rows.append({"domain": domain, "order": order, "variable": var.name, "label": var.label, "type": var.type,
                             "length": length, "codelist": var.codelist})
        return pd.DataFrame(rows)

    def write(self, directory: Path) -> list[Path]:
        """``<domain>.csv`` and ``<domain>.xpt`` for every domain, ``define.csv`` (the metadata), and
        ``export.json`` (how the export was made: identified or not, and any allow_empty note)."""
        directory.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for domain, frame in self.domains.items():
            csv_path = directory / f"{domain.lower()}.csv"
            frame.to_csv(csv_path, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            xpt_path = directory / f"{domain.lower()}.xpt"
            labels: list[str | None] = [v.label for v in VARIABLES[domain]]
            label = LABELS[domain] if self.note is None else f"{LABELS[domain]} (EMPTY CUT)"
            pyreadstat.write_xport(_for_xpt(frame, domain), str(xpt_path), file_label=label[:40], column_labels=labels,
                                   table_name=domain, file_format_version=5)
            written += [csv_path, xpt_path]
        define = directory / "define.csv"
        self.metadata().to_csv(define, index=False, lineterminator="\n")
        manifest = directory / "export.json"
        manifest.write_text(json.dumps({"identified": self.identified, "allow_empty_note": self.note, "domains": list(self.domains)},
                                       indent=2) + "\n", encoding="utf-8")
        return [*written, define, manifest]


def _for_xpt(frame: pd.DataFrame, domain: str) -> pd.DataFrame:
    """Char columns as text (empty, not missing) and Num columns as floats, as SAS stores them."""
    out = frame.copy()
    for var in VARIABLES[domain]:
        if var.type == "Char":
            out[var.name] = out[var.name].fillna("").astype(str)
        else:
            out[var.name] = pd.to_numeric(out[var.name], errors="coerce").astype("float64")
    return out


def _frame(domain: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    names = [v.name for v in VARIABLES[domain]]
    for i, row in enumerate(rows):
        unknown = set(row) - set(names)
        if unknown:
            raise SdtmError(f"{domain} row {i}: variables {sorted(unknown)} are not in the {domain} metadata")
    frame = pd.DataFrame(rows, columns=names)
    for var in VARIABLES[domain]:
        if var.type == "Num":
            frame[var.name] = pd.to_numeric(frame[var.name], errors="coerce")
        else:
            frame[var.name] = frame[var.name].astype(object).where(frame[var.name].notna(), None)
    return frame


def _sequenced(rows: list[dict[str, Any]], seq: str, key: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
    rows = sorted(rows, key=key)
    counters: dict[str, int] = {}
    for row in rows:
        counters[row["USUBJID"]] = counters.get(row["USUBJID"], 0) + 1
        row[seq] = counters[row["USUBJID"]]
    return rows


def build_sdtm(data: TrialData, protocol: Protocol, identified: bool = False, allow_empty: bool = False) -> Sdtm:
    note = check_enrolled(data, "SDTM export", allow_empty)
    study = protocol.identification.nct_id
    first = first_infusion_dates(data)
    visits = {v.code: (i + 1, v.name) for i, v in enumerate(protocol.schedule.visits)}

    def usubjid(subject: str) -> str:
        return f"{study}-{subject}"

    def dtc(value: dt.date | dt.datetime | None) -> str | None:
        return value.isoformat() if identified and value is not None else None

    def base(domain: str, subject: str) -> dict[str, Any]:
        return {"STUDYID": study, "DOMAIN": domain, "USUBJID": usubjid(subject)}

    def visit(code: str) -> dict[str, Any]:
        num, name = visits.get(code, (None, code))
        return {"VISITNUM": num, "VISIT": name}

    arm = protocol.arms[0]
    country = COUNTRY.get(protocol.locations[0].country.casefold(), protocol.locations[0].country) if protocol.locations else None
    deaths = {ae.subject_id: ae.resolved or ae.onset for ae in data.adverse_events if ae.outcome == "fatal"}
    dm = []
    for p in data.participants:
        infs = data.infusions_of(p.subject_id)
        infused = bool(infs)
        dm.append({**base("DM", p.subject_id), "SUBJID": p.subject_id,
                   "RFSTDTC": dtc(first.get(p.subject_id)), "RFENDTC": dtc(p.off_study_on),
                   "RFXSTDTC": dtc(first.get(p.subject_id)), "RFXENDTC": dtc(max((i.date for i in infs), default=None)),
                   "RFICDTC": dtc(p.consented_on), "DTHDTC": dtc(deaths.get(p.subject_id)),
                   "DTHFL": "Y" if p.subject_id in deaths else None,
                   "SITEID": "01", "AGE": p.age_at_enrolment, "AGEU": "YEARS", "SEX": SEX[p.sex],
                   "RACE": RACE.get(p.race.casefold(), "NOT REPORTED"), "ETHNIC": ETHNIC.get(p.ethnicity.casefold(), "NOT REPORTED"),
                   "ARMCD": "MSC", "ARM": arm.label, "ACTARMCD": "MSC" if infused else "NOTTRT",
                   "ACTARM": arm.label if infused else "Not Treated", "COUNTRY": country})

    ae_rows = []
    for ae in data.adverse_events:
        ref = first.get(ae.subject_id)
        ae_rows.append({**base("AE", ae.subject_id), "AESPID": ae.id, "AETERM": ae.term, "AELLTCD": ae.meddra_code,
                        "AEDECOD": ae.term, "AEBODSYS": ae.soc, "AETOXGR": str(ae.grade), "AESER": _yn(ae.serious),
                        "AEREL": AEREL[ae.relatedness], "AEOUT": AEOUT[ae.outcome],
                        "AESDTH": _yn("death" in ae.seriousness), "AESLIFE": _yn("life_threatening" in ae.seriousness),
                        "AESHOSP": _yn("hospitalisation" in ae.seriousness), "AESDISAB": _yn("disability" in ae.seriousness),
                        "AESCONG": _yn("congenital_anomaly" in ae.seriousness), "AESMIE": _yn("important_medical_event" in ae.seriousness),
                        "AESTDTC": dtc(ae.onset), "AEENDTC": dtc(ae.resolved),
                        "AESTDY": study_day(ae.onset, ref), "AEENDY": study_day(ae.resolved, ref)})

    infusion_visits = {v.infusion: v.code for v in protocol.schedule.visits if v.infusion is not None}
    treatment = protocol.study_intervention.name
    ex_rows = []
    for inf in data.infusions:
        ref = first.get(inf.subject_id)
        start: dt.date | dt.datetime = inf.started_at or inf.date
        end: dt.date | dt.datetime = inf.stopped_at or inf.date
        ex_rows.append({**base("EX", inf.subject_id), "EXTRT": treatment, "EXDOSE": round(inf.dose_per_kg / 1e6, 4), "EXDOSU": DOSE_UNIT,
                        "EXDOSFRM": "SUSPENSION", "EXROUTE": "INTRAVENOUS", "EXLOT": inf.lot,
                        "EXADJ": "INFUSION INTERRUPTED" if inf.interrupted else None,
                        **visit(infusion_visits.get(inf.number, f"INFUSION {inf.number}")),
                        "EXSTDTC": dtc(start), "EXENDTC": dtc(end), "EXSTDY": study_day(inf.date, ref),
                        "EXENDY": study_day(end.date() if isinstance(end, dt.datetime) else end, ref)})

    vs_rows = []
    for vs in data.vitals:
        code, name = VITAL_TESTS[vs.test]
        vs_rows.append({**base("VS", vs.subject_id), "VSTESTCD": code, "VSTEST": name, "VSORRES": f"{vs.value:g}", "VSORRESU": vs.unit,
                        "VSSTRESC": f"{vs.value:g}", "VSSTRESN": vs.value, "VSSTRESU": vs.unit, **visit(vs.visit), "VSTPT": vs.timepoint,
                        "VSDTC": dtc(vs.date), "VSDY": study_day(vs.date, first.get(vs.subject_id))})

    lb_rows = []
    for lb in data.labs:
        if lb.loinc not in LAB_TESTS:
            raise SdtmError(f"laboratory result {lb.test!r} (LOINC {lb.loinc}) of {lb.subject_id} on visit {lb.visit} has no LBTESTCD;"
                            " add the LOINC code to LAB_TESTS in trialdesk/analysis/sdtm.py")
        code, name = LAB_TESTS[lb.loinc]
        low, high = lb.range_low, lb.range_high
        nrind = None
        if low is not None and lb.value < low:
            nrind = "LOW"
        elif high is not None and lb.value > high:
            nrind = "HIGH"
        elif low is not None or high is not None:
            nrind = "NORMAL"
        lb_rows.append({**base("LB", lb.subject_id), "LBTESTCD": code, "LBTEST": name, "LBLOINC": lb.loinc, "LBORRES": f"{lb.value:g}",
                        "LBORRESU": lb.unit, "LBORNRLO": None if low is None else f"{low:g}",
                        "LBORNRHI": None if high is None else f"{high:g}",
                        "LBSTRESC": f"{lb.value:g}", "LBSTRESN": lb.value, "LBSTRESU": lb.unit, "LBNRIND": nrind, **visit(lb.visit),
                        "LBDTC": dtc(lb.date), "LBDY": study_day(lb.date, first.get(lb.subject_id))})

    ds_rows = []
    for p in data.participants:
        ref = first.get(p.subject_id)
        ds_rows.append({**base("DS", p.subject_id), "DSTERM": "INFORMED CONSENT OBTAINED", "DSDECOD": "INFORMED CONSENT OBTAINED",
                        "DSCAT": "PROTOCOL MILESTONE", "DSSTDTC": dtc(p.consented_on), "DSSTDY": study_day(p.consented_on, ref)})
        if p.status in ("completed", "withdrawn", "off_study"):
            term = p.off_study_reason or ("COMPLETED" if p.status == "completed" else sdtm_reason(None))
            ds_rows.append({**base("DS", p.subject_id), "DSTERM": term.upper(), "DSDECOD": dsdecod(p), "DSCAT": "DISPOSITION EVENT",
                            "DSSTDTC": dtc(p.off_study_on), "DSSTDY": study_day(p.off_study_on, ref)})

    domains = {
        "DM": _frame("DM", sorted(dm, key=lambda r: r["USUBJID"])),
        "AE": _frame("AE", _sequenced(ae_rows, "AESEQ", lambda r: (r["USUBJID"], r["AESTDY"] or 0, r["AESPID"]))),
        "EX": _frame("EX", _sequenced(ex_rows, "EXSEQ", lambda r: (r["USUBJID"], r["EXSTDY"] or 0))),
        "VS": _frame("VS", _sequenced(vs_rows, "VSSEQ", lambda r: (r["USUBJID"], r["VSDY"] or 0, r["VSTESTCD"], r["VSTPT"] or ""))),
        "LB": _frame("LB", _sequenced(lb_rows, "LBSEQ", lambda r: (r["USUBJID"], r["LBDY"] or 0, r["LBTESTCD"]))),
        "DS": _frame("DS", _sequenced(ds_rows, "DSSEQ", lambda r: (r["USUBJID"], r["DSSTDY"] or 0, r["DSCAT"] != "PROTOCOL MILESTONE"))),
    }
    return Sdtm(domains, identified, note)


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(path.read_text(encoding="utf-8")), dtype=str, keep_default_na=False)
