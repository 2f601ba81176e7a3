"""The investigator's eligibility decision, from the worksheet the engine produced.

The worksheet (a snapshot of the engine's statuses and evidence, or a blank one for
screening by hand) leaves some criteria ``needs_review`` or ``unknown``. The investigator
answers every attestation question and decides each criterion the data did not settle;
a criterion that *is* one attestation takes its answer (yes → met). The overall result
is then computed by the same rule the engine uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trialdesk.criteria.language import Attestation
from trialdesk.criteria.status import Status, excludes, overall
from trialdesk.protocol.model import Protocol
from trialdesk.trial.errors import ConductError

DECIDED = ("met", "not_met")


def manual_worksheet(protocol: Protocol, as_of: dt.date) -> dict[str, Any]:
    """A worksheet for screening by hand: every criterion waits for the investigator."""
    return {
        "overall": "needs_review",
        "protocol": protocol.identification.nct_id,
        "protocol_version": protocol.version,
        "as_of": as_of.isoformat(),
        "patient": None,
        "file": None,
        "source": "manual",
        "criteria": [{"id": c.id, "text": c.text, "status": "needs_review", "evidence": []} for c in protocol.eligibility.criteria],
        "attestations": attestation_items(protocol),
        "problems": [],
    }


def prescreen_worksheet(protocol: Protocol, as_of: dt.date, *, person_id: str, unknown: list[str],
                        needs_review: list[str], rank: str | None = None) -> dict[str, Any]:
    """A worksheet from a row of the pre-screen's candidates.csv: criteria it names as unknown
    or needing review keep that status; the rest were settled by the screen (a candidate is
    not excluded, so inclusions were met and exclusions not met)."""
    criteria: list[dict[str, Any]] = []
    statuses: dict[str, Status] = {}
    for c in protocol.eligibility.criteria:
        if c.id in unknown:
            status = "unknown"
        elif c.id in needs_review:
            status = "needs_review"
        else:
            status = "met" if c.is_inclusion else "not_met"
        evidence = [{"source": "candidates.csv", "person_id": person_id, "rank": rank}] if status in DECIDED else []
        criteria.append({"id": c.id, "text": c.text, "status": status, "evidence": evidence})
        statuses[c.id] = Status.from_label(status)
    sheet = manual_worksheet(protocol, as_of)
    sheet.update(source="prescreen", patient=person_id, criteria=criteria,
                 overall=overall(statuses, protocol.eligibility.roles))
    return sheet


def attestation_items(protocol: Protocol) -> list[dict[str, str]]:
    return [{"criterion_id": cid, "id": aid, "question": q} for cid, aid, q in protocol.attestation_items()]


def _single_attestation(protocol: Protocol, criterion_id: str) -> str | None:
    try:
        c = protocol.eligibility.criterion(criterion_id)
    except KeyError:
        return None
    return c.computable.id if isinstance(c.computable, Attestation) else None


@dataclass(frozen=True)
class Decision:
    statuses: dict[str, str]
    overall: str
    failed: list[str]  # criteria that exclude


def open_criteria(protocol: Protocol, worksheet: Mapping[str, Any]) -> list[str]:
    """Criteria the investigator must decide: not settled by the data and not a lone attestation."""
    return [c["id"] for c in worksheet["criteria"]
            if c["status"] not in DECIDED and _single_attestation(protocol, c["id"]) is None]


def decide(protocol: Protocol, worksheet: Mapping[str, Any], answers: Mapping[str, bool],
           decisions: Mapping[str, str]) -> Decision:
    """Combine the worksheet, the attestation answers and the investigator's decisions."""
    for item in worksheet["attestations"]:
        if item["id"] not in answers:
            raise ConductError(f"answer_{item['id']}", f"answer the attestation for {item['criterion_id']}: {item['question']}")
    statuses: dict[str, str] = {}
    for c in worksheet["criteria"]:
        cid, status = c["id"], c["status"]
        lone = _single_attestation(protocol, cid)
        if status not in DECIDED and lone is not None:
            status = "met" if answers[lone] else "not_met"
        elif status not in DECIDED:
            decided = decisions.get(cid)
            if decided not in DECIDED:
                raise ConductError(f"decision_{cid}", f"criterion {cid} is {status.replace('_', ' ')} on the worksheet;"
                                                      " decide whether it is met or not met")
            status = str(decided)
        statuses[cid] = status
    labels = {cid: Status.from_label(s) for cid, s in statuses.items()}
    roles = protocol.eligibility.roles
    failed = [cid for cid, s in labels.items() if excludes(roles[cid], s)]
    death = worksheet.get("death") or {}
    if death.get("date"):  # the record says the patient died on or before the screening date: no answer changes that
        return Decision(statuses=statuses, overall="not_eligible", failed=failed)
    return Decision(statuses=statuses, overall=overall(labels, roles), failed=failed)
