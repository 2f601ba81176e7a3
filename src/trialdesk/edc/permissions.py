"""Who may do what: the one permission table.

Views refuse (403), templates hide and the API refuses by asking :func:`allowed` about
an action in :data:`TABLE`. Add an action here, never a role check in a view.
"""

from __future__ import annotations

from typing import Any

ROLES: dict[str, str] = {
    "pi": "Principal investigator",
    "sub_investigator": "Sub-investigator",
    "coordinator": "Study coordinator",
    "data_manager": "Data manager",
    "monitor": "Monitor (CRA)",
    "dsmb": "DSMB member",
    "sponsor": "Sponsor / regulatory (read-only)",
    "admin": "Administrator",
}

_SITE = frozenset({"pi", "sub_investigator", "coordinator"})
_INVESTIGATORS = frozenset({"pi", "sub_investigator"})

#: action -> the roles that may take it
TABLE: dict[str, frozenset[str]] = {
    # seeing
    "view_identified": _SITE | {"data_manager", "monitor"},  # names, MRN, birth dates
    "view_participants": _SITE | {"data_manager", "monitor", "dsmb", "sponsor"},  # de-identified for dsmb and sponsor
    "view_reports": _SITE | {"data_manager", "monitor", "dsmb", "sponsor"},
    "view_audit": _SITE | {"data_manager", "monitor"},
    "export_audit": frozenset({"data_manager", "monitor"}),
    "verify_audit": frozenset({"data_manager", "monitor", "admin"}),
    # the life cycle
    "screen": _SITE,
    "sign_eligibility": _INVESTIGATORS,
    "record_consent": _SITE,
    "withdraw_consent": _SITE,
    "enrol": _SITE,
    "record_infusion": _SITE,
    "record_visit": _SITE,
    "mark_off_study": _INVESTIGATORS,
    # data quality
    "raise_query": frozenset({"monitor", "data_manager"}),
    "answer_query": _SITE,
    "close_query": frozenset({"monitor", "data_manager"}),
    "verify_source": frozenset({"monitor"}),
    "lock_casebook": frozenset({"data_manager"}),
    # safety
    "pause_trial": frozenset({"pi", "dsmb"}),
    "lift_pause": frozenset({"dsmb"}),
    "view_ae": _SITE | {"data_manager", "monitor", "dsmb", "sponsor"},  # verbatim text hidden from dsmb and sponsor
    "record_ae": _SITE,  # also follow-ups, SAE reports submitted, suggestions confirmed or dismissed
    "view_safety_dashboard": _SITE | {"data_manager", "monitor", "dsmb", "sponsor"},
    "view_dsmb_report": frozenset({"dsmb", "pi", "sponsor"}),  # de-identified
    "record_dsmb_decision": frozenset({"dsmb"}),  # continue / with modifications / pause / stop, e-signed
    "record_death": _INVESTIGATORS,  # the death report (takes the participant off study)
    "print_medwatch": _SITE,  # the MedWatch 3500A summary of an SAE (identified: age at event, lot); every print audited
    # results and exports (de-identified; identified SDTM only for export_identified; every export audited)
    "export_results": _SITE | {"data_manager", "sponsor"},
    "export_identified": frozenset({"data_manager"}),  # SDTM with dates
    # administration
    "manage_users": frozenset({"admin"}),
}

ACTIONS = tuple(TABLE)


def role_of(user: Any) -> str | None:
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return None
    return getattr(user, "role", None)


def allowed(user: Any, action: str) -> bool:
    if action not in TABLE:
        raise KeyError(f"unknown action {action!r}; add it to trialdesk.edc.permissions.TABLE")
    return role_of(user) in TABLE[action]


def actions_for(user: Any) -> dict[str, bool]:
    """Every action and whether this user may take it (for templates)."""
    role = role_of(user)
    return {action: role in roles for action, roles in TABLE.items()}


def deidentified(user: Any) -> bool:
    """This user sees subject ids only."""
    return not allowed(user, "view_identified")
