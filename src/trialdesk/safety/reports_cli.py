"""``trialdesk safety reports``: every SAE and IND safety report a data cut calls for, as a table or JSON.

Columns: AE id, rule id, recipient, clock start, due instant (with its zone, the site's), status
(due, overdue, submitted), and whether an IND report waits for the expectedness assessment.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TypeVar

from pydantic import TypeAdapter, ValidationError
from rich.table import Table

from trialdesk.console import fail, out
from trialdesk.protocol.loader import ProtocolError, load
from trialdesk.safety.sae_clock import FollowUpReceived, SaeClockError, SubmittedReport, due_reports
from trialdesk.safety.site_time import NaiveDatetimeError, NoSiteZoneError, site_zone
from trialdesk.trial.records import FollowUpInformation, SafetyReportSubmission, TrialData

__all__ = ["run_reports"]

T = TypeVar("T")


def _read_list(path: Path, adapter: TypeAdapter[list[T]]) -> list[T]:
    try:
        return adapter.validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"{path}: cannot read ({exc.strerror}); check the path")
    except ValidationError as exc:
        fail("\n".join(f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()))


def run_reports(protocol_ref: str | None, data_file: Path, now_text: str, fmt: str, submitted_file: Path | None,
                follow_ups_file: Path | None) -> None:
    """The reports a data cut calls for, under ``protocol_ref`` or, when none is named, the protocol the cut names
    (as ``trialdesk report`` and ``trialdesk export`` read a cut)."""
    try:
        now = dt.datetime.fromisoformat(now_text)
    except ValueError:
        fail(f"--now {now_text!r}: give an ISO 8601 instant with its offset, e.g. 2025-03-01T12:00:00+00:00")
    if now.tzinfo is None:
        fail(f"--now {now_text!r} has no time zone, so the instant is ambiguous; add its offset (e.g. +00:00)")
    try:
        data = TrialData.from_file(data_file)
    except ValueError as exc:
        fail(str(exc))
    try:
        protocol = load(protocol_ref or data.protocol_id)
    except ProtocolError as exc:
        fail(str(exc))
    submitted = [SubmittedReport(r.ae_id, r.rule_id, r.submitted_at) for r in data.safety_reports]
    if submitted_file is not None:
        submitted += [SubmittedReport(r.ae_id, r.rule_id, r.submitted_at)
                      for r in _read_list(submitted_file, TypeAdapter(list[SafetyReportSubmission]))]
    follow_ups = [FollowUpReceived(f.ae_id, f.received_at) for f in data.follow_up_information]
    if follow_ups_file is not None:
        received = _read_list(follow_ups_file, TypeAdapter(list[FollowUpInformation]))
        follow_ups += [FollowUpReceived(f.ae_id, f.received_at) for f in received]
    try:
        tz = site_zone(protocol)
    except NoSiteZoneError as exc:
        fail(str(exc))
    try:
        rows = due_reports(data, protocol, now, submitted, follow_ups, tz)
    except (SaeClockError, NaiveDatetimeError) as exc:
        fail(f"{data_file}: {exc}")
    if fmt == "json":
        print(json.dumps({"protocol": protocol.id, "now": now.isoformat(), "site_time_zone": tz.key,
                          "reports": [r.as_dict() for r in rows]}, indent=2))
        return
    table = Table(title=f"SAE and IND safety reports at {now.astimezone(tz):%Y-%m-%d %H:%M %Z} (site clock {tz.key})",
                  title_justify="left")
    for column in ("AE", "rule", "recipient", "clock start", "due", "status", "note"):
        table.add_column(column)
    for r in rows:
        status = r.status + (" (late)" if r.late else "")
        note = "if assessed unexpected" if r.pending_assessment else ("aggregate" if "/" in r.rule_id else "")
        table.add_row(r.ae_id, r.rule_id, r.recipient, f"{r.clock_start.astimezone(tz):%Y-%m-%d %H:%M %Z}",
                      f"{r.due_at:%Y-%m-%d %H:%M %Z}", status, note)
    out.print(table if rows else "No report is due: the data cut has no serious adverse event.")
