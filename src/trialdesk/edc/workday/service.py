"""What is due, computed once and read by both the home page and the pages it links to, so their counts agree."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from trialdesk.edc.permissions import allowed
from trialdesk.edc.visits.models import Visit

#: how far ahead "this week" looks, counting today
WEEK = 7


def visits_in_window(as_of: dt.date, days: int) -> list[Visit]:
    """Visits not yet done, of participants on study, whose window is open on some day from ``as_of`` for ``days`` days
    (a window that closed before ``as_of`` is a missed visit, not one to plan)."""
    until = as_of + dt.timedelta(days=days - 1)
    return list(Visit.objects.filter(participant__status="on_study", done_on__isnull=True, not_done_reason="",
                                     earliest__lte=until, latest__gte=as_of)
                .select_related("participant").order_by("earliest", "participant__subject_id", "day"))


@dataclass
class Item:
    """One line of the home page: a count, what it counts in words, where the list is, and the first few of it."""

    key: str
    count: int
    words: str
    href: str
    entries: list[tuple[str, str]] = field(default_factory=list)  # (text, link)


def _open_queries_for(user: Any) -> tuple[list[Any], str]:
    """Site staff: the open queries on the data they entered (any participant whose records they wrote);
    monitors and data managers: the answered queries they raised, waiting for them to close."""
    from trialdesk.edc.quality.models import Query

    if allowed(user, "answer_query"):
        return list(Query.objects.filter(status="open", participant__subject_id__in=subjects_of(user))
                    .select_related("participant")), "open queries on your data"
    return list(Query.objects.filter(status="answered", raised_by=user).select_related("participant")), \
        "answered queries you raised, to close"


def subjects_of(user: Any) -> set[str]:
    """The participants whose data this user entered or changed (from the audit trail)."""
    from trialdesk.edc.audit.models import AuditEntry

    return set(AuditEntry.objects.filter(username=user.get_username(), action__in=("create", "update")).exclude(subject_id="")
               .values_list("subject_id", flat=True).distinct())


def work_of_the_day(user: Any, as_of: dt.date) -> list[Item]:
    """The home page's list, each item with the same count as the page its link opens."""
    items: list[Item] = []
    if allowed(user, "view_forms"):
        today_visits = visits_in_window(as_of, 1)
        items.append(Item("visits_today", len(today_visits), "visits in their window today", "/calendar/?days=1",
                          [(f"{v.participant.subject_id} {v.name} (window to {v.latest})",
                            f"/participants/{v.participant.subject_id}/visits/{v.code}/") for v in today_visits]))
        week = visits_in_window(as_of, WEEK)
        items.append(Item("visits_week", len(week), "visits in their window this week", f"/calendar/?days={WEEK}",
                          [(f"{v.participant.subject_id} {v.name} (window {v.earliest} to {v.latest})",
                            f"/participants/{v.participant.subject_id}/visits/{v.code}/") for v in week]))
        from trialdesk.edc.visits.service import missing_forms

        missing = missing_forms(as_of)
        items.append(Item("overdue_forms", len(missing), "forms not complete at visits that took place", "/missing-forms/",
                          [(f"{r['visit'].participant.subject_id} {r['visit'].name}: {r['title']} ({r['label'].lower()})",
                            f"/participants/{r['visit'].participant.subject_id}/visits/{r['visit'].code}/{r['id']}/")
                           for r in missing]))
    if allowed(user, "record_ae"):
        from trialdesk.edc.adverse_events.service import reports_due

        due = [r for r in reports_due() if r.status != "submitted"]
        items.append(Item("sae_clocks", len(due), "SAE and IND safety reports due", "/safety/",
                          [(f"{r.ae_id} {r.rule_id} to {r.recipient}, due {r.due_at:%Y-%m-%d %H:%M %Z}", "/safety/") for r in due]))
    if allowed(user, "answer_query") or allowed(user, "close_query"):
        queries, words = _open_queries_for(user)
        items.append(Item("my_queries", len(queries), words, "/queries/",
                          [(f"{q.participant.subject_id} {q.location()}: {q.text[:60]}", f"/queries/#query-{q.pk}") for q in queries]))
    if allowed(user, "screen"):
        from trialdesk.edc.referrals.models import Referral

        new = list(Referral.objects.filter(status="new"))
        items.append(Item("new_referrals", len(new), "new self-referrals to contact", "/screening/#self-referrals",
                          [(f"{r.number} {r.name} ({r.get_verdict_display().lower()})", f"/screening/#{r.number}") for r in new]))
    return items


# --- search -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    text: str
    href: str
    matched: str  # what matched, in words


def search(user: Any, q: str, limit: int = 50) -> list[Hit]:
    """Participants by subject id; for the roles that see identified data also screening entries by name, MRN or
    screening number. A de-identified reader's query is never matched against names or MRNs."""
    from trialdesk.edc.participants.models import Participant
    from trialdesk.edc.screening.models import ScreeningEntry

    q = q.strip()[:60]
    if not q:
        return []
    hits = [Hit(f"Subject {p.subject_id}", f"/participants/{p.subject_id}/", "subject id")
            for p in Participant.objects.filter(subject_id__icontains=q)[:limit]]
    if allowed(user, "view_identified"):
        words = q.split()
        by_name = Q()
        for w in words:
            by_name &= Q(given_name__icontains=w) | Q(family_name__icontains=w)
        for e in ScreeningEntry.objects.filter(by_name | Q(mrn__iexact=q) | Q(number__iexact=q)).select_related("participant")[:limit]:
            subject = getattr(e, "participant", None) if hasattr(e, "participant") else None
            matched = "MRN" if e.mrn.lower() == q.lower() else "screening number" if e.number.lower() == q.lower() else "name"
            if subject is not None:
                hits.append(Hit(f"Subject {subject.subject_id} — {e.name} · {e.number} · MRN {e.mrn}",
                                f"/participants/{subject.subject_id}/", matched))
            else:
                hits.append(Hit(f"{e.number} — {e.name} · MRN {e.mrn} ({e.get_outcome_display().lower()})", f"/screening/{e.number}/",
                                matched))
    seen: set[str] = set()
    return [h for h in hits if not (h.href in seen or seen.add(h.href))]  # type: ignore[func-returns-value]
