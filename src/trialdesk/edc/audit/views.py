from __future__ import annotations

import csv

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from trialdesk.edc.audit import trail
from trialdesk.edc.audit.models import AuditEntry
from trialdesk.edc.permissions import allowed
from trialdesk.edc.web import requires

COLUMNS = ("seq", "at", "username", "role", "action", "form", "model", "object_id", "subject_id", "screening_id", "field", "old", "new",
           "reason", "hash")


def _entries(request: HttpRequest):  # type: ignore[no-untyped-def]
    qs = AuditEntry.objects.all()
    for key in ("subject_id", "screening_id", "form"):
        value = request.GET.get(key)
        if value:
            qs = qs.filter(**{key: value})
    return qs


@requires("view_audit")
def audit_list(request: HttpRequest) -> HttpResponse:
    qs = _entries(request)
    if request.GET.get("format") == "csv":
        if not allowed(request.user, "export_audit"):
            return HttpResponse("your role may not export the audit trail", status=403)
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="audit.csv"'
        w = csv.writer(response)
        w.writerow(COLUMNS)
        for e in qs:
            rows = e.changes.items() or [("", [None, None])]
            for field, (old, new) in rows:
                w.writerow([e.seq, e.at.isoformat(), e.username, e.role, e.action, e.form, e.model, e.object_id, e.subject_id,
                            e.screening_id, field, old, new, e.reason, e.hash])
        return response
    from django.conf import settings

    return render(request, "edc/audit.html", {"entries": qs.order_by("-seq")[:500], "filters": request.GET,
                                              "site_zone": settings.TIME_ZONE})


@requires("verify_audit")
def verify(request: HttpRequest) -> HttpResponse:
    result = trail.verify()
    return render(request, "edc/verify.html", {"result": result})
