"""The self-referral questionnaire: read a person's answers and give a preliminary answer.

Every question, the answer that makes a person probably not eligible and the reason shown
come from the protocol's ``self_referral`` section, so a second protocol file gets its own
questionnaire with no code change. The result is a first indication only, never a promise:
eligibility is decided by a study doctor at screening.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from trialdesk.protocol.model import PatientQuestion, Protocol, SelfReferral

YES, NO, NOT_SURE, NOT_APPLICABLE = "yes", "no", "not_sure", "not_applicable"
#: ages outside this span are typing mistakes, not people
PLAUSIBLE_AGE = (0, 120)

NOT_A_PROMISE = (
    "This is not a decision about whether you can take part. Only a study doctor can decide that, after talking with you"
    " and checking your medical records and tests at a screening visit."
)

Verdict = Literal["may_be_eligible", "probably_not_eligible"]
HEADLINES: dict[str, str] = {
    "may_be_eligible": "You may be eligible for this study",
    "probably_not_eligible": "You are probably not eligible for this study",
}
#: what the person reads when the study itself takes nobody new (its overall status is not a recruiting one): never
#: "you may be eligible" for a study that has finished; an interest list, said plainly
CLOSED_HEADLINES: dict[str, str] = {
    "may_be_eligible": "This study is not taking new participants: you can join the study team's interest list",
    "probably_not_eligible": "This study is not taking new participants, and your answers suggest it would not suit you",
}


class NoQuestionnaire(Exception):
    """The protocol has no ``self_referral`` section."""

    def __init__(self, protocol: Protocol) -> None:
        super().__init__(f"protocol {protocol.id} has no self_referral section; add one (see protocols/nct03929120/protocol.yaml)"
                         " to publish a questionnaire")


def questionnaire(protocol: Protocol) -> SelfReferral:
    if protocol.self_referral is None:
        raise NoQuestionnaire(protocol)
    return protocol.self_referral


def choices(question: PatientQuestion) -> list[tuple[str, str]]:
    """(value, label) for a yes/no question; an age question is a number."""
    out = [(YES, "Yes"), (NO, "No"), (NOT_SURE, "I am not sure")]
    if question.not_applicable:
        out.append((NOT_APPLICABLE, question.not_applicable))
    return out


def age_hint(question: PatientQuestion) -> str:
    if question.min_age is not None and question.below_age is not None:
        return f"The study is for people aged {question.min_age} to {question.below_age - 1}."
    if question.min_age is not None:
        return f"The study is for people aged {question.min_age} or older."
    return f"The study is for people younger than {question.below_age}."


@dataclass(frozen=True)
class Answers:
    """Checked answers: question id -> 'yes' / 'no' / 'not_sure' / 'not_applicable', or the age (int)."""

    values: dict[str, str | int]


class AnswerProblems(Exception):
    """Missing, malformed or contradictory answers; ``errors`` maps question id -> message for beside the field."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def read_answers(protocol: Protocol, raw: Mapping[str, object]) -> Answers:
    """Check the raw form values (strings as a browser sends them) against the questions.

    Raises :class:`AnswerProblems` naming every question that is unanswered, not a valid
    choice, an implausible age, or contradicts another answer.
    """
    qs = questionnaire(protocol)
    errors: dict[str, str] = {}
    values: dict[str, str | int] = {}
    for q in qs.questions:
        given = raw.get(q.id)
        text = str(given).strip() if given is not None else ""
        if not text:
            errors[q.id] = "Please answer this question." if q.kind == "yes_no" else "Please give your age in years."
            continue
        if q.kind == "age":
            if not text.isdigit():
                errors[q.id] = f"Please give your age as a whole number of years, for example 54 (you entered {text[:20]!r})."
                continue
            age = int(text)
            low, high = PLAUSIBLE_AGE
            if not low < age <= high:
                errors[q.id] = f"{age} is not a possible age; please check it (a number of years between 1 and {high})."
                continue
            values[q.id] = age
        else:
            allowed = dict(choices(q))
            if text not in allowed:
                errors[q.id] = f"Please choose one of: {', '.join(allowed.values())}."
                continue
            values[q.id] = text
    for q in qs.questions:
        if q.id in errors or q.id not in values:
            continue
        for c in q.conflicts:
            if values[q.id] == c.when and values.get(c.question) == c.answer:
                errors[q.id] = c.message
                break
    if errors:
        raise AnswerProblems(errors)
    return Answers(values)


@dataclass(frozen=True)
class Preliminary:
    """The preliminary answer: a verdict, the reasons in plain words, what the team would check."""

    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    to_check: list[str] = field(default_factory=list)
    criteria: list[str] = field(default_factory=list, metadata={"doc": "criterion ids behind the reasons"})
    #: the study takes new participants (its overall status is a recruiting one); otherwise a referral is an interest list entry
    recruiting: bool = True
    #: the study's overall status in words ("Completed")
    status: str = ""

    @property
    def headline(self) -> str:
        return (HEADLINES if self.recruiting else CLOSED_HEADLINES)[self.verdict]

    @property
    def interest_list(self) -> str:
        """For a study that takes nobody new: what asking to be contacted means."""
        if self.recruiting:
            return ""
        return (f"The study's status is “{self.status}”: nobody new can take part in it. If you ask to be contacted, your name goes"
                " on the study team's interest list; they will tell you if a later study like this one could take you.")

    @property
    def caveat(self) -> str:
        return NOT_A_PROMISE


def evaluate(protocol: Protocol, answers: Answers) -> Preliminary:
    """'probably not eligible' when any answer is one the protocol says excludes, with each reason;
    otherwise 'may be eligible', listing the questions answered 'not sure' for the team to check."""
    reasons: list[str] = []
    criteria: list[str] = []
    to_check: list[str] = []
    for q in questionnaire(protocol).questions:
        value = answers.values[q.id]
        if q.kind == "age":
            assert isinstance(value, int)
            too_young = q.min_age is not None and value < q.min_age
            too_old = q.below_age is not None and value >= q.below_age
            excluded = too_young or too_old
        else:
            excluded = value == q.excludes_when
            if value == NOT_SURE:
                to_check.append(q.text)
        if excluded:
            if q.reason not in reasons:
                reasons.append(q.reason)
            criteria.extend(c for c in q.criteria if c not in criteria)
    verdict: Verdict = "probably_not_eligible" if reasons else "may_be_eligible"
    from trialdesk.public.page import RECRUITING, words

    status = protocol.status.overall_status
    return Preliminary(verdict, reasons, to_check, criteria, recruiting=status in RECRUITING, status=words(status))


def answer_label(question: PatientQuestion, value: str | int) -> str:
    """How an answer reads back to the person and to the coordinator."""
    if question.kind == "age":
        return f"{value} years"
    return dict(choices(question)).get(str(value), str(value))
