"""Who may do what: the one permission table.

Views refuse (403), templates hide and the API refuses by asking :func:`allowed` about
an action in :data:`TABLE`. Add an action here, never a role check in a view.

:data:`PAGES` names the action that opens each page (by URL name) and :data:`API` the one
each API operation asks; a new page or operation without an entry fails the authorisation
matrix (tests/security/test_authorisation_matrix.py), and so does a change here that the
frozen matrix beside that test does not show.

A user of another site (``User.site`` set to a facility that is not one of the protocol's
locations) and an inactive user have no role: they are refused everything, like a stranger.
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
    "view_forms": _SITE | {"data_manager", "monitor"},  # every visit and every form's data, read only (identified)
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
    "record_deviation": _SITE,  # a protocol deviation entered by hand (the automatic ones are logged by the desk)
    "raise_query": frozenset({"monitor", "data_manager"}),
    "answer_query": _SITE,
    "close_query": frozenset({"monitor", "data_manager"}),
    "verify_source": frozenset({"monitor"}),  # per field of a visit form, or a whole record; monitors change no data
    "manage_lab_ranges": _SITE | {"data_manager"},  # a laboratory's reference range, or a new version of it
    "lock_casebook": frozenset({"data_manager"}),  # only a casebook the PI signed as it is now
    "sign_casebook": frozenset({"pi"}),  # the principal investigator's 21 CFR 11 signature over the whole casebook
    # safety
    "pause_trial": frozenset({"pi", "dsmb"}),
    "lift_pause": frozenset({"dsmb"}),
    "view_ae": _SITE | {"data_manager", "monitor", "dsmb", "sponsor"},  # verbatim text hidden from dsmb and sponsor
    "record_ae": _SITE,  # also follow-ups, SAE reports submitted, suggestions confirmed or dismissed
    # expectedness against the reference safety information (21 CFR 312.32(a)): the sponsor-investigator's call
    "assess_expectedness": frozenset({"pi"}),
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

#: pages anyone may open, signed in or not
PUBLIC = "public"
#: pages any signed-in user of this trial may open, whatever the role (each shows only what the role may see)
SIGNED_IN = "signed_in"

#: URL name -> the action that opens the page (GET, and POST unless the view asks a further action named here)
PAGES: dict[str, str] = {
    "login": PUBLIC,
    "static": PUBLIC,
    "api:openapi-json": PUBLIC,  # the API's schema: no data
    "api:api-root": PUBLIC,
    "dashboard": SIGNED_IN,
    "logout": SIGNED_IN,
    "password_change": SIGNED_IN,
    "users": "manage_users",
    "screening_list": "view_identified",  # POST: screen
    "screening_upload": "screen",
    "screening_detail": "view_identified",
    "screening_edit": "screen",
    "screening_sign": "sign_eligibility",
    "screening_rescreen": "screen",
    "consent": "record_consent",
    "enrol": "enrol",
    "participants": "view_participants",
    "participant_detail": "view_participants",
    "withdraw": "withdraw_consent",
    "off_study": "mark_off_study",
    "lock": "lock_casebook",
    "casebook": "view_forms",  # the printable casebook (identified); POST to casebook_sign
    "casebook_sign": "sign_casebook",
    "timeline": "view_participants",  # study days; calendar dates only to roles that see identified data
    "calendar": "view_forms",
    "search": "view_participants",  # by subject id; by name, MRN or screening number only for view_identified
    "cohort_assign": "enrol",  # POST: assign an enrolled participant to a dose cohort (a protocol with dose finding)
    "cohort_entered_in_error": "enrol",  # before the first infusion; a new assignment may follow
    "infusion_new": "record_infusion",
    "infusion_edit": "record_infusion",
    "visit": "view_forms",  # POST: record_visit
    "crf_entered_in_error": "record_visit",
    "infusion_entered_in_error": "record_infusion",
    "ae_entered_in_error": "record_ae",
    "crf": "view_forms",  # POST: record_visit (read only to the rest, and once the casebook is locked)
    "pauses": "view_reports",  # POST: pause_trial, or lift_pause
    "queries": "view_audit",  # POST: raise_query, answer_query, close_query (also withdraw, by whoever raised it)
    "sdv": "verify_source",
    "sdv_progress": "view_forms",
    "monitoring_report": "view_forms",
    "monitoring_report_pdf": "view_forms",
    "lab_ranges": "view_forms",  # POST: manage_lab_ranges
    "lab_import": "record_visit",
    "deviations": "view_forms",  # POST: record_deviation
    "medications": "view_forms",  # POST: record_visit
    "crf_not_done": "record_visit",
    "unscheduled_visit": "record_visit",
    "missing_forms": "view_forms",
    "medical_history": "view_forms",  # POST: record_visit
    "audit": "view_audit",  # ?format=csv: export_audit
    "audit_verify": "verify_audit",
    "ae_list": "view_ae",
    "ae_new": "record_ae",
    "ae_suggestions": "record_ae",
    "ae_detail": "view_ae",  # POST (follow-up): record_ae
    "ae_edit": "record_ae",
    "ae_expectedness": "view_ae",  # POST: assess_expectedness
    "safety_dashboard": "view_safety_dashboard",  # POST (report submitted): record_ae
    "dsmb_report": "view_dsmb_report",
    "dsmb_report_pdf": "view_dsmb_report",
    "exports": "export_results",
    "export_download": "export_results",  # identified SDTM: export_identified
    "ae_medwatch": "print_medwatch",
    "ae_medwatch_pdf": "print_medwatch",
    "death_report": "view_participants",  # POST: record_death
    "dsmb_decisions": "view_reports",  # POST: record_dsmb_decision
    "study_page": PUBLIC,  # the public study page and self-referral: no login, no trial data
    "referral_questions": PUBLIC,
    "referral_contact": PUBLIC,
    "referral_confirm": PUBLIC,
    "referral_status": "screen",
}

#: "METHOD /path" of each API operation -> the action it asks
API: dict[str, str] = {
    "GET /api/participants": "view_participants",
    "POST /api/screening": "screen",
    "POST /api/screening/{number}/consent": "record_consent",
    "POST /api/screening/{number}/enrol": "enrol",
    "POST /api/participants/{subject_id}/cohort": "enrol",
    "POST /api/participants/{subject_id}/infusions": "record_infusion",
    "GET /api/audit/verify": "verify_audit",
    "GET /api/trial-data": "view_reports",
    "GET /api/ctcae/search": SIGNED_IN,  # the published CTCAE v5.0 terms: no trial data
    "GET /api/adverse-events": "view_ae",
}


def study_sites() -> frozenset[str]:
    """The facilities of the protocol's locations: the sites whose staff may use this trial desk."""
    from trialdesk.edc.web import protocol

    return frozenset(loc.facility for loc in protocol().locations)


def of_this_trial(user: Any) -> bool:
    """An account with no site belongs to the (single-site) trial; one with a site must name one of its locations."""
    site = getattr(user, "site", "") or ""
    return not site or site in study_sites()


def role_of(user: Any) -> str | None:
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return None
    if not of_this_trial(user):
        return None
    return getattr(user, "role", None)


def may_open(user: Any, page_action: str) -> bool:
    """Whether ``user`` may open a page or operation whose entry in PAGES or API is ``page_action``."""
    if page_action == PUBLIC:
        return True
    if page_action == SIGNED_IN:
        return role_of(user) is not None
    return allowed(user, page_action)


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
