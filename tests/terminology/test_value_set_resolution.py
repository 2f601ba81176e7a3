"""A value set's excluded concepts are taken out on the OMOP path too: OHDSI's chronic-ILD concept
set takes ILD with its descendants but not acute respiratory distress syndrome, which the
vocabulary files under ILD."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from trialdesk.eligibility.value_sets import resolve_concepts
from trialdesk.protocol.loader import load_value_sets
from trialdesk.sources.omop import open_omop
from trialdesk.sources.omop_builder import OmopBuilder

ILD, ARDS, LUNG_FIBROSIS = 4119786, 4195694, 4197819


def _db(tmp_path: Path):  # type: ignore[no-untyped-def]
    b = OmopBuilder()
    b.person(1, birth=dt.date(1960, 1, 1), sex="female")
    b.condition(1, dt.date(2024, 1, 1), concept_id=ARDS)
    path = tmp_path / "cdm.duckdb"
    b.write(path)
    return open_omop(path)


def test_acute_respiratory_distress_syndrome_is_no_interstitial_lung_disease(tmp_path: Path) -> None:
    library = load_value_sets()
    res = resolve_concepts(_db(tmp_path), library, ["ild"])
    assert ILD in res.concepts["ild"] and LUNG_FIBROSIS in res.concepts["ild"]
    assert ARDS not in res.concepts["ild"]


def test_without_the_exclusion_the_vocabulary_would_count_ards_as_ild(tmp_path: Path) -> None:
    library = load_value_sets()
    plain = library["ild"].model_copy(update={"excluded": []})
    res = resolve_concepts(_db(tmp_path), {"ild": plain}, ["ild"])
    assert ARDS in res.concepts["ild"]  # the exclusion is what keeps it out, not the vocabulary
