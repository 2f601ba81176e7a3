"""Reading a patient's FHIR R4 record: one Bundle, a Bulk Data ``$export`` folder, or a
folder of many Bundles (many patients in one batch).

Every resource trialdesk uses is validated with ``fhir.resources`` (its R4B models: R4B
changed none of the resources read here, so an R4 record validates unchanged). A
resource that fails validation is dropped and named in a :class:`Problem`; resource
types trialdesk does not use are counted and passed over without validation. Input
that cannot be read as FHIR R4 at all — not JSON, not FHIR, or FHIR of another version —
raises :class:`FhirError` with a one-line message naming the file.

**What is validated.** By default (``validate="read"``) the *elements trialdesk reads*:
for each resource type, :data:`READ_ELEMENTS` lists the top-level elements the mapping
(``fhir_omop``) reads, and the resource is validated, with the same fhir.resources model,
on those elements, every element R4 requires of the type (Observation.status and code,
Encounter.class, …), every type of a choice element read (``effective[x]`` is
effectiveDateTime, effectivePeriod, effectiveInstant and effectiveTiming), the ``_element``
extension siblings of those, and any top-level name R4 does not define for the type (so a
misspelt or foreign element still fails). Each kept element is validated whole, down to
its last nested part, once per reading: a value already part of a valid resource of the same
type, under the same name, is not validated again (see :func:`_validate_chunk`). The other
elements — narrative ``text``, ``meta``, ``identifier``, ``performer``, ``note``,
``extension``, … — are **neither validated nor used**: a resource
invalid only there is kept. ``validate="full"`` validates every element of every used
resource, as before (``trialdesk patient check --validate full``). Validation costs per
nested element, so the projection saves most on real EHR exports, which carry much more
than the elements read.

Rows are later built from the validated JSON dictionaries, not from the pydantic
models: validation is the expensive part, and the dictionaries are what the mapping
needs (see ``fhir_omop.map_to_omop``).
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

if TYPE_CHECKING:
    import duckdb

    from trialdesk.sources.fhir_omop import MappingReport

__all__ = [
    "READ_ELEMENTS",
    "USED_TYPES",
    "FhirError",
    "FhirReading",
    "FhirRecord",
    "Problem",
    "Validation",
    "batch_bundles",
    "map_to_omop",
    "read_fhir",
    "read_many",
]

JsonDict = dict[str, Any]

#: Resource types whose content trialdesk maps; Medication is read so that
#: ``medicationReference`` can be resolved to a code.
USED_TYPES = frozenset(
    {
        "Patient",
        "Condition",
        "MedicationRequest",
        "MedicationStatement",
        "MedicationAdministration",
        "Medication",
        "Observation",
        "Procedure",
        "Encounter",
    }
)

#: The top-level elements of each used resource type that trialdesk reads (every key
#: ``fhir_omop`` takes from a resource's dictionary, and ``id``); ``[x]`` is a choice
#: element, all its types. The default validation covers these (see the module docstring);
#: a test maps every chart with dictionaries that record what is read, against this list.
READ_ELEMENTS: dict[str, frozenset[str]] = {
    rtype: frozenset(elements)
    for rtype, elements in {
        "Patient": ("id", "birthDate", "gender"),
        "Condition": ("id", "subject", "clinicalStatus", "verificationStatus", "code", "onset[x]", "abatement[x]",
                      "recordedDate"),
        "MedicationRequest": ("id", "subject", "status", "statusReason", "intent", "medication[x]", "contained",
                              "authoredOn", "dosageInstruction", "dispenseRequest"),
        "MedicationStatement": ("id", "subject", "status", "medication[x]", "contained", "effective[x]", "dateAsserted",
                                "dosage"),
        "MedicationAdministration": ("id", "subject", "status", "medication[x]", "contained", "effective[x]", "dosage"),
        "Medication": ("id", "code"),
        "Observation": ("id", "subject", "status", "code", "category", "effective[x]", "issued", "value[x]", "component",
                        "referenceRange"),
        "Procedure": ("id", "subject", "status", "code", "performed[x]"),
        "Encounter": ("id", "subject", "status", "period"),
    }.items()
}  # fmt: skip

#: what :func:`read_fhir` validates: the elements trialdesk reads, or every element
Validation = Literal["read", "full"]

# Versions read as R4: 4.0.x is R4, 4.3.x is R4B (same shape for every resource used here).
_R4_VERSION_PREFIXES = ("4.0", "4.3")

# Resource types that exist in DSTU2/STU3 or in R5 but not in R4: meeting one means the
# file is another version of FHIR, not a resource type trialdesk merely does not use.
_OTHER_VERSION_TYPES = {
    "Conformance": "DSTU2",
    "MedicationOrder": "DSTU2",
    "DiagnosticOrder": "DSTU2",
    "DeviceUseRequest": "DSTU2",
    "Order": "DSTU2",
    "OrderResponse": "DSTU2",
    "ProcedureRequest": "STU3",
    "ReferralRequest": "STU3",
    "ProcessRequest": "STU3",
    "ProcessResponse": "STU3",
    "EligibilityRequest": "STU3",
    "EligibilityResponse": "STU3",
    "BodySite": "STU3",
    "DataElement": "STU3",
    "ImagingManifest": "STU3",
    "DeviceComponent": "STU3",
    "Sequence": "STU3",
    "MedicationUsage": "R5",
    "DeviceUsage": "R5",
    "EncounterHistory": "R5",
    "FormularyItem": "R5",
    "GenomicStudy": "R5",
    "ImagingSelection": "R5",
    "InventoryItem": "R5",
    "InventoryReport": "R5",
    "NutritionIntake": "R5",
    "Transport": "R5",
    "TestPlan": "R5",
    "Requirements": "R5",
    "ActorDefinition": "R5",
    "ArtifactAssessment": "R5",
}

# Resource types of R4 that R4B dropped: still R4, simply not used by trialdesk.
_R4_ONLY_TYPES = frozenset(
    {
        "EffectEvidenceSynthesis",
        "MedicinalProduct",
        "MedicinalProductAuthorization",
        "MedicinalProductContraindication",
        "MedicinalProductIndication",
        "MedicinalProductIngredient",
        "MedicinalProductInteraction",
        "MedicinalProductManufactured",
        "MedicinalProductPackaged",
        "MedicinalProductPharmaceutical",
        "MedicinalProductUndesirableEffect",
        "RiskEvidenceSynthesis",
        "SubstanceNucleicAcid",
        "SubstancePolymer",
        "SubstanceProtein",
        "SubstanceReferenceInformation",
        "SubstanceSourceMaterial",
        "SubstanceSpecification",
    }
)


class FhirError(Exception):
    """The input cannot be read as FHIR R4 at all. The message is one line and names the file."""


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in the record that could not be used; the affected record is dropped
    (or, for a reference range, the range alone) and the problem is shown to the user."""

    file: str
    message: str
    line: int | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    field: str | None = None
    #: the resource's subject/patient reference as written, so a problem can be shown
    #: on the right patient's worksheet
    subject: str | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        what = "/".join(p for p in (self.resource_type, self.resource_id) if p)
        parts = [where]
        if what:
            parts.append(what)
        if self.field:
            parts.append(self.field)
        return ": ".join([*parts, self.message])


