"""The public study page, rendered from the protocol file.

It shows what registry and aggregator pages show (title, NCT number, phase, status,
conditions, intervention and arm, sponsor, summary, recruitment, sex and ages, the criteria as
published, the primary outcome, study type and design, the sites) plus the protocol's
plain-language summary and each site's contact line, so the page cannot drift from the
protocol. Registry enumerations (``PHASE1``, ``SINGLE_GROUP``) are shown in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import jinja2

from trialdesk.protocol.model import Protocol

#: statuses under which a person can still be referred to the study itself
RECRUITING = frozenset({"RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION"})

_WORDS: dict[str, str] = {
    "EARLY_PHASE1": "Early phase 1", "PHASE1": "Phase 1", "PHASE2": "Phase 2", "PHASE3": "Phase 3", "PHASE4": "Phase 4",
    "NA": "Not applicable", "SINGLE_GROUP": "Single group", "PARALLEL": "Parallel groups", "CROSSOVER": "Crossover",
    "FACTORIAL": "Factorial", "SEQUENTIAL": "Sequential", "NONE": "None (open label)", "NON_RANDOMIZED": "Non-randomised",
    "RANDOMIZED": "Randomised", "ALL": "All", "FEMALE": "Female", "MALE": "Male", "INTRAVENOUS": "Into a vein (intravenous)",
    "ECT": "Early clinical testing",
}


def words(value: str) -> str:
    """A registry enumeration in words: ``PHASE1`` -> 'Phase 1', ``ACTIVE_NOT_RECRUITING`` -> 'Active, not recruiting'."""
    if value in _WORDS:
        return _WORDS[value]
    text = value.replace("_", " ").capitalize()
    return text.replace("Active not", "Active, not")


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def readable(text: str | None) -> str:
    """Registry text as a person reads it: a power of ten written ``10^6`` as 10⁶ (and ``x 10^6`` as × 10⁶)."""
    import re

    if not text:
        return ""
    text = re.sub(r"\b10\^(-?\d+)", lambda m: "10" + m.group(1).translate(_SUPERSCRIPT), text)
    return re.sub(r"(\d) x 10(?=[⁰¹²³⁴⁵⁶⁷⁸⁹⁻])", r"\1 × 10", text)


def ages(protocol: Protocol) -> str:
    lo, hi = protocol.eligibility.minimum_age, protocol.eligibility.maximum_age
    if lo and hi:
        return f"{lo.lower()} to {hi.lower()}"
    if lo:
        return f"{lo.lower()} and older"
    if hi:
        return f"up to {hi.lower()}"
    return "All ages"


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


def facts(protocol: Protocol) -> list[Fact]:
    """The 'about the study' table, in the order the registry shows it."""
    p = protocol
    d = p.design
    dates = [f"started {p.status.start_date.date:%d %B %Y}"]
    if p.status.primary_completion_date:
        dates.append(f"primary completion {p.status.primary_completion_date.date:%d %B %Y}")
    if p.status.completion_date:
        dates.append(f"completion {p.status.completion_date.date:%d %B %Y}")
    pi = p.sponsorship.responsible_party.investigator_full_name or next(
        (o.name for o in p.overall_officials if o.role == "PRINCIPAL_INVESTIGATOR"), None)
    out = [
        Fact("Registration number", p.identification.nct_id),
        Fact("Phase", ", ".join(words(ph) for ph in d.phases)),
        Fact("Status", words(p.status.overall_status)),
        Fact("Conditions", "; ".join(p.conditions)),
        Fact("Interventions", "; ".join(f"{words(i.type)}: {i.name}" for i in p.interventions)),
        Fact("Lead sponsor", p.sponsorship.lead_sponsor.name),
    ]
    if pi:
        out.append(Fact("Principal investigator", pi))
    out += [
        Fact("Study type", words(d.study_type)),
        Fact("Study design", f"{words(d.intervention_model)}; allocation: {words(d.allocation).lower()}; masking: "
                             f"{words(d.masking).lower()}; purpose: {words(d.primary_purpose).lower()}"),
        Fact("Target recruitment", f"{d.enrollment.count} participants"),
        Fact("Dates", ", ".join(dates)),
    ]
    return out


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    folder = resources.files("trialdesk.public") / "templates"
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def stylesheet() -> str:
    """The public pages' CSS, inlined so the pages load nothing from anywhere else."""
    return (resources.files("trialdesk.public") / "templates" / "public.css").read_text(encoding="utf-8")


def render_study_page(protocol: Protocol, *, questionnaire_url: str | None = None) -> str:
    """The study page as one self-contained HTML document. ``questionnaire_url`` links the
    self-referral questionnaire (the trial desk gives it; the static copy has none)."""
    return _environment().get_template("study_page.html.j2").render(
        p=protocol, facts=facts(protocol), ages=ages(protocol), words=words, readable=readable, css=stylesheet(),
        recruiting=protocol.status.overall_status in RECRUITING,
        questionnaire_url=questionnaire_url if protocol.self_referral is not None else None,
    )
