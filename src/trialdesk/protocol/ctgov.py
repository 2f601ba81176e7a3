"""ClinicalTrials.gov API v2: a protocol out as a study JSON, a study JSON in as a protocol file.

Export writes the registry's own modules of ``protocolSection``; import turns such a JSON
into a protocol file that ``trialdesk.protocol.loader.load`` accepts. What the registry
holds maps both ways exactly, so ``import(export(p))`` keeps every registry field of ``p``.
What it does not hold (infusion plan, visit schedule, safety follow-up, stopping rules)
the import fills with conservative defaults, each saying that the study team must set it.

Field names and enumerations are API v2's. Checked (search tool, docs and code corpora) against
an API v2 study record as the API returns it, kept as sample data in github.com/Nick-Joseph/capybara
lib/services/dummydatat.dart (``protocolSection`` with ``identificationModule.orgStudyIdInfo.id``,
``organization.fullName``/``class``, ``startDateStruct``, ``designInfo.maskingInfo.masking``,
``enrollmentInfo.count``/``type``, ``armGroups[].interventionNames`` as ``"Device: <name>"``,
``interventions[].armGroupLabels``/``otherNames``, ``eligibilityModule.stdAges``,
``contactsLocationsModule.overallOfficials``/``locations[].zip``), and against the display names
of the InterventionType enum in MolecularMatch/mm-power-sdk-java docs/Intervention.md
(``BIOLOGICAL`` = "Biological", ``DIETARY_SUPPLEMENT`` = "Dietary Supplement", ...), which is
how ``interventionNames`` prefixes the type. ``eligibilityCriteria`` is Markdown in API v2:
inclusion and exclusion headings, ``* `` or ``1.`` bullets with indented sub-bullets, and
``<``, ``>`` and ``*`` escaped with a backslash (records read ``Age \\> 18 years``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from trialdesk.protocol.model import (
    Arm,
    Design,
    Eligibility,
    Enrollment,
    Intervention,
    Location,
    Official,
    Outcome,
    Protocol,
    ResponsibleParty,
    Sponsor,
    Status,
    StudyDate,
)


class CtgovError(Exception):
    """A study JSON that cannot become a protocol; ``str()`` gives one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


# --- export ---------------------------------------------------------------------------


def intervention_label(type_: str) -> str:
    """API v2 names an arm's interventions ``"<Type>: <name>"`` with the type in title case
    (``BIOLOGICAL`` -> ``Biological``, ``DIETARY_SUPPLEMENT`` -> ``Dietary Supplement``)."""
    return type_.replace("_", " ").title()


_MARKDOWN_SPECIAL = re.compile(r"([\\<>*])")
_MARKDOWN_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def _escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _unescape(text: str) -> str:
    return _MARKDOWN_ESCAPED.sub(r"\1", text)


def criteria_text(p: Protocol) -> str:
    """The criteria as one Markdown text in the registry's layout; a criterion of several
    lines continues, indented, under its bullet."""
    sections = []
    for heading, items in (("Inclusion Criteria:", p.eligibility.inclusions), ("Exclusion Criteria:", p.eligibility.exclusions)):
        if not items:
            continue
        bullets = []
        for c in items:
            lines = _escape(c.text).split("\n")
            rest = [f"  {line}" if line.strip() else "" for line in lines[1:]]
            bullets.append("\n".join([f"* {lines[0]}", *rest]))
        sections.append(heading + "\n\n" + "\n".join(bullets))
    return "\n\n".join(sections)


def _date(d: StudyDate) -> dict[str, Any]:
    return {"date": d.date.isoformat(), "type": d.type}


def _sponsor(s: Sponsor) -> dict[str, Any]:
    return {"name": s.name, "class": s.class_}


def _some(**fields: Any) -> dict[str, Any]:
    """The fields that have a value: API v2 leaves out what a record does not state."""
    return {k: v for k, v in fields.items() if v is not None and v != [] and v != ""}


def _outcome(o: Outcome) -> dict[str, Any]:
    return _some(measure=o.measure, description=o.description, timeFrame=o.time_frame)


def _location(loc: Location) -> dict[str, Any]:
    return _some(facility=loc.facility, city=loc.city, state=loc.state, zip=loc.zip, country=loc.country)


