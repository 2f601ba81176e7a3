"""Results and exports in the trial desk: each download for the roles the permission table allows
(403 for the others), the checks that refuse a premature export (nobody enrolled, open queries,
unsigned eligibility) unless "export anyway" is ticked, the flag recorded in the file and in the
audit trail, and identified SDTM only for a role that may have it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from importlib import resources
from typing import Any

import pandas as pd
import pyreadstat
import pytest
import xmlschema

from trialdesk.edc.audit.models import AuditEntry
from trialdesk.edc.exports.service import KINDS
from trialdesk.edc.permissions import ROLES, TABLE

from .conftest import at_days_ago, days_ago

TODAY = {"cutoff": days_ago(0).isoformat()}
ALLOWED = sorted(TABLE["export_results"])
REFUSED = sorted(set(ROLES) - TABLE["export_results"])


def _ae(trial, participant, **overrides: Any):  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import record_adverse_event

    values: dict[str, Any] = {"term": "Headache", "grade": 2, "description": "headache after the infusion", "onset": days_ago(15),
                              "resolved": None, "serious": False, "seriousness": [], "relatedness": "possibly", "outcome": "recovering",
                              "action_taken": "none", "learned_at": at_days_ago(14), "suggested_from": ""}
    return record_adverse_event(trial.users["coordinator"], participant, **(values | overrides))


@pytest.fixture
def clean(trial):  # type: ignore[no-untyped-def]
    """One participant enrolled, infused, with one AE; no open query; eligibility signed."""
    p = trial.enrol()
    trial.infuse(p)
    _ae(trial, p)
    return p


def _post(client, kind: str, **extra: str):  # type: ignore[no-untyped-def]
    return client.post(f"/exports/{kind}/", TODAY | extra)


def _zip(response) -> zipfile.ZipFile:  # type: ignore[no-untyped-def]
    return zipfile.ZipFile(io.BytesIO(response.content))


def _exports() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action="export"))


# --- each download, for whom ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_download_works_for_an_allowed_role_and_is_refused_for_the_others(kind: str, clean, client_as) -> None:  # type: ignore[no-untyped-def]
    r = _post(client_as("coordinator"), kind)
    assert r.status_code == 200, r.content[:500]
    assert r["Content-Disposition"].startswith('attachment; filename="NCT03929120_')
    assert len(r.content) > 100
    for role in REFUSED:
        assert _post(client_as(role), kind).status_code == 403, role
    assert [e.object_id for e in _exports()] == [kind]  # refusals leave no export behind


def test_the_page_and_its_nav_link_follow_the_permission_table(clean, client_as) -> None:  # type: ignore[no-untyped-def]
    for role in ROLES:
        c = client_as(role)
        assert (c.get("/exports/").status_code == 200) == (role in ALLOWED), role
        assert ('href="/exports/"' in c.get("/").content.decode()) == (role in ALLOWED), role
    page = client_as("data_manager").get("/exports/").content.decode()
    assert "passes the checks" in page and "Identified (with dates)" in page
    assert "Identified (with dates)" not in client_as("coordinator").get("/exports/").content.decode()


def test_downloads_are_posts(clean, client_as) -> None:  # type: ignore[no-untyped-def]
    assert client_as("coordinator").get("/exports/sdtm/").status_code == 405
    assert client_as("coordinator").post("/exports/nonsense/", TODAY).status_code == 404


# --- what is in the files ------------------------------------------------------------------------


def test_primary_outcome_and_flow_come_from_the_captured_data(clean, client_as) -> None:  # type: ignore[no-untyped-def]
    c = client_as("pi")
    counts = list(csv.DictReader(io.StringIO(_post(c, "primary-outcome-csv").content.decode())))
    total = next(r for r in counts if r["scope"] == "total")
    assert total["events"] == "1" and total["participants_at_risk"] == "1"
    png = _post(c, "primary-outcome-png")
    assert png["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG")
    flow = _post(c, "participant-flow-csv").content.decode()
    assert "enrolled" in flow.lower()
    svg = _post(c, "participant-flow-svg")
    assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content and b"Screened" in svg.content


def test_ctgov_results_are_the_api_v2_results_section(clean, client_as) -> None:  # type: ignore[no-untyped-def]
    r = _post(client_as("sponsor"), "ctgov-results", frequency_threshold="5")
    assert r["Content-Type"] == "application/json"
    section = json.loads(r.content)["resultsSection"]
    assert set(section) == {"participantFlowModule", "baselineCharacteristicsModule", "outcomeMeasuresModule", "adverseEventsModule",
                            "moreInfoModule"}
    assert _exports()[-1].changes["frequency_threshold"] == [None, "5"]
    assert _post(client_as("sponsor"), "ctgov-results", frequency_threshold="6").status_code == 400


def test_sdtm_is_de_identified_by_default_and_reads_back(clean, client_as, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = _post(client_as("coordinator"), "sdtm")
    z = _zip(r)
    names = set(z.namelist())
    for domain in ("dm", "ae", "ex", "vs", "lb", "ds"):
        assert {f"{domain}.csv", f"{domain}.xpt"} <= names
    assert {"define.csv", "export.json"} <= names
    manifest = json.loads(z.read("export.json"))
    assert manifest["identified"] is False and manifest["export_anyway"] is False and manifest["warnings"] == []
    assert manifest["exported_by"] == "coordinator" and manifest["cutoff"] == days_ago(0).isoformat()
    ae = pd.read_csv(io.BytesIO(z.read("ae.csv")))
    # de-identified: the onset is shifted back by the participant's offset (1-365 days), never the real date, never blank
    onset = dt.date.fromisoformat(ae["AESTDTC"].iloc[0])
    assert list(ae["AEDECOD"]) == ["Headache"] and 1 <= (days_ago(15) - onset).days <= 365
    (tmp_path / "dm.xpt").write_bytes(z.read("dm.xpt"))
    frame, _ = pyreadstat.read_xport(str(tmp_path / "dm.xpt"))
    assert list(frame["USUBJID"]) == list(pd.read_csv(io.BytesIO(z.read("dm.csv")))["USUBJID"])
    csv_text = b"".join(z.read(n) for n in names if n.endswith(".csv")).decode()
    assert "Lovelace" not in csv_text and "MRN-" not in csv_text and "S-0001" not in csv_text


def test_odm_is_valid_against_its_schema(clean, client_as) -> None:  # type: ignore[no-untyped-def]
    schema = xmlschema.XMLSchema(str(resources.files("odmlib.schemas") / "odm" / "1.3.2" / "ODM1-3-2.xsd"))
    r = _post(client_as("data_manager"), "odm")
    assert r["Content-Type"] == "application/xml"
    schema.validate(r.content.decode())
    assert b"Lovelace" not in r.content


def test_redcap_dictionary_has_the_18_columns(db, client_as, users) -> None:  # type: ignore[no-untyped-def]
    # the dictionary holds the forms only, no data: nothing to check, so it is not refused on an empty trial
    r = _post(client_as("data_manager"), "redcap-dictionary")
    assert r.status_code == 200
    header = next(csv.reader(io.StringIO(r.content.decode())))
    assert len(header) == 18 and header[0] == "Variable / Field Name"


# --- the audit trail -----------------------------------------------------------------------------


def test_every_export_is_in_the_audit_trail(clean, client_as) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    r = _post(client_as("coordinator"), "odm")
    (entry,) = _exports()
    assert entry.username == "coordinator" and entry.role == "coordinator" and entry.form == "export"
    assert entry.changes["export"] == [None, "odm"] and entry.changes["cutoff"] == [None, days_ago(0).isoformat()]
    assert entry.changes["identified"] == [None, "no"] and entry.changes["export_anyway"] == [None, "no"]
    assert entry.changes["warnings"] == [None, ""]
    assert entry.changes["sha256"] == [None, hashlib.sha256(r.content).hexdigest()]
    assert client_as("data_manager").get("/audit/verify/").context["result"].ok
    assert "odm" in client_as("data_manager").get("/audit/?form=export").content.decode()


# --- refused before it is time, unless the user says so ------------------------------------------


def test_refused_before_anyone_is_enrolled(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.screen()
    c = client_as("data_manager")
    page = c.get("/exports/").content.decode()
    assert "no participant was enrolled" in page
    for kind in ("primary-outcome-csv", "participant-flow-svg", "ctgov-results", "sdtm", "odm"):
        r = _post(c, kind)
        assert r.status_code == 409, kind
        assert "Not exported" in r.content.decode() and "no participant was enrolled" in r.content.decode()
    assert _exports() == []


def test_an_empty_cut_exported_anyway_says_so(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    c = client_as("data_manager")
    r = _post(c, "sdtm", export_anyway="on")
    manifest = json.loads(_zip(r).read("export.json"))
    assert manifest["export_anyway"] is True and "no participant was enrolled" in manifest["warnings"][0]
    assert manifest["allow_empty_note"].startswith("Exported with allow_empty")  # the core's own note, kept
    csv_zip = _zip(_post(c, "primary-outcome-csv", export_anyway="on"))
    assert "EXPORTED ANYWAY" in csv_zip.read("README.txt").decode()
    assert _exports()[0].changes["export_anyway"] == [None, "yes"]


def test_refused_with_an_open_query_and_let_through_by_the_flag(clean, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.quality.service import raise_query

    q = raise_query(trial.users["monitor"], clean, target="infusion 1: weight_kg", text="weight differs from the source")
    c = client_as("data_manager")
    r = _post(c, "ctgov-results")
    assert r.status_code == 409 and f"Q-{q.pk}" in r.content.decode() and "1 open query" in r.content.decode()
    assert _exports() == []

    r = _post(c, "ctgov-results", export_anyway="on")
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    z = _zip(r)
    results = json.loads(z.read("NCT03929120_" + days_ago(0).isoformat() + "_ctgov_results.json"))
    assert set(results) == {"resultsSection", "documentSection"}  # no note key inside the registry's JSON
    readme = z.read("README.txt").decode()
    assert "EXPORTED ANYWAY by data_manager" in readme and f"Q-{q.pk}" in readme

    odm = _post(c, "odm", export_anyway="on").content.decode()
    assert "EXPORTED ANYWAY" in odm and f"Q-{q.pk}" in odm
    xmlschema.XMLSchema(str(resources.files("odmlib.schemas") / "odm" / "1.3.2" / "ODM1-3-2.xsd")).validate(odm)

    manifest = json.loads(_zip(_post(c, "sdtm", export_anyway="on")).read("export.json"))
    assert manifest["export_anyway"] is True and manifest["open_queries"] == [f"Q-{q.pk} (001, infusion 1: weight_kg, open)"]
    assert "EXPORTED ANYWAY" in manifest["note"]

    entries = _exports()
    assert [e.object_id for e in entries] == ["ctgov-results", "odm", "sdtm"]
    assert all(e.changes["export_anyway"] == [None, "yes"] and f"Q-{q.pk}" in e.changes["warnings"][1] for e in entries)


def test_refused_with_unsigned_eligibility(clean, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from trialdesk.edc.signatures.service import current_signature

    sig = current_signature(clean.screening.signoff)
    sig.voided_at = timezone.now()
    sig.save(update_fields=["voided_at"])
    c = client_as("pi")
    assert "eligibility not signed" in c.get("/exports/").content.decode()
    r = _post(c, "participant-flow-csv")
    assert r.status_code == 409
    assert "eligibility not signed (sign-off missing or voided) for 1 enrolled participant: 001" in r.content.decode()
    z = _zip(_post(c, "participant-flow-csv", export_anyway="on"))
    assert "eligibility not signed" in z.read("README.txt").decode()
    svg = _post(c, "participant-flow-svg", export_anyway="on").content.decode()
    assert "EXPORTED ANYWAY" in svg  # the diagram carries the note as text


# --- identified SDTM -----------------------------------------------------------------------------


def test_identified_sdtm_is_refused_for_a_coordinator(clean, client_as) -> None:  # type: ignore[no-untyped-def]
    assert _post(client_as("coordinator"), "sdtm", identified="on").status_code == 403
    assert _exports() == []


def test_identified_sdtm_for_the_data_manager_is_audited(clean, client_as) -> None:  # type: ignore[no-untyped-def]
    r = _post(client_as("data_manager"), "sdtm", identified="on")
    assert r.status_code == 200 and "_IDENTIFIED" in r["Content-Disposition"]
    z = _zip(r)
    assert json.loads(z.read("export.json"))["identified"] is True
    ae = pd.read_csv(io.BytesIO(z.read("ae.csv")))
    assert list(ae["AESTDTC"]) == [days_ago(15).isoformat()]
    (entry,) = _exports()
    assert entry.changes["identified"] == [None, "yes"] and entry.reason == "identified export"


def test_identified_applies_to_sdtm_only(clean, client_as) -> None:  # type: ignore[no-untyped-def]
    r = _post(client_as("data_manager"), "odm", identified="on")
    assert r.status_code == 400 and "only the SDTM and flat exports can be identified" in r.content.decode()


def test_a_cut_after_today_is_refused(clean, client_as) -> None:  # type: ignore[no-untyped-def]
    r = client_as("pi").post("/exports/sdtm/", {"cutoff": days_ago(-1).isoformat()})
    assert r.status_code == 400 and "cannot be after today" in r.content.decode()
    assert _exports() == []


# --- the de-identified export's dates, the verbatim term, MedDRA ---------------------------------


def test_de_identified_exports_shift_a_participant_by_the_same_offset_every_time(clean, client_as, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The study keeps one date-shift key, so two de-identified cuts line up (and can be merged); the key is in no file."""
    from trialdesk.edc.exports.models import DateShiftKey

    monkeypatch.delenv("TRIALDESK_DATE_SHIFT_KEY", raising=False)
    first = _zip(_post(client_as("coordinator"), "sdtm"))
    second = _zip(_post(client_as("data_manager"), "sdtm"))
    onsets = [pd.read_csv(io.BytesIO(z.read("ae.csv")))["AESTDTC"].iloc[0] for z in (first, second)]
    assert onsets[0] == onsets[1] and onsets[0] != days_ago(15).isoformat()
    (key,) = DateShiftKey.objects.all()
    assert all(key.key.encode() not in first.read(n) for n in first.namelist())


