from __future__ import annotations

from pathlib import Path

from trialdesk.analysis.participant_flow import participant_flow
from trialdesk.protocol.model import Protocol
from trialdesk.trial.records import TrialData


def test_flow_counts_match_the_screening_log(data: TrialData, protocol: Protocol) -> None:
    flow = participant_flow(data, protocol)
    assert (flow.screened, flow.screen_failed, flow.withdrew_before_enrolment, flow.pending) == (7, 2, 1, 0)
    assert flow.failed_by_criterion == {"E3": 2, "E8": 1}
    assert (flow.consented, flow.enrolled) == (4, 4)
    assert flow.infused == {1: 3, 2: 2}
    assert (flow.completed, flow.withdrawn, flow.ongoing) == (1, 2, 1)
    assert flow.withdrawn_by_reason == {"DEATH": 1, "WITHDRAWAL BY SUBJECT": 1}


def test_table_and_diagram(data: TrialData, protocol: Protocol, tmp_path: Path) -> None:
    flow = participant_flow(data, protocol)
    assert flow.to_csv().splitlines()[:3] == ["stage,detail,participants", "screened,,7", "screen_failed,,2"]
    svg, png = flow.diagram(tmp_path)
    text = svg.read_text()
    assert "<svg" in text and "Completed 6 months" in text
    assert png.read_bytes()[:4] == b"\x89PNG"