def export_study(p: Protocol) -> dict[str, Any]:
    """The protocol's registry fields as an API v2 study: ``{"protocolSection": {...}}``."""
    ident, status, spons, design, elig = p.identification, p.status, p.sponsorship, p.design, p.eligibility
    names = {i.name: f"{intervention_label(i.type)}: {i.name}" for i in p.interventions}
    rp = spons.responsible_party
    section: dict[str, Any] = {
        "identificationModule": _some(
            nctId=ident.nct_id,
            orgStudyIdInfo={"id": ident.org_study_id} if ident.org_study_id else None,
            organization={"fullName": spons.lead_sponsor.name, "class": spons.lead_sponsor.class_},
            briefTitle=ident.brief_title,
            officialTitle=ident.official_title,
            acronym=ident.acronym,
        ),
        "statusModule": _some(
            overallStatus=status.overall_status,
            startDateStruct=_date(status.start_date),
            primaryCompletionDateStruct=_date(status.primary_completion_date) if status.primary_completion_date else None,
            completionDateStruct=_date(status.completion_date) if status.completion_date else None,
        ),
        "sponsorCollaboratorsModule": _some(
            responsibleParty=_some(
                type=rp.type,
                investigatorFullName=rp.investigator_full_name,
                investigatorTitle=rp.investigator_title,
                investigatorAffiliation=rp.investigator_affiliation,
            ),
            leadSponsor=_sponsor(spons.lead_sponsor),
            collaborators=[_sponsor(c) for c in spons.collaborators],
        ),
        "descriptionModule": _some(
            briefSummary=p.description.brief_summary,
            detailedDescription=p.description.detailed_description,
        ),
        "conditionsModule": _some(conditions=list(p.conditions), keywords=list(p.keywords)),
        "designModule": {
            "studyType": design.study_type,
            "phases": list(design.phases),
            "designInfo": {
                "allocation": design.allocation,
                "interventionModel": design.intervention_model,
                "primaryPurpose": design.primary_purpose,
                "maskingInfo": {"masking": design.masking},
            },
            "enrollmentInfo": {"count": design.enrollment.count, "type": design.enrollment.type},
        },
        "armsInterventionsModule": {
            "armGroups": [
                _some(
                    label=a.label,
                    type=a.type,
                    description=a.description,
                    interventionNames=[names[n] for n in a.intervention_names],
                )
                for a in p.arms
            ],
            "interventions": [
                _some(
                    type=i.type,
                    name=i.name,
                    description=i.description,
                    armGroupLabels=list(i.arm_group_labels),
                    otherNames=list(i.other_names),
                )
                for i in p.interventions
            ],
        },
        "outcomesModule": _some(
            primaryOutcomes=[_outcome(o) for o in p.outcomes.primary],
            secondaryOutcomes=[_outcome(o) for o in p.outcomes.secondary],
        ),
        "eligibilityModule": _some(
            eligibilityCriteria=criteria_text(p),
            healthyVolunteers=elig.healthy_volunteers,
            sex=elig.sex,
            minimumAge=elig.minimum_age,
            maximumAge=elig.maximum_age,
            stdAges=list(elig.std_ages),
        ),
        "contactsLocationsModule": _some(
            overallOfficials=[_some(name=o.name, affiliation=o.affiliation, role=o.role) for o in p.overall_officials],
            locations=[_location(loc) for loc in p.locations],
        ),
    }
    return {"protocolSection": section}


def export_json(p: Protocol) -> str:
    return json.dumps(export_study(p), indent=2, ensure_ascii=False) + "\n"


# --- free-text criteria ---------------------------------------------------------------

# Headings as registries write them: "Inclusion Criteria:", "Inclusion criteria include:", "Exclusion:",
# "KEY EXCLUSION CRITERIA", "**Exclusion Criteria**", "2. Exclusion criteria" (any case, colon or not).
_HEADING = re.compile(
    r"^\s*(?:(?:[*\-•]|\d{1,3}[.)])\s+)?[*_#\s]*(?:key\s+|main\s+|major\s+)?(inclusion|exclusion)"
    r"(?:\s+criteria)?(?:\s+(?:include|includes|are|is))?\s*:?[*_\s]*:?\s*$",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*(?:[*\-•]|\d{1,3}[.)])\s+(.*)$")


