"""What every export checks first, and the study day every export counts in.

An export of a data cut with nobody enrolled is almost always a mistake (the wrong file, a cut
taken too early); it is refused unless the caller says ``allow_empty=True``, and then the
output says so in words (:func:`empty_note`).
"""

from __future__ import annotations

import datetime as dt

from trialdesk.trial.records import TrialData


class NoParticipantsError(ValueError):
    """An export was requested from a data cut with no enrolled participant."""


def check_enrolled(data: TrialData, what: str, allow_empty: bool) -> str | None:
    """Refuse an export of an empty cut; with ``allow_empty`` return the note to record in it."""
    if data.participants:
        return None
    if not allow_empty:
        raise NoParticipantsError(
            f"{what}: the data cut of {data.cutoff} ({data.protocol_id}) has no enrolled participant;"
            " check the file, or pass allow_empty=True (--allow-empty) to export it anyway (the output will say so)"
        )
    return empty_note(data)


def empty_note(data: TrialData) -> str:
    return f"Exported with allow_empty: no participant was enrolled at the data cut of {data.cutoff}."


def first_infusion_dates(data: TrialData) -> dict[str, dt.date]:
    """Each infused participant's first infusion date: day 1 of the study (the SDTM reference start)."""
    out: dict[str, dt.date] = {}
    for inf in data.infusions:
        if inf.subject_id not in out or inf.date < out[inf.subject_id]:
            out[inf.subject_id] = inf.date
    return out


def study_day(date: dt.date | None, reference: dt.date | None) -> int | None:
    """SDTMIG study day: the reference date is day 1, the day before it day -1; there is no day 0."""
    if date is None or reference is None:
        return None
    delta = (date - reference).days
    return delta + 1 if delta >= 0 else delta