@dataclass(slots=True)
class FhirRecord:
    """One validated resource, kept as its JSON dictionary."""

    resource_type: str
    id: str | None
    data: JsonDict
    file: str
    #: line number in an NDJSON file (1-based); None in a Bundle
    line: int | None
    #: references resolve within a scope: one Bundle file, or one Bulk export folder
    scope: str
    #: Bundle.entry.fullUrl, when the record came from a Bundle
    full_url: str | None = None


@dataclass
class FhirReading:
    """What :func:`read_fhir` found: the validated records, the problems, and how many
    resources of types trialdesk does not use were passed over."""

    records: list[FhirRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped_types: Counter[str] = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    #: resources read but not yet validated (see :func:`_settle`)
    pending: list[FhirRecord] = field(default_factory=list)

    def extend(self, other: FhirReading) -> None:
        self.records.extend(other.records)
        self.pending.extend(other.pending)
        self.problems.extend(other.problems)
        self.skipped_types.update(other.skipped_types)
        self.files.extend(other.files)


# --------------------------------------------------------------------------- entry points


def read_fhir(
    path: str | Path, *, skip_unreadable: bool = False, workers: int = 1, validate: Validation = "read"
) -> FhirReading:
    """Read a Bundle file, a Bulk Data export folder, or a folder of Bundle files.

    A folder holding ``*.ndjson`` files (with or without ``manifest.json``) is one Bulk
    export: references resolve across all its files. Each ``*.json`` Bundle in a folder is
    its own scope (one patient's chart, usually), so 200 copies of one Bundle are 200
    patients. With ``skip_unreadable``, an unreadable file inside a folder becomes a
    :class:`Problem` and the rest of the folder is read; a single unreadable file always
    raises :class:`FhirError`. ``workers`` > 1 validates a large record in that many
    processes (see :func:`_settle`). ``validate`` is ``"read"`` (the elements trialdesk
    reads, the default) or ``"full"`` (every element); see the module docstring.
    """
    if validate not in ("read", "full"):
        raise ValueError(f"validate must be 'read' or 'full', not {validate!r}")
    reading = _read(path, skip_unreadable=skip_unreadable)
    _settle(reading, workers, validate)
    return reading


def _read(path: str | Path, *, skip_unreadable: bool) -> FhirReading:
    p = Path(path)
    if not p.exists():
        raise FhirError(f"{p}: no such file or folder")
    if p.is_file():
        if p.name.endswith((".ndjson", ".ndjson.gz")):
            reading = FhirReading(files=[str(p)])
            _read_ndjson(p, str(p), reading)
            return reading
        return _read_json_file(p)
    return _read_folder(p, skip_unreadable=skip_unreadable)


def read_many(
    paths: Iterable[str | Path], *, skip_unreadable: bool = False, workers: int = 1, validate: Validation = "read"
) -> FhirReading:
    """Read several inputs (files or folders) into one reading, for one batch."""
    if validate not in ("read", "full"):
        raise ValueError(f"validate must be 'read' or 'full', not {validate!r}")
    reading = FhirReading()
    for p in paths:
        try:
            reading.extend(_read(p, skip_unreadable=skip_unreadable))
        except FhirError as e:
            if not skip_unreadable:
                raise
            reading.problems.append(Problem(file=str(p), message=str(e)))
    _settle(reading, workers, validate)
    return reading


def batch_bundles(source: str | Path | Iterable[str | Path]) -> list[Path] | None:
    """The Bundle files ``source`` is read from, in reading order, when each is a scope of
    its own (a folder of ``*.json`` Bundles with no Bulk export in it, or a list of Bundle
    files): such a batch can be read, mapped and screened in parts, one part per process,
    since no reference and no problem crosses a file. None for anything else (one file, a
    Bulk export, a folder mixing both, a list naming folders)."""
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if not folder.is_dir() or (folder / "manifest.json").exists():
            return None
        files = [f for f in folder.iterdir() if f.is_file()]
        if any(f.name.endswith((".ndjson", ".ndjson.gz")) for f in files):
            return None
        return sorted(f for f in files if f.suffix == ".json")
    paths = [Path(p) for p in source]
    if not all(p.is_file() and not p.name.endswith((".ndjson", ".ndjson.gz")) for p in paths):
        return None
    return paths


def map_to_omop(
    records: FhirReading,
    con: duckdb.DuckDBPyConnection,
    *,
    number_after: Callable[[dict[str, int]], Mapping[str, int]] | None = None,
) -> MappingReport:
    """Write OMOP CDM v5.4-shaped tables for ``records`` into ``con``, through the
    SQL-on-FHIR views of ``trialdesk.sources.fhir_views.omop`` (readings: ``fhir_omop``)."""
    import pyarrow as pa

    from trialdesk.sources.fhir_views.omop import map_resources

    recs = records.records
    table = pa.table({
        "ord": pa.array(range(1, len(recs) + 1), pa.int64()), "rtype": pa.array([r.resource_type for r in recs], pa.string()),
        "resource": pa.array([json.dumps(r.data) for r in recs], pa.string()),
        "file": pa.array([r.file for r in recs], pa.string()), "line": pa.array([r.line for r in recs], pa.int64()),
        "full_url": pa.array([r.full_url for r in recs], pa.string()), "scope": pa.array([r.scope for r in recs], pa.string()),
    })  # fmt: skip
    con.register("_trialdesk_fhir_records", table)
    try:
        con.execute("""CREATE OR REPLACE TEMP TABLE fhir_resources AS SELECT ord, rtype, CAST(resource AS JSON) AS resource,
                       file, line, full_url, scope FROM _trialdesk_fhir_records""")
    finally:
        con.unregister("_trialdesk_fhir_records")
    return map_resources(con, problems=records.problems, skipped_types=records.skipped_types, number_after=number_after)


# --------------------------------------------------------------------------- folders


def _read_folder(folder: Path, *, skip_unreadable: bool) -> FhirReading:
    reading = FhirReading()
    manifest = folder / "manifest.json"
    ndjson = _export_files(folder, manifest)
    bundles = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix == ".json" and f.name != "manifest.json")
    if not ndjson and not bundles:
        raise FhirError(f"{folder}: no FHIR files (*.json Bundles or *.ndjson Bulk export) in this folder")
    scope = str(folder)
    for f in ndjson:
        reading.files.append(str(f))
        try:
            _read_ndjson(f, scope, reading)
        except FhirError as e:
            if not skip_unreadable:
                raise
            reading.problems.append(Problem(file=str(f), message=str(e)))
    for f in bundles:
        try:
            reading.extend(_read_json_file(f))
        except FhirError as e:
            if not skip_unreadable:
                raise
            reading.problems.append(Problem(file=str(f), message=str(e)))
    return reading