def split_criteria(text: str) -> tuple[list[str], list[str]]:
    """Inclusion and exclusion items of a registry criteria text, verbatim.

    A bullet (``*``, ``-``, ``•``) or a number (``1.``, ``1)``) at the section's own
    indentation starts an item, and so does a paragraph after a blank line; deeper-indented
    lines (sub-bullets) and lines that wrap on continue the item, less the indentation up to
    the item's text. Text before any heading
    counts as inclusion. Backslash escapes of the Markdown are undone.
    """
    found: dict[str, list[str]] = {"inclusion": [], "exclusion": []}
    section = "inclusion"
    item: list[str] | None = None
    base: int | None = None  # indentation of the section's items
    column = 0  # where the current item's text starts, after its bullet
    blank = False

    def flush() -> None:
        nonlocal item
        if item is not None:
            found[section].append(_unescape("\n".join(item).strip()))
        item = None

    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            blank = item is not None
            continue
        indent = len(line) - len(line.lstrip())
        heading = _HEADING.match(line)
        if heading and (base is None or indent <= base):  # deeper, it is a criterion's own text
            flush()
            section, base, blank = heading.group(1).lower(), None, False
            continue
        if base is None:
            base = indent
        bullet = _BULLET.match(line)
        if indent <= base and (bullet or blank or item is None):
            flush()
            item = [bullet.group(1) if bullet else line.strip()]
            column = bullet.start(1) if bullet else indent
        else:
            assert item is not None  # base is set only once an item exists
            if blank:
                item.append("")
            item.append(line[min(indent, column) :])
        blank = False
    flush()
    return found["inclusion"], found["exclusion"]


# --- import: reading the JSON ---------------------------------------------------------


def _literal_values(tp: Any) -> tuple[str, ...]:
    if get_origin(tp) is Literal:
        return tuple(str(a) for a in get_args(tp))
    for arg in get_args(tp):
        values = _literal_values(arg)
        if values:
            return values
    return ()


def _choices(model: type[BaseModel], name: str) -> tuple[str, ...]:
    """The enumeration of a model field, so the import accepts exactly what the model does."""
    return _literal_values(model.model_fields[name].annotation)


@dataclass
class _Reader:
    """Typed reads from the study JSON that note one problem per bad or missing field."""

    file: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # readings a person should check, written into the file

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{self.file}: {path} {message}")

    def missing(self, path: str) -> None:
        self.problem(path, "is missing; a protocol needs it, so add it to the JSON (see the registry record)")

    def mapping(self, node: dict[str, Any], key: str, path: str, required: bool = True) -> dict[str, Any]:
        value = node.get(key)
        if value is None:
            if required:
                self.missing(path)
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"should be an object, not {type(value).__name__}; check the JSON")
            return {}
        return value

    def items(self, node: dict[str, Any], key: str, path: str, required: bool = False) -> list[tuple[str, dict[str, Any]]]:
        value = node.get(key)
        if value is None or value == []:
            if required:
                self.missing(path)
            return []
        if not isinstance(value, list):
            self.problem(path, f"should be a list, not {type(value).__name__}; check the JSON")
            return []
        out = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                out.append((f"{path}[{i}]", item))
            else:
                self.problem(f"{path}[{i}]", f"should be an object, not {type(item).__name__}; check the JSON")
        return out

    def text(self, node: dict[str, Any], key: str, path: str, required: bool = True) -> str | None:
        value = node.get(key)
        if value is None or value == "":
            if required:
                self.missing(path)
            return None
        if not isinstance(value, str):
            self.problem(path, f"should be text, not {type(value).__name__}; check the JSON")
            return None
        return value

    def texts(self, node: dict[str, Any], key: str, path: str, required: bool = False) -> list[str]:
        value = node.get(key)
        if value is None or value == []:
            if required:
                self.missing(path)
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(path, "should be a list of texts; check the JSON")
            return []
        return list(value)

    def unknown(self, path: str, value: str, choices: tuple[str, ...]) -> None:
        self.problem(path, f"{value!r} is not an API v2 value this protocol model knows; use one of {', '.join(choices)}")

    def enum(self, node: dict[str, Any], key: str, path: str, choices: tuple[str, ...], required: bool = True) -> str | None:
        value = self.text(node, key, path, required)
        if value is not None and value not in choices:
            self.unknown(path, value, choices)
            return None
        return value

    def enums(self, node: dict[str, Any], key: str, path: str, choices: tuple[str, ...], required: bool = False) -> list[str]:
        out = []
        for i, value in enumerate(self.texts(node, key, path, required)):
            if value in choices:
                out.append(value)
            else:
                self.unknown(f"{path}[{i}]", value, choices)
        return out

    def date(self, node: dict[str, Any], key: str, path: str, required: bool) -> dict[str, Any] | None:
        struct = self.mapping(node, key, path, required)
        if not struct:
            return None
        raw = self.text(struct, "date", f"{path}.date")
        if raw is None:
            return None
        try:
            # API v2 gives a day, or only a month for older and estimated dates: the 1st stands in for it
            day = dt.date.fromisoformat(raw) if len(raw) == 10 else dt.date.fromisoformat(f"{raw}-01")
        except ValueError:
            self.problem(f"{path}.date", f"{raw!r} is not a date; write it as YYYY-MM-DD")
            return None
        if len(raw) != 10:
            self.notes.append(f"{path}.date gives only the month {raw}; the 1st of the month stands in for the day.")
        out: dict[str, Any] = {"date": day}
        kind = self.enum(struct, "type", f"{path}.type", _choices(StudyDate, "type"), required=False)
        if kind is not None:
            out["type"] = kind
        return out


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CtgovError([f"{path}: no such file; check the path"]) from None
    except UnicodeDecodeError:
        raise CtgovError([f"{path.name}: not a UTF-8 text file; save the study JSON as UTF-8"]) from None
    except OSError as exc:
        raise CtgovError([f"{path}: cannot read ({exc.strerror}); check the path and its permissions"]) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CtgovError(
            [f"{path.name}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); fix it there or download the study again"]
        ) from None


