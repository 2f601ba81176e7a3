from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from tests.analysis.fixtures import empty_data
from trialdesk.analysis.data_cut import NoParticipantsError
from trialdesk.analysis.meddra import MedDRA, MeddraError
from trialdesk.analysis.sdtm import DOMAINS, VARIABLES, Sdtm, build_sdtm, shift_days
from trialdesk.protocol.model import Protocol
from trialdesk.trial.records import TrialData

MEDDRA = Path(__file__).resolve().parents[1] / "fixtures" / "meddra"


def test_domains_have_the_sdtmig_variables(data: TrialData, protocol: Protocol) -> None:
    sdtm = build_sdtm(data, protocol)
    assert list(sdtm.domains) == list(DOMAINS)
    for domain, frame in sdtm.domains.items():
        assert list(frame.columns) == [v.name for v in VARIABLES[domain]]
        assert (frame["DOMAIN"] == domain).all()
        assert all(len(v.name) <= 8 and len(v.label) <= 40 for v in VARIABLES[domain])


def test_ae_domain(data: TrialData, protocol: Protocol) -> None:
    ae = build_sdtm(data, protocol).domains["AE"].set_index("AESPID")
    assert len(ae) == 10
    b1 = ae.loc["B1"]
    assert (b1["USUBJID"], b1["AEDECOD"], b1["AETOXGR"], b1["AESER"], b1["AESHOSP"], b1["AEREL"]) == (
        "NCT03929120-S02", "Hypoxia", "3", "Y", "Y", "POSSIBLY RELATED")
    assert b1["AESTDY"] == 2  # the day after the first infusion (day 1)
    c1 = ae.loc["C1"]
    assert (c1["AESDTH"], c1["AEOUT"], c1["AETOXGR"]) == ("Y", "FATAL", "5")
    assert ae.loc["A1", "AESTDY"] == -10  # ten days before the first infusion; there is no day 0
    assert ae.loc["A2", "AESTDY"] == 1
    assert ae.loc["A2", "AELLTCD"] > 10_000_000
    assert ae.loc["A2", "AEBODSYS"] == "Injury, poisoning and procedural complications"


def _dates(sdtm: Sdtm) -> dict[tuple[str, str, int], str]:
    """Every --DTC value of every subject-level domain, by (domain, column, row)."""
    out = {}
    for domain, frame in sdtm.domains.items():
        if domain == "TS":
            continue
        for col in (c for c in frame.columns if c.endswith("DTC")):
            for i, v in enumerate(frame[col]):
                if v is not None and v == v:
                    out[(domain, col, i)] = v
    return out


def test_identified_keeps_the_real_dates(data: TrialData, protocol: Protocol) -> None:
    dated = build_sdtm(data, protocol, identified=True)
    assert dated.domains["AE"].set_index("AESPID").loc["A2", "AESTDTC"] == "2020-01-20"
    assert dated.domains["DM"].set_index("SUBJID").loc["S01", "RFSTDTC"] == "2020-01-20"


def test_de_identified_shifts_each_participants_dates_by_one_offset(data: TrialData, protocol: Protocol) -> None:
    key = b"k" * 32
    real, shifted = build_sdtm(data, protocol, identified=True), build_sdtm(data, protocol, shift_key=key)
    real_dates, shifted_dates = _dates(real), _dates(shifted)
    assert real_dates.keys() == shifted_dates.keys() and real_dates  # no date left empty, none added
    by_subject: dict[str, set[int]] = {}
    for (domain, col, i), value in real_dates.items():
        subject = real.domains[domain]["USUBJID"].iloc[i]
        day = dt.date.fromisoformat(value[:10]) - dt.date.fromisoformat(shifted_dates[(domain, col, i)][:10])
        by_subject.setdefault(subject, set()).add(day.days)
    # one offset per participant, 1 to 365 days back, so every interval and study day is kept
    for subject, offsets in by_subject.items():
        (offset,) = offsets
        assert offset == shift_days(subject, key) and 1 <= offset <= 365
    assert len({next(iter(o)) for o in by_subject.values()}) > 1  # participants are not shifted together
    assert list(shifted.domains["AE"]["AESTDY"]) == list(real.domains["AE"]["AESTDY"])
    # the same key gives the same export; without a key each export draws its own
    assert _dates(build_sdtm(data, protocol, shift_key=key)) == shifted_dates
    assert _dates(build_sdtm(data, protocol)) != _dates(build_sdtm(data, protocol))


