"""Informed consent: given before any study procedure, withdrawable at any time.

ICH E6(R2) 4.8.8 — the form is signed and dated before participation; 4.8.11 — the
participant receives a copy. Withdrawal ends study procedures from its date on; what was
recorded before it stays (21 CFR 50.25, FDA guidance on data retention, 2008).

The date of signing is the site's calendar date: e.g. a consent signed at 21:13 at a site on US Eastern
time (02:13 UTC the next day) was signed that evening's date, and a same-evening enrolment follows it. Every consent therefore
carries the site's zone, and every date derived from an instant is read on the site's clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from trialdesk.trial.errors import ConductError


@dataclass(frozen=True)
class Consent:
    icf_version: str
    signed_at: dt.datetime
    obtained_by: str
    copy_given: bool
    withdrawn_at: dt.datetime | None = None
    withdrawal_reason: str | None = None
    #: the site's clock, on which the dates of signing and withdrawal are read (required: a stored instant is UTC)
    site_zone: dt.tzinfo = field(kw_only=True)

    @property
    def signed_on(self) -> dt.date:
        """The site's date of signing."""
        return site_date(self.signed_at, self.site_zone)

    @property
    def withdrawn_on(self) -> dt.date | None:
        """The site's date of withdrawal."""
        return site_date(self.withdrawn_at, self.site_zone) if self.withdrawn_at is not None else None

    def active_on(self, day: dt.date) -> bool:
        """Consent covers procedures on ``day``: signed on or before it, not withdrawn by then."""
        if day < self.signed_on:
            return False
        return self.withdrawn_on is None or day < self.withdrawn_on


def site_date(instant: dt.datetime, zone: dt.tzinfo) -> dt.date:
    """The calendar date at the site of an instant (an instant without a zone is refused: its date is unknowable)."""
    if instant.tzinfo is None:
        raise ConductError("time", f"{instant:%Y-%m-%d %H:%M} has no time zone; give the time with its zone")
    return instant.astimezone(zone).date()


def check_consent(consent: Consent, *, now: dt.datetime) -> None:
    """A consent record is complete and not dated in the future."""
    if not consent.icf_version.strip():
        raise ConductError("icf_version", "give the version of the informed consent form that was signed (e.g. '1.0, 2019-10-01')")
    if not consent.obtained_by.strip():
        raise ConductError("obtained_by", "name the study team member who obtained consent")
    if consent.signed_at.tzinfo is None:
        raise ConductError("signed_at", "give the time of signing with its time zone")
    if consent.signed_at > now:
        raise ConductError("signed_at", f"consent cannot be signed in the future ({consent.signed_at:%Y-%m-%d %H:%M}); correct the date")
    if not consent.copy_given:
        raise ConductError("copy_given", "the participant must be given a copy of the signed form (ICH E6 4.8.11); give it, then record it")


def require_consent(consent: Consent | None, day: dt.date, *, procedure: str, field: str = "date") -> None:
    """Refuse a study procedure on ``day`` unless consent covers it."""
    if consent is None:
        raise ConductError(field, f"no informed consent is recorded; obtain and record consent before the {procedure}")
    if day < consent.signed_on:
        raise ConductError(field, f"the {procedure} on {day} is before consent was signed on {consent.signed_on};"
                                  " no study procedure may precede consent — correct the date")
    if consent.withdrawn_on is not None and day >= consent.withdrawn_on:
        raise ConductError(field, f"consent was withdrawn on {consent.withdrawn_on}; no {procedure} may be done from that date on")


def withdraw(consent: Consent, at: dt.datetime, reason: str, *, now: dt.datetime) -> Consent:
    """The consent with its withdrawal recorded."""
    if consent.withdrawn_at is not None:
        raise ConductError("withdrawn_at", f"consent was already withdrawn on {consent.withdrawn_on}")
    if at.tzinfo is None:
        raise ConductError("withdrawn_at", "give the time of withdrawal with its time zone")
    if at < consent.signed_at:
        raise ConductError("withdrawn_at", f"withdrawal ({site_date(at, consent.site_zone)}) cannot precede consent ({consent.signed_on});"
                                          " correct the date")
    if at > now:
        raise ConductError("withdrawn_at", "withdrawal cannot be dated in the future; correct the date")
    if not reason.strip():
        raise ConductError("withdrawal_reason", "record the reason the participant gave (or 'not given')")
    return Consent(consent.icf_version, consent.signed_at, consent.obtained_by, consent.copy_given, at, reason.strip(),
                   site_zone=consent.site_zone)