def _protocol_section(name: str, root: Any) -> dict[str, Any]:
    """The study's ``protocolSection``; a search answer ``{"studies": [one study]}`` is accepted too."""
    if isinstance(root, dict) and isinstance(root.get("studies"), list):
        if len(root["studies"]) != 1:
            raise CtgovError([f"{name}: holds {len(root['studies'])} studies; save one study per file and import each"])
        root = root["studies"][0]
    if not isinstance(root, dict) or not isinstance(root.get("protocolSection"), dict):
        raise CtgovError([f"{name}: protocolSection is missing; is this a ClinicalTrials.gov API v2 study?"])
    section: dict[str, Any] = root["protocolSection"]
    ident = section.get("identificationModule")
    where = "protocolSection.identificationModule.nctId"
    if not isinstance(ident, dict) or not ident.get("nctId"):
        raise CtgovError([f"{name}: {where} is missing; is this a ClinicalTrials.gov API v2 study?"])
    if not isinstance(ident["nctId"], str) or not re.fullmatch(r"NCT\d{8}", ident["nctId"]):
        raise CtgovError([f"{name}: {where} {ident['nctId']!r} is not an NCT number (NCT and 8 digits); correct it"])
    return section


# --- import: the registry fields ------------------------------------------------------

_PS = "protocolSection"


