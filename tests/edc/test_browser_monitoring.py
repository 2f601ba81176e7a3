"""The monitor and the laboratory import in a real browser (Debian's chromium via Playwright), as the roles that use
them: the monitor verifies fields of a form and raises a query beside a field, the coordinator answers it on that field,
the monitor closes it and prints the monitoring-visit report; the data manager enters a reference range and the
coordinator imports results, sees every row's fate, then stores them. Screenshots go to $TRIALDESK_ARTIFACTS/browser-desk."""

from __future__ import annotations

from typing import Any

import pytest

from .test_browser import _login, _logout
from .test_browser_desk import _shot, browser_page


def _vitals_visit(trial: Any, users: dict[str, Any]) -> Any:
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import record_visit, save_form

    p = trial.enrol()
    trial.infuse(p, ago=20)
    v = next(v for v in Visit.objects.filter(participant=p, day__gt=0).order_by("day") if "vital_signs" in v.forms)
    v = record_visit(users["coordinator"], v, done_on=v.target, version=v.version)
    save_form(users["coordinator"], v, "vital_signs", {"vs_date": v.target, "sysbp": 120, "diabp": 80, "pulse": 70})
    return v


@pytest.mark.slow
def test_the_monitor_verifies_queries_and_prints_the_visit_report(live_server, trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.quality.models import Query, SourceVerification

    v = _vitals_visit(trial, users)
    base, form_url = live_server.url, f"{live_server.url}/participants/001/visits/{v.code}/vital_signs/"
    with browser_page() as page:
        _login(page, base, "monitor")
        page.goto(form_url)
        page.check('#field-sysbp input[name="field"]')
        page.check('#field-pulse input[name="field"]')
        page.click("text=Verify the ticked fields")
        page.wait_for_url(form_url)
        assert "2 fields verified" in page.content()
        assert page.locator('#field-sysbp [data-sdv="verified"]').count() == 1
        assert page.locator('#field-diabp [data-sdv="not_verified"]').count() == 1
        page.click("#field-diabp summary")
        page.fill("#field-diabp textarea[name=text]", "Source note says 78; please check the diastolic.")
        page.click("#field-diabp button:has-text('Raise query')")
        page.wait_for_url(form_url)
        assert "please check the diastolic" in page.locator("#field-diabp").inner_text()
        _shot(page, "monitor-verifies-fields-and-raises-a-query")
        assert page.locator('input[name="diabp"]').count() == 0  # the monitor changes no data
        _logout(page)

        _login(page, base, "coordinator")
        page.goto(form_url)
        row = page.locator("#field-diabp")
        assert "please check the diastolic" in row.inner_text() and "0 days open" in row.inner_text()
        row.locator("input[name=answer]").fill("Corrected to 78 from the source note.")
        row.locator("button:has-text('Answer')").click()
        page.wait_for_url(form_url)
        page.fill("#id_diabp", "78")
        page.fill("#id_reason", "transcription error, see query")
        page.click("button:has-text('Save')")
        page.wait_for_url(f"{base}/participants/001/visits/{v.code}/")
        _logout(page)

        _login(page, base, "monitor")
        page.goto(form_url)
        assert page.locator('#field-sysbp [data-sdv="verified"]').count() == 1  # unchanged: still verified
        page.goto(f"{base}/queries/")
        page.click("#queries button:has-text('Close')")
        page.wait_for_url(f"{base}/queries/")
        assert Query.objects.get().status == "closed"
        page.goto(f"{base}/monitoring-report/")
        report = page.locator("main").inner_text()
        assert "please check the diastolic" in report and "Systolic blood pressure" in report
        page.emulate_media(media="print")
        assert not page.locator("header.top nav").is_visible() and not page.locator("form.filters").is_visible()
        _shot(page, "monitoring-visit-report-printed")
    assert SourceVerification.objects.count() == 2


@pytest.mark.slow
def test_the_data_manager_enters_a_range_and_the_coordinator_imports_labs(live_server, trial, users, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import FormEntry, Visit
    from trialdesk.edc.visits.service import record_visit

    p = trial.enrol()
    trial.infuse(p, ago=20)
    v = next(v for v in Visit.objects.filter(participant=p, day__gt=0).order_by("day") if "laboratory" in v.forms)
    v = record_visit(users["coordinator"], v, done_on=v.target, version=v.version)
    base = live_server.url
    with browser_page() as page:
        _login(page, base, "data_manager")
        page.goto(f"{base}/labs/ranges/")
        page.fill("#id_laboratory", "Central laboratory")
        page.select_option("#id_analyte", "hgb")
        page.fill("#id_lower", "12")
        page.fill("#id_upper", "16")
        page.fill("#id_effective_from", "2020-01-01")
        page.click("button:has-text('Save range')")
        page.wait_for_url(f"{base}/labs/ranges/")
        assert "Haemoglobin" in page.locator("#lab-ranges").inner_text()
        _logout(page)

        _login(page, base, "coordinator")
        bad = tmp_path / "labs.csv"
        bad.write_text(f"subject_id,visit,sample_date,analyte,value,unit\n001,{v.code},{v.target},hgb,16.5,g/dL\n"
                       f"001,{v.code},{v.target},plat,190,g/dL\n")
        page.goto(f"{base}/labs/import/")
        page.set_input_files("#id_file", str(bad))
        page.click("button:has-text('Preview')")
        assert "line 3, unit: Platelets is recorded in 10^9/L" in page.locator("#import-preview").inner_text()
        assert page.locator("#store-import").count() == 0
        _shot(page, "lab-import-preview-with-a-rejected-row")
        good = tmp_path / "labs-fixed.csv"
        good.write_text(bad.read_text().replace("190,g/dL", "190,10^9/L"))
        page.set_input_files("#id_file", str(good))
        page.click("button:has-text('Preview')")
        assert "2 will be stored" in page.locator("#import-counts").inner_text()
        assert page.locator('#import-preview [data-flag="H"]').count() == 1  # 16.5 above 16
        assert not FormEntry.objects.exists()  # the preview stored nothing
        page.click("#store-import")
        page.wait_for_url(f"{base}/labs/import/")
        assert "2 results stored" in page.content()
        page.goto(f"{base}/participants/001/visits/{v.code}/laboratory/")
        assert page.locator('#field-hgb [data-flag="H"]').count() == 1
        _shot(page, "lab-form-flags-after-import")
    e = FormEntry.objects.get(visit=v, form="laboratory")
    assert (e.data["hgb"], e.data["plat"], e.data["hgb_uln"]) == (16.5, 190.0, 16.0)
