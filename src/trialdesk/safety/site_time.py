"""The site's clock: instants must carry a time zone, and calendar dates are the site's.

The protocol file names the site's zone (``locations[].time_zone``); :func:`site_zone` reads
it, falling back to ``America/New_York`` (NCT03929120 runs at Mayo Clinic in Florida,
Jacksonville). Functions that turn instants into calendar dates take ``tz``; when it is not
given they use the protocol's zone.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from trialdesk.protocol.model import Protocol

__all__ = ["SITE_TZ", "NaiveDatetimeError", "require_aware", "site_date", "site_zone"]

#: Jacksonville, Florida (NCT03929120's only location)
SITE_TZ = ZoneInfo("America/New_York")


class NaiveDatetimeError(ValueError):
    """An instant given without a time zone: it could be any of 24+ hours."""

    def __init__(self, field: str, value: dt.datetime) -> None:
        super().__init__(
            f"{field}: {value.isoformat()} has no time zone, so the instant is ambiguous;"
            " give it with its offset or zone (e.g. 2024-03-01T09:30-05:00)"
        )
        self.field = field
        self.value = value


def require_aware(value: dt.datetime, field: str) -> dt.datetime:
    """``value`` itself when it is timezone-aware; :class:`NaiveDatetimeError` naming ``field`` otherwise."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise NaiveDatetimeError(field, value)
    return value


def site_date(value: dt.datetime, field: str, tz: ZoneInfo = SITE_TZ) -> dt.date:
    """The calendar date at the site of an aware instant."""
    return require_aware(value, field).astimezone(tz).date()


def site_zone(protocol: Protocol) -> ZoneInfo:
    """The protocol's site clock (its first location with a time zone), else :data:`SITE_TZ`."""
    name = protocol.site_time_zone()
    return ZoneInfo(name) if name else SITE_TZ