def _registry_fields(r: _Reader, s: dict[str, Any]) -> dict[str, Any]:
    """The protocol's registry fields, keyed and spelled as the protocol file has them."""
    p = f"{_PS}.identificationModule"
    im = r.mapping(s, "identificationModule", p)
    org = r.mapping(im, "orgStudyIdInfo", f"{p}.orgStudyIdInfo", required=False)
    brief = r.text(im, "briefTitle", f"{p}.briefTitle")
    identification = _dropped_none(
        nct_id=im["nctId"],
        org_study_id=r.text(org, "id", f"{p}.orgStudyIdInfo.id", required=False),
        brief_title=brief,
        # a protocol needs an official title; older records without one use the brief title
        official_title=r.text(im, "officialTitle", f"{p}.officialTitle", required=False) or brief,
        acronym=r.text(im, "acronym", f"{p}.acronym", required=False),
    )

    p = f"{_PS}.statusModule"
    sm = r.mapping(s, "statusModule", p)
    status = _dropped_none(
        overall_status=r.enum(sm, "overallStatus", f"{p}.overallStatus", _choices(Status, "overall_status")),
        start_date=r.date(sm, "startDateStruct", f"{p}.startDateStruct", required=True),
        primary_completion_date=r.date(sm, "primaryCompletionDateStruct", f"{p}.primaryCompletionDateStruct", required=False),
        completion_date=r.date(sm, "completionDateStruct", f"{p}.completionDateStruct", required=False),
    )

    p = f"{_PS}.sponsorCollaboratorsModule"
    sc = r.mapping(s, "sponsorCollaboratorsModule", p)
    rp, rpp = r.mapping(sc, "responsibleParty", f"{p}.responsibleParty"), f"{p}.responsibleParty"
    sponsorship = _dropped_none(
        lead_sponsor=_sponsor_in(r, r.mapping(sc, "leadSponsor", f"{p}.leadSponsor"), f"{p}.leadSponsor"),
        collaborators=[_sponsor_in(r, c, cp) for cp, c in r.items(sc, "collaborators", f"{p}.collaborators")],
        responsible_party=_dropped_none(
            type=r.enum(rp, "type", f"{rpp}.type", _choices(ResponsibleParty, "type")),
            investigator_full_name=r.text(rp, "investigatorFullName", f"{rpp}.investigatorFullName", required=False),
            investigator_title=r.text(rp, "investigatorTitle", f"{rpp}.investigatorTitle", required=False),
            investigator_affiliation=r.text(rp, "investigatorAffiliation", f"{rpp}.investigatorAffiliation", required=False),
        ),
    )

    p = f"{_PS}.contactsLocationsModule"
    cl = r.mapping(s, "contactsLocationsModule", p, required=False)
    officials = [
        _dropped_none(
            name=r.text(o, "name", f"{op}.name"),
            affiliation=r.text(o, "affiliation", f"{op}.affiliation", required=False),
            role=r.enum(o, "role", f"{op}.role", _choices(Official, "role")),
        )
        for op, o in r.items(cl, "overallOfficials", f"{p}.overallOfficials")
    ]
    locations = [
        _dropped_none(
            facility=r.text(loc, "facility", f"{lp}.facility"),
            city=r.text(loc, "city", f"{lp}.city"),
            state=r.text(loc, "state", f"{lp}.state", required=False),
            zip=r.text(loc, "zip", f"{lp}.zip", required=False),
            country=r.text(loc, "country", f"{lp}.country"),
        )
        for lp, loc in r.items(cl, "locations", f"{p}.locations")
    ]

    p = f"{_PS}.descriptionModule"
    dm = r.mapping(s, "descriptionModule", p)
    description = _dropped_none(
        brief_summary=r.text(dm, "briefSummary", f"{p}.briefSummary"),
        detailed_description=r.text(dm, "detailedDescription", f"{p}.detailedDescription", required=False),
    )

    p = f"{_PS}.conditionsModule"
    cm = r.mapping(s, "conditionsModule", p)

    return _dropped_none(
        identification=identification,
        status=status,
        sponsorship=sponsorship,
        overall_officials=officials,
        description=description,
        conditions=r.texts(cm, "conditions", f"{p}.conditions", required=True),
        keywords=r.texts(cm, "keywords", f"{p}.keywords"),
        design=_design(r, s),
        **_arms_and_interventions(r, s),
        eligibility=_eligibility(r, s),
        outcomes=_outcomes(r, s),
        locations=locations,
    )


def _dropped_none(**fields: Any) -> dict[str, Any]:
    """The fields the record states: absent ones stay out of the protocol file (the model's
    defaults apply), so the file shows only what the registry gave."""
    return {k: v for k, v in fields.items() if v is not None and v != []}


def _sponsor_in(r: _Reader, node: dict[str, Any], path: str) -> dict[str, Any]:
    return _dropped_none(
        name=r.text(node, "name", f"{path}.name"),
        **{"class": r.enum(node, "class", f"{path}.class", _choices(Sponsor, "class_"), required=False)},
    )