def test_meddra_from_the_ctcae_table_without_a_distribution(data: TrialData, protocol: Protocol) -> None:
    sdtm = build_sdtm(data, protocol)
    ae = sdtm.domains["AE"].set_index("AESPID")
    b1 = ae.loc["B1"]
    assert (b1["AELLT"], b1["AELLTCD"], b1["AEDECOD"], b1["AESOC"], b1["AESOCCD"], b1["AEBODSYS"], b1["AEBDSYCD"]) == (
        "Hypoxia", 10021143, "Hypoxia", "Respiratory, thoracic and mediastinal disorders", 10038738,
        "Respiratory, thoracic and mediastinal disorders", 10038738)
    assert ae["AEPTCD"].isna().all() and ae["AEHLT"].isna().all()
    assert any("AEDECOD holds the CTCAE v5.0 term" in w for w in sdtm.warnings)


def test_meddra_from_a_licensed_distribution(data: TrialData, protocol: Protocol) -> None:
    meddra = MedDRA.load(MEDDRA)
    sdtm = build_sdtm(data, protocol, meddra=meddra)
    ae = sdtm.domains["AE"].set_index("AESPID")
    a3 = ae.loc["A3"]  # CTCAE "Fever" is an LLT under the PT the distribution names
    assert (a3["AELLT"], a3["AELLTCD"], a3["AEDECOD"], a3["AEPTCD"], a3["AEHLT"], a3["AEHLTCD"], a3["AEHLGT"], a3["AEHLGTCD"]) == (
        "Fever", 10016558, "Pyrexia (fixture PT)", 90000002, "Febrile disorders (fixture HLT)", 91000002,
        "Body temperature conditions (fixture HLGT)", 92000002)
    b1 = ae.loc["B1"]  # two paths: the primary one is reported
    assert (b1["AEBODSYS"], b1["AEBDSYCD"], b1["AEHLTCD"]) == ("Respiratory, thoracic and mediastinal disorders", 10038738, 91000003)
    a5 = ae.loc["A5"]  # Fatigue is not in this distribution: the CTCAE coding stays, and the warning names the code
    assert (a5["AEDECOD"], a5["AESOCCD"]) == ("Fatigue", 10018065) and a5["AEPTCD"] != a5["AEPTCD"]
    assert sdtm.warnings == [w for w in sdtm.warnings if "10016256" in w or "deviation" in w]
    assert any("10016256" in w for w in sdtm.warnings)


def test_a_folder_that_is_not_meddra_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(MeddraError, match=r"llt\.asc: not found"):
        MedDRA.load(tmp_path)
    (tmp_path / "llt.asc").write_text("10016558$Fever$90000002$$$$$$$Y$$\n", encoding="utf-8")
    (tmp_path / "mdhier.asc").write_text("pt,hlt,hlgt\n", encoding="utf-8")
    with pytest.raises(MeddraError, match=r"mdhier.asc, line 1: 1 '\$'-separated fields"):
        MedDRA.load(tmp_path)


