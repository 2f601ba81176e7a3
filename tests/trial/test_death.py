"""A death on study: the death report, its link to the grade 5 AE, and no infusion or visit after it."""

from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.trial.consent import Consent
from trialdesk.trial.death import DeathReport, check_alive, check_death_report, check_off_study_reason, deaths_without_report, died_on
from trialdesk.trial.dosing import DosingParticipant, InfusionEntry, check_infusion
from trialdesk.trial.errors import ConductError
from trialdesk.trial.records import AdverseEvent

TODAY = dt.date(2020, 8, 1)
CONSENT = Consent("1.0", dt.datetime(2020, 5, 1, 10, tzinfo=dt.UTC), "C. Coordinator", True, site_zone=dt.UTC)


def fatal_ae(**kw: object) -> AdverseEvent:
    base: dict[str, object] = {"id": "AE-7", "subject_id": "001", "term": "Respiratory failure", "meddra_code": 10038695,
                               "soc": "Respiratory, thoracic and mediastinal disorders", "grade": 5, "onset": dt.date(2020, 7, 10),
                               "serious": True, "seriousness": ["death"], "relatedness": "unlikely", "outcome": "fatal"}
    base.update(kw)
    return AdverseEvent(**base)  # type: ignore[arg-type]


def report(**kw: object) -> DeathReport:
    base: dict[str, object] = {"subject_id": "001", "date_of_death": dt.date(2020, 7, 12), "causes": ("Respiratory failure",
                               "Progression of ILD"), "autopsy": "no", "relatedness": "unlikely",
                               "narrative": "admitted with worsening dyspnoea on day 40; died on day 42", "ae_id": "AE-7"}
    base.update(kw)
    return DeathReport(**base)  # type: ignore[arg-type]


def refusal(r: DeathReport, ae: AdverseEvent | None = None, **kw: object) -> ConductError:
    args: dict[str, object] = {"ae": fatal_ae() if ae is None else ae, "enrolled_on": dt.date(2020, 5, 10), "already_reported": False,
                               "today": TODAY}
    args.update(kw)
    with pytest.raises(ConductError) as info:
        check_death_report(r, **args)  # type: ignore[arg-type]
    return info.value


def test_a_complete_death_report_linked_to_the_grade_5_ae_passes() -> None:
    check_death_report(report(), ae=fatal_ae(), enrolled_on=dt.date(2020, 5, 10), already_reported=False, today=TODAY)


def test_a_death_report_without_a_grade_5_ae_is_refused() -> None:
    with pytest.raises(ConductError) as info:
        check_death_report(report(ae_id=None), ae=None, enrolled_on=dt.date(2020, 5, 10), already_reported=False, today=TODAY)
    assert info.value.field == "ae_id" and "grade 5" in info.value.message


def test_a_death_report_linked_to_a_grade_4_ae_is_refused() -> None:
    ae = fatal_ae(grade=4, outcome="not_recovered", seriousness=["life_threatening"])
    assert refusal(report(), ae).field == "ae_id"


def test_a_second_death_report_is_refused() -> None:
    assert refusal(report(), already_reported=True).field == "subject_id"


def test_death_before_the_fatal_event_began_is_refused() -> None:
    assert refusal(report(date_of_death=dt.date(2020, 7, 9))).field == "date_of_death"


def test_death_in_the_future_is_refused() -> None:
    assert refusal(report(date_of_death=dt.date(2020, 8, 2))).field == "date_of_death"


def test_a_death_report_needs_a_cause_and_a_narrative() -> None:
    assert refusal(report(causes=("", " "))).field == "causes"
    assert refusal(report(narrative="")).field == "narrative"


def test_autopsy_is_yes_no_or_unknown() -> None:
    assert refusal(report(autopsy="maybe")).field == "autopsy"


def test_the_relation_must_agree_with_the_ae() -> None:
    err = refusal(report(relatedness="probably"))
    assert err.field == "relatedness" and "'unlikely'" in err.message


def test_dead_from_the_report_date_or_else_the_grade_5_onset() -> None:
    assert died_on("001", [], [fatal_ae()]) == dt.date(2020, 7, 10)
    assert died_on("001", [report()], [fatal_ae()]) == dt.date(2020, 7, 12)
    assert died_on("002", [report()], [fatal_ae()]) is None


def test_a_grade_5_ae_without_a_report_is_due() -> None:
    assert [ae.id for ae in deaths_without_report([fatal_ae()], [])] == ["AE-7"]
    assert deaths_without_report([fatal_ae()], [report()]) == []


def test_no_visit_on_or_after_the_day_of_death() -> None:
    check_alive("001", dt.date(2020, 7, 12), dt.date(2020, 7, 11), procedure="visit")
    with pytest.raises(ConductError, match="died on 2020-07-12"):
        check_alive("001", dt.date(2020, 7, 12), dt.date(2020, 7, 12), procedure="visit")


def test_an_infusion_after_a_death_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    who = DosingParticipant("001", "on_study", dt.date(2020, 5, 10), CONSENT, [(1, dt.date(2020, 6, 15))], died_on=dt.date(2020, 7, 10))
    with pytest.raises(ConductError) as info:
        check_infusion(protocol, who, InfusionEntry(2, dt.date(2020, 7, 13), 70.0, 52_500_000.0), today=TODAY)
    assert "died on 2020-07-10" in info.value.message


def test_going_off_study_for_death_needs_the_death_report() -> None:
    with pytest.raises(ConductError) as info:
        check_off_study_reason("Patient died at home")
    assert info.value.field == "off_study_reason" and "death report" in info.value.message
    check_off_study_reason("moved away; lost to follow-up")


def test_grade_5_is_refused_for_a_term_without_one() -> None:
    from trialdesk.terminology.ctcae import GradeError, catalogue

    ctcae = catalogue()
    with pytest.raises(GradeError):
        ctcae.validate_grade(ctcae.term("Headache"), 5)
    ctcae.validate_grade(ctcae.term("Respiratory failure"), 5)
