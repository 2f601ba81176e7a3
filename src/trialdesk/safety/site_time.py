"""The site's clock: instants must carry a time zone, and calendar dates are the site's.

The protocol model has no time-zone setting yet; NCT03929120 runs at Mayo Clinic in Florida
(Jacksonville), so the default is ``America/New_York``. Functions that turn instants into
calendar dates take ``tz`` so that another site's protocol can pass its own.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

__all__ = ["SITE_TZ", "NaiveDatetimeError", "require_aware", "site_date"]

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