def test_ae_expected_variables(data: TrialData, protocol: Protocol) -> None:
    ae = build_sdtm(data, protocol).domains["AE"].set_index("AESPID")
    assert ae.loc["A2", "AETERM"] == "chills and flushing during the infusion"  # the investigator's words
    assert ae.loc["A3", "AETERM"] == "Fever"  # none kept: the CTCAE term the investigator chose
    assert (ae.loc["A2", "AEACN"], ae.loc["B1", "AEACN"], ae.loc["B1", "AECONTRT"]) == ("DRUG INTERRUPTED", "DOSE NOT CHANGED", "Y")
    assert ae.loc["A1", "AEACN"] == "NOT APPLICABLE"  # before the first infusion
    # after the last planned infusion (S01 had both) there is no study treatment left to act on; on its day there is
    assert (ae.loc["A4", "AEACN"], ae.loc["A3", "AEACN"]) == ("NOT APPLICABLE", "DOSE NOT CHANGED")
    assert (ae.loc["A1", "EPOCH"], ae.loc["A2", "EPOCH"], ae.loc["A3", "EPOCH"], ae.loc["A4", "EPOCH"]) == (
        "SCREENING", "TREATMENT", "TREATMENT", "FOLLOW-UP")  # S01: infusions on 2020-01-20 and 2020-02-17


def test_lb_standard_units_ranges_and_baseline(data: TrialData, protocol: Protocol) -> None:
    lb = build_sdtm(data, protocol).domains["LB"]
    creat = lb[lb["LBTESTCD"] == "CREAT"].set_index("LBDY")
    # 1.1 mg/dL x 88.42 = 97.26 umol/L; the range 0.6-1.2 mg/dL is 53.05-106.1 umol/L; 90 umol/L stays 90
    assert list(creat["LBSTRESU"]) == ["umol/L"] * 3 and set(creat["LBORRESU"]) == {"mg/dL", "umol/L"}
    assert (creat.loc[-18, "LBSTRESN"], creat.loc[-18, "LBSTNRLO"], creat.loc[-18, "LBSTNRHI"]) == (97.26, 53.05, 106.1)
    assert (creat.loc[8, "LBSTRESN"], creat.loc[8, "LBSTNRHI"]) == (90.0, 106.0)
    # baseline: the last result on or before the first infusion, one per test; not the earlier screening value
    assert (creat.loc[-18, "LBBLFL"], creat.loc[-24, "LBBLFL"], creat.loc[8, "LBBLFL"]) == ("Y", None, None)
    hgb = lb[lb["LBTESTCD"] == "HGB"].iloc[0]
    assert (hgb["LBSTRESN"], hgb["LBSTRESU"], hgb["LBSTNRLO"], hgb["LBNRIND"], hgb["LBCAT"], hgb["LBBLFL"]) == (
        110.0, "g/L", 120.0, "LOW", "HEMATOLOGY", None)  # D1 is after the first infusion


def test_trial_summary_comes_from_the_protocol_file(data: TrialData, protocol: Protocol) -> None:
    ts = build_sdtm(data, protocol).domains["TS"]
    values = dict(zip(ts["TSPARMCD"], ts["TSVAL"], strict=False))
    assert values["REGID"] == "NCT03929120" and values["TPHASE"] == "PHASE I TRIAL" and values["PLANSUB"] == "10"
    assert values["ACTSUB"] == "4" and values["SSTDTC"] == "2019-11-05" and values["AGEMIN"] == "P18Y"
    assert set(ts[ts["TSPARMCD"] == "INDIC"]["TSVAL"]) == set(protocol.conditions)
    assert ts["TSVAL"].notna().all()


