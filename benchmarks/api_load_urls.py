"""The trial desk's URLs plus one minimal view, for benchmarks/api_load.py only.

The minimal view runs through the same server, middleware stack (sessions, authentication,
CSRF, axes, the password-change guard), login check and database as the trial desk's pages,
and returns two bytes: what is left when trialdesk does no work of its own."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path

from trialdesk.edc.urls import urlpatterns as desk


@login_required
def minimal(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/minimal/", minimal), *desk]
