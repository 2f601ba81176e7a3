"""The trial context every service of the trial desk takes its protocol, the site's clock and the
audit chain's lock from (not from the view helpers in :mod:`trialdesk.edc.web`).

- ``protocol``: the protocol file named by ``settings.TRIALDESK_PROTOCOL`` (loaded once per process);
- ``tz`` and ``today``: the site's clock (``settings.TIME_ZONE``, the protocol's site zone), so a date a
  service stores or compares is the site's calendar date;
- :func:`lock_audit_chain`: the one way a service takes the audit chain's lock for the rest of its
  transaction (:func:`trialdesk.edc.audit.trail.lock_chain`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from trialdesk.protocol.loader import load
from trialdesk.protocol.model import Protocol

__all__ = ["TrialContext", "lock_audit_chain", "trial_context"]


@lru_cache(maxsize=4)
def _protocol(protocol_id: str) -> Protocol:
    return load(protocol_id)


@dataclass(frozen=True)
class TrialContext:
    protocol: Protocol
    tz: ZoneInfo

    @property
    def today(self) -> dt.date:
        """The site's calendar date now."""
        return timezone.now().astimezone(self.tz).date()

    def now(self) -> dt.datetime:
        return timezone.now().astimezone(self.tz)


def trial_context() -> TrialContext:
    return TrialContext(_protocol(settings.TRIALDESK_PROTOCOL), ZoneInfo(settings.TIME_ZONE))


def lock_audit_chain() -> None:
    """Take the audit chain's lock until the caller's transaction ends."""
    from trialdesk.edc.audit.trail import lock_chain

    lock_chain()
