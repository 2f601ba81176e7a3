from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models

from trialdesk.edc.permissions import ROLES


class User(AbstractUser):
    """A person with one role on the study. Usernames are unique and never reused."""

    role = models.CharField(max_length=32, choices=list(ROLES.items()))
    must_change_password = models.BooleanField(default=False, help_text="set for accounts an administrator created")
    site = models.CharField(max_length=200, blank=True, default="",
                            help_text="the facility the person works at; blank for this (single-site) trial's own site. "
                                      "An account of a site that is not one of the protocol's locations cannot sign in.")

    @property
    def role_name(self) -> str:
        return ROLES.get(self.role, self.role)

    def display(self) -> str:
        return f"{self.get_full_name() or self.username} ({self.role_name})"
