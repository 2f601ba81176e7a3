"""Value sets: the codes that stand for one clinical idea, in their own systems, with
provenance (where they came from, when, and who reviewed them).

A code is matched three ways by the eligibility compiler:
- ``OMOP`` codes are standard concept ids, expanded through ``concept_ancestor`` when
  ``include_descendants`` is set and the database has that table;
- codes of a vocabulary (SNOMED, RxNorm, LOINC, ICD10CM, ...) are resolved to concept
  ids through the ``concept`` table when the database has it;
- ICD-10-CM, RxNorm and LOINC codes are also matched against the source values
  (``condition_source_value`` and friends), exactly; an ICD-10-CM code with
  ``include_descendants`` stands for the codes under it in the ICD-10-CM release's hierarchy
  (``trialdesk.terminology.icd10cm``), so a CDM without a vocabulary still screens.

``excluded`` codes are taken out of the set, with what lies under them (the concepts under an
excluded OMOP concept through ``concept_ancestor``, the ICD-10-CM codes under an excluded code).
An RxNorm ingredient is widened, when the library is loaded, with its products and brand names
(``trialdesk.terminology.products``).
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

System = Literal["OMOP", "SNOMED", "ICD10CM", "RxNorm", "LOINC", "HCPCS", "CPT4", "ICD10PCS", "LOCAL"]


class Code(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    system: System
    code: str = Field(min_length=1)
    display: str | None = None
    include_descendants: bool = True

    @property
    def normalised(self) -> str:
        """Source-value form: ICD-10-CM without the dot, upper case."""
        return self.code.replace(".", "").upper() if self.system == "ICD10CM" else self.code


class Provenance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    date: dt.date
    reviewed_by: str | None = None
    note: str | None = None


class ValueSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    codes: list[Code] = Field(min_length=1)
    excluded: list[Code] = []
    provenance: Provenance
    units: list[str] = Field(default=[], description="for measurement value sets: the UCUM units expected")
    texts: list[str] = Field(
        default=[],
        description="whole answers written as text that stand for the idea (compared with the record's value or source text "
        "after trimming and case-folding: 'Positive', 'Not detected'); for answer value sets of qualitative results",
    )
    names: list[str] = Field(
        default=[],
        description="names (brand or generic) found as a whole word or phrase in a record's source text, for records "
        "that carry no code of the set ('Truxima 10 MG/ML Injection'); a match by name only is marked as such in the evidence",
    )

    def codes_in(self, system: str) -> list[Code]:
        return [c for c in self.codes if c.system == system]

    @property
    def omop_concept_ids(self) -> list[int]:
        return [int(c.code) for c in self.codes if c.system == "OMOP"]


def library_dir() -> Path:
    return Path(str(resources.files("trialdesk.terminology") / "value_sets"))
