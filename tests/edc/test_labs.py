"""Laboratory reference ranges (entered once per laboratory and analyte, versioned by the date each takes effect),
H/L flags on entry (a value exactly at a limit is not flagged), and the bulk import (CSV, FHIR Bundle): every row's fate
shown before anything is stored, then everything stored or nothing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from trialdesk.trial.errors import ConductError

from .conftest import days_ago

LAB = "Mayo Clinic Florida central laboratory"
SITE = "Mayo Clinic in Florida"


def _ranges(users: dict[str, Any], effective: dt.date = dt.date(2020, 1, 1)) -> None:
    from trialdesk.edc.labs.service import add_range

    add_range(users["data_manager"], site=SITE, laboratory=LAB, analyte="hgb", unit="g/dL", lower=12.0, upper=16.0,
              effective_from=effective)
    add_range(users["data_manager"], site=SITE, laboratory=LAB, analyte="alt", unit="U/L", lower=None, upper=40.0,
              effective_from=effective)


def _lab_visits(trial: Any, users: dict[str, Any], n: int = 2) -> tuple[Any, list[Any]]:
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import record_visit

    p = trial.enrol()
    trial.infuse(p, ago=20)
    out = []
    for v in [v for v in Visit.objects.filter(participant=p, day__gt=0).order_by("day") if "laboratory" in v.forms][:n]:
        out.append(record_visit(users["coordinator"], v, done_on=v.target, version=v.version))
    assert len(out) == n and out[-1].target <= days_ago(0)
    return p, out


def test_ranges_are_entered_once_versioned_and_checked(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit.models import AuditEntry
    from trialdesk.edc.labs.models import ReferenceRange as Stored
    from trialdesk.edc.labs.service import add_range

    dm = client_as("data_manager")
    data = {"site": SITE, "laboratory": LAB, "analyte": "hgb", "lower": "12", "upper": "16", "effective_from": "2020-01-01"}
    assert dm.post("/labs/ranges/", data).status_code == 302
    again = dm.post("/labs/ranges/", data)  # the same date again is not a new version
    assert again.status_code == 422 and "already takes effect on 2020-01-01" in again.content.decode()
    assert dm.post("/labs/ranges/", data | {"effective_from": "2026-06-01", "lower": "11.5"}).status_code == 302
    assert Stored.objects.count() == 2 and AuditEntry.objects.filter(model="labs.ReferenceRange", action="create").count() == 2
    page = client_as("monitor").get("/labs/ranges/").content.decode()
    assert "2026-06-01" in page and "Haemoglobin" in page and "Add a range" not in page  # the monitor reads, changes nothing
    assert client_as("monitor").post("/labs/ranges/", data | {"effective_from": "2026-07-01"}).status_code == 403
    with pytest.raises(ConductError, match="recorded in g/dL"):
        add_range(users["coordinator"], site=SITE, laboratory=LAB, analyte="hgb", unit="g/L", lower=120, upper=160,
                  effective_from=dt.date(2027, 1, 1))
    with pytest.raises(ConductError, match="above the upper limit"):
        add_range(users["coordinator"], site=SITE, laboratory=LAB, analyte="hgb", unit="g/dL", lower=16.1, upper=16.0,
                  effective_from=dt.date(2027, 1, 1))


def test_the_lab_form_takes_the_range_in_force_and_flags_high_and_low(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.labs.service import flags_for

    _ranges(users)
    p, (v, _) = _lab_visits(trial, users)
    c = client_as("coordinator")
    r = c.post(f"/participants/001/visits/{v.code}/laboratory/", {"lb_date": v.target.isoformat(), "hgb": "16.0", "alt": "40.1"})
    assert r.status_code == 302
    from django.contrib.messages import get_messages

    said = " ".join(str(m) for m in get_messages(r.wsgi_request))
    assert "Alanine aminotransferase (ALT) high" in said and "Haemoglobin" not in said  # 16.0 is the upper limit: within
    from trialdesk.edc.visits.models import FormEntry

    e = FormEntry.objects.get(visit=v, form="laboratory")
    assert (e.data["hgb_lln"], e.data["hgb_uln"], e.data["alt_uln"], e.data["lb_lab"]) == (12.0, 16.0, 40.0, LAB)
    flags = flags_for(p, "laboratory", e.data)
    assert (flags["hgb"].code, flags["alt"].code) == ("", "H")
    page = client_as("monitor").get(f"/participants/001/visits/{v.code}/laboratory/").content.decode()
    assert 'data-flag="H"' in page.split('id="field-alt"')[1].split("</tr>")[0]
    assert 'data-flag' not in page.split('id="field-hgb"')[1].split("</tr>")[0]


def test_limits_the_site_entered_are_kept(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.service import save_form

    _ranges(users)
    _p, (v, _) = _lab_visits(trial, users)
    e = save_form(users["coordinator"], v, "laboratory", {"lb_date": v.target, "hgb": 11.0, "hgb_lln": 10.5, "hgb_uln": 15.0})
    assert (e.data["hgb_lln"], e.data["hgb_uln"]) == (10.5, 15.0)


# --- the bulk import --------------------------------------------------------------------------------


def _csv(rows: list[str]) -> bytes:
    return ("subject_id,visit,sample_date,analyte,value,unit,laboratory\n" + "\n".join(rows) + "\n").encode()


def _upload(c: Any, content: bytes, kind: str = "csv", name: str = "labs.csv") -> Any:
    return c.post("/labs/import/", {"kind": kind, "file": SimpleUploadedFile(name, content)})


def test_the_preview_gives_every_rows_fate_and_stores_nothing(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit.models import AuditEntry
    from trialdesk.edc.visits.models import FormEntry

    _ranges(users)
    _p, (v1, v2) = _lab_visits(trial, users)
    d1, d2 = v1.target.isoformat(), v2.target.isoformat()
    c = client_as("coordinator")
    before = AuditEntry.objects.count()
    r = _upload(c, _csv([f"001,{v1.code},{d1},hgb,16.0,g/dL,{LAB}", f"001,{v1.code},{d1},1742-6,41,U/L,{LAB}",
                         f"002,{v1.code},{d1},hgb,13,g/dL,{LAB}", f"001,{v2.code},{d2},hgb,13,mmol/L,{LAB}",
                         f"001,{v2.code},{d2},potassium,high,mmol/L,{LAB}", f"001,{v2.code},2999-01-01,hgb,13,g/dL,{LAB}"]))
    page = r.content.decode()
    assert r.status_code == 200 and AuditEntry.objects.count() == before and not FormEntry.objects.exists()
    assert "2 will be stored" in page and "4 rejected" in page
    assert "line 4, subject_id: there is no participant &#x27;002&#x27;" in page
    assert "line 5, unit: Haemoglobin is recorded in g/dL, not &#x27;mmol/L&#x27;" in page
    assert "line 6, value: &#x27;high&#x27; is not a number" in page
    assert "line 7, sample_date: 2999-01-01 is in the future" in page
    assert 'data-flag="H"' in page  # ALT 41 above 40; haemoglobin at 16.0 is within
    assert 'id="store-import"' not in page  # nothing can be stored while a row is rejected
    r = c.post("/labs/import/", {"action": "commit"})
    assert not FormEntry.objects.exists()


def test_a_clean_file_is_stored_whole_with_the_ranges_and_a_second_import_finds_it_stored(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit.models import AuditEntry
    from trialdesk.edc.audit.trail import verify
    from trialdesk.edc.visits.models import FormEntry

    _ranges(users)
    _p, (v1, v2) = _lab_visits(trial, users)
    content = _csv([f"001,{v1.code},{v1.target},hgb,13.1,g/dL,", f"001,{v1.code},{v1.target},alt,22,U/L,",
                    f"001,{v2.code},{v2.target},hgb,11.9,g/dL,"])
    c = client_as("coordinator")
    page = _upload(c, content).content.decode()
    assert "3 will be stored" in page and 'id="store-import"' in page and 'data-flag="L"' in page
    r = c.post("/labs/import/", {"action": "commit"})
    assert r.status_code == 302
    e1, e2 = FormEntry.objects.get(visit=v1, form="laboratory"), FormEntry.objects.get(visit=v2, form="laboratory")
    assert (e1.data["hgb"], e1.data["alt"], e1.data["alt_uln"], e1.data["lb_lab"]) == (13.1, 22.0, 40.0, LAB)
    assert e2.data["hgb"] == 11.9 and e2.data["lb_date"] == v2.target.isoformat()
    assert AuditEntry.objects.filter(model="visits.FormEntry", action="create").count() == 2 and verify().ok
    again = _upload(c, content).content.decode()
    assert "0 will be stored" in again and "3 already stored" in again and 'id="store-import"' not in again


def test_a_value_that_differs_from_the_one_stored_is_rejected_not_overwritten(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.service import save_form

    _p, (v1, _v2) = _lab_visits(trial, users)
    save_form(users["coordinator"], v1, "laboratory", {"lb_date": v1.target, "hgb": 13.0})
    page = _upload(client_as("coordinator"), _csv([f"001,{v1.code},{v1.target},hgb,14,g/dL,"])).content.decode()
    assert "line 2, value: Haemoglobin at" in page and "is already 13" in page


def test_the_import_is_all_or_nothing_when_a_form_fails_while_storing(trial, users, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.labs import importing
    from trialdesk.edc.visits import service
    from trialdesk.edc.visits.models import FormEntry

    _p, (v1, v2) = _lab_visits(trial, users)
    rows = importing.read_csv(_csv([f"001,{v1.code},{v1.target},hgb,13,g/dL,", f"001,{v2.code},{v2.target},hgb,12,g/dL,"]).decode())
    real = service.save_form

    def fails_on_the_second(user, visit, *a, **k):  # type: ignore[no-untyped-def]
        if visit.pk == v2.pk:
            raise ConductError("lb_date", "refused by the form's checks")
        return real(user, visit, *a, **k)

    monkeypatch.setattr(service, "save_form", fails_on_the_second)
    with pytest.raises(ConductError, match="refused by the form"):
        importing.commit(users["coordinator"], rows, "labs.csv")
    assert not FormEntry.objects.exists()  # the first form, saved before the second failed, was rolled back


def _bundle(*observations: dict[str, Any]) -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": "collection",
                       "entry": [{"fullUrl": f"urn:uuid:{o['id']}", "resource": o} for o in observations]}).encode()


def _observation(oid: str, loinc: str, value: float, unit: str, day: dt.date, subject: str = "Patient/001",
                 status: str = "final") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": status,
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]}, "subject": {"reference": subject},
            "effectiveDateTime": f"{day.isoformat()}T08:30:00-05:00",
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}


def test_a_fhir_bundle_of_observations_is_read_through_the_fhir_views(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import FormEntry

    _ranges(users)
    _p, (v1, _v2) = _lab_visits(trial, users)
    c = client_as("coordinator")
    bad = _bundle(_observation("hb1", "718-7", 17.2, "g/dL", v1.target), _observation("alt1", "1742-6", 30, "mg/dL", v1.target),
                  _observation("x1", "718-7", 13, "g/dL", v1.target, status="entered-in-error"),
                  _observation("nobody", "718-7", 13, "g/dL", v1.target, subject="Patient/999"))
    page = _upload(c, bad, kind="fhir", name="bundle.json").content.decode()
    assert "1 will be stored" in page and "3 rejected" in page and 'data-flag="H"' in page
    assert "Observation/alt1, Observation.valueQuantity.unit: Alanine aminotransferase (ALT) is recorded in U/L" in page
    assert "Observation/x1, Observation.status: the Observation&#x27;s status is entered-in-error" in page
    assert "Observation/nobody, Observation.subject: there is no participant &#x27;999&#x27;" in page
    good = _bundle(_observation("hb1", "718-7", 17.2, "g/dL", v1.target), _observation("alt1", "1742-6", 30, "U/L", v1.target))
    page = _upload(c, good, kind="fhir", name="bundle.json").content.decode()
    assert "2 will be stored" in page and v1.code in page  # the visit whose window holds the sample date
    c.post("/labs/import/", {"action": "commit"})
    e = FormEntry.objects.get(visit=v1, form="laboratory")
    assert (e.data["hgb"], e.data["alt"], e.data["hgb_uln"]) == (17.2, 30, 16.0)


def test_only_site_staff_import_and_a_monitor_is_refused(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    for role, status in (("monitor", 403), ("data_manager", 403), ("dsmb", 403), ("coordinator", 200)):
        assert client_as(role).get("/labs/import/").status_code == status, role