def _design(r: _Reader, s: dict[str, Any]) -> dict[str, Any]:
    p = f"{_PS}.designModule"
    dm = r.mapping(s, "designModule", p)
    info = r.mapping(dm, "designInfo", f"{p}.designInfo")
    di = f"{p}.designInfo"
    masking = r.mapping(info, "maskingInfo", f"{di}.maskingInfo", required=False)
    enrollment = r.mapping(dm, "enrollmentInfo", f"{p}.enrollmentInfo")
    count = enrollment.get("count")
    if enrollment and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        r.problem(f"{p}.enrollmentInfo.count", f"{count!r} is not a number of participants; give a whole number of at least 1")
        count = None
    return _dropped_none(
        study_type=r.enum(dm, "studyType", f"{p}.studyType", _choices(Design, "study_type")),
        phases=r.enums(dm, "phases", f"{p}.phases", _choices(Design, "phases"), required=True),
        allocation=r.enum(info, "allocation", f"{di}.allocation", _choices(Design, "allocation"), required=False),
        intervention_model=r.enum(info, "interventionModel", f"{di}.interventionModel", _choices(Design, "intervention_model")),
        primary_purpose=r.enum(info, "primaryPurpose", f"{di}.primaryPurpose", _choices(Design, "primary_purpose")),
        masking=r.enum(masking, "masking", f"{di}.maskingInfo.masking", _choices(Design, "masking"), required=False),
        enrollment=_dropped_none(
            count=count,
            type=r.enum(enrollment, "type", f"{p}.enrollmentInfo.type", _choices(Enrollment, "type"), required=False),
        ),
    )


def _arms_and_interventions(r: _Reader, s: dict[str, Any]) -> dict[str, Any]:
    p = f"{_PS}.armsInterventionsModule"
    am = r.mapping(s, "armsInterventionsModule", p)
    interventions = [
        _dropped_none(
            type=r.enum(i, "type", f"{ip}.type", _choices(Intervention, "type")),
            name=r.text(i, "name", f"{ip}.name"),
            description=r.text(i, "description", f"{ip}.description", required=False),
            arm_group_labels=r.texts(i, "armGroupLabels", f"{ip}.armGroupLabels"),
            other_names=r.texts(i, "otherNames", f"{ip}.otherNames"),
        )
        for ip, i in r.items(am, "interventions", f"{p}.interventions", required=True)
    ]
    # "Biological: <name>" back to the intervention's own name
    by_label = {f"{intervention_label(i['type'])}: {i['name']}": i["name"] for i in interventions if "type" in i and "name" in i}
    names = set(by_label.values())
    arms = []
    for ap, a in r.items(am, "armGroups", f"{p}.armGroups", required=True):
        refs = []
        for k, ref in enumerate(r.texts(a, "interventionNames", f"{ap}.interventionNames", required=True)):
            name = by_label.get(ref) or (ref if ref in names else None)
            if name is None:
                hint = f"names no intervention; use '<Type>: <name>' of one in {p}.interventions"
                r.problem(f"{ap}.interventionNames[{k}]", f"{ref!r} {hint}")
            else:
                refs.append(name)
        arms.append(
            _dropped_none(
                label=r.text(a, "label", f"{ap}.label"),
                type=r.enum(a, "type", f"{ap}.type", _choices(Arm, "type")),
                description=r.text(a, "description", f"{ap}.description", required=False) or "",
                intervention_names=refs,
            )
        )
    return {"arms": arms, "interventions": interventions}


_NO_AGE_LIMIT = {"n/a", "na", "none", "no limit", "not applicable", ""}
_AGE = re.compile(r"^(\d+)\s*(year|month|week|day)s?$", re.IGNORECASE)


def _age(r: _Reader, node: dict[str, Any], key: str, path: str) -> str | None:
    """A registry age as the protocol writes it ("18 Years"); "N/A" (no limit) is no age."""
    text = r.text(node, key, path, required=False)
    if text is None or text.strip().casefold() in _NO_AGE_LIMIT:
        return None
    m = _AGE.match(text.strip())
    if m is None:
        r.problem(path, f"{text!r} is not an age in years, months, weeks or days (e.g. '18 Years') nor 'N/A'; "
                        "correct it in the JSON")
        return None
    return f"{int(m.group(1))} {m.group(2).capitalize()}s"


def _eligibility(r: _Reader, s: dict[str, Any]) -> dict[str, Any]:
    p = f"{_PS}.eligibilityModule"
    em = r.mapping(s, "eligibilityModule", p)
    criteria: list[dict[str, Any]] = []
    text = r.text(em, "eligibilityCriteria", f"{p}.eligibilityCriteria")
    if text is not None:
        inclusion, exclusion = split_criteria(text)
        if not inclusion and not exclusion:
            r.problem(f"{p}.eligibilityCriteria", "holds no criteria; list them under Inclusion and Exclusion Criteria headings")
        for prefix, role, items in (("I", "inclusion", inclusion), ("E", "exclusion", exclusion)):
            criteria.extend({"id": f"{prefix}{n}", "role": role, "text": t, "encoding": "needs_review"}
                            for n, t in enumerate(items, start=1))
    healthy = em.get("healthyVolunteers", False)
    if not isinstance(healthy, bool):
        r.problem(f"{p}.healthyVolunteers", f"{healthy!r} is not true or false; correct it in the JSON")
        healthy = False
    return _dropped_none(
        sex=r.enum(em, "sex", f"{p}.sex", _choices(Eligibility, "sex")),
        minimum_age=_age(r, em, "minimumAge", f"{p}.minimumAge"),
        maximum_age=_age(r, em, "maximumAge", f"{p}.maximumAge"),
        healthy_volunteers=healthy,
        std_ages=r.enums(em, "stdAges", f"{p}.stdAges", _choices(Eligibility, "std_ages")),
        criteria=criteria,
    )


