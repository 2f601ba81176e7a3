"""Sign-in that knows the trial's sites: Django's model backend, refusing accounts of another site.

Django asks ``user_can_authenticate`` both at sign-in and on every request of an open session,
so an account moved to another site (or made inactive) is signed out at its next request."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from trialdesk.edc.permissions import of_this_trial


class StudySiteBackend(ModelBackend):
    def user_can_authenticate(self, user: Any) -> bool:
        return super().user_can_authenticate(user) and of_this_trial(user)
