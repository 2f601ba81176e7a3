"""What every view shares: the permission decorator, the protocol, refusals shown on forms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from trialdesk.edc.permissions import ROLES, actions_for, allowed, deidentified
from trialdesk.protocol.forms import FormCatalogue
from trialdesk.protocol.loader import load, protocol_forms, protocol_value_sets
from trialdesk.protocol.model import Protocol
from trialdesk.terminology.value_set import ValueSet
from trialdesk.trial.errors import ConductError


@lru_cache(maxsize=4)
def _load(protocol_id: str) -> Protocol:
    return load(protocol_id)


def protocol() -> Protocol:
    return _load(settings.TRIALDESK_PROTOCOL)


def value_sets() -> dict[str, ValueSet]:
    """The value sets of the protocol the desk serves: the library's and its folder's own ``value_sets/``."""
    return protocol_value_sets(settings.TRIALDESK_PROTOCOL)


def forms() -> FormCatalogue:
    """The case report forms of the protocol the desk serves: its folder's ``forms.yaml``, else the package's."""
    return protocol_forms(settings.TRIALDESK_PROTOCOL)


def today() -> dt.date:
    """The site's calendar date."""
    return timezone.localdate()


def requires(action: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Log in, then refuse with 403 unless the permission table allows ``action``."""

    def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not allowed(request.user, action):
                raise PermissionDenied(f"your role may not {action.replace('_', ' ')}")
            return view(request, *args, **kwargs)

        inner.required_action = action  # type: ignore[attr-defined]  # read by the authorisation matrix test
        return inner

    return wrap


def allow_inline_styles(response: HttpResponse) -> HttpResponse:
    """Let the Content Security Policy allow this page's own <style> blocks, by their SHA-256, and, if it has
    any, its style attributes (matplotlib's SVG plots style each element so); never an inline script."""
    import base64
    import hashlib
    import re

    styles = re.findall(rb"<style[^>]*>(.*?)</style>", response.content, flags=re.S)
    update: dict[str, list[str]] = {}
    if styles:
        update["style-src"] = [f"'sha256-{base64.b64encode(hashlib.sha256(css).digest()).decode()}'" for css in styles]
    if re.search(rb"<[^>]+\sstyle=", response.content):
        update["style-src-attr"] = ["'unsafe-inline'"]
    if update:
        response._csp_update = update  # type: ignore[attr-defined]  # read by csp.middleware
    return response


def record_id(value: Any, what: str) -> int:
    """A record id or version number sent by a page, or a refusal naming what was sent (never a server error)."""
    text = str(value if value is not None else "").strip()
    if not text.isascii() or not text.isdigit():
        raise ConductError(what, f"{text[:40]!r} is not a {what} number; reload the page and try again")
    return int(text)


def safe_next(request: HttpRequest, fallback: str) -> str:
    """Where to go after a POST: the page's own ``next`` if it is on this site, else ``fallback``."""
    from django.urls import reverse
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse(fallback)


def refuse(form: Any, err: ConductError) -> None:
    """Show a core refusal next to the field it names (or above the form); every one of several at once."""
    from trialdesk.trial.errors import ConductErrors

    if isinstance(err, ConductErrors):
        for name, message in err.problems:
            refuse(form, ConductError(name, message))
        return
    field = form.fields.get(err.field)
    name = err.field if field is not None and not field.widget.is_hidden else None
    form.add_error(name, err.message if name else f"{err.field.replace('_', ' ')}: {err.message}")


def read_only_rows(form: Any) -> list[tuple[str, str]]:
    """A form's saved values as label and text (a choice as its label), for a reader who may not change them."""
    rows = []
    for bound in form.visible_fields():
        value = form.initial.get(bound.name)
        if value is None or value == "":
            text = ""
        elif getattr(bound.field, "choices", None):
            text = str(dict((str(k), v) for k, v in bound.field.choices).get(str(value), value))
        elif isinstance(value, dt.datetime):
            text = timezone.localtime(value).strftime("%Y-%m-%d %H:%M %Z")
        else:
            text = value.isoformat() if isinstance(value, dt.date | dt.time) else str(value)
        rows.append((str(bound.label), text))
    return rows


def context(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    p = protocol()
    return {
        "can": actions_for(user),
        "deidentified": deidentified(user) if user is not None and user.is_authenticated else True,
        "role_name": ROLES.get(getattr(user, "role", "") or "", ""),
        "protocol": p,
        "site_today": today(),
    }