def test_cm_mh_dv_re_ft(data: TrialData, protocol: Protocol) -> None:
    d = build_sdtm(data, protocol).domains
    cm = d["CM"].set_index("CMSPID")
    assert (cm.loc["CM1", "CMTRT"], cm.loc["CM1", "CMDECOD"], cm.loc["CM1", "CMENRTPT"], cm.loc["CM1", "CMSTDY"]) == (
        "Mycophenolate mofetil 1000 mg BID", "68149", "ONGOING", -233)
    assert (cm.loc["CM2", "CMSTDY"], cm.loc["CM2", "CMENDY"], cm.loc["CM2", "CMROUTE"]) == (2, 4, "ORAL")
    mh = d["MH"].set_index("MHSPID")
    assert (mh.loc["MH1", "MHTERM"], mh.loc["MH1", "MHDECOD"], mh.loc["MH1", "MHENRTPT"]) == ("Systemic sclerosis", "M34.9", "ONGOING")
    dv = d["DV"]
    assert list(dv["DVSPID"]) == ["DV1"]  # the site-level consent deviation has no subject: not in DV
    assert (dv.iloc[0]["DVCAT"], dv.iloc[0]["DVSCAT"], dv.iloc[0]["DVSTDY"]) == ("VISIT OUT OF WINDOW", "AUTOMATIC", 33)
    re_ = d["RE"]
    assert sorted(zip(re_["RETESTCD"], re_["REDY"], re_["RESTRESN"], strict=True)) == [
        ("DLCOPP", -18, 48.0), ("FVC", -18, 2.41), ("FVC", 184, 2.55)]
    ft = d["FT"]
    assert list(zip(ft["FTTESTCD"], ft["FTSTRESN"], ft["FTSTRESU"], ft["VISIT"], strict=True)) == [
        ("SIXMWD", 380.0, "m", "Screening"), ("SIXMWD", 402.0, "m", "Month 6 (end of study)")]
    dm = build_sdtm(data, protocol, identified=True).domains["DM"].set_index("SUBJID")
    # the end of participation is the last date anything was recorded: S01's fatigue on day 187, after the M6 visit
    assert (dm.loc["S01", "RFPENDTC"], dm.loc["S01", "RFENDTC"], dm.loc["S04", "RFPENDTC"]) == ("2020-07-25", "2020-07-21", "2020-03-20")
    assert (dm.loc["S02", "RACE"], dm.loc["S04", "ETHNIC"]) == ("BLACK OR AFRICAN AMERICAN", "NOT REPORTED")


def test_ex_lb_vs_ds(data: TrialData, protocol: Protocol) -> None:
    d = build_sdtm(data, protocol).domains
    ex = d["EX"]
    assert list(ex["EXDOSE"]) == [0.5, 1.0, 0.5, 0.5, 1.0]
    assert set(ex["EXDOSU"]) == {"10^6 cells/kg"} and set(ex["EXROUTE"]) == {"INTRAVENOUS"}
    assert list(ex["EXSTDY"]) == [1, 29, 1, 29, 1]
    lb = d["LB"].set_index("LBTESTCD")
    assert (lb.loc["HGB", "LBNRIND"], lb.loc["ALT", "LBNRIND"], lb.loc["AST", "LBNRIND"]) == ("LOW", "NORMAL", "HIGH")
    assert lb.loc["ALT", "LBDY"] == -18  # screening 2020-01-02, first infusion 2020-01-20
    assert set(d["VS"]["VSTESTCD"]) == {"SYSBP", "PULSE", "OXYSAT", "TEMP"}
    ds = d["DS"][d["DS"]["DSCAT"] == "DISPOSITION EVENT"]
    assert dict(zip(ds["USUBJID"], ds["DSDECOD"], strict=True)) == {
        "NCT03929120-S01": "COMPLETED", "NCT03929120-S03": "DEATH", "NCT03929120-S04": "WITHDRAWAL BY SUBJECT"}
    dm = d["DM"].set_index("SUBJID")
    assert (dm.loc["S03", "DTHFL"], dm.loc["S04", "ACTARMCD"], dm.loc["S02", "SEX"]) == ("Y", "NOTTRT", "M")


def test_xpt_reads_back(data: TrialData, protocol: Protocol, tmp_path: Path) -> None:
    sdtm = build_sdtm(data, protocol)
    sdtm.write(tmp_path)
    for domain, frame in sdtm.domains.items():
        back, meta = pyreadstat.read_xport(str(tmp_path / f"{domain.lower()}.xpt"))
        assert list(back.columns) == list(frame.columns)
        assert len(back) == len(frame)
        assert meta.column_labels == [v.label for v in VARIABLES[domain]]
        via_pandas = pd.read_sas(tmp_path / f"{domain.lower()}.xpt", format="xport", encoding="utf-8")
        assert list(via_pandas.columns) == list(frame.columns)
    back, _ = pyreadstat.read_xport(str(tmp_path / "ae.xpt"))
    assert list(back["AESPID"]) == list(sdtm.domains["AE"]["AESPID"])
    assert list(back["AESTDY"]) == list(sdtm.domains["AE"]["AESTDY"])


