"""Entered in error: a record (an adverse event, an infusion, a visit's form) that should never have been
entered is marked so, with the reason, by the role that records it. It is not deleted: it stays in the
audit trail and on its page, struck out, and leaves every count, report, stopping rule and data cut.

What would leave the trial's records inconsistent is refused: a record already marked; an infusion
followed by a later one still in force (mark the later one first, so numbers stay in sequence); an adverse
event a death report names (correct the death report first); a cohort assignment once the participant is
dosed (the first infusion was given as that cohort's: mark the infusion entered in error first)."""

from __future__ import annotations

from trialdesk.trial.errors import ConductError

MIN_REASON = 5


def check_void(what: str, *, reason: str, already: bool, later_infusion: int | None = None, death_report: bool = False,
               dosed_in_cohort: bool = False) -> str:
    """The reason to store, or a refusal naming the field."""
    if already:
        raise ConductError("error_reason", f"{what} is already marked entered in error")
    text = reason.strip()
    if len(text) < MIN_REASON:
        raise ConductError("error_reason", f"say why {what} was entered in error (e.g. 'entered for the wrong participant')")
    if later_infusion is not None:
        raise ConductError("error_reason", f"infusion {later_infusion} follows {what}; mark infusion {later_infusion} entered in"
                                           " error first, so the infusions stay numbered in order")
    if dosed_in_cohort:
        raise ConductError("error_reason", f"the participant's first infusion was given in {what}; mark infusion 1 entered in error"
                                           " first, then the assignment")
    if death_report:
        raise ConductError("error_reason", f"the death report names {what}; correct the death report to name the right event first")
    return text