def test_the_configured_shift_key_gives_the_command_lines_offsets(clean, client_as, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.analysis.sdtm import shift_days

    monkeypatch.setenv("TRIALDESK_DATE_SHIFT_KEY", "a study secret")
    z = _zip(_post(client_as("coordinator"), "sdtm"))
    ae = pd.read_csv(io.BytesIO(z.read("ae.csv")))
    offset = shift_days(f"NCT03929120-{clean.subject_id}", b"a study secret")
    assert ae["AESTDTC"].iloc[0] == (days_ago(15) - dt.timedelta(days=offset)).isoformat()


def test_aeterm_is_the_investigators_own_words_and_aedecod_the_coded_term(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p)
    _ae(trial, p, verbatim_term="Throbbing headache behind the eyes")
    _ae(trial, p, term="Fatigue", grade=1, verbatim_term="")  # no words given: the CTCAE term stands in
    ae = pd.read_csv(io.BytesIO(_zip(_post(client_as("coordinator"), "sdtm", export_anyway="on")).read("ae.csv")))
    rows = dict(zip(ae["AEDECOD"], ae["AETERM"], strict=True))
    assert rows == {"Headache": "Throbbing headache behind the eyes", "Fatigue": "Fatigue"}
    assert set(ae["AELLT"]) == {"Headache", "Fatigue"}


def test_the_ae_form_keeps_the_words_it_was_given(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.models import AdverseEvent

    p = trial.enrol()
    trial.infuse(p)
    r = client_as("coordinator").post("/adverse-events/new/", {
        "subject_id": p.subject_id, "verbatim_term": "Woozy after the drip", "term": "Dizziness", "grade": "1",
        "onset": days_ago(10).isoformat(), "serious": "no", "relatedness": "possibly", "outcome": "recovering",
        "action_taken": "none", "learned_at": at_days_ago(9).strftime("%Y-%m-%dT%H:%M")})
    assert r.status_code == 302, r.content.decode()[-2000:]
    ae = AdverseEvent.objects.get()
    assert (ae.verbatim_term, ae.term) == ("Woozy after the drip", "Dizziness")
    assert "Woozy after the drip" in client_as("monitor").get(f"/adverse-events/{ae.pk}/").content.decode()
    dsmb = client_as("dsmb").get(f"/adverse-events/{ae.pk}/")
    assert dsmb.status_code == 200 and "Dizziness" in dsmb.content.decode()
    assert "Woozy after the drip" not in dsmb.content.decode()  # free text can name people: withheld from the DSMB


def test_a_licensed_meddra_named_in_the_settings_codes_aedecod_to_the_preferred_term(clean, client_as, settings) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    settings.TRIALDESK_MEDDRA = str(Path(__file__).parents[1] / "fixtures" / "meddra")
    ae = pd.read_csv(io.BytesIO(_zip(_post(client_as("coordinator"), "sdtm")).read("ae.csv")))
    assert list(ae["AEDECOD"]) == ["Headache (fixture PT)"] and list(ae["AEPTCD"]) == [90000006]
