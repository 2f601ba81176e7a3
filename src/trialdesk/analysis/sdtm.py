"""CDISC SDTM domains of a data cut, as CSV and SAS transport (XPT v5), with a variable-level metadata
table (``define.csv``), Define-XML 2.1 (``define.xml``, :mod:`.define`) and a reviewer's guide.

Domains: DM, AE, EX, VS, LB, DS; TS (trial summary, from the protocol file); TA and TE (trial arms and
elements: an arm per cohort or dose level where the protocol has them, else its one arm; DM's ARM/ACTARM are
those arms, read by :mod:`trialdesk.trial.groups`); CM and MH (the
concomitant-medication and medical-history forms); DV (the protocol-deviation log, subject-level
entries); RE (lung function: FVC, FEV1, DLCO) and FT (six-minute walk). Variable names, labels and
controlled terms follow SDTMIG 3.3 and the CDISC NCI codelists named in the metadata; codes the
standard has no term for are marked "sponsor-defined" there. Study days count from the reference
start date, the first infusion (RFSTDTC): that day is day 1, the day before is day -1, and there is
no day 0. EPOCH: SCREENING before the first infusion, TREATMENT from the first to the last infusion,
FOLLOW-UP after it.

Dates. The identified export (``identified=True``; the EDC checks the role and audits it) keeps the
real dates. The de-identified export shifts every date of a participant back by the same number of
days, an offset of 1 to 365 days drawn per participant from a keyed hash (HMAC-SHA256 of USUBJID
with ``shift_key``; a fresh random key per export when none is given, so two exports then differ).
The offset is written nowhere in the export; intervals, study days and the order of events are kept
exactly, so the data stays analysable while the calendar dates are not the participant's. TS keeps
the trial's own dates (they are public in the registry).

MedDRA (:mod:`.meddra`): AELLT/AELLTCD and AESOC/AESOCCD (and AEBODSYS/AEBDSYCD) from the CTCAE v5.0
table; with a licensed MedDRA distribution (``meddra=``) AEDECOD is the preferred term and AEPTCD,
AEHLT/AEHLTCD, AEHLGT/AEHLGTCD and the primary SOC path are filled; without it AEDECOD holds the
CTCAE term and :attr:`Sdtm.warnings` says so. AETERM is the investigator's verbatim text when the EDC
kept it, else the CTCAE term the investigator chose. AEACN maps the EDC's action taken to ACN (C66767);
it is NOT APPLICABLE before the first infusion and after the last planned one (no study treatment
left to act on). AECONTRT is Y when a treatment was given for the event.

Laboratory results: LBORRES/LBORRESU as reported; LBSTRESN/LBSTRESU converted to one standard unit
per test (SI; ``LAB_STANDARD_UNIT``) through :mod:`trialdesk.terminology.units` (UCUM; a converted
value is rounded to four significant digits, an unconverted one kept as reported), reference
ranges with them (LBSTNRLO/LBSTNRHI), LBNRIND against the range, LBBLFL on the last result on or
before the first infusion, LBCAT haematology or chemistry.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat

from trialdesk.analysis.data_cut import check_enrolled, first_infusion_dates, study_day
from trialdesk.analysis.disposition import dsdecod, sdtm_reason
from trialdesk.analysis.meddra import MedDRA, ctcae_coding
from trialdesk.protocol.model import Protocol
from trialdesk.terminology import units
from trialdesk.trial import groups
from trialdesk.trial.dose import PER_KG_IN_MILLIONS, plain_unit
from trialdesk.trial.dose import amount as dose_amount
from trialdesk.trial.records import TrialData

DOMAINS = ("DM", "AE", "EX", "VS", "LB", "DS", "TS", "TA", "TE", "CM", "MH", "DV", "RE", "FT")
SUBJECTLESS = ("TS", "TA", "TE")


def dose_unit(protocol: Protocol) -> str:
    """EXDOSU: the protocol's dose unit (a sponsor extension of UNIT), '10^6 cells/kg' or '10^6 cells'."""
    spec = protocol.study_intervention.dose_spec or PER_KG_IN_MILLIONS
    return plain_unit(spec.unit).removeprefix("×").strip()


NOT_ASSIGNED = ("NOTASSGN", "Not Assigned")


def arm_of(protocol: Protocol, data: TrialData, subject_id: str) -> tuple[str, str, str, str]:
    """ARMCD, ARM, ACTARMCD and ACTARM of a participant: the planned and the actual group of
    :mod:`trialdesk.trial.groups` (cohort 'C2', 'Cohort C2 (100 × 10^6 cells)'; dose level; or the protocol's one arm,
    its ``code`` or ARM1). A participant not infused is in the protocol's arm when it has no groups, and not yet assigned
    (NOTASSGN) when it has cohorts or dose levels; their actual arm is NOTTRT, Not Treated (SDTMIG 3.2 codes)."""
    planned = groups.assigned_group(protocol, data, subject_id, plain=True)
    actual = groups.treated_group(protocol, data, subject_id, plain=True)
    if planned is None and groups.kind(protocol) == "arm":
        planned = groups.groups(protocol, plain=True)[0]
    code, label = (planned.code, planned.title) if planned is not None else NOT_ASSIGNED
    act_code, act_label = (actual.code, actual.title) if actual is not None else ("NOTTRT", "Not Treated")
    return code.upper()[:20], label, act_code.upper()[:20], act_label


def _element(protocol: Protocol, group: groups.Group) -> tuple[str, str]:
    """ETCD and ELEMENT of a group's treatment: the dose level's (e.g. 'DL2', '<product>, 100 × 10^6 cells'), or the product's."""
    product = protocol.interventions[0].name
    if group.dose_level is None:
        return "TRT", product[:40]
    level = group.description.split(": ", 1)[-1]
    return group.dose_level.upper()[:8], f"{product[:40]}, {level}"