def _export_files(folder: Path, manifest: Path) -> list[Path]:
    """The NDJSON files of a Bulk export: those the manifest lists, or else all of them."""
    if not manifest.exists():
        return sorted(f for f in folder.iterdir() if f.is_file() and f.name.endswith((".ndjson", ".ndjson.gz")))
    try:
        doc = json.loads(manifest.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FhirError(f"{manifest}: not JSON ({_json_position(e)}); a Bulk Data manifest is a JSON object") from e
    outputs = doc.get("output") if isinstance(doc, dict) else None
    if not isinstance(outputs, list):
        raise FhirError(f"{manifest}: not a Bulk Data manifest (no 'output' list)")
    files: list[Path] = []
    for item in outputs:
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str) or not url:
            raise FhirError(f"{manifest}: an 'output' entry has no 'url'")
        # The manifest names files by download URL; a saved export keeps the file name.
        local = folder / url.rstrip("/").rsplit("/", 1)[-1]
        if not local.exists():
            raise FhirError(f"{manifest}: lists {url}, but {local.name} is not in the folder")
        files.append(local)
    return files


# --------------------------------------------------------------------------- files


def _read_json_file(path: Path) -> FhirReading:
    name = str(path)
    try:
        doc = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FhirError(f"{name}: not JSON ({_json_position(e)}); expected a FHIR R4 Bundle or resource") from e
    if not isinstance(doc, dict) or "resourceType" not in doc:
        raise FhirError(f"{name}: JSON but not FHIR (no 'resourceType'); expected a FHIR R4 Bundle or resource")
    rtype = doc["resourceType"]
    _check_version_marks(doc, name, None)
    reading = FhirReading(files=[name])
    if rtype != "Bundle":
        if not _is_known_type(rtype):
            raise FhirError(f"{name}: resourceType {rtype!r} is not a FHIR R4 resource")
        _take(doc, name, None, name, None, reading)
        return reading
    entries = doc.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError(f"{name}: Bundle.entry is not a list")
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            reading.problems.append(Problem(file=name, field=f"entry[{i}]", message="entry has no resource"))
            continue
        _check_version_marks(resource, name, None)
        full_url = entry.get("fullUrl")
        _take(resource, name, None, name, full_url if isinstance(full_url, str) else None, reading)
    return reading


