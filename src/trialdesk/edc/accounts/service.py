from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from trialdesk.edc.accounts.models import User
from trialdesk.edc.permissions import ROLES
from trialdesk.trial.errors import ConductError

USERNAME = re.compile(r"[A-Za-z0-9@.+_-]+")


def create_user(username: str, role: str, password: str, *, first_name: str = "", last_name: str = "", email: str = "",
                site: str = "", by: Any = None, must_change_password: bool = True, validate: bool = True) -> User:
    """Create an account; one an administrator creates must change its password at first login."""
    from trialdesk.edc.audit import trail

    if role not in ROLES:
        raise ConductError("role", f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if not username.strip():
        raise ConductError("username", "give a username")
    if not USERNAME.fullmatch(username) or len(username) > 150:
        # a user id names its owner in the audit trail and on every e-signature: letters that look alike in
        # other scripts (Cyrillic а for Latin a) would let two accounts read the same
        raise ConductError("username", "a username has at most 150 characters: English letters, digits and @ . + - _ only"
                                       " (letters from other scripts can look like these and make two accounts look the same)")
    if User.objects.filter(username__iexact=username).exists():
        raise ConductError("username", f"the username {username!r} is taken (user ids are unique and never reused)")
    user = User(username=username, role=role, first_name=first_name, last_name=last_name, email=email,
                site=site, must_change_password=must_change_password)
    if validate:
        try:
            validate_password(password, user)
        except ValidationError as e:
            raise ConductError("password", " ".join(e.messages)) from e
    user.set_password(password)
    with transaction.atomic():
        user.save()
        trail.append(by, "create_user", model="accounts.User", object_id=str(user.pk), form="user",
                     changes={"username": [None, username], "role": [None, role]})
    return user