def trial_design(protocol: Protocol) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """TA and TE (SDTMIG 3.3 trial design): every arm (one per cohort or dose level where the protocol has them, else the
    protocol's arm) runs through the elements Screening, its treatment and Follow-up, in the epochs SCREENING, TREATMENT
    and FOLLOW-UP that EPOCH uses (treatment from the first to the last infusion)."""
    study = protocol.identification.nct_id
    every = groups.groups(protocol, plain=True)
    te: dict[str, dict[str, Any]] = {"SCRN": {"ELEMENT": "Screening", "TESTRL": "Informed consent", "TEENRL": "First infusion"}}
    ta = []
    for g in every:
        etcd, element = _element(protocol, g)
        te.setdefault(etcd, {"ELEMENT": element, "TESTRL": f"First infusion of {element}", "TEENRL": "Day after the last infusion"})
        for order, (code, epoch) in enumerate((("SCRN", "SCREENING"), (etcd, "TREATMENT"), ("FU", "FOLLOW-UP")), start=1):
            name = te[code]["ELEMENT"] if code in te else "Follow-up"
            ta.append({"STUDYID": study, "DOMAIN": "TA", "ARMCD": g.code.upper()[:20], "ARM": g.title, "TAETORD": order, "ETCD": code,
                       "ELEMENT": name, "TABRANCH": None, "TATRANS": None, "EPOCH": epoch})
    te["FU"] = {"ELEMENT": "Follow-up", "TESTRL": "Day after the last infusion", "TEENRL": "End of participation"}
    return ta, [{"STUDYID": study, "DOMAIN": "TE", "ETCD": code, **row, "TEDUR": None} for code, row in te.items()]


def ex_dose(protocol: Protocol, total_cells: float, weight_kg: float) -> float:
    """EXDOSE: the dose in the protocol's unit and basis (per kg, per m² or total), to 4 decimals."""
    spec = protocol.study_intervention.dose_spec or PER_KG_IN_MILLIONS
    return round(dose_amount(spec, total_cells, weight_kg=weight_kg), 4)



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
RFPENDTC|Date/Time of End of Participation|Char|ISO 8601
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
AELLT|Lowest Level Term|Char|MedDRA
AELLTCD|Lowest Level Term Code|Num|MedDRA
AEDECOD|Dictionary-Derived Term|Char|MedDRA
AEPTCD|Preferred Term Code|Num|MedDRA
AEHLT|High Level Term|Char|MedDRA
AEHLTCD|High Level Term Code|Num|MedDRA
AEHLGT|High Level Group Term|Char|MedDRA
AEHLGTCD|High Level Group Term Code|Num|MedDRA
AEBODSYS|Body System or Organ Class|Char|MedDRA
AEBDSYCD|Body System or Organ Class Code|Num|MedDRA
AESOC|Primary System Organ Class|Char|MedDRA
AESOCCD|Primary System Organ Class Code|Num|MedDRA
AETOXGR|Standard Toxicity Grade|Char|CTCAE v5.0 grade
AESER|Serious Event|Char|NY (C66742)
AEACN|Action Taken with Study Treatment|Char|ACN (C66767)
AECONTRT|Concomitant or Additional Trtmnt Given|Char|NY (C66742)
AEREL|Causality|Char|sponsor-defined: NOT RELATED, UNLIKELY RELATED, POSSIBLY RELATED, PROBABLY RELATED, DEFINITELY RELATED
AEOUT|Outcome of Adverse Event|Char|OUT (C66768)
AESDTH|Results in Death|Char|NY (C66742)
AESLIFE|Is Life Threatening|Char|NY (C66742)
AESHOSP|Requires or Prolongs Hospitalization|Char|NY (C66742)
AESDISAB|Persist or Signif Disability/Incapacity|Char|NY (C66742)
AESCONG|Congenital Anomaly or Birth Defect|Char|NY (C66742)
AESMIE|Other Medically Important Serious Event|Char|NY (C66742)
EPOCH|Epoch|Char|EPOCH (C99079)
AESTDTC|Start Date/Time of Adverse Event|Char|ISO 8601
AEENDTC|End Date/Time of Adverse Event|Char|ISO 8601
AESTDY|Study Day of Start of Adverse Event|Num
AEENDY|Study Day of End of Adverse Event|Num
"""),
    "EX": _v(_COMMON + """
EXSEQ|Sequence Number|Num
EXTRT|Name of Treatment|Char
EXDOSE|Dose|Num
EXDOSU|Dose Units|Char|UNIT (C71620), sponsor extension: the protocol's dose unit
EXDOSFRM|Dose Form|Char|FRM (C66726)
EXROUTE|Route of Administration|Char|ROUTE (C66729)
EXLOT|Lot Number|Char
EXADJ|Reason for Dose Adjustment|Char
VISITNUM|Visit Number|Num
VISIT|Visit Name|Char
EPOCH|Epoch|Char|EPOCH (C99079)
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
EPOCH|Epoch|Char|EPOCH (C99079)
VSDTC|Date/Time of Measurements|Char|ISO 8601
VSDY|Study Day of Vital Signs|Num
"""),
    "LB": _v(_COMMON + """
LBSEQ|Sequence Number|Num
LBTESTCD|Lab Test or Examination Short Name|Char|LBTESTCD (C65047)
LBTEST|Lab Test or Examination Name|Char|LBTEST (C67154)
LBCAT|Category for Lab Test|Char|sponsor-defined: HEMATOLOGY, CHEMISTRY
LBLOINC|LOINC Code|Char|LOINC
LBORRES|Result or Finding in Original Units|Char
LBORRESU|Original Units|Char|UNIT (C71620)
LBORNRLO|Reference Range Lower Limit in Orig Unit|Char
LBORNRHI|Reference Range Upper Limit in Orig Unit|Char
LBSTRESC|Character Result/Finding in Std Format|Char
LBSTRESN|Numeric Result/Finding in Standard Units|Num
LBSTRESU|Standard Units|Char|UNIT (C71620)
LBSTNRLO|Reference Range Lower Limit-Std Units|Num
LBSTNRHI|Reference Range Upper Limit-Std Units|Num
LBNRIND|Reference Range Indicator|Char|NRIND (C78736)
LBBLFL|Baseline Flag|Char|NY (C66742)
VISITNUM|Visit Number|Num
VISIT|Visit Name|Char
EPOCH|Epoch|Char|EPOCH (C99079)
LBDTC|Date/Time of Specimen Collection|Char|ISO 8601
LBDY|Study Day of Specimen Collection|Num
"""),
    "DS": _v(_COMMON + """
DSSEQ|Sequence Number|Num
DSTERM|Reported Term for the Disposition Event|Char
DSDECOD|Standardized Disposition Term|Char|NCOMPLT (C66727) / PROTMLST (C114118)
DSCAT|Category for Disposition Event|Char|DSCAT (C74558)
EPOCH|Epoch|Char|EPOCH (C99079)
DSSTDTC|Start Date/Time of Disposition Event|Char|ISO 8601
DSSTDY|Study Day of Start of Disposition Event|Num
"""),
    "TS": _v("""