def _read_ndjson(path: Path, scope: str, reading: FhirReading) -> None:
    name = str(path)
    taken_before = len(reading.records) + len(reading.pending) + sum(reading.skipped_types.values())
    bad_lines = 0
    for lineno, raw in _lines(path):
        if not raw.strip():
            continue
        try:
            resource = json.loads(raw)
        except json.JSONDecodeError as e:
            bad_lines += 1
            reading.problems.append(Problem(file=name, line=lineno, message=f"not JSON ({_json_position(e)})"))
            continue
        if not isinstance(resource, dict) or "resourceType" not in resource:
            bad_lines += 1
            reading.problems.append(Problem(file=name, line=lineno, message="not a FHIR resource (no 'resourceType')"))
            continue
        _check_version_marks(resource, name, lineno)
        _take(resource, name, lineno, scope, None, reading)
    taken = len(reading.records) + len(reading.pending) + sum(reading.skipped_types.values()) - taken_before
    if bad_lines and not taken:
        raise FhirError(f"{name}: no line is a FHIR resource ({bad_lines} unreadable); expected NDJSON, one resource a line")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                yield from enumerate(fh, start=1)
        else:
            with path.open(encoding="utf-8") as fh:
                yield from enumerate(fh, start=1)
    except UnicodeDecodeError as e:
        raise FhirError(f"{path}: not UTF-8 text ({e.reason}); expected NDJSON") from e