def _outcomes(r: _Reader, s: dict[str, Any]) -> dict[str, Any]:
    p = f"{_PS}.outcomesModule"
    om = r.mapping(s, "outcomesModule", p)

    def read(key: str, required: bool) -> list[dict[str, Any]]:
        return [
            _dropped_none(
                measure=r.text(o, "measure", f"{op}.measure"),
                time_frame=r.text(o, "timeFrame", f"{op}.timeFrame"),
                description=r.text(o, "description", f"{op}.description", required=False),
            )
            for op, o in r.items(om, key, f"{p}.{key}", required=required)
        ]

    return _dropped_none(primary=read("primaryOutcomes", True), secondary=read("secondaryOutcomes", False))


# --- import: what the registry does not hold ------------------------------------------

_NOT_IN_REGISTRY = "Not in the registry record; the study team must set it."
_DURATION = re.compile(r"^\s*(\d+)\s*(day|week|month|year)s?\s*$", re.IGNORECASE)
_DAYS_PER = {"day": 1.0, "week": 7.0, "month": 30.4375, "year": 365.25}
_DEFAULT_FOLLOW_UP_DAYS = 30


def follow_up_days(time_frame: str | None) -> int | None:
    """Days of a plain time frame ("6 months" -> 183); None when it is not that simple."""
    m = _DURATION.match(time_frame or "")
    if not m or int(m.group(1)) < 1:
        return None
    return round(int(m.group(1)) * _DAYS_PER[m.group(2).lower()])


def _visit(
    code: str, name: str, day: int, before: int, after: int, forms: list[str], infusion: int | None = None
) -> dict[str, Any]:
    visit = {"code": code, "name": name, "day": day, "window_before": before, "window_after": after, "forms": forms}
    return visit if infusion is None else {**visit, "infusion": infusion}


def _site_settings(fields: dict[str, Any]) -> dict[str, Any]:
    """Conservative defaults for what a site needs and the registry does not give."""
    primary = fields["outcomes"].get("primary", [])
    time_frame = primary[0].get("time_frame") if primary else None
    days = follow_up_days(time_frame)
    if days is None:
        days = _DEFAULT_FOLLOW_UP_DAYS
        days_reason = f"the primary outcome's time frame is not a plain duration, so {days} days"
    else:
        days_reason = f"the primary outcome's time frame ({time_frame}), {days} days"
    count = fields["design"].get("enrollment", {}).get("count")
    return {
        "infusions": {
            "count": 1,
            "interval_days": 0,
            "window_days": 0,
            "reason": f"{_NOT_IN_REGISTRY} Imported default: a single infusion. Set count and interval_days"
            " from the protocol document, and mark one schedule visit per infusion with 'infusion: n'.",
        },
        "enrolment": {
            "target": count,
            "stagger_days": 0,
            "screening_to_first_infusion_days": 0,
            "reason": f"The target is the registry's enrollment count ({count}). stagger_days and"
            " screening_to_first_infusion_days are not in the registry record; the study team must set them.",
        },
        "schedule": {
            "reason": f"{_NOT_IN_REGISTRY} Imported default: screening in the 28 days before the infusion on day 0,"
            f" and one end-of-study visit at the end of safety follow-up ({days_reason}).",
            "visits": [
                _visit("SCREENING", "Screening", -28, 0, 27, ["demographics"]),
                _visit("D0", "Infusion 1", 0, 0, 0, ["infusion", "adverse_events"], infusion=1),
                _visit("EOS", "End of safety follow-up", days, min(7, days - 1), 7, ["adverse_events"]),
            ],
        },
        "safety": {"ae_follow_up_days": days, "stopping_rules": []},
        "days_reason": days_reason,
    }


