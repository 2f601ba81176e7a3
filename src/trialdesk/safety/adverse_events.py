"""The checks an adverse event must pass before it is stored, each refusal naming its field.

:func:`check_adverse_event` takes an :class:`~trialdesk.trial.records.AdverseEvent` and returns it
with ``expected`` computed; :func:`adverse_event_from_form` takes the cleaned fields of a form,
runs the same checks *before* the record is built (so the model's own validators never answer
with a message that names no field), and builds it. Either raises :class:`AdverseEventError`
for the first problem found, in the order a coordinator fills the form.

Readings:

- **term, MedDRA code, SOC** come from CTCAE v5.0; a code or SOC that disagrees with the term is
  refused rather than silently replaced, since one of them was typed wrong.
- **grade** must be one the term defines (a ``-`` in CTCAE is refused, via ``Ctcae.validate_grade``).
- **onset** must be on or after consent, and on or before the end of the participant's study: the
  off-study date when there is one, and never after the data cut-off (``TrialData.cutoff``).
- **relatedness** possibly, probably or definitely needs an infusion on or before the onset date:
  nothing can be related to a product not yet given.
- **seriousness** (21 CFR 312.32(a)): a serious AE names at least one criterion, criteria need
  ``serious``; a death (grade 5) is always serious with the criterion ``death``; grade 5 and a
  ``fatal`` outcome go together (CTCAE grade 5 is "death related to AE").
- **learned_at** (when the site learned of the event) is required for a serious AE, since it starts
  the reporting clocks, must be timezone-aware, and cannot be before the onset date at the site.
- **expected** is not part of the entry: it is the sponsor-investigator's assessment against the
  reference safety information, recorded separately with who made it
  (:mod:`trialdesk.safety.expectedness` suggests it with its reason). The checks keep the assessment
  an AE carries; a form never sets it (values for it are dropped, so nothing is pre-filled).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from trialdesk.protocol.model import Protocol
from trialdesk.safety.site_time import NaiveDatetimeError, site_date, site_zone
from trialdesk.terminology.ctcae import Ctcae, GradeError, UnknownTermError
from trialdesk.trial.errors import ConductError
from trialdesk.trial.records import AdverseEvent, TrialData, is_related

__all__ = ["AdverseEventError", "adverse_event_from_form", "check_adverse_event"]


class AdverseEventError(ConductError):
    """An adverse event refused: ``field`` is the form field at fault, ``message`` what to do."""


def _check_coding(ae: AdverseEvent, ctcae: Ctcae) -> None:
    try:
        term = ctcae.term(ae.term)
    except UnknownTermError as exc:
        raise AdverseEventError("term", f"{exc}; choose a CTCAE v5.0 term") from exc
    if str(ae.meddra_code) != term.meddra_code:
        raise AdverseEventError("meddra_code", f"{ae.meddra_code} is not the MedDRA code of {term.term!r} ({term.meddra_code})")
    if ae.soc != term.soc:
        raise AdverseEventError("soc", f"{ae.soc!r} is not the system organ class of {term.term!r} ({term.soc!r})")
    try:
        ctcae.validate_grade(term, ae.grade)
    except GradeError as exc:
        raise AdverseEventError("grade", str(exc)) from exc


def _check_dates(ae: AdverseEvent, data: TrialData, tz: ZoneInfo) -> None:
    participant = next((p for p in data.participants if p.subject_id == ae.subject_id), None)
    if participant is None:
        raise AdverseEventError("subject_id", f"{ae.subject_id!r} is not an enrolled participant")
    if ae.onset < participant.consented_on:
        raise AdverseEventError(
            "onset", f"{ae.onset} is before {ae.subject_id} consented ({participant.consented_on}); an event before consent"
                     " is medical history, not an adverse event"
        )
    if participant.off_study_on is not None and ae.onset > participant.off_study_on:
        raise AdverseEventError("onset", f"{ae.onset} is after {ae.subject_id} went off study ({participant.off_study_on})")
    if ae.onset > data.cutoff:
        raise AdverseEventError("onset", f"{ae.onset} is after the end of the data ({data.cutoff}); check the year and month")
    if ae.resolved is not None and ae.resolved < ae.onset:
        raise AdverseEventError("resolved", f"resolution {ae.resolved} is before onset {ae.onset}; correct one of them")
    if ae.learned_at is not None:
        try:
            learned_on = site_date(ae.learned_at, "learned_at", tz)
        except NaiveDatetimeError as exc:
            raise AdverseEventError("learned_at", str(exc).removeprefix("learned_at: ")) from exc
        if learned_on < ae.onset:
            raise AdverseEventError("learned_at", f"the site cannot learn of the event ({learned_on}) before its onset ({ae.onset})")


def _check_relatedness(ae: AdverseEvent, data: TrialData) -> None:
    if not is_related(ae.relatedness):
        return
    given = [i for i in data.infusions if i.subject_id == ae.subject_id and i.date <= ae.onset]
    if not given:
        raise AdverseEventError(
            "relatedness", f"{ae.relatedness!r} related, but {ae.subject_id} had no infusion on or before the onset ({ae.onset});"
                           " choose unrelated or unlikely, or correct the onset"
        )


def _check_seriousness(ae: AdverseEvent) -> None:
    if ae.serious and not ae.seriousness:
        raise AdverseEventError("seriousness", "a serious event needs at least one seriousness criterion (21 CFR 312.32(a))")
    if ae.seriousness and not ae.serious:
        raise AdverseEventError("serious", f"seriousness criteria {', '.join(ae.seriousness)} are given; mark the event serious")
    if ae.grade == 5 and ae.outcome != "fatal":
        raise AdverseEventError("outcome", f"grade 5 is death; the outcome must be 'fatal', not {ae.outcome!r}")
    if ae.outcome == "fatal" and ae.grade != 5:
        raise AdverseEventError("grade", f"the outcome is fatal, which CTCAE grades 5, not {ae.grade}")
    if ae.grade == 5 and "death" not in ae.seriousness:
        raise AdverseEventError("seriousness", "a death is a serious adverse event with the criterion 'death'")
    if ae.serious and ae.learned_at is None:
        raise AdverseEventError("learned_at", "a serious event needs the date and time the site learned of it"
                                              " (it starts the reporting clock)")


def check_adverse_event(ae: AdverseEvent, data: TrialData, protocol: Protocol, ctcae: Ctcae, tz: ZoneInfo | None = None) -> AdverseEvent:
    """``ae`` itself if it passes every check; :class:`AdverseEventError` otherwise.

    ``data`` is the trial as stored (the AE itself need not be in it); dates are the site's
    (``tz``, by default the protocol's site zone).
    """
    tz = tz or site_zone(protocol)
    _check_coding(ae, ctcae)
    _check_dates(ae, data, tz)
    _check_relatedness(ae, data)
    _check_seriousness(ae)
    return ae


def adverse_event_from_form(
    fields: Mapping[str, Any], data: TrialData, protocol: Protocol, ctcae: Ctcae, tz: ZoneInfo | None = None
) -> AdverseEvent:
    """Check a form's cleaned fields (typed values: dates, ints, datetimes) and build the AE.

    The checks run on an unvalidated record first so that each refusal names its field; the
    record's own validation then catches what remains (types, missing fields).
    """
    tz = tz or site_zone(protocol)
    values = {k: v for k, v in fields.items() if k not in ("expected", "expectedness_assessed_by")}
    missing = [name for name, f in AdverseEvent.model_fields.items() if f.is_required() and name not in values]
    if missing:
        raise AdverseEventError(missing[0], "is required")
    draft = AdverseEvent.model_construct(**values)
    with contextlib.suppress(TypeError, AttributeError):  # a value of the wrong type: the validation below names its field
        check_adverse_event(draft, data, protocol, ctcae, tz)
    try:
        return AdverseEvent.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "adverse_event"
        raise AdverseEventError(field, first["msg"]) from exc