def test_metadata_table(data: TrialData, protocol: Protocol, tmp_path: Path) -> None:
    sdtm = build_sdtm(data, protocol)
    meta = sdtm.metadata()
    assert list(meta.columns) == ["domain", "order", "variable", "label", "type", "length", "codelist"]
    row = meta[(meta["domain"] == "AE") & (meta["variable"] == "AESER")].iloc[0]
    assert (row["type"], row["length"], row["codelist"]) == ("Char", 1, "NY (C66742)")
    assert meta[(meta["domain"] == "AE") & (meta["variable"] == "AESTDY")].iloc[0]["type"] == "Num"
    sdtm.write(tmp_path)
    assert (tmp_path / "define.csv").exists()
    assert json.loads((tmp_path / "export.json").read_text())["identified"] is False


def test_empty_cut(protocol: Protocol, tmp_path: Path) -> None:
    with pytest.raises(NoParticipantsError):
        build_sdtm(empty_data(), protocol)
    sdtm = build_sdtm(empty_data(), protocol, allow_empty=True)
    sdtm.write(tmp_path)
    manifest = json.loads((tmp_path / "export.json").read_text())
    assert "allow_empty" in manifest["allow_empty_note"]
    _, meta = pyreadstat.read_xport(str(tmp_path / "dm.xpt"))
    assert meta.file_label == "Demographics (EMPTY CUT)"


def test_a_text_longer_than_transport_v5_holds_is_refused_naming_the_record(data: TrialData, protocol: Protocol, tmp_path: Path) -> None:
    from trialdesk.analysis.sdtm import SdtmError

    long = [a.model_copy(update={"verbatim_term": "x" * 201}) if a.id == "B2" else a for a in data.adverse_events]
    with pytest.raises(SdtmError, match=r"AE\.AETERM of NCT03929120-S02: 201 bytes, more than the 200"):
        build_sdtm(data.model_copy(update={"adverse_events": long}), protocol).write(tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written half-way
    exact = [a.model_copy(update={"verbatim_term": "x" * 200}) if a.id == "B2" else a for a in data.adverse_events]
    build_sdtm(data.model_copy(update={"adverse_events": exact}), protocol).write(tmp_path / "ok")
    assert (tmp_path / "ok" / "ae.xpt").exists()


def test_race_and_ethnicity_read_the_form_codes_as_the_registry_results_do(data: TrialData, protocol: Protocol) -> None:
    from trialdesk.analysis.ctgov_results import results_section

    people = [p.model_copy(update={"race": r, "ethnicity": e}) for p, r, e in zip(
        data.participants, ["more_than_one_race", "Native Hawaiian or Other Pacific Islander", "american_indian_or_alaska_native", "other"],
        ["hispanic_or_latino", "Not Hispanic or Latino", "unknown_or_not_reported", ""], strict=True)]
    cut = data.model_copy(update={"participants": people})
    dm = build_sdtm(cut, protocol).domains["DM"].set_index("SUBJID")
    assert list(dm["RACE"]) == ["MULTIPLE", "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER", "AMERICAN INDIAN OR ALASKA NATIVE", "NOT REPORTED"]
    assert list(dm["ETHNIC"]) == ["HISPANIC OR LATINO", "NOT HISPANIC OR LATINO", "NOT REPORTED", "NOT REPORTED"]
    race = next(m for m in results_section(cut, protocol)["resultsSection"]["baselineCharacteristicsModule"]["measures"]
                if m["title"].startswith("Race"))
    counts = {c["title"]: c["measurements"][0]["value"] for c in race["classes"][0]["categories"]}
    # the registry counts the three infused (S04 was never infused), under the same categories
    assert [counts[c] for c in ("More than one race", "Native Hawaiian or Other Pacific Islander", "American Indian or Alaska Native")] == [
        "1", "1", "1"]