def _json_position(e: json.JSONDecodeError | UnicodeDecodeError) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"line {e.lineno}, column {e.colno}: {e.msg}"
    return f"not UTF-8: {e.reason}"


# --------------------------------------------------------------------------- one resource


def _take(resource: JsonDict, file: str, line: int | None, scope: str, full_url: str | None, reading: FhirReading) -> None:
    rtype = resource.get("resourceType")
    rid = resource.get("id") if isinstance(resource.get("id"), str) else None
    if not isinstance(rtype, str):
        reading.problems.append(Problem(file=file, line=line, resource_id=rid, message="resourceType is not a string"))
        return
    if rtype not in USED_TYPES:
        if not _is_known_type(rtype):
            message = f"{rtype!r} is not a FHIR R4 resource type"
            reading.problems.append(Problem(file=file, line=line, resource_type=rtype, resource_id=rid, message=message))
        else:
            reading.skipped_types[rtype] += 1
        return
    reading.pending.append(FhirRecord(rtype, rid, resource, file, line, scope, full_url))


#: below this many resources, forking validating processes costs more than it saves (a
#: 2,000-resource chart was slower in two processes than in one; see BENCHMARKS.md)
PARALLEL_FROM = 5000


def _settle(reading: FhirReading, workers: int, validate: Validation = "read") -> None:
    """Validate the pending resources: valid ones become records, the others problems.

    Validation with fhir.resources is most of the time spent reading a chart (its
    validators are Python code run for every element), so a large reading is validated
    in ``workers`` processes, in chunks; the records stay in reading order."""
    pending, reading.pending = reading.pending, []
    items = [(r.resource_type, r.data) for r in pending]
    if workers > 1 and len(items) >= PARALLEL_FROM:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # forked workers inherit the resources: only index ranges go out and error lists come back
        size = -(-len(items) // (workers * 4))
        _FORKED[:] = items
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
                chunks = pool.map(_validate_range, range(0, len(items), size), [size] * len(items), [validate] * len(items))
                errors = [e for chunk in chunks for e in chunk]
        finally:
            _FORKED.clear()
    else:
        errors = _validate_chunk(items, validate)
    for record, errs in zip(pending, errors, strict=True):
        if not errs:
            reading.records.append(record)
            continue
        subject = _subject_ref(record.data)
        for fld, msg in errs:
            reading.problems.append(
                Problem(
                    file=record.file,
                    line=record.line,
                    resource_type=record.resource_type,
                    resource_id=record.id or record.full_url,
                    field=fld,
                    message=f"fails FHIR R4 validation: {msg}; the resource is not used",
                    subject=subject,
                )
            )


def _validate_chunk(items: list[tuple[str, JsonDict]], validate: Validation = "read") -> list[list[tuple[str | None, str]]]:
    """The validation errors of each resource (an empty list for a valid one).

    Under ``"read"``, a complex element (a CodeableConcept, a Reference, a list of ranges…)
    whose exact value was already part of a valid resource of the same type, under the same
    name, is not validated again: its validity depends on nothing else, since fhir.resources
    checks no rule across elements but two, that a required element is present and that a
    choice has one type only. For those two rules, such an element, when it is required or a
    choice, is still present, as an empty element (``{}``, or ``[{}]`` for a list), where an
    empty element of its type is itself valid (tried once per type and name on a valid
    resource, else the value is validated again). A chart repeats the same codes, categories,
    subject and reference ranges in most of its resources."""
    if validate == "full":
        return [_validation_errors(rtype, resource, "full") for rtype, resource in items]
    valid: set[tuple[str, str, str]] = set()
    empty_is_valid: dict[tuple[str, str], bool] = {}
    out = []
    for rtype, resource in items:
        keep, known, always = _projection(rtype)
        projected: JsonDict = {}
        seen: list[tuple[str, str, str]] = []
        for k, v in resource.items():
            if k in keep:
                if isinstance(v, (dict, list)):
                    key = (rtype, k, json.dumps(v))
                    if key in valid:
                        if k not in always:
                            continue
                        if empty_is_valid.get((rtype, k)):
                            projected[k] = {} if isinstance(v, dict) else [{}]
                            continue
                    seen.append(key)
                projected[k] = v
            elif k not in known:
                projected[k] = v  # a name R4 does not define: fhir.resources rejects it
        errors = _validation_errors(rtype, projected, "full")
        if not errors:
            valid.update(seen)
            for _, k, _ in seen:
                if k in always and (rtype, k) not in empty_is_valid:
                    empty: JsonDict | list[JsonDict] = {} if isinstance(projected[k], dict) else [{}]
                    empty_is_valid[(rtype, k)] = not _validation_errors(rtype, {**projected, k: empty}, "full")
        out.append(errors)
    return out


#: the resources a pool of forked workers validates (set only while the pool runs)
_FORKED: list[tuple[str, JsonDict]] = []


def _validate_range(start: int, size: int, validate: Validation) -> list[list[tuple[str | None, str]]]:
    return _validate_chunk(_FORKED[start:start + size], validate)


def _validation_errors(rtype: str, resource: JsonDict, validate: Validation = "read") -> list[tuple[str | None, str]]:
    if validate == "read":
        keep, known, _ = _projection(rtype)
        resource = {k: v for k, v in resource.items() if k in keep or k not in known}
    try:
        _model(rtype).model_validate(resource)
    except ValidationError as e:
        out: list[tuple[str | None, str]] = []
        for err in e.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"]) or None
            out.append((loc, str(err["msg"])))
        return out
    return []


@cache
def _projection(rtype: str) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(the JSON names validated under ``validate="read"``, every JSON name R4 defines, the
    names always validated in every resource: required elements, the types of a choice
    element, ``resourceType``) of a used resource type. The first are its
    :data:`READ_ELEMENTS`, the elements R4 requires, all types of a choice element, the
    ``_element`` siblings, and ``resourceType``."""
    model = _model(rtype)
    known = {"resourceType"}
    choices: dict[str, set[str]] = {}
    required: set[str] = set()
    for name, f in model.model_fields.items():
        json_name = f.alias or name
        known.update((name, json_name))
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        if not extra.get("element_property"):
            continue
        group = extra.get("one_of_many")
        if isinstance(group, str):
            choices.setdefault(f"{group}[x]", set()).add(json_name)
            if extra.get("one_of_many_required"):
                required.add(f"{group}[x]")
        elif f.is_required() or extra.get("element_required"):
            required.add(json_name)
    keep = {"resourceType"}
    always = {"resourceType"}
    for element in READ_ELEMENTS.get(rtype, frozenset()) | required:
        if element.endswith("[x]"):
            if element not in choices:
                raise AssertionError(f"{rtype}.{element} is not a choice element of FHIR R4")
            names = choices[element]
        elif element in known:
            names = {element}
        else:
            raise AssertionError(f"{rtype}.{element} is not an element of FHIR R4")
        keep.update(names)
        keep.update(f"_{n}" for n in names)
        if element in required or element.endswith("[x]"):
            always.update(names)
            always.update(f"_{n}" for n in names)
    return frozenset(keep), frozenset(known), frozenset(always)


def _subject_ref(resource: JsonDict) -> str | None:
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            return str(ref["reference"])
    return None


@cache
def _model(rtype: str) -> Any:
    return get_fhir_model_class(rtype)


@cache
def _is_known_type(rtype: str) -> bool:
    if rtype in _R4_ONLY_TYPES:
        return True
    if rtype in _OTHER_VERSION_TYPES:
        return False
    try:
        cls = get_fhir_model_class(rtype)
    except ValueError:
        return False
    return isinstance(cls, type) and issubclass(cls, Resource)


# --------------------------------------------------------------------------- other versions


def _check_version_marks(resource: JsonDict, file: str, line: int | None) -> None:
    """Raise FhirError when a resource says, or plainly shows, that it is not FHIR R4.

    Declared versions are read from ``fhirVersion`` (CapabilityStatement, or a
    non-standard top-level/meta element some servers add). Shapes are recognised from
    elements that only DSTU2/STU3 (or R5) have on the resources trialdesk reads; a single
    such resource makes the whole file unreadable as R4, since its other resources cannot
    be trusted to mean what R4 says either.
    """
    where = file + (f":{line}" if line is not None else "")
    rtype = resource.get("resourceType")
    meta = resource.get("meta")
    declared = resource.get("fhirVersion") or (meta.get("fhirVersion") if isinstance(meta, dict) else None)
    if isinstance(declared, str) and not declared.startswith(_R4_VERSION_PREFIXES):
        raise FhirError(f"{where}: {rtype} declares fhirVersion {declared}; trialdesk reads FHIR R4 (4.0.x)")
    if isinstance(rtype, str) and rtype in _OTHER_VERSION_TYPES:
        version = _OTHER_VERSION_TYPES[rtype]
        raise FhirError(f"{where}: {rtype} is a FHIR {version} resource type, not R4; export the record as FHIR R4")
    mark = _shape_mark(resource)
    if mark is not None:
        raise FhirError(f"{where}: {rtype} looks like FHIR {mark}; trialdesk reads FHIR R4 - export the record as R4")


def _shape_mark(r: JsonDict) -> str | None:
    """'<version> (<why>)' for a resource whose shape is another version's, else None."""
    rtype = r.get("resourceType")
    if rtype == "Condition":
        if isinstance(r.get("clinicalStatus"), str) or isinstance(r.get("verificationStatus"), str):
            return "STU3/DSTU2 (clinicalStatus/verificationStatus is a code, R4 has a CodeableConcept)"
        if "assertedDate" in r:
            return "STU3 (assertedDate; R4 has recordedDate)"
        if "patient" in r or "dateRecorded" in r:
            return "DSTU2 (Condition.patient/dateRecorded; R4 has subject/recordedDate)"
    elif rtype == "MedicationStatement":
        if "taken" in r:
            return "STU3 (MedicationStatement.taken)"
        if "wasNotTaken" in r or "patient" in r:
            return "DSTU2 (MedicationStatement.patient/wasNotTaken)"
    elif rtype == "MedicationRequest":
        if isinstance(r.get("medication"), dict):
            return "R5 (MedicationRequest.medication is a CodeableReference)"
        if "context" in r:
            return "STU3 (MedicationRequest.context; R4 has encounter)"
    elif rtype == "MedicationAdministration":
        if "notGiven" in r:
            return "STU3 (MedicationAdministration.notGiven)"
        if "wasNotGiven" in r or "effectiveTimeDateTime" in r or "patient" in r:
            return "DSTU2 (MedicationAdministration.patient/wasNotGiven/effectiveTime)"
        if "occurenceDateTime" in r or "occurrenceDateTime" in r:
            return "R5 (MedicationAdministration.occurrence[x])"
    elif rtype == "Observation":
        if "context" in r:
            return "STU3 (Observation.context; R4 has encounter)"
        if "comments" in r:
            return "DSTU2 (Observation.comments; R4 has note)"
    elif rtype == "Procedure":
        if "notPerformed" in r:
            return "STU3/DSTU2 (Procedure.notPerformed)"
        if "patient" in r:
            return "DSTU2 (Procedure.patient)"
    elif rtype == "Encounter":
        if isinstance(r.get("class"), str) or "patient" in r:
            return "DSTU2 (Encounter.class is a code / Encounter.patient)"
        if isinstance(r.get("class"), list) or "actualPeriod" in r:
            return "R5 (Encounter.class is a list / actualPeriod)"
    elif rtype == "Patient" and "animal" in r:
        return "STU3/DSTU2 (Patient.animal)"
    return None
