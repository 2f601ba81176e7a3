"""How a participant left the study, in the words each export needs.

The EDC records a free-text ``off_study_reason``; exports need controlled terms: SDTM DSDECOD
(CDISC NCI codelist C66727) and the reason types of the ClinicalTrials.gov participant flow.
The table reads the reason by its key words, first match wins.
"""

from __future__ import annotations

from trialdesk.trial.records import Participant

# (words to look for, DSDECOD, ClinicalTrials.gov "Reason Not Completed")
_REASONS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("death", "died", "fatal"), "DEATH", "Death"),
    (("adverse",), "ADVERSE EVENT", "Adverse Event"),
    (("lost",), "LOST TO FOLLOW-UP", "Lost to Follow-up"),
    (("physician", "investigator"), "PHYSICIAN DECISION", "Physician Decision"),
    (("protocol", "deviation", "violation"), "PROTOCOL DEVIATION", "Protocol Violation"),
    (("pregnan",), "PREGNANCY", "Pregnancy"),
    (("sponsor", "terminated", "study stopped"), "STUDY TERMINATED BY SPONSOR", "Study Terminated by Sponsor"),
    (("withdr", "consent", "subject", "participant"), "WITHDRAWAL BY SUBJECT", "Withdrawal by Subject"),
    (("complet",), "COMPLETED", "Completed"),
)
OTHER = ("OTHER", "Other")


def _read(reason: str | None) -> tuple[str, str]:
    text = (reason or "").casefold()
    for words, dsdecod, ctgov in _REASONS:
        if any(w in text for w in words):
            return dsdecod, ctgov
    return OTHER


def has_left(p: Participant) -> bool:
    """Off study before completing: withdrawn, or off study for a reason other than completion."""
    if p.status == "withdrawn":
        return True
    return p.status == "off_study" and _read(p.off_study_reason)[0] != "COMPLETED"


def dsdecod(p: Participant) -> str:
    if p.status == "completed":
        return "COMPLETED"
    return _read(p.off_study_reason)[0]


def ctgov_reason(p: Participant) -> str:
    return _read(p.off_study_reason)[1]


def sdtm_reason(reason: str | None) -> str:
    return _read(reason)[0]
