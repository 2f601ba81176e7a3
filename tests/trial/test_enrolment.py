from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.trial.consent import Consent
from trialdesk.trial.enrolment import Candidate, Enrolled, check_enrolment, next_subject_id, subject_id
from trialdesk.trial.errors import ConductError
from trialdesk.trial.pause import Pause

TODAY = dt.date(2020, 6, 1)
CONSENT = Consent("1.0", dt.datetime(2020, 5, 1, 10, tzinfo=dt.UTC), "C. Coordinator", True, site_zone=dt.UTC)


def candidate(**kw: object) -> Candidate:
    base: dict[str, object] = {"screening_id": "S-0100", "eligibility_signed": True, "eligibility": "eligible",
                               "consent": CONSENT, "enrolled_on": dt.date(2020, 5, 20)}
    base.update(kw)
    return Candidate(**base)  # type: ignore[arg-type]


def enrolled(n: int, first: dt.date | None = None) -> list[Enrolled]:
    return [Enrolled(subject_id=f"{i:03d}", screening_id=f"S-{i:04d}",
                     first_infusion=(first + dt.timedelta(days=14 * (i - 1))) if first else None) for i in range(1, n + 1)]


def test_first_participant_gets_subject_001(protocol) -> None:  # type: ignore[no-untyped-def]
    assert check_enrolment(protocol, candidate(), [], today=TODAY) == "001"


def test_tenth_participant_gets_subject_010(protocol) -> None:  # type: ignore[no-untyped-def]
    assert check_enrolment(protocol, candidate(), enrolled(9), today=TODAY) == "010"


def test_eleventh_enrolment_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConductError) as e:
        check_enrolment(protocol, candidate(), enrolled(10), today=TODAY)
    assert e.value.field == "enrolment"
    assert "target of 10" in e.value.message and "amendment" in e.value.message


def test_enrolment_without_signed_eligibility_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConductError, match="sign the eligibility"):
        check_enrolment(protocol, candidate(eligibility_signed=False), [], today=TODAY)


def test_enrolment_of_a_person_signed_not_eligible_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConductError, match="not_eligible"):
        check_enrolment(protocol, candidate(eligibility="not_eligible"), [], today=TODAY)


def test_enrolment_without_consent_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConductError) as e:
        check_enrolment(protocol, candidate(consent=None), [], today=TODAY)
    assert e.value.field == "enrolled_on" and "consent" in e.value.message


def test_enrolment_before_consent_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConductError, match="before consent"):
        check_enrolment(protocol, candidate(enrolled_on=dt.date(2020, 4, 30)), [], today=TODAY)


def test_enrolment_in_the_future_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConductError, match="future"):
        check_enrolment(protocol, candidate(enrolled_on=dt.date(2020, 6, 2)), [], today=TODAY)


def test_enrolment_while_paused_by_a_stopping_rule_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    pause = Pause("S1", "pause_enrolment_and_dosing", dt.date(2020, 5, 25))
    with pytest.raises(ConductError, match="S1"):
        check_enrolment(protocol, candidate(), enrolled(2), pauses=[pause], today=TODAY)


def test_a_dosing_pause_alone_does_not_stop_enrolment(protocol) -> None:  # type: ignore[no-untyped-def]
    pause = Pause("S3", "pause_dosing", dt.date(2020, 5, 25))
    assert check_enrolment(protocol, candidate(), enrolled(2), pauses=[pause], today=TODAY) == "003"


def test_the_same_screening_cannot_be_enrolled_twice(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConductError, match="already enrolled"):
        check_enrolment(protocol, candidate(screening_id="S-0001"), enrolled(1), today=TODAY)


def test_first_infusion_planned_13_days_after_the_previous_one_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    previous = [Enrolled("001", "S-0001", dt.date(2020, 5, 10))]
    with pytest.raises(ConductError) as e:
        check_enrolment(protocol, candidate(planned_first_infusion=dt.date(2020, 5, 23)), previous, today=TODAY)
    assert e.value.field == "planned_first_infusion" and "2020-05-24" in e.value.message


def test_first_infusion_planned_14_days_after_the_previous_one_is_accepted(protocol) -> None:  # type: ignore[no-untyped-def]
    previous = [Enrolled("001", "S-0001", dt.date(2020, 5, 10))]
    assert check_enrolment(protocol, candidate(planned_first_infusion=dt.date(2020, 5, 24)), previous, today=TODAY) == "002"


def test_subject_ids_run_in_sequence_and_are_never_reused(protocol) -> None:  # type: ignore[no-untyped-def]
    assert [subject_id(protocol, n) for n in (1, 2, 10)] == ["001", "002", "010"]
    assert next_subject_id(protocol, [Enrolled("001", "S-1"), Enrolled("003", "S-3")]) == "004"


def test_a_protocol_prefix_goes_before_the_number(protocol) -> None:  # type: ignore[no-untyped-def]
    class WithPrefix:
        target = 10
        subject_id_prefix = "MSC-"

    class P:
        enrolment = WithPrefix()

    assert subject_id(P(), 7) == "MSC-007"  # type: ignore[arg-type]


def test_a_planned_first_infusion_is_checked_against_other_participants_plans_too(protocol) -> None:  # type: ignore[no-untyped-def]
    planned = [Enrolled("001", "S-0001", first_infusion=None, planned_first_infusion=dt.date(2020, 5, 10))]
    with pytest.raises(ConductError) as e:
        check_enrolment(protocol, candidate(planned_first_infusion=dt.date(2020, 5, 23)), planned, today=TODAY)
    assert "001's first infusion is planned for 2020-05-10" in e.value.message and "2020-05-24" in e.value.message
    assert check_enrolment(protocol, candidate(planned_first_infusion=dt.date(2020, 5, 24)), planned, today=TODAY) == "002"
