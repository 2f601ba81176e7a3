"""The MedWatch 3500A-style summary of an SAE, against the hand-counted fixture (see fixtures.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.safety.fixtures import at, lab, trial_data
from trialdesk.safety.medwatch import FollowUpNote, MedwatchForm, Reporter, build_medwatch, render_html
from trialdesk.safety.medwatch_pdf import render_pdf
from trialdesk.trial.death import DeathReport

TODAY = dt.date(2020, 9, 30)


def form_for(protocol, ae_id: str, **kw: object) -> MedwatchForm:  # type: ignore[no-untyped-def]
    data = trial_data(labs=[lab("002", "2020-03-19", "Leukocytes", 14.2, "10^9/L", 4.0, 11.0),
                            lab("002", "2020-01-02", "Leukocytes", 6.0, "10^9/L", 4.0, 11.0)])
    ae = next(a for a in data.adverse_events if a.id == ae_id)
    return build_medwatch(ae, data, protocol, report_date=TODAY, **kw)  # type: ignore[arg-type]


def test_patient_section_is_de_identified_with_age_sex_and_infusion_weight(protocol) -> None:  # type: ignore[no-untyped-def]
    form = form_for(protocol, "A5", age_at_event=61)
    assert form.block("A1").value.startswith("002 ")
    assert (form.block("A2").value, form.block("A3").value) == ("61 years", "Female")
    assert form.block("A4").value == "80.0 kg (at infusion 2, 2020-03-09)"


def test_outcomes_dates_and_relevant_labs_near_the_onset(protocol) -> None:  # type: ignore[no-untyped-def]
    form = form_for(protocol, "A5")
    assert form.block("B2").value == "Hospitalization — initial or prolonged"
    assert (form.block("B3").value, form.block("B4").value) == ("2020-03-20", "2020-09-30")
    assert form.block("B6").value == "2020-03-19 Leukocytes 14.2 10^9/L (range 4.0–11.0)"  # the January value is outside ± 14 days


def test_suspect_product_lists_each_infusion_before_onset_with_dose_route_and_lot(protocol) -> None:  # type: ignore[no-untyped-def]
    form = form_for(protocol, "A5", premedication={2: "paracetamol 650 mg PO"})
    dose = form.block("C2").value.splitlines()
    assert dose[1] == "#2: 0.50 × 10⁶ cells/kg (40,000,000 cells at 80.0 kg), once, intravenous"
    assert form.block("C3").value == "#1: 2020-02-10\n#2: 2020-03-09"
    assert form.block("C6").value == "#1: LOT-002-1\n#2: LOT-002-2"
    assert form.block("C10").value == "with infusion #2 (2020-03-09): paracetamol 650 mg PO"
    assert "Attribution: follows infusion 2 of 2020-03-09 (0.50 × 10⁶ cells/kg), onset 11 day(s) after it" in form.block("B5.1").value


def test_dechallenge_and_rechallenge(protocol) -> None:  # type: ignore[no-untyped-def]
    # A1 (001, infusion reaction on the day of infusion 1): infusion 2 given later, the reaction did not recur
    a1 = form_for(protocol, "A1")
    assert a1.block("C8").value == "No (reintroduced: infusion 2 on 2020-02-17)"
    assert a1.block("C5").value.startswith("Doesn't apply")
    a5 = form_for(protocol, "A5")
    assert a5.block("C8").value.startswith("Doesn't apply")


def test_type_of_report_follows_21_cfr_312_32(protocol) -> None:  # type: ignore[no-untyped-def]
    # A7: anaphylaxis, definitely related, life-threatening, not yet assessed -> 7-day (and 15-day) if unexpected
    assert form_for(protocol, "A7").block("G7").value == ("7-day IND safety report (and the 15-day report) if the sponsor-investigator"
                                                          " assesses it unexpected (expectedness not yet assessed); initial")
    # A5: unlikely related -> not an IND safety report; one follow-up received
    follow = [FollowUpNote(at("2020-03-25 10:00"), "discharged home")]
    assert form_for(protocol, "A5", follow_ups=follow).block("G7").value == "Other (not an IND safety report: not suspected); follow-up #1"


def test_missing_required_blocks_are_listed_not_blank(protocol) -> None:  # type: ignore[no-untyped-def]
    form = form_for(protocol, "A5")  # no verbatim description in the fixture, no IND number
    assert "B5.2 Verbatim description (site)" in form.missing and "G5 IND #" in form.missing
    assert form.block("G5").shown == "missing: IND #"
    complete = form_for(protocol, "A5", ind_number="IND 012345")
    assert "G5 IND #" not in complete.missing


def test_reporter_defaults_to_the_protocols_principal_investigator(protocol) -> None:  # type: ignore[no-untyped-def]
    assert form_for(protocol, "A5").block("E1").value == "Andy Abril, M.D., Mayo Clinic"
    named = form_for(protocol, "A5", reporter=Reporter("Jane Roe, M.D.", institution="Mayo Clinic Florida", phone="904-555-0100"))
    assert named.block("E1").value.startswith("Jane Roe, M.D.")


def test_a_death_adds_the_date_causes_and_autopsy(protocol) -> None:  # type: ignore[no-untyped-def]
    death = DeathReport("002", dt.date(2020, 6, 1), ("Respiratory failure",), "unknown", "unrelated", "found at home", "A9")
    form = form_for(protocol, "A9", death=death)
    assert form.block("B2").value == "Death (2020-06-01)"
    text = form.block("B5.1").value
    assert "cause(s): Respiratory failure; autopsy: unknown" in text and "found at home" in text


def test_html_and_pdf_show_the_sections_and_the_missing_blocks(protocol) -> None:  # type: ignore[no-untyped-def]
    form = form_for(protocol, "A5")
    html = render_html(form)
    for heading in ("A. Patient information", "B. Adverse event", "C. Suspect product(s)", "E. Initial reporter",
                    "G. All manufacturers"):
        assert heading in html
    assert "missing: IND #" in html and "Complete before sending" in html
    pdf = render_pdf(form)
    assert pdf.startswith(b"%PDF") and pdf == render_pdf(form)


def test_an_unknown_subject_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    data = trial_data()
    ae = data.adverse_events[0].model_copy(update={"subject_id": "999"})
    with pytest.raises(KeyError, match="999"):
        build_medwatch(ae, data, protocol, report_date=TODAY)


def test_the_day_received_is_the_sites_calendar_day(protocol) -> None:  # type: ignore[no-untyped-def]
    # A5 was learned of at 09:00 in Jacksonville; an event learned of at 22:30 site time is 03:30 UTC the next day
    data = trial_data()
    late = next(a for a in data.adverse_events if a.id == "A5").model_copy(update={"learned_at": at("2020-03-21 22:30")})
    form = build_medwatch(late, data, protocol, report_date=TODAY)
    assert form.block("G4").value == "2020-03-21"
    assert "The site learned of the event on 2020-03-21 22:30 EDT" in form.block("B5.1").value


def test_the_ind_number_comes_from_the_protocol_file(protocol) -> None:  # type: ignore[no-untyped-def]
    with_ind = protocol.model_copy(update={"identification": protocol.identification.model_copy(update={"ind_number": "012345"})})
    form = form_for(with_ind, "A7")
    assert form.block("G5").value == "012345" and "G5 IND #" not in form.missing
    assert form_for(with_ind, "A7", ind_number="IND 99999").block("G5").value == "IND 99999"  # a caller's override wins


def test_nct03929120_has_no_ind_number_so_the_form_keeps_asking_for_it(protocol) -> None:  # type: ignore[no-untyped-def]
    # the registry record does not give the IND number and we do not know it: it must never be invented
    assert protocol.identification.ind_number is None
    assert form_for(protocol, "A7").block("G5").shown == "missing: IND #"


def test_a_blank_ind_number_in_the_protocol_file_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    import pydantic

    from trialdesk.protocol.model import Identification

    fields = protocol.identification.model_dump()
    for bad in ("", "  012345"):
        with pytest.raises(pydantic.ValidationError, match="ind_number"):
            Identification(**{**fields, "ind_number": bad})


def test_an_anaphylaxis_assessed_unexpected_is_a_7_day_report_and_names_who_assessed_it(protocol) -> None:  # type: ignore[no-untyped-def]
    data = trial_data()
    a7 = next(a for a in data.adverse_events if a.id == "A7").model_copy(
        update={"expected": False, "expectedness_assessed_by": "Dr PI (pi)"})
    form = build_medwatch(a7, data, protocol, report_date=TODAY)
    assert form.block("G7").value == "7-day IND safety report (and the 15-day report); initial"
    assert "unexpected against the reference safety information (assessed by Dr PI (pi))" in form.block("B5.1").value
