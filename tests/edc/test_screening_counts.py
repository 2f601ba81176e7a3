"""The DSMB report and the participant flow count the trial desk's screening log the same way:
screened = entries with a screening decision; entries awaiting the PI's sign-off are shown apart."""

from __future__ import annotations

import re


def _cell(page: str, label: str) -> int:
    found = re.search(rf"<td>{re.escape(label)}</td><td[^>]*>(\d+)</td>", page)
    assert found, f"no row {label!r} in the enrolment table"
    return int(found.group(1))


def test_unsigned_screening_entries_are_pending_not_screened(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.analysis.participant_flow import participant_flow
    from trialdesk.edc.adverse_events.service import cut
    from trialdesk.edc.web import protocol

    trial.enrol("Ada")  # enrolled
    trial.sign(trial.screen("Grace"))  # signed eligible, not yet enrolled
    trial.screen("Mary")  # waiting for the PI
    trial.screen("Rosalind")  # waiting for the PI
    page = client_as("dsmb").get("/safety/dsmb/").content.decode()
    assert (_cell(page, "Screened"), _cell(page, "Pending eligibility sign-off"), _cell(page, "Enrolled")) == (2, 2, 1)
    flow = participant_flow(cut(), protocol())
    assert (flow.screened, flow.pending, flow.eligible_not_enrolled, flow.enrolled) == (2, 2, 1, 1)
