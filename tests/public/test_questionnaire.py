"""The self-referral questionnaire reads as the protocol file writes it: its questions, the
answer that excludes and the reason come from the file; answers give a preliminary answer with
reasons in plain words, never a promise; bad answers are named question by question."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialdesk.protocol.loader import ProtocolError, load
from trialdesk.public.questionnaire import AnswerProblems, NoQuestionnaire, evaluate, questionnaire, read_answers

SECOND = Path(__file__).resolve().parents[1] / "fixtures" / "protocols" / "hand_trial.yaml"


def hopeful(protocol, **changes: str):  # type: ignore[no-untyped-def]
    """Answers that exclude on nothing, then ``changes``."""
    raw: dict[str, str] = {}
    for q in questionnaire(protocol).questions:
        if q.kind == "age":
            raw[q.id] = str(q.min_age if q.min_age is not None else 30)
        else:
            raw[q.id] = "no" if q.excludes_when == "yes" else "yes"
    raw.update(changes)
    return raw


def test_every_question_names_criteria_of_the_protocol(protocol) -> None:  # type: ignore[no-untyped-def]
    qs = questionnaire(protocol).questions
    covered = {c for q in qs for c in q.criteria}
    assert covered == {"I1", "I3", "E1", "E2", "E3", "E4", "E5", "E6", "E7", "E9"}
    assert [q.id for q in qs] == ["age", "ild", "autoimmune", "rituximab_cyclophosphamide", "oxygen_at_rest", "infection", "cancer",
                                  "stem_cells", "heart", "hiv_hepatitis", "pregnancy"]


def test_a_person_answering_no_to_every_exclusion_may_be_eligible_but_is_promised_nothing(protocol) -> None:  # type: ignore[no-untyped-def]
    result = evaluate(protocol, read_answers(protocol, hopeful(protocol, age="54")))
    assert result.verdict == "may_be_eligible" and result.reasons == []
    # the protocol's study is completed: never "you may be eligible", an interest list said plainly
    assert result.headline == "This study is not taking new participants: you can join the study team's interest list"
    assert "“Completed”: nobody new can take part in it" in result.interest_list and "interest list" in result.interest_list
    assert "not a decision" in result.caveat and "study doctor" in result.caveat


def test_a_recruiting_study_tells_a_hopeful_person_they_may_be_eligible(protocol) -> None:  # type: ignore[no-untyped-def]
    recruiting = protocol.model_copy(update={"status": protocol.status.model_copy(update={"overall_status": "RECRUITING"})})
    result = evaluate(recruiting, read_answers(recruiting, hopeful(recruiting, age="54")))
    assert result.headline == "You may be eligible for this study" and result.interest_list == ""
    for status in ("COMPLETED", "ACTIVE_NOT_RECRUITING", "TERMINATED", "WITHDRAWN", "SUSPENDED"):
        closed = protocol.model_copy(update={"status": protocol.status.model_copy(update={"overall_status": status})})
        assert "may be eligible" not in evaluate(closed, read_answers(closed, hopeful(closed, age="54"))).headline, status


def test_rituximab_in_the_last_two_months_makes_a_person_probably_not_eligible_with_the_reason(protocol) -> None:  # type: ignore[no-untyped-def]
    result = evaluate(protocol, read_answers(protocol, hopeful(protocol, rituximab_cyclophosphamide="yes")))
    assert result.verdict == "probably_not_eligible"
    assert result.reasons == ["People who had rituximab or cyclophosphamide in the last 2 months cannot take part."]
    assert result.criteria == ["E2"]


@pytest.mark.parametrize(("age", "verdict"), [("17", "probably_not_eligible"), ("18", "may_be_eligible"), ("79", "may_be_eligible"),
                                              ("80", "probably_not_eligible")])
def test_age_is_from_the_18th_birthday_until_the_80th(protocol, age: str, verdict: str) -> None:  # type: ignore[no-untyped-def]
    result = evaluate(protocol, read_answers(protocol, hopeful(protocol, age=age)))
    assert result.verdict == verdict
    if verdict == "probably_not_eligible":
        assert result.reasons == ["The study is for adults aged 18 to 79."]


def test_several_reasons_are_all_given_once_each(protocol) -> None:  # type: ignore[no-untyped-def]
    result = evaluate(protocol, read_answers(protocol, hopeful(protocol, infection="yes", cancer="yes", heart="yes", age="85")))
    assert len(result.reasons) == 4 and len(set(result.reasons)) == 4
    assert result.criteria == ["I1", "E4", "E6"]


def test_not_sure_never_excludes_and_is_listed_for_the_team_to_check(protocol) -> None:  # type: ignore[no-untyped-def]
    result = evaluate(protocol, read_answers(protocol, hopeful(protocol, oxygen_at_rest="not_sure")))
    assert result.verdict == "may_be_eligible"
    assert result.to_check == [questionnaire(protocol).questions[4].text]


def test_a_man_may_say_pregnancy_does_not_apply(protocol) -> None:  # type: ignore[no-untyped-def]
    assert evaluate(protocol, read_answers(protocol, hopeful(protocol, pregnancy="not_applicable"))).verdict == "may_be_eligible"


def test_unanswered_questions_are_each_named(protocol) -> None:  # type: ignore[no-untyped-def]
    raw = hopeful(protocol)
    del raw["heart"]
    raw["age"] = "  "
    with pytest.raises(AnswerProblems) as e:
        read_answers(protocol, raw)
    assert e.value.errors == {"age": "Please give your age in years.", "heart": "Please answer this question."}


@pytest.mark.parametrize("age", ["0", "130", "-4", "fifty", "54.5", "999999999999"])
def test_an_implausible_age_is_refused_beside_the_field(protocol, age: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AnswerProblems) as e:
        read_answers(protocol, hopeful(protocol, age=age))
    assert list(e.value.errors) == ["age"]
    assert "age" in e.value.errors["age"]


def test_a_choice_that_is_not_offered_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AnswerProblems) as e:
        read_answers(protocol, hopeful(protocol, heart="maybe", infection="not_applicable"))
    assert e.value.errors["heart"] == "Please choose one of: Yes, No, I am not sure."
    assert "infection" in e.value.errors  # 'does not apply' is offered only for pregnancy


def test_lung_disease_linked_to_autoimmune_disease_without_lung_disease_is_contradictory(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AnswerProblems) as e:
        read_answers(protocol, hopeful(protocol, ild="no", autoimmune="yes"))
    assert list(e.value.errors) == ["autoimmune"]
    assert "Please check both answers" in e.value.errors["autoimmune"]


def test_a_second_protocol_gets_its_own_questions_and_reasons_with_no_code_change() -> None:
    second = load(SECOND)
    assert [q.text for q in questionnaire(second).questions] == [
        "What is your age in years?", "Have you had pain at the base of your thumb on most days for at least 3 months?",
        "Have you had an operation on that hand in the last 12 months?"]
    assert evaluate(second, read_answers(second, {"age": "50", "thumb_pain": "yes", "hand_surgery": "no"})).verdict == "may_be_eligible"
    result = evaluate(second, read_answers(second, {"age": "49", "thumb_pain": "no", "hand_surgery": "no"}))
    assert result.reasons == ["The study is for people aged 50 or older.",
                              "The study is for people whose thumb has hurt on most days for at least 3 months."]
    assert evaluate(second, read_answers(second, {"age": "97", "thumb_pain": "yes", "hand_surgery": "no"})).verdict == "may_be_eligible"


def test_a_protocol_without_a_questionnaire_says_how_to_add_one(protocol) -> None:  # type: ignore[no-untyped-def]
    bare = protocol.model_copy(update={"self_referral": None})
    with pytest.raises(NoQuestionnaire, match="has no self_referral section; add one"):
        questionnaire(bare)


def test_a_question_naming_an_unknown_criterion_is_refused_with_file_and_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text(SECOND.read_text(encoding="utf-8").replace("criteria: [E1]", "criteria: [E7]"), encoding="utf-8")
    with pytest.raises(ProtocolError) as e:
        load(bad)
    assert "bad.yaml" in str(e.value) and "'E7' is not a criterion id" in str(e.value)


def test_a_yes_no_question_without_its_excluding_answer_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text(SECOND.read_text(encoding="utf-8").replace('      excludes_when: "yes"\n', ""), encoding="utf-8")
    with pytest.raises(ProtocolError) as e:
        load(bad)
    assert "needs excludes_when" in str(e.value)
    line = next(p for p in e.value.problems if "excludes_when" in p.message).line
    assert line is not None and "hand_surgery" in bad.read_text().splitlines()[line - 1]
