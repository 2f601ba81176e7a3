from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from tests.analysis.fixtures import empty_data
from trialdesk.analysis.data_cut import NoParticipantsError
from trialdesk.analysis.sdtm import DOMAINS, VARIABLES, build_sdtm
from trialdesk.protocol.model import Protocol
from trialdesk.trial.records import TrialData


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


def test_de_identified_by_default_and_identified_on_request(data: TrialData, protocol: Protocol) -> None:
    plain = build_sdtm(data, protocol)
    for frame in plain.domains.values():
        for col in (c for c in frame.columns if c.endswith("DTC")):
            assert frame[col].isna().all(), col
    dated = build_sdtm(data, protocol, identified=True)
    assert dated.domains["AE"].set_index("AESPID").loc["A2", "AESTDTC"] == "2020-01-20"
    assert dated.domains["DM"].set_index("SUBJID").loc["S01", "RFSTDTC"] == "2020-01-20"


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
