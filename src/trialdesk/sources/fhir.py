"""Reading a patient's FHIR R4 record: one Bundle, a Bulk Data ``$export`` folder, or a
folder of many Bundles (many patients in one batch).

The record is read by DuckDB's JSON reader into a table of resources
(:mod:`trialdesk.sources.fhir_views.load`) and mapped by SQL-on-FHIR views
(:mod:`trialdesk.sources.fhir_views.omop`). This module keeps the reading rules: input that
cannot be read as FHIR R4 at all — not JSON, not FHIR, or FHIR of another version — raises
:class:`FhirError` with a one-line message naming the file (the files DuckDB cannot read, or
that show such a mark, are read again here to name the exact problem); a resource of a type
R4 does not have, or an NDJSON line that is not a resource, is a :class:`Problem`; resource
types trialdesk does not use are counted and passed over.

**What is validated** (without fhir.resources, which is R4B and was three quarters of the
CPU). By default (``validate="read"``) the *values trialdesk reads*: every value a view
extracts is checked against its FHIR type (date, dateTime, decimal, code, id…, the R4 JSON
Schema's patterns, and a date must be a real day) in the same SQL pass that maps it; each
resource's top-level names must be ones R4 defines for its type, and the elements the R4
JSON Schema requires must be there. A resource that fails is left out and named (file,
line, resource, element, what was wrong). The elements no view reads — narrative ``text``,
``meta``, ``identifier``… — are neither validated nor used. ``validate="full"`` validates
every resource against the official FHIR R4 JSON Schema (``fhir.schema.json``, installed
from npm by scripts/setup, pinned by hash) with jsonschema-rs.
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
#: ``medicationReference`` can be resolved to a code, and List so that a chart can state
#: that it has no medications, problems or procedures (``fhir_views.chart_domains``).
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
        "List",
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
        "List": ("id", "subject", "status", "mode", "code", "emptyReason", "entry"),
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
    raises :class:`FhirError`. ``validate`` is ``"read"`` (the values trialdesk reads, the
    default) or ``"full"`` (the FHIR R4 JSON Schema); see the module docstring.
    ``workers`` is accepted for compatibility: DuckDB reads with its own threads.
    """
    return read_many([path], skip_unreadable=skip_unreadable, workers=workers, validate=validate)


def read_many(
    paths: Iterable[str | Path], *, skip_unreadable: bool = False, workers: int = 1, validate: Validation = "read"
) -> FhirReading:
    """Read several inputs (files or folders) into one reading, with each valid resource as a
    :class:`FhirRecord` (the patient check itself reads into DuckDB and never builds these)."""
    import duckdb

    from trialdesk.sources.fhir_views.load import drop_invalid, load_fhir
    from trialdesk.sources.fhir_views.omop import view_errors

    del workers
    con = duckdb.connect()
    try:
        reading = load_fhir(con, list(paths), skip_unreadable=skip_unreadable, validate=validate)
        bad = view_errors(con)
        if bad:
            drop_invalid(con, "fhir_resources", reading, bad)
        rows = con.execute("""SELECT rtype, CASE WHEN json_type(resource -> 'id') = 'VARCHAR' THEN resource ->> 'id' END,
                              CAST(resource AS VARCHAR), file, line, scope, full_url FROM fhir_resources ORDER BY ord""").fetchall()
    finally:
        con.close()
    reading.records = [FhirRecord(t, i, json.loads(d), f, ln, sc, u) for t, i, d, f, ln, sc, u in rows]
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


@cache
def _is_known_type(rtype: str) -> bool:
    """A resource type of FHIR R4 (from the R4 JSON Schema; see ``fhir_views/r4_resources.json``)."""
    from trialdesk.sources.fhir_views.load import r4_data

    return rtype in set(r4_data()["resource_types"])


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