# --- import: the protocol file --------------------------------------------------------


def _protocol_tree(nct_id: str, fields: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    interventions = [dict(i) for i in fields["interventions"]]
    if interventions:
        interventions[0]["infusions"] = settings["infusions"]
    return {
        "schema_version": 1,
        "id": nct_id.lower(),
        "version": "1.0",
        **{k: v for k, v in fields.items() if k != "interventions"},
        "interventions": interventions,
        "enrolment": settings["enrolment"],
        "schedule": settings["schedule"],
        "safety": settings["safety"],
    }


_ORDER = (
    "schema_version", "id", "version", "identification", "status", "sponsorship", "overall_officials", "description",
    "conditions", "keywords", "design", "arms", "interventions", "eligibility", "outcomes", "locations",
    "enrolment", "schedule", "safety",
)


def _commented(node: Any) -> Any:
    """Plain data to ruamel nodes: block style, texts of several lines as literal blocks."""
    if isinstance(node, dict):
        out = CommentedMap()
        for k, v in node.items():
            out[k] = _commented(v)
        return out
    if isinstance(node, list):
        return CommentedSeq(_commented(v) for v in node)
    if isinstance(node, str) and "\n" in node:
        return LiteralScalarString(node)
    return node


def _yaml_text(nct_id: str, file: str, tree: dict[str, Any], days_reason: str, notes: list[str]) -> str:
    doc = _commented({k: tree[k] for k in _ORDER if k in tree})
    doc.yaml_set_start_comment(
        f"{nct_id} imported from {file} (ClinicalTrials.gov API v2).\n"
        "Registry fields are as the registry gives them. Every criterion is marked needs_review:\n"
        "a person must give it a computable form (or an attestation) and set encoding: encoded.\n"
        "id, version, the infusion plan, enrolment settings, the schedule and safety rules are NOT in\n"
        "the registry: they are conservative defaults that the study team must check and set."
        + "".join(f"\nCheck: {note}" for note in notes)
    )
    doc.yaml_set_comment_before_after_key("id", before="Not in the registry: the NCT id in lower case, used as the short name.")
    doc.yaml_set_comment_before_after_key("version", before="Not in the registry: the version of this protocol file; set it.")
    doc["eligibility"].yaml_set_comment_before_after_key(
        "criteria", before="Split from the registry's free text, verbatim; each needs a person to encode it.", indent=2
    )
    doc["interventions"][0].yaml_set_comment_before_after_key(
        "infusions", before="Not in the registry: the study team must set the number of infusions and their interval.", indent=4
    )
    doc.yaml_set_comment_before_after_key(
        "safety",
        before=f"Not in the registry: safety follow-up from {days_reason}.\n"
        "No stopping rules and no SAE reporting deadlines are set: the study team must add them\n"
        "(src/trialdesk/protocols/nct03929120/protocol.yaml shows their form).",
    )
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.width = 4096  # one line per text: criteria stay verbatim and diffs stay readable
    yaml.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    yaml.dump(doc, buf)
    return buf.getvalue()


def _validation_problems(file: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        where = ""
        for part in err["loc"]:
            if isinstance(part, int):
                where += f"[{part}]"
            elif not str(part).startswith("function-"):
                where += ("." if where else "") + str(part)
        msg = err["msg"].removeprefix("Value error, ")
        fix = "" if ";" in msg else "; correct it in the JSON"
        out.append(f"{file}: the protocol made from it is invalid at {where or 'the top'}: {msg}{fix}")
    return out


def import_yaml(path: Path) -> str:
    """The text of a protocol file made from an API v2 study JSON; CtgovError if it cannot be."""
    path = Path(path)
    section = _protocol_section(path.name, _read_json(path))
    reader = _Reader(path.name)
    fields = _registry_fields(reader, section)
    if reader.problems:
        raise CtgovError(reader.problems)
    nct_id: str = fields["identification"]["nct_id"]
    settings = _site_settings(fields)
    tree = _protocol_tree(nct_id, fields, settings)
    try:
        Protocol.model_validate(tree)
    except ValidationError as exc:
        raise CtgovError(_validation_problems(path.name, exc)) from None
    return _yaml_text(nct_id, path.name, tree, settings["days_reason"], reader.notes)

