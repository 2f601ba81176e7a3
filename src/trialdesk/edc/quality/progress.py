"""Source data verification progress (per participant and for the site) and the monitoring-visit report."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from trialdesk.edc.participants.models import Participant
from trialdesk.edc.quality.models import Query, SourceVerification
from trialdesk.edc.quality.service import FORM_ENTRY, form_sdv


@dataclass
class Progress:
    """SDV counts of one participant (or of the site, summed)."""

    name: str
    forms: int = 0  # visit forms with values
    forms_verified: int = 0
    forms_changed: int = 0  # a field verified, then changed
    fields: int = 0
    fields_verified: int = 0
    infusions: int = 0
    infusions_verified: int = 0
    aes: int = 0
    aes_verified: int = 0
    to_review: list[Any] = field(default_factory=list)  # form entries changed since verified

    @property
    def percent(self) -> int:
        """Fields, infusion records and adverse events verified, of all (rounded down: 100 % only when all are)."""
        total = self.fields + self.infusions + self.aes
        return (self.fields_verified + self.infusions_verified + self.aes_verified) * 100 // total if total else 0

    def add(self, other: Progress) -> None:
        for name in ("forms", "forms_verified", "forms_changed", "fields", "fields_verified", "infusions", "infusions_verified",
                     "aes", "aes_verified"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def progress() -> tuple[list[Progress], Progress]:
    from trialdesk.edc.visits.models import FormEntry
    from trialdesk.edc.web import protocol

    marks: dict[str, list[SourceVerification]] = {}
    for m in SourceVerification.objects.filter(model=FORM_ENTRY).exclude(field="").order_by("pk"):
        marks.setdefault(m.object_id, []).append(m)
    whole = {(m.model, m.object_id, m.record_version) for m in SourceVerification.objects.filter(field="")}
    rows: dict[int, Progress] = {p.pk: Progress(p.subject_id) for p in Participant.objects.all()}
    for e in FormEntry.objects.select_related("visit").exclude(data={}).order_by("visit__participant", "visit__day", "form"):
        row = rows[e.visit.participant_id]
        s = form_sdv(e, marks.get(str(e.pk), []))
        row.forms += 1
        row.forms_verified += s.status == "verified"
        row.forms_changed += s.changed > 0
        row.fields += s.fields
        row.fields_verified += s.verified
        if s.changed:
            row.to_review.append(e)
    from trialdesk.edc.dosing.models import Infusion

    for i in Infusion.objects.all():
        row = rows[i.participant_id]
        row.infusions += 1
        row.infusions_verified += ("dosing.Infusion", str(i.pk), i.version) in whole
    from trialdesk.edc.adverse_events.models import AdverseEvent

    for ae in AdverseEvent.objects.all():
        row = rows[ae.participant_id]
        row.aes += 1
        row.aes_verified += ("adverse_events.AdverseEvent", str(ae.pk), ae.version) in whole
    site = Progress(" · ".join(loc.facility for loc in protocol().locations))
    for row in rows.values():
        site.add(row)
    return list(rows.values()), site


def _instants(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The site's days from ``start`` to ``end`` (inclusive) as instants."""
    zone = timezone.get_current_timezone()
    return (dt.datetime.combine(start, dt.time(), zone), dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone))


@dataclass(frozen=True)
class MonitoringActivity:
    start: dt.date
    end: dt.date
    verified: list[SourceVerification]
    raised: list[Query]
    answered: list[Query]
    closed: list[Query]
    withdrawn: list[Query]
    still_open: list[Query]  # at the end of the range

    def what(self, mark: SourceVerification) -> str:
        """What a verification mark covers, in words."""
        from trialdesk.edc.quality.models import _field_label, _form_title
        from trialdesk.edc.visits.models import FormEntry

        if mark.model == FORM_ENTRY:
            e = FormEntry.with_voided.select_related("visit").filter(pk=mark.object_id).first()
            if e is not None:
                return f"{e.visit.name} · {_form_title(e.form)} · {_field_label(e.form, mark.field)}"
        if mark.model == "dosing.Infusion":
            from trialdesk.edc.dosing.models import Infusion

            i = Infusion.objects.filter(pk=mark.object_id).first()
            if i is not None:
                return f"infusion {i.number} (whole record)"
        return f"{mark.model} {mark.object_id}"


def monitoring_activity(start: dt.date, end: dt.date) -> MonitoringActivity:
    lo, hi = _instants(start, end)
    qs = Query.objects.select_related("participant", "visit", "raised_by", "answered_by", "closed_by")
    return MonitoringActivity(
        start, end,
        verified=list(SourceVerification.objects.select_related("participant", "verified_by").filter(created_at__gte=lo, created_at__lt=hi)
                      .order_by("participant__subject_id", "pk")),
        raised=list(qs.filter(created_at__gte=lo, created_at__lt=hi).order_by("pk")),
        answered=list(qs.filter(answered_at__gte=lo, answered_at__lt=hi).order_by("pk")),
        closed=list(qs.filter(status="closed", closed_at__gte=lo, closed_at__lt=hi).order_by("pk")),
        withdrawn=list(qs.filter(status="withdrawn", closed_at__gte=lo, closed_at__lt=hi).order_by("pk")),
        still_open=[q for q in qs.filter(created_at__lt=hi).order_by("pk") if q.closed_at is None or q.closed_at >= hi],
    )
