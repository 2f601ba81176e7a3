"""Unscheduled visits: added to a participant with a reason and the forms done at it; shown in the schedule, the
timeline and the flat export; never missed, never out of window, and a chosen form never started is not missing."""

from __future__ import annotations

import pytest

from trialdesk.trial.errors import ConductError

from .conftest import days_ago


@pytest.fixture
def infused(trial):  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p, ago=20)
    return p


def test_an_unscheduled_visit_is_added_with_its_reason_and_forms_and_sits_in_the_schedule(infused, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import Visit

    c = client_as("coordinator")
    assert 'href="/participants/001/unscheduled-visit/"' in c.get("/participants/001/").content.decode()
    r = c.post("/participants/001/unscheduled-visit/", {"done_on": days_ago(5).isoformat(), "reason": "new cough and fever",
                                                        "forms": ["vital_signs", "laboratory"]})
    assert r.status_code == 302 and r["Location"] == "/participants/001/visits/U1/"
    v = Visit.objects.get(code="U1")
    assert (v.name, v.day, v.forms, v.unscheduled_reason) == ("Unscheduled visit 1", 15, ["vital_signs", "laboratory"],
                                                              "new cough and fever")
    page = c.get("/participants/001/visits/U1/").content.decode()
    assert "new cough and fever" in page and "/visits/U1/vital_signs/" in page and "/visits/U1/laboratory/" in page
    detail = c.get("/participants/001/").content.decode()
    assert "Unscheduled visit 1" in detail and "unscheduled</span>" in detail
    codes = [x.code for x in Visit.objects.filter(participant=infused)]
    assert codes.index("U1") > 0 and codes.index("U1") < len(codes) - 1  # by its study day, among the scheduled visits
    assert "Unscheduled visit 1 done (day 15)" in c.get("/participants/001/timeline/").content.decode()


def test_it_is_never_missed_out_of_window_or_missing_its_unstarted_forms(infused, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.service import flag, missing_forms, record_visit, save_form
    from trialdesk.edc.visits.unscheduled import add_unscheduled_visit
    from trialdesk.edc.web import today

    v = add_unscheduled_visit(users["coordinator"], infused, done_on=days_ago(5), reason="repeat ALT", forms=["laboratory",
                                                                                                              "six_minute_walk"])
    assert flag(v, as_of=days_ago(-60)) == "done"
    assert not [r for r in missing_forms(today()) if r["visit"].code == "U1"]
    save_form(users["coordinator"], v, "six_minute_walk", {"smw_date": days_ago(5)})  # begun, the distance not entered
    assert [r["id"] for r in missing_forms(today()) if r["visit"].code == "U1"] == ["six_minute_walk"]
    v.refresh_from_db()
    moved = record_visit(users["coordinator"], v, done_on=days_ago(6), reason="the date was a day earlier", version=v.version)
    assert (moved.earliest, moved.latest, moved.out_of_window, moved.day) == (days_ago(6), days_ago(6), False, 14)
    from trialdesk.edc.quality.models import Deviation

    assert not Deviation.objects.exists()  # no window to be out of


@pytest.mark.parametrize(("values", "field", "says"), [
    ({"reason": " "}, "reason", "say why"),
    ({"forms": []}, "forms", "choose the forms"),
    ({"forms": ["infusion"]}, "forms", "no visit form"),
    ({"done_on": days_ago(-1)}, "done_on", "future"),
    ({"done_on": days_ago(40)}, "done_on", "before consent"),
])
def test_a_visit_that_cannot_be_is_refused_naming_the_field_and_nothing_stored(infused, users, values, field, says) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.unscheduled import add_unscheduled_visit

    args = {"done_on": days_ago(5), "reason": "new cough", "forms": ["vital_signs"]} | values
    with pytest.raises(ConductError, match=says) as e:
        add_unscheduled_visit(users["coordinator"], infused, **args)
    assert e.value.field == field and not Visit.objects.filter(unscheduled=True).exists()


def test_only_site_staff_add_one(infused, client_as) -> None:  # type: ignore[no-untyped-def]
    for role in ("monitor", "data_manager", "dsmb"):
        assert client_as(role).post("/participants/001/unscheduled-visit/", {"reason": "x"}).status_code == 403


def test_in_sdtm_an_unscheduled_visit_is_numbered_after_the_last_scheduled_one(infused, users, client_as) -> None:  # type: ignore[no-untyped-def]
    import csv
    import io
    import zipfile

    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import record_visit, save_form
    from trialdesk.edc.visits.unscheduled import add_unscheduled_visit
    from trialdesk.edc.web import protocol

    order = {v.code: i + 1 for i, v in enumerate(protocol().schedule.visits)}
    before = Visit.objects.filter(participant=infused, unscheduled=False, target__lte=days_ago(6), day__gt=0).order_by("day").last()
    record_visit(users["coordinator"], before, done_on=min(before.latest, days_ago(6)), version=before.version)  # in its window
    v = add_unscheduled_visit(users["coordinator"], infused, done_on=days_ago(5), reason="new cough", forms=["vital_signs"])
    save_form(users["coordinator"], v, "vital_signs", {"vs_date": days_ago(5), "sysbp": 131, "diabp": 82})
    r = client_as("data_manager").post("/exports/sdtm/", {"cutoff": days_ago(0).isoformat()})
    assert r.status_code == 200, r.content[:300]
    z = zipfile.ZipFile(io.BytesIO(r.content))
    rows = list(csv.DictReader(io.StringIO(z.read(next(n for n in z.namelist() if n.lower().endswith("vs.csv"))).decode())))
    sys = [row for row in rows if row["VSTESTCD"] == "SYSBP" and row["VSORRES"] == "131"]
    assert sys and float(sys[0]["VISITNUM"]) == order[before.code] + 0.01 and sys[0]["VISIT"] == f"UNSCHEDULED {order[before.code]}.01"