STUDYID|Study Identifier|Char
DOMAIN|Domain Abbreviation|Char|DOMAIN (C66734)
TSSEQ|Sequence Number|Num
TSPARMCD|Trial Summary Parameter Short Name|Char|TSPARMCD (C66738)
TSPARM|Trial Summary Parameter|Char|TSPARM (C67152)
TSVAL|Parameter Value|Char
TSVALNF|Parameter Null Flavor|Char|ISO 21090 NullFlavor
TSVALCD|Parameter Value Code|Char
TSVCDREF|Name of the Reference Terminology|Char
"""),
    "TA": _v("""
STUDYID|Study Identifier|Char
DOMAIN|Domain Abbreviation|Char|DOMAIN (C66734)
ARMCD|Planned Arm Code|Char
ARM|Description of Planned Arm|Char
TAETORD|Planned Order of Element within Arm|Num
ETCD|Element Code|Char
ELEMENT|Description of Element|Char
TABRANCH|Branch|Char
TATRANS|Transition Rule|Char
EPOCH|Epoch|Char|EPOCH (C99079)
"""),
    "TE": _v("""
STUDYID|Study Identifier|Char
DOMAIN|Domain Abbreviation|Char|DOMAIN (C66734)
ETCD|Element Code|Char
ELEMENT|Description of Element|Char
TESTRL|Rule for Start of Element|Char
TEENRL|Rule for End of Element|Char
TEDUR|Planned Duration of Element|Char|ISO 8601
"""),
    "CM": _v(_COMMON + """
CMSEQ|Sequence Number|Num
CMSPID|Sponsor-Defined Identifier|Char
CMTRT|Reported Name of Drug, Med, or Therapy|Char
CMDECOD|Standardized Medication Name|Char|RxNorm (RXCUI when recorded)
CMINDC|Indication|Char
CMDOSE|Dose per Administration|Num
CMDOSU|Dose Units|Char|UNIT (C71620), as recorded
CMDOSFRQ|Dosing Frequency per Interval|Char|FREQ (C71113), as recorded
CMROUTE|Route of Administration|Char|ROUTE (C66729), as recorded
CMSTDTC|Start Date/Time of Medication|Char|ISO 8601
CMENDTC|End Date/Time of Medication|Char|ISO 8601
CMSTDY|Study Day of Start of Medication|Num
CMENDY|Study Day of End of Medication|Num
CMENRTPT|End Relative to Reference Time Point|Char|STENRF (C66728): ONGOING
CMENTPT|End Reference Time Point|Char
"""),
    "MH": _v(_COMMON + """
MHSEQ|Sequence Number|Num
MHSPID|Sponsor-Defined Identifier|Char
MHTERM|Reported Term for the Medical History|Char
MHDECOD|Dictionary-Derived Term|Char|ICD-10-CM code when recorded
MHSTDTC|Start Date/Time of Medical History Event|Char|ISO 8601
MHENDTC|End Date/Time of Medical History Event|Char|ISO 8601
MHENRTPT|End Relative to Reference Time Point|Char|STENRF (C66728): ONGOING
MHENTPT|End Reference Time Point|Char
"""),
    "DV": _v(_COMMON + """
