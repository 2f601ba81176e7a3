"""The protocol-deviation log: entries stored (out-of-window visits and assessments, with the reason given when they
were entered; entries made by site staff) and SAE reports submitted late or overdue, read from the SAE clocks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from trialdesk.edc.audit import trail
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.quality.models import Deviation
from trialdesk.edc.web import today
from trialdesk.trial.deviations import CATEGORIES, check_manual
from trialdesk.trial.records import ProtocolDeviation, TrialData


def record_deviation(user: Any, *, participant: Participant | None, date: dt.date, category: str, description: str,
                     reason: str) -> Deviation:
    check_manual(category, description, reason, date, today=today())
    return trail.create(Deviation(participant=participant, date=date, category=category, description=description.strip(),
                                  source="manual", reason=reason.strip(), reported_by=user), user)


def stored(cutoff: dt.date | None = None) -> list[ProtocolDeviation]:
    rows = Deviation.objects.select_related("participant")
    if cutoff is not None:
        rows = rows.filter(date__lte=cutoff)
    return [ProtocolDeviation(id=d.deviation_id, subject_id=d.participant.subject_id if d.participant else None, date=d.date,
                              category=CATEGORIES.get(d.category, d.category), description=d.description,
                              source=d.source, reason=d.reason or None) for d in rows]  # type: ignore[arg-type]


def late_sae_reports(data: TrialData, now: dt.datetime | None = None) -> list[ProtocolDeviation]:
    """An SAE report submitted after its due time, or not submitted and past it."""
    from trialdesk.edc.adverse_events.service import reports_due

    now = now or timezone.now()
    subjects = {ae.id: ae.subject_id for ae in data.adverse_events}
    out = []
    for r in reports_due(data, now):
        late = r.late or (r.submitted_at is None and r.due_at < now)
        if not late:
            continue
        when = r.submitted_at or now
        hours = (when - r.due_at).total_seconds() / 3600
        what = f"submitted {hours:.0f} hours after it was due" if r.submitted_at else f"not submitted, {hours:.0f} hours past due"
        out.append(ProtocolDeviation(
            id=f"PD-{r.ae_id}-{r.rule_id}", subject_id=subjects.get(r.ae_id), date=timezone.localtime(r.due_at).date(),
            category=CATEGORIES["late_sae_report"], source="automatic",
            description=f"{r.ae_id}: the report to {r.recipient} under rule {r.rule_id} was {what}"))
    return out
