"""The site's clock: instants must carry a time zone, and calendar dates are the site's.

The protocol file names the site's zone (``locations[].time_zone``); :func:`site_zone` reads
it and refuses, saying what to set, when the protocol names none: no zone is assumed, since a
date read on the wrong clock moves an event or a deadline by a day. Functions that turn instants
into calendar dates take ``tz``, the zone :func:`site_zone` read from the protocol.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from trialdesk.protocol.model import Protocol

__all__ = ["NaiveDatetimeError", "NoSiteZoneError", "require_aware", "site_date", "site_zone"]


class NaiveDatetimeError(ValueError):
    """An instant given without a time zone: it could be any of 24+ hours."""

    def __init__(self, field: str, value: dt.datetime) -> None:
        super().__init__(
            f"{field}: {value.isoformat()} has no time zone, so the instant is ambiguous;"
            " give it with its offset or zone (e.g. 2024-03-01T09:30-05:00)"
        )
        self.field = field
        self.value = value


class NoSiteZoneError(ValueError):
    """The protocol names no site time zone, and the command needs the site's calendar."""

    def __init__(self, protocol_id: str) -> None:
        super().__init__(
            f"protocol {protocol_id} names no site time zone, and dates at the site (event days, report deadlines) need one;"
            " set locations[].time_zone in its protocol.yaml to the site's IANA zone name (e.g. Europe/Paris)"
        )
        self.protocol_id = protocol_id


def require_aware(value: dt.datetime, field: str) -> dt.datetime:
    """``value`` itself when it is timezone-aware; :class:`NaiveDatetimeError` naming ``field`` otherwise."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise NaiveDatetimeError(field, value)
    return value


def site_date(value: dt.datetime, field: str, tz: ZoneInfo) -> dt.date:
    """The calendar date at the site of an aware instant."""
    return require_aware(value, field).astimezone(tz).date()


def site_zone(protocol: Protocol) -> ZoneInfo:
    """The protocol's site clock (its first location with a time zone); :class:`NoSiteZoneError` when it names none."""
    name = protocol.site_time_zone()
    if not name:
        raise NoSiteZoneError(protocol.id)
    return ZoneInfo(name)
