"""Screened means assessed: an entry counts once it has a screening decision, not while it waits for the investigator."""

from __future__ import annotations

import datetime as dt

from trialdesk.trial.records import ScreeningEntry
from trialdesk.trial.screening_log import tally


def _entries(*outcomes: str) -> list[ScreeningEntry]:
    return [ScreeningEntry(screening_id=f"S-{n:04d}", screened_on=dt.date(2026, 1, 5), outcome=o)  # type: ignore[arg-type]
            for n, o in enumerate(outcomes, start=1)]


def test_an_entry_waiting_for_sign_off_is_not_screened_yet() -> None:
    log = tally(_entries("pending", "pending", "enrolled"))
    assert (log.screened, log.pending_signoff) == (1, 2)


def test_every_decision_counts_as_screened() -> None:
    log = tally(_entries("eligible", "screen_failed", "enrolled", "withdrew_before_enrolment"))
    assert (log.screened, log.pending_signoff) == (4, 0)
    assert (log.screen_failed, log.eligible_not_enrolled, log.withdrew_before_enrolment, log.enrolled) == (1, 1, 1, 1)


def test_an_empty_log_screened_no_one() -> None:
    assert tally([]).screened == 0
