"""A visit form's status, as a data manager counts it: not started (nothing entered), incomplete (entered, a
required field empty), complete (every required field entered), or not done (with the reason it was not done).
Forms recorded on their own pages (``visit_form: false`` in forms.yaml: the infusion, adverse events) are not visit
forms and never counted as missing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from trialdesk.protocol.forms import FormCatalogue
from trialdesk.trial.errors import ConductError

Status = Literal["not_started", "incomplete", "complete", "not_done"]
LABELS: dict[str, str] = {"not_started": "not started", "incomplete": "incomplete", "complete": "complete", "not_done": "not done"}


def visit_forms(catalogue: FormCatalogue, scheduled: Sequence[str]) -> list[str]:
    """The forms of a visit's schedule that are completed at the visit."""
    return [f for f in scheduled if f not in catalogue.ids or catalogue.form(f).visit_form]


def status(catalogue: FormCatalogue, form_id: str, data: Mapping[str, Any] | None, not_done_reason: str = "") -> Status:
    if not_done_reason.strip():
        return "not_done"
    if data is None:
        return "not_started"
    form = catalogue.form(form_id)
    missing = [f.name for f in form.fields if f.required and data.get(f.name) in (None, "")]
    return "incomplete" if missing else "complete"


def check_not_done(reason: str) -> str:
    text = reason.strip()
    if len(text) < 5:
        raise ConductError("not_done_reason", "say why the form was not done (e.g. 'participant declined the walk test')")
    return text
