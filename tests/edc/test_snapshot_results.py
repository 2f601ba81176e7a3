"""The data cut carries what the results need from the forms: race and ethnicity as the demographics
form's codes, lung function and the six-minute walk as findings."""

from __future__ import annotations

from trialdesk.edc.visits.models import Visit

from .conftest import days_ago


def test_data_cut_carries_demographics_codes_and_function_tests(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.snapshot import trial_data
    from trialdesk.edc.visits.service import record_visit, save_form

    p = trial.enrol()
    trial.infuse(p, ago=20)
    ada_only = trial_data(days_ago(0))
    # nothing entered on the demographics form: not reported, never guessed
    assert (ada_only.participants[0].race, ada_only.participants[0].ethnicity) == ("unknown_or_not_reported", "unknown_or_not_reported")
    screening = Visit.objects.get(participant=p, code="SCREENING")
    if screening.done_on is None:
        screening = record_visit(users["coordinator"], screening, done_on=days_ago(24), version=screening.version)
    save_form(users["coordinator"], screening, "demographics",
              {"dm_age": 63, "dm_sex": "female", "dm_race": "native_hawaiian_or_other_pacific_islander",
               "dm_ethnicity": "hispanic_or_latino"})
    save_form(users["coordinator"], screening, "pulmonary_function",
              {"pft_date": days_ago(24), "fvc": 2.4, "fvc_pct": 64.0, "fev1": 2.0, "dlco_pct": 45.0})
    save_form(users["coordinator"], screening, "six_minute_walk", {"smw_date": days_ago(24), "smw_distance": 360, "smw_spo2_nadir": 86})
    cut = trial_data(days_ago(0))
    (person,) = cut.participants
    assert (person.race, person.ethnicity) == ("native_hawaiian_or_other_pacific_islander", "hispanic_or_latino")
    tests = {(t.test, t.value, t.unit) for t in cut.function_tests}
    assert tests == {("FVC", 2.4, "L"), ("FVCPP", 64.0, "%"), ("FEV1", 2.0, "L"), ("DLCOPP", 45.0, "%"), ("SIXMWD", 360.0, "m"),
                     ("SIXMWSPO2", 86.0, "%")}
    assert {t.visit for t in cut.function_tests} == {"SCREENING"} and {t.date for t in cut.function_tests} == {days_ago(24)}
    # a test after the cut is not in it
    assert trial_data(days_ago(25)).function_tests == []