DVSEQ|Sequence Number|Num
DVSPID|Sponsor-Defined Identifier|Char
DVTERM|Protocol Deviation Term|Char
DVCAT|Category for Protocol Deviation|Char|sponsor-defined (the deviation log's categories)
DVSCAT|Subcategory for Protocol Deviation|Char|sponsor-defined: AUTOMATIC, SITE ENTERED
EPOCH|Epoch|Char|EPOCH (C99079)
DVSTDTC|Start Date/Time of Deviation|Char|ISO 8601
DVSTDY|Study Day of Start of Deviation|Num
"""),
    "RE": _v(_COMMON + """
RESEQ|Sequence Number|Num
RETESTCD|Respiratory Test Short Name|Char|RETESTCD (C111107); FVCPP, DLCOPP sponsor-defined
RETEST|Respiratory Test Name|Char|RETEST (C111106)
REORRES|Result or Finding in Original Units|Char
REORRESU|Original Units|Char|UNIT (C71620)
RESTRESC|Character Result/Finding in Std Format|Char
RESTRESN|Numeric Result/Finding in Standard Units|Num
RESTRESU|Standard Units|Char|UNIT (C71620)
VISITNUM|Visit Number|Num
VISIT|Visit Name|Char
EPOCH|Epoch|Char|EPOCH (C99079)
REDTC|Date/Time of Collection|Char|ISO 8601
REDY|Study Day of Collection|Num
"""),
    "FT": _v(_COMMON + """
FTSEQ|Sequence Number|Num
FTTESTCD|Functional Test Short Name|Char|sponsor-defined (6MWT)
FTTEST|Functional Test Name|Char|sponsor-defined (6MWT)
FTCAT|Category of Functional Test|Char|SIX MINUTE WALK
FTORRES|Result or Finding in Original Units|Char
FTORRESU|Original Units|Char|UNIT (C71620)
FTSTRESC|Character Result/Finding in Std Format|Char
FTSTRESN|Numeric Result/Finding in Standard Units|Num
FTSTRESU|Standard Units|Char|UNIT (C71620)
VISITNUM|Visit Number|Num
VISIT|Visit Name|Char
EPOCH|Epoch|Char|EPOCH (C99079)
FTDTC|Date/Time of Test|Char|ISO 8601
FTDY|Study Day of Test|Num
"""),
}
LABELS = {"DM": "Demographics", "AE": "Adverse Events", "EX": "Exposure", "VS": "Vital Signs", "LB": "Laboratory Test Results",
          "DS": "Disposition", "TS": "Trial Summary",
          "TA": "Trial Arms", "TE": "Trial Elements", "CM": "Concomitant/Concurrent Medications", "MH": "Medical History",
          "DV": "Protocol Deviations", "RE": "Respiratory System Findings", "FT": "Functional Tests"}
CLASSES = {"DM": "SPECIAL PURPOSE", "AE": "EVENTS", "EX": "INTERVENTIONS", "VS": "FINDINGS", "LB": "FINDINGS", "DS": "EVENTS",
           "TS": "TRIAL DESIGN", "TA": "TRIAL DESIGN", "TE": "TRIAL DESIGN",
           "CM": "INTERVENTIONS", "MH": "EVENTS", "DV": "EVENTS", "RE": "FINDINGS", "FT": "FINDINGS"}

# CDISC controlled terms for the tests the trial records (LOINC -> LBTESTCD, LBTEST)
LAB_TESTS = {
    "1742-6": ("ALT", "Alanine Aminotransferase"), "1920-8": ("AST", "Aspartate Aminotransferase"),
    "2160-0": ("CREAT", "Creatinine"), "718-7": ("HGB", "Hemoglobin"), "6690-2": ("WBC", "Leukocytes"),
    "26464-8": ("WBC", "Leukocytes"), "751-8": ("NEUT", "Neutrophils"), "777-3": ("PLAT", "Platelets"),
    "26515-7": ("PLAT", "Platelets"), "731-0": ("LYM", "Lymphocytes"), "1975-2": ("BILI", "Bilirubin"),
}
# LBTESTCD -> LBCAT, and the standard unit of LBSTRESU (SI; as the CDISC UNIT codelist spells it, and its UCUM code)
LAB_CATEGORY = {"ALT": "CHEMISTRY", "AST": "CHEMISTRY", "CREAT": "CHEMISTRY", "BILI": "CHEMISTRY", "HGB": "HEMATOLOGY",
                "WBC": "HEMATOLOGY", "NEUT": "HEMATOLOGY", "PLAT": "HEMATOLOGY", "LYM": "HEMATOLOGY"}
LAB_STANDARD_UNIT = {"ALT": ("U/L", "U/L"), "AST": ("U/L", "U/L"), "CREAT": ("umol/L", "umol/L"), "BILI": ("umol/L", "umol/L"),
                     "HGB": ("g/L", "g/L"), "WBC": ("10^9/L", "10*9/L"), "NEUT": ("10^9/L", "10*9/L"), "PLAT": ("10^9/L", "10*9/L"),
                     "LYM": ("10^9/L", "10*9/L")}
# data-cut function tests -> (domain, TESTCD, TEST)
FUNCTION_TESTS = {
    "FVC": ("RE", "FVC", "Forced Vital Capacity"), "FEV1": ("RE", "FEV1", "Forced Expiratory Volume in 1 Second"),
    "FVCPP": ("RE", "FVCPP", "FVC Percent Predicted"), "DLCOPP": ("RE", "DLCOPP", "DLCO Percent Predicted"),
    "SIXMWD": ("FT", "SIXMWD", "6MWT Distance Walked"), "SIXMWSPO2": ("FT", "SIXMWSPO", "6MWT Lowest SpO2 During Walk"),
    "BORG": ("FT", "BORGDYSP", "6MWT Borg Dyspnea Score at End"),
}
# the EDC's action taken -> AEACN (ACN, C66767); AECONTRT Y when a treatment was given for the event
AEACN = {"none": "DOSE NOT CHANGED", "infusion_interrupted": "DRUG INTERRUPTED", "infusion_stopped": "DRUG INTERRUPTED",
         "infusion_withheld": "DRUG INTERRUPTED", "participant_withdrawn": "DRUG WITHDRAWN", "treatment_given": "DOSE NOT CHANGED"}
VITAL_TESTS = {
    "SYSBP": ("SYSBP", "Systolic Blood Pressure"), "DIABP": ("DIABP", "Diastolic Blood Pressure"), "PULSE": ("PULSE", "Pulse Rate"),
    "RESP": ("RESP", "Respiratory Rate"), "TEMP": ("TEMP", "Temperature"), "SPO2": ("OXYSAT", "Oxygen Saturation"),
    "WEIGHT": ("WEIGHT", "Weight"),
}
SEX = {"female": "F", "male": "M", "unknown": "U"}
# the demographics form's codes -> RACE (C74457) and ETHNIC (C66790)
RACE = {
    "american_indian_or_alaska_native": "AMERICAN INDIAN OR ALASKA NATIVE", "asian": "ASIAN",
    "black_or_african_american": "BLACK OR AFRICAN AMERICAN",
    "native_hawaiian_or_other_pacific_islander": "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER",
    "white": "WHITE", "more_than_one_race": "MULTIPLE", "unknown_or_not_reported": "NOT REPORTED",
}
ETHNIC = {"hispanic_or_latino": "HISPANIC OR LATINO", "not_hispanic_or_latino": "NOT HISPANIC OR LATINO",
          "unknown_or_not_reported": "NOT REPORTED"}
AEREL = {"unrelated": "NOT RELATED", "unlikely": "UNLIKELY RELATED", "possibly": "POSSIBLY RELATED", "probably": "PROBABLY RELATED",
         "definitely": "DEFINITELY RELATED"}
AEOUT = {"recovered": "RECOVERED/RESOLVED", "recovering": "RECOVERING/RESOLVING", "not_recovered": "NOT RECOVERED/NOT RESOLVED",
         "recovered_with_sequelae": "RECOVERED/RESOLVED WITH SEQUELAE", "fatal": "FATAL", "unknown": "UNKNOWN"}
COUNTRY = {"united states": "USA"}


class SdtmError(ValueError):
    pass


def _form_code(value: str) -> str:
    """A demographics value as the form's code (``Black or African American`` -> ``black_or_african_american``), the same
    reading the ClinicalTrials.gov baseline makes."""
    return "_".join(value.strip().casefold().replace("-", " ").split())


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


@dataclass(frozen=True)
class Sdtm:
    """The domains as DataFrames (columns in metadata order) and the variable metadata."""

    domains: dict[str, pd.DataFrame]
    identified: bool
    note: str | None = None
    protocol: Protocol | None = None
    cutoff: dt.date | None = None
    meddra_version: str | None = None
    meddra_used: bool = False
    warnings: list[str] = field(default_factory=list)

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
        """``<domain>.csv`` and ``<domain>.xpt`` for every domain, ``define.csv`` (the metadata as a table),
        ``define.xml`` (Define-XML 2.1), ``reviewers_guide.html`` and ``.pdf``, and ``export.json`` (how the
        export was made: identified or not, MedDRA version, warnings, any allow_empty note)."""
        prepared = {domain: _for_xpt(frame, domain) for domain, frame in self.domains.items()}  # refuses before writing
        directory.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for domain, frame in self.domains.items():
            csv_path = directory / f"{domain.lower()}.csv"
            frame.to_csv(csv_path, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            xpt_path = directory / f"{domain.lower()}.xpt"
            labels: list[str | None] = [v.label for v in VARIABLES[domain]]
            label = LABELS[domain] if self.note is None else f"{LABELS[domain]} (EMPTY CUT)"
            pyreadstat.write_xport(prepared[domain], str(xpt_path), file_label=label[:40], column_labels=labels,
                                   table_name=domain, file_format_version=5)
            written += [csv_path, xpt_path]
        from trialdesk.analysis.define import define_xml, guide_html, guide_pdf

        define = directory / "define.csv"
        self.metadata().to_csv(define, index=False, lineterminator="\n")
        define_file = directory / "define.xml"
        define_file.write_text(define_xml(self), encoding="utf-8")
        guide, guide_print = directory / "reviewers_guide.html", directory / "reviewers_guide.pdf"
        guide.write_text(guide_html(self), encoding="utf-8")
        guide_print.write_bytes(guide_pdf(self))
        manifest = directory / "export.json"
        manifest.write_text(json.dumps({"identified": self.identified, "allow_empty_note": self.note, "domains": list(self.domains),
                                        "meddra": self.meddra_version if self.meddra_used else None, "sdtm_warnings": self.warnings},
                                       indent=2) + "\n", encoding="utf-8")
        return [*written, define, define_file, guide, guide_print, manifest]


XPT_MAX_CHAR = 200  # SAS transport v5: a character value holds at most 200 bytes


def _for_xpt(frame: pd.DataFrame, domain: str) -> pd.DataFrame:
    """Char columns as text (empty, not missing) and Num columns as floats, as SAS stores them; a text longer than
    transport v5 allows is refused, naming the record, before any file is written."""
    out = frame.copy()
    for var in VARIABLES[domain]:
        if var.type == "Char":
            out[var.name] = out[var.name].fillna("").astype(str)
            for i, value in enumerate(out[var.name]):
                if len(value.encode("utf-8")) > XPT_MAX_CHAR:
                    who = out["USUBJID"].iloc[i] if "USUBJID" in out else f"row {i + 1}"
                    raise SdtmError(f"{domain}.{var.name} of {who}: {len(value.encode('utf-8'))} bytes, more than the {XPT_MAX_CHAR} a"
                                    f" SAS transport v5 file holds ({value[:40]!r}...); shorten it in the trial desk")
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


def shift_days(usubjid: str, key: bytes) -> int:
    """The de-identified export's per-participant date offset: 1 to 365 days, from HMAC-SHA256(key, USUBJID)."""
    digest = hmac.new(key, usubjid.encode("utf-8"), hashlib.sha256).digest()
    return 1 + int.from_bytes(digest[:8], "big") % 365


def _epoch(day: dt.date | None, first: dt.date | None, last: dt.date | None) -> str | None:
    if day is None:
        return None
    if first is None or day < first:
        return "SCREENING"
    return "TREATMENT" if last is not None and day <= last else "FOLLOW-UP"


def _ts_rows(protocol: Protocol, data: TrialData) -> list[dict[str, Any]]:
    """TS from the protocol file (parameters of SDTMIG 3.3 TS: TSPARMCD, TSPARM, TSVAL and codes where the value has one)."""
    ident, design, elig = protocol.identification, protocol.design, protocol.eligibility
    phase = {"EARLY_PHASE1": "PHASE 0 TRIAL", "PHASE1": "PHASE I TRIAL", "PHASE2": "PHASE II TRIAL", "PHASE3": "PHASE III TRIAL",
             "PHASE4": "PHASE IV TRIAL"}
    inter = protocol.interventions[0]
    rows: list[tuple[str, str, str | None, str | None, str | None]] = [
        ("TITLE", "Trial Title", ident.official_title, None, None),
        ("REGID", "Registry Identifier", ident.nct_id, None, "ClinicalTrials.gov"),
        ("SPONSOR", "Clinical Study Sponsor", protocol.sponsorship.lead_sponsor.name, None, None),
        ("STYPE", "Study Type", design.study_type, None, None),
        ("TPHASE", "Trial Phase Classification", " / ".join(phase.get(p, p) for p in design.phases), None, None),
        ("TTYPE", "Trial Type", "SAFETY", None, None),
        ("INTMODEL", "Intervention Model", design.intervention_model.replace("_", " "), None, None),
        ("RANDOM", "Trial is Randomized", "Y" if design.allocation == "RANDOMIZED" else "N", None, None),
        ("TBLIND", "Trial Blinding Schema", "OPEN LABEL" if design.masking == "NONE" else design.masking, None, None),
        ("TCNTRL", "Control Type", "NONE" if len(protocol.arms) == 1 else "OTHER", None, None),
        ("NARMS", "Planned Number of Arms", str(len(groups.groups(protocol))), None, None),  # the arms of TA
        ("PLANSUB", "Planned Number of Subjects", str(design.enrollment.count), None, None),
        ("ACTSUB", "Actual Number of Subjects", str(len(data.participants)), None, None),
        ("SEXPOP", "Sex of Participants", {"ALL": "BOTH", "FEMALE": "F", "MALE": "M"}[elig.sex], None, None),
        ("HLTSUBJI", "Healthy Subject Indicator", "Y" if elig.healthy_volunteers else "N", None, None),
        ("TRT", "Investigational Therapy or Treatment", inter.name, None, None),
        ("ROUTE", "Route of Administration", inter.route or None, None, None),
        ("SSTDTC", "Study Start Date", protocol.status.start_date.date.isoformat(), None, None),
        ("OUTMSPRI", "Primary Outcome Measure", protocol.outcomes.primary[0].measure, None, None),
    ]
    if elig.minimum_age:
        n, unit = elig.minimum_age.split()
        rows.append(("AGEMIN", "Planned Minimum Age of Subjects", f"P{n}{unit[0]}", None, None))
    if elig.maximum_age:
        n, unit = elig.maximum_age.split()
        rows.append(("AGEMAX", "Planned Maximum Age of Subjects", f"P{n}{unit[0]}", None, None))
    if protocol.status.completion_date:
        rows.append(("SENDTC", "Study End Date", protocol.status.completion_date.date.isoformat(), None, None))
    if protocol.outcomes.primary[0].time_frame_days:
        rows.append(("LENGTH", "Trial Length", f"P{protocol.outcomes.primary[0].time_frame_days}D", None, None))
    rows += [("INDIC", "Trial Disease/Condition Indication", c, None, None) for c in protocol.conditions]
    study = ident.nct_id
    out = []
    for seq, (code, name, value, valcd, ref) in enumerate(rows, start=1):
        out.append({"STUDYID": study, "DOMAIN": "TS", "TSSEQ": seq, "TSPARMCD": code, "TSPARM": name, "TSVAL": value,
                    "TSVALNF": None if value else "NI", "TSVALCD": valcd, "TSVCDREF": ref})
    return out


def _unscheduled_visit_numbers(data: TrialData, protocol: Protocol) -> dict[tuple[str, str], float]:
    """(subject, code) -> VISITNUM of each unscheduled visit, as the SDTM Implementation Guide numbers them: the number
    of the last scheduled visit done on or before it plus .01, .02... in date order (VISIT "UNSCHEDULED 3.01")."""
    order = {v.code: i + 1 for i, v in enumerate(protocol.schedule.visits)}
    out: dict[tuple[str, str], float] = {}
    for subject in sorted({v.subject_id for v in data.visits if v.unscheduled}):
        done = sorted((v for v in data.visits if v.subject_id == subject and v.date is not None), key=lambda v: (v.date, v.unscheduled))
        last, extra = 0, 0
        for v in done:
            if not v.unscheduled and v.code in order:
                last, extra = order[v.code], 0
            elif v.unscheduled:
                extra += 1
                out[(subject, v.code)] = round(last + extra / 100, 2)
    return out


def build_sdtm(data: TrialData, protocol: Protocol, identified: bool = False, allow_empty: bool = False,
               meddra: MedDRA | None = None, shift_key: bytes | None = None) -> Sdtm:
    note = check_enrolled(data, "SDTM export", allow_empty)
    study = protocol.identification.nct_id
    first = first_infusion_dates(data)
    last: dict[str, dt.date] = {}
    for inf in data.infusions:
        last[inf.subject_id] = max(inf.date, last.get(inf.subject_id, inf.date))
    visits = {v.code: (i + 1, v.name) for i, v in enumerate(protocol.schedule.visits)}
    key = shift_key or secrets.token_bytes(32)
    warnings: list[str] = []

    def usubjid(subject: str) -> str:
        return f"{study}-{subject}"

    offsets = {p.subject_id: 0 if identified else shift_days(usubjid(p.subject_id), key) for p in data.participants}

    def dtc(subject: str, value: dt.date | dt.datetime | None) -> str | None:
        if value is None:
            return None
        return (value - dt.timedelta(days=offsets.get(subject, 0))).isoformat()

    def base(domain: str, subject: str) -> dict[str, Any]:
        return {"STUDYID": study, "DOMAIN": domain, "USUBJID": usubjid(subject)}

    unscheduled = _unscheduled_visit_numbers(data, protocol)

    def visit(code: str, subject: str = "") -> dict[str, Any]:
        if code not in visits and (subject, code) in unscheduled:
            num_u = unscheduled[(subject, code)]
            return {"VISITNUM": num_u, "VISIT": f"UNSCHEDULED {num_u:.2f}"}
        num, name = visits.get(code, (None, code))
        return {"VISITNUM": num, "VISIT": name}

    def epoch(subject: str, day: dt.date | None) -> str | None:
        return _epoch(day, first.get(subject), last.get(subject))

    country = COUNTRY.get(protocol.locations[0].country.casefold(), protocol.locations[0].country) if protocol.locations else None
    deaths = {ae.subject_id: ae.resolved or ae.onset for ae in data.adverse_events if ae.outcome == "fatal"}
    # the last date anything was recorded of each participant: the end of participation (RFPENDTC)
    seen: dict[str, dt.date] = {}
    dated: list[tuple[str, dt.date | None]] = [(v.subject_id, v.date) for v in data.visits]
    dated += [(x.subject_id, x.date) for x in data.labs] + [(x.subject_id, x.date) for x in data.vitals]
    dated += [(x.subject_id, x.date) for x in data.infusions] + [(x.subject_id, x.date) for x in data.function_tests]
    dated += [(a.subject_id, a.resolved or a.onset) for a in data.adverse_events]
    dated += [(p.subject_id, p.off_study_on) for p in data.participants]
    for subject, day in dated:
        if day is not None and day <= data.cutoff:
            seen[subject] = max(day, seen.get(subject, day))
    dm = []
    for p in data.participants:
        infs = data.infusions_of(p.subject_id)
        s_id = p.subject_id
        code, arm_label, act_code, act_label = arm_of(protocol, data, p.subject_id)
        dm.append({**base("DM", s_id), "SUBJID": s_id,
                   "RFSTDTC": dtc(s_id, first.get(s_id)), "RFENDTC": dtc(s_id, p.off_study_on),
                   "RFPENDTC": dtc(s_id, seen.get(s_id, p.enrolled_on)),
                   "RFXSTDTC": dtc(s_id, first.get(s_id)), "RFXENDTC": dtc(s_id, max((i.date for i in infs), default=None)),
                   "RFICDTC": dtc(s_id, p.consented_on), "DTHDTC": dtc(s_id, deaths.get(s_id)),
                   "DTHFL": "Y" if s_id in deaths else None,
                   "SITEID": "01", "AGE": p.age_at_enrolment, "AGEU": "YEARS", "SEX": SEX[p.sex],
                   "RACE": RACE.get(_form_code(p.race), "NOT REPORTED"), "ETHNIC": ETHNIC.get(_form_code(p.ethnicity), "NOT REPORTED"),
                   "ARMCD": code, "ARM": arm_label, "ACTARMCD": act_code, "ACTARM": act_label, "COUNTRY": country})

    planned = protocol.infusion_plan.count if protocol.infusion_plan else None

    def action(ae: Any) -> str:
        """AEACN: not applicable before the first infusion, and after the last planned one (no study treatment left to act on)."""
        ref, infs = first.get(ae.subject_id), data.infusions_of(ae.subject_id)
        if ref is None or ae.onset < ref:
            return "NOT APPLICABLE"
        if planned is not None and len(infs) >= planned and ae.onset > infs[-1].date:
            return "NOT APPLICABLE"
        return AEACN.get(ae.action_taken, "UNKNOWN")

    ae_rows = []
    uncoded: set[int] = set()
    for ae in data.adverse_events:
        ref = first.get(ae.subject_id)
        coding = meddra.coding(ae.term, ae.meddra_code) if meddra else None
        if meddra and coding is None:
            uncoded.add(ae.meddra_code)
        coding = coding or ctcae_coding(ae.term, ae.meddra_code, ae.soc)
        ae_rows.append({**base("AE", ae.subject_id), "AESPID": ae.id, "AETERM": ae.verbatim_term or ae.term,
                        "AELLT": coding.llt, "AELLTCD": coding.llt_code, "AEDECOD": coding.decod, "AEPTCD": coding.pt_code,
                        "AEHLT": coding.hlt, "AEHLTCD": coding.hlt_code, "AEHLGT": coding.hlgt, "AEHLGTCD": coding.hlgt_code,
                        "AEBODSYS": coding.soc, "AEBDSYCD": coding.soc_code, "AESOC": coding.soc, "AESOCCD": coding.soc_code,
                        "AETOXGR": str(ae.grade), "AESER": _yn(ae.serious),
                        "AEACN": action(ae),
                        "AECONTRT": _yn(ae.action_taken == "treatment_given"),
                        "AEREL": AEREL[ae.relatedness], "AEOUT": AEOUT[ae.outcome],
                        "AESDTH": _yn("death" in ae.seriousness), "AESLIFE": _yn("life_threatening" in ae.seriousness),
                        "AESHOSP": _yn("hospitalisation" in ae.seriousness), "AESDISAB": _yn("disability" in ae.seriousness),
                        "AESCONG": _yn("congenital_anomaly" in ae.seriousness), "AESMIE": _yn("important_medical_event" in ae.seriousness),
                        "EPOCH": epoch(ae.subject_id, ae.onset),
                        "AESTDTC": dtc(ae.subject_id, ae.onset), "AEENDTC": dtc(ae.subject_id, ae.resolved),
                        "AESTDY": study_day(ae.onset, ref), "AEENDY": study_day(ae.resolved, ref)})
    if meddra is None:
        warnings.append("no MedDRA distribution given (--meddra): AEDECOD holds the CTCAE v5.0 term (a MedDRA lowest level term),"
                        " not the MedDRA preferred term; AEPTCD, AEHLT and AEHLGT are empty")
    elif uncoded:
        warnings.append(f"MedDRA {meddra.version or ''}: LLT codes {sorted(uncoded)} are not in the distribution given (or have no"
                        " primary SOC path); those events keep the CTCAE coding")

    infusion_visits = {v.infusion: v.code for v in protocol.schedule.visits if v.infusion is not None}
    treatment = protocol.study_intervention.name
    ex_rows = []
    for inf in data.infusions:
        ref = first.get(inf.subject_id)
        start: dt.date | dt.datetime = inf.started_at or inf.date
        end: dt.date | dt.datetime = inf.stopped_at or inf.date
        ex_rows.append({**base("EX", inf.subject_id), "EXTRT": treatment, "EXDOSE": ex_dose(protocol, inf.total_cells, inf.weight_kg),
                        "EXDOSU": dose_unit(protocol),
                        "EXDOSFRM": "SUSPENSION", "EXROUTE": "INTRAVENOUS", "EXLOT": inf.lot,
                        "EXADJ": "INFUSION INTERRUPTED" if inf.interrupted else None,
                        **visit(infusion_visits.get(inf.number, f"INFUSION {inf.number}")), "EPOCH": "TREATMENT",
                        "EXSTDTC": dtc(inf.subject_id, start), "EXENDTC": dtc(inf.subject_id, end), "EXSTDY": study_day(inf.date, ref),
                        "EXENDY": study_day(end.date() if isinstance(end, dt.datetime) else end, ref)})

    vs_rows = []
    for vs in data.vitals:
        code, name = VITAL_TESTS[vs.test]
        vs_rows.append({**base("VS", vs.subject_id), "VSTESTCD": code, "VSTEST": name, "VSORRES": f"{vs.value:g}", "VSORRESU": vs.unit,
                        "VSSTRESC": f"{vs.value:g}", "VSSTRESN": vs.value, "VSSTRESU": vs.unit,
                        **visit(vs.visit, vs.subject_id), "VSTPT": vs.timepoint,
                        "EPOCH": epoch(vs.subject_id, vs.date),
                        "VSDTC": dtc(vs.subject_id, vs.date), "VSDY": study_day(vs.date, first.get(vs.subject_id))})

    lb_rows: list[dict[str, Any]] = []
    baseline: dict[tuple[str, str], tuple[dt.date, int]] = {}
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
        std_unit, ucum = LAB_STANDARD_UNIT.get(code, (lb.unit, lb.unit))

        def std(value: float | None, lb_: Any = lb, ucum_: str = ucum) -> float | None:
            if value is None:
                return None
            converted = units.convert(value, lb_.unit, ucum_, lb_.loinc)
            same = units.normalise(lb_.unit) == units.normalise(ucum_)
            # a converted value keeps four significant digits (what a laboratory reports), the original is kept as is
            return converted if converted is None or same else float(f"{converted:.4g}")

        value = std(lb.value)
        if value is None:
            raise SdtmError(f"laboratory result {lb.test!r} of {lb.subject_id} on visit {lb.visit}: {lb.unit!r} cannot be converted"
                            f" to the standard unit {std_unit}; correct the unit, or add its spelling to"
                            " terminology/data/unit_conversions.yaml")
        ref = first.get(lb.subject_id)
        if ref is not None and lb.date <= ref:
            k = (lb.subject_id, code)
            if k not in baseline or lb.date >= baseline[k][0]:
                baseline[k] = (lb.date, len(lb_rows))
        lb_rows.append({**base("LB", lb.subject_id), "LBTESTCD": code, "LBTEST": name, "LBCAT": LAB_CATEGORY.get(code),
                        "LBLOINC": lb.loinc, "LBORRES": f"{lb.value:g}",
                        "LBORRESU": lb.unit, "LBORNRLO": None if low is None else f"{low:g}",
                        "LBORNRHI": None if high is None else f"{high:g}",
                        "LBSTRESC": f"{value:g}", "LBSTRESN": value, "LBSTRESU": std_unit,
                        "LBSTNRLO": std(low), "LBSTNRHI": std(high), "LBNRIND": nrind, "LBBLFL": None,
                        **visit(lb.visit, lb.subject_id), "EPOCH": epoch(lb.subject_id, lb.date),
                        "LBDTC": dtc(lb.subject_id, lb.date), "LBDY": study_day(lb.date, ref)})
    for _, index in baseline.values():
        lb_rows[index]["LBBLFL"] = "Y"

    ds_rows = []
    for p in data.participants:
        ref = first.get(p.subject_id)
        ds_rows.append({**base("DS", p.subject_id), "DSTERM": "INFORMED CONSENT OBTAINED", "DSDECOD": "INFORMED CONSENT OBTAINED",
                        "DSCAT": "PROTOCOL MILESTONE", "EPOCH": "SCREENING", "DSSTDTC": dtc(p.subject_id, p.consented_on),
                        "DSSTDY": study_day(p.consented_on, ref)})
        if p.status in ("completed", "withdrawn", "off_study"):
            term = p.off_study_reason or ("COMPLETED" if p.status == "completed" else sdtm_reason(None))
            ds_rows.append({**base("DS", p.subject_id), "DSTERM": term.upper(), "DSDECOD": dsdecod(p), "DSCAT": "DISPOSITION EVENT",
                            "EPOCH": epoch(p.subject_id, p.off_study_on),
                            "DSSTDTC": dtc(p.subject_id, p.off_study_on), "DSSTDY": study_day(p.off_study_on, ref)})

    enrolled = {p.subject_id for p in data.participants}
    cm_rows = []
    for cm in data.concomitant_medications:
        if cm.subject_id not in enrolled:
            continue
        ref = first.get(cm.subject_id)
        cm_rows.append({**base("CM", cm.subject_id), "CMSPID": cm.id, "CMTRT": cm.medication, "CMDECOD": cm.rxnorm_code,
                        "CMINDC": cm.indication, "CMDOSE": cm.dose, "CMDOSU": cm.dose_unit, "CMDOSFRQ": cm.frequency,
                        "CMROUTE": cm.route.upper() if cm.route else None,
                        "CMSTDTC": dtc(cm.subject_id, cm.start_date), "CMENDTC": dtc(cm.subject_id, cm.end_date),
                        "CMSTDY": study_day(cm.start_date, ref), "CMENDY": study_day(cm.end_date, ref),
                        "CMENRTPT": "ONGOING" if cm.ongoing else None, "CMENTPT": "DATA CUT" if cm.ongoing else None})
    mh_rows = []
    for mh in data.medical_history:
        if mh.subject_id not in enrolled:
            continue
        mh_rows.append({**base("MH", mh.subject_id), "MHSPID": mh.id, "MHTERM": mh.term, "MHDECOD": mh.icd10cm_code,
                        "MHSTDTC": dtc(mh.subject_id, mh.start_date), "MHENDTC": dtc(mh.subject_id, mh.end_date),
                        "MHENRTPT": "ONGOING" if mh.ongoing else None, "MHENTPT": "SCREENING" if mh.ongoing else None})
    dv_rows = []
    site_level = 0
    for dv in data.deviations:
        if dv.subject_id is None or dv.subject_id not in enrolled:
            site_level += 1
            continue
        dv_rows.append({**base("DV", dv.subject_id), "DVSPID": dv.id, "DVTERM": dv.description, "DVCAT": dv.category.upper(),
                        "DVSCAT": "AUTOMATIC" if dv.source == "automatic" else "SITE ENTERED", "EPOCH": epoch(dv.subject_id, dv.date),
                        "DVSTDTC": dtc(dv.subject_id, dv.date), "DVSTDY": study_day(dv.date, first.get(dv.subject_id))})
    if site_level:
        warnings.append(f"{site_level} protocol deviation(s) without an enrolled participant are not in DV (SDTM DV is subject-level)")
    findings: dict[str, list[dict[str, Any]]] = {"RE": [], "FT": []}
    for ft in data.function_tests:
        if ft.subject_id not in enrolled:
            continue
        domain, code, name = FUNCTION_TESTS[ft.test]
        d = domain
        row = {**base(d, ft.subject_id), f"{d}TESTCD": code, f"{d}TEST": name, f"{d}ORRES": f"{ft.value:g}", f"{d}ORRESU": ft.unit or None,
               f"{d}STRESC": f"{ft.value:g}", f"{d}STRESN": ft.value, f"{d}STRESU": ft.unit or None, **visit(ft.visit, ft.subject_id),
               "EPOCH": epoch(ft.subject_id, ft.date), f"{d}DTC": dtc(ft.subject_id, ft.date),
               f"{d}DY": study_day(ft.date, first.get(ft.subject_id))}
        if d == "FT":
            row["FTCAT"] = "SIX MINUTE WALK"
        findings[d].append(row)

    ta_rows, te_rows = trial_design(protocol)
    domains = {
        "DM": _frame("DM", sorted(dm, key=lambda r: r["USUBJID"])),
        "AE": _frame("AE", _sequenced(ae_rows, "AESEQ", lambda r: (r["USUBJID"], r["AESTDY"] or 0, r["AESPID"]))),
        "EX": _frame("EX", _sequenced(ex_rows, "EXSEQ", lambda r: (r["USUBJID"], r["EXSTDY"] or 0))),
        "VS": _frame("VS", _sequenced(vs_rows, "VSSEQ", lambda r: (r["USUBJID"], r["VSDY"] or 0, r["VSTESTCD"], r["VSTPT"] or ""))),
        "LB": _frame("LB", _sequenced(lb_rows, "LBSEQ", lambda r: (r["USUBJID"], r["LBDY"] or 0, r["LBTESTCD"]))),
        "DS": _frame("DS", _sequenced(ds_rows, "DSSEQ", lambda r: (r["USUBJID"], r["DSSTDY"] or 0, r["DSCAT"] != "PROTOCOL MILESTONE"))),
        "TS": _frame("TS", _ts_rows(protocol, data)),
        "TA": _frame("TA", ta_rows),
        "TE": _frame("TE", te_rows),
        "CM": _frame("CM", _sequenced(cm_rows, "CMSEQ", lambda r: (r["USUBJID"], r["CMSTDY"] or 0, r["CMSPID"]))),
        "MH": _frame("MH", _sequenced(mh_rows, "MHSEQ", lambda r: (r["USUBJID"], r["MHSTDTC"] or "", r["MHSPID"]))),
        "DV": _frame("DV", _sequenced(dv_rows, "DVSEQ", lambda r: (r["USUBJID"], r["DVSTDY"] or 0, r["DVSPID"]))),
        "RE": _frame("RE", _sequenced(findings["RE"], "RESEQ", lambda r: (r["USUBJID"], r["REDY"] or 0, r["RETESTCD"]))),
        "FT": _frame("FT", _sequenced(findings["FT"], "FTSEQ", lambda r: (r["USUBJID"], r["FTDY"] or 0, r["FTTESTCD"]))),
    }
    return Sdtm(domains, identified, note, protocol=protocol, cutoff=data.cutoff, meddra_version=meddra.version if meddra else None,
                meddra_used=meddra is not None, warnings=warnings)


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(path.read_text(encoding="utf-8")), dtype=str, keep_default_na=False)
