"""The protocol-deviation log's categories and the automatic entries' wording.

Categories follow the common classification of protocol deviations (ICH E3 section 10.2 asks the report to
list them by category; TransCelerate's protocol deviation process guide groups them so): a site chooses one for
an entry it makes; the automatic entries use their own."""

from __future__ import annotations

import datetime as dt

from trialdesk.trial.errors import ConductError

#: code -> what a person reads
CATEGORIES: dict[str, str] = {
    "visit_out_of_window": "Visit or assessment out of window",
    "late_sae_report": "SAE reported late",
    "informed_consent": "Informed consent",
    "eligibility": "Eligibility criteria",
    "study_product": "Study product (dose, administration, storage)",
    "procedures": "Study procedures or assessments not done as required",
    "safety_reporting": "Safety reporting",
    "other": "Other",
}
MANUAL = tuple(c for c in CATEGORIES if c not in ("visit_out_of_window", "late_sae_report"))


def check_manual(category: str, description: str, reason: str, date: dt.date, *, today: dt.date) -> None:
    """A deviation entered by site staff names its category, says what happened and why, and is not in the future."""
    if category not in MANUAL:
        raise ConductError("category", f"{category[:40]!r} is not a category a site enters; choose one of the list")
    if not description.strip():
        raise ConductError("description", "say what deviated from the protocol")
    if not reason.strip():
        raise ConductError("reason", "say why it happened (the root cause, as far as it is known)")
    if date > today:
        raise ConductError("date", f"{date} is in the future; enter the date the deviation happened")


def out_of_window_text(what: str, day: dt.date, earliest: dt.date, latest: dt.date) -> str:
    side = f"{(earliest - day).days} day(s) early" if day < earliest else f"{(day - latest).days} day(s) late"
    return f"{what} on {day}, outside its window {earliest} to {latest} ({side})"
