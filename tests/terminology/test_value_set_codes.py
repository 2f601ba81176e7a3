"""The value-set library against real code tables: every ICD-10-CM code exists in the April 2026
release, descendants come from its hierarchy (not from string prefixes), excluded codes are taken
out, RxNorm ingredients reach their products, and every code says where it came from."""

from __future__ import annotations

import pytest

from trialdesk.eligibility.value_sets import match_source_values, source_value_index
from trialdesk.protocol.loader import load_value_sets
from trialdesk.terminology import icd10cm
from trialdesk.terminology.products import products
from trialdesk.terminology.value_set import Code, Provenance, ValueSet

LIBRARY = load_value_sets()


def _matches(values: list[str], vs_id: str, library: dict[str, ValueSet] | None = None) -> set[str]:
    table = match_source_values(values, library or LIBRARY, [vs_id])
    return {v for v, s in zip(table["source_value"].to_pylist(), table["value_set"].to_pylist(), strict=True) if s == vs_id}


def test_every_icd10cm_code_of_every_value_set_exists_in_the_release() -> None:
    missing = [f"{vs.id}: {c.code}" for vs in LIBRARY.values() for c in [*vs.codes, *vs.excluded]
               if c.system == "ICD10CM" and not icd10cm.exists(c.code)]
    assert missing == []


def test_no_billable_descendant_of_a_listed_code_is_missed() -> None:
    """Every billable code under a listed code (less the excluded ones) is matched as a source value."""
    missed = []
    for vs in LIBRARY.values():
        listed = [c for c in vs.codes if c.system == "ICD10CM" and c.include_descendants]
        if not listed:
            continue
        excluded: set[str] = set()
        for c in vs.excluded:
            if c.system == "ICD10CM":
                excluded |= icd10cm.expand(c.code, c.include_descendants)
        index = source_value_index(vs)
        for c in listed:
            missed += [f"{vs.id}: {b}" for b in sorted(icd10cm.billable_under(c.code) - excluded - index)]
    assert missed == []


def test_a_code_that_only_starts_like_a_listed_code_is_not_matched() -> None:
    # I25.2 old MI is no acute MI even though a prefix-matcher on "I2" would take it
    assert _matches(["I25.2", "I252"], "acute_myocardial_infarction") == set()
    assert _matches(["I21.4", "I214", "i21.4 ", "I22.0"], "acute_myocardial_infarction") == {"I21.4", "I214", "i21.4 ", "I22.0"}
    # a string that is not an ICD-10-CM code, though it starts with one, matches nothing
    assert _matches(["J84.1X", "J84 fibrosis", "J8410"], "ild") == {"J8410"}


def test_angina_recorded_with_coronary_disease_is_angina() -> None:
    assert _matches(["I25.110", "I25.111", "I25.700", "I25.799", "I20.0"], "angina") == {
        "I25.110", "I25.111", "I25.700", "I25.799", "I20.0"}
    assert _matches(["I25.10", "I25.2"], "angina") == set()  # coronary disease without angina; old MI


def test_heart_failure_includes_the_combination_codes() -> None:
    assert _matches(["I11.0", "I13.0", "I13.2", "I09.81", "I50.9", "I50.22"], "heart_failure") == {
        "I11.0", "I13.0", "I13.2", "I09.81", "I50.9", "I50.22"}
    assert _matches(["I11.9", "I13.10"], "heart_failure") == set()  # hypertensive disease without heart failure


def test_medical_history_of_hepatitis_b_or_c_includes_unspecified_and_delta_codes() -> None:
    codes = ["B19.10", "B19.11", "B19.20", "B19.21", "B17.0", "B17.10", "B18.1", "B18.2", "Z21", "B20"]
    assert _matches(codes, "hiv_hepatitis_b_c") == set(codes)
    assert _matches(["B19.9", "B15.9", "Z86.19", "R75"], "hiv_hepatitis_b_c") == set()
    # a personal history of "other" infection may be hepatitis: offered apart, for a person to read
    assert _matches(["Z86.19"], "infection_history_unspecified") == {"Z86.19"}


def test_myositis_with_respiratory_involvement_and_undifferentiated_ctd() -> None:
    assert _matches(["M33.01", "M33.11", "M33.21", "M33.91"], "ild") == {"M33.01", "M33.11", "M33.21", "M33.91"}
    assert _matches(["M35.89", "M35.9", "M33.91"], "connective_tissue_disease") == {"M35.89", "M35.9", "M33.91"}


def test_multisystem_inflammatory_syndrome_is_excluded_from_ctd() -> None:
    assert _matches(["M35.81"], "connective_tissue_disease") == set()


def test_anca_vasculitis_includes_i77_82() -> None:
    assert _matches(["I77.82", "M31.31", "M31.7", "M30.1"], "anca_vasculitis") == {"I77.82", "M31.31", "M31.7", "M30.1"}


def test_myeloproliferative_and_myelodysplastic_neoplasms_are_malignancies_and_skin_cancer_is_apart() -> None:
    assert _matches(["D45", "D46.9", "D47.1", "D47.3", "D47.4", "C92.10", "C34.90"], "malignancy") == {
        "D45", "D46.9", "D47.1", "D47.3", "D47.4", "C92.10", "C34.90"}
    assert _matches(["C44.91", "C44.311", "D47.2"], "malignancy") == set()  # non-melanoma skin cancer; MGUS
    assert _matches(["C44.91", "C43.9"], "non_melanoma_skin_cancer") == {"C44.91"}
    assert _matches(["C43.9"], "malignancy") == {"C43.9"}  # melanoma stays a malignancy


def test_pregnancy_set_holds_conditions_not_a_status_question() -> None:
    vs = LIBRARY["pregnancy_or_lactation"]
    assert not vs.codes_in("LOINC")  # 82810-3 means nothing without its answer: it is in pregnancy_status
    assert {c.code for c in LIBRARY["pregnancy_status"].codes} >= {"82810-3", "11449-6"}
    assert _matches(["Z34.00", "Z3A.20", "O09.511", "O80", "Z39.1", "Z33.1"], "pregnancy_or_lactation") == {
        "Z34.00", "Z3A.20", "O09.511", "O80", "Z39.1", "Z33.1"}


def test_excluded_icd10cm_code_takes_its_descendants_along() -> None:
    vs = ValueSet(id="t", title="t", provenance=Provenance(source="test", date="2026-12-07"),
                  codes=[Code(system="ICD10CM", code="M35")], excluded=[Code(system="ICD10CM", code="M35.0")])
    got = _matches(["M35.00", "M35.01", "M35.0C", "M35.1", "M35.9"], "t", {"t": vs})
    assert got == {"M35.1", "M35.9"}


def test_a_code_listed_without_descendants_matches_itself_only() -> None:
    vs = ValueSet(id="t", title="t", provenance=Provenance(source="test", date="2026-12-07"),
                  codes=[Code(system="ICD10CM", code="I25.11", include_descendants=False)])
    assert _matches(["I25.11", "I25.110"], "t", {"t": vs}) == {"I25.11"}


def test_other_systems_match_the_code_exactly_in_any_case() -> None:
    assert _matches(["2106-3", " 2106-3 ", "2106-33", "12106-3"], "hcg") == {"2106-3", " 2106-3 "}
    assert _matches(["msc-infusion"], "mesenchymal_stem_cell_therapy") == {"msc-infusion"}


def test_truxima_product_code_counts_as_rituximab() -> None:
    vs = LIBRARY["rituximab_or_cyclophosphamide"]
    rxnorm = {c.code for c in vs.codes_in("RxNorm")}
    assert {"2105831", "2105827", "2273513", "2472328", "1657864", "1927886"} <= rxnorm  # Truxima SBD/BN, Ruxience, Riabni, Rituxan
    assert _matches(["2105831"], "rituximab_or_cyclophosphamide") == {"2105831"}
    assert {"Truxima", "Ruxience", "Riabni", "Rituxan", "Cytoxan"} <= set(vs.names)


def test_product_codes_reach_only_the_sets_of_their_ingredient() -> None:
    conventional = {c.code for c in LIBRARY["conventional_ild_therapy"].codes_in("RxNorm")}
    assert "2105831" not in conventional  # a rituximab product is no conventional therapy
    tacrolimus_products = {p.rxcui for p in products() if p.ingredient_rxcui == "42316"}
    assert tacrolimus_products and tacrolimus_products <= conventional


def test_topical_and_ophthalmic_products_are_not_systemic_therapy() -> None:
    names = [p.name for p in products()]
    assert not [n for n in names if any(w in n for w in ("Ophthalmic", "Topical", "Restasis", "Protopic"))]


def test_every_product_row_names_its_source_file_and_commit() -> None:
    assert all("@" in p.source and ":" in p.source for p in products())
    assert len({(p.ingredient_rxcui, p.rxcui) for p in products()}) == len(products())


def test_every_value_set_and_code_has_a_source() -> None:
    assert all(vs.provenance.source.strip() for vs in LIBRARY.values())


@pytest.mark.parametrize("vs_id", [
    "acute_myocardial_infarction", "angina", "heart_failure", "active_infection_other", "non_melanoma_skin_cancer",
    "hbv_surface_antigen", "hbv_core_antibody", "hcv_antibody", "hcv_rna", "hiv_antigen_antibody",
    "positive_result", "negative_result", "pregnancy_status", "pregnant_answer", "not_pregnant_answer",
    "supplemental_oxygen", "exertional_oxygen_saturation", "exertion_test", "ana_titer", "ana_pattern",
    "rheumatoid_factor", "anti_ccp", "anti_dsdna", "anti_ro_ssa", "anti_la_ssb", "anti_rnp", "anti_smith", "anti_scl70",
    "anti_trna_synthetase", "anti_pm_scl", "anti_mda5", "raynaud", "mechanics_hands", "digital_ulceration",
    "inflammatory_arthritis", "palmar_telangiectasia", "gottron_sign", "digital_edema", "conventional_ild_therapy",
    "significant_cardiac_condition", "infection_history_unspecified", "systemic_glucocorticoid", "methotrexate",
])
def test_the_value_sets_the_criteria_reference_exist(vs_id: str) -> None:
    assert vs_id in LIBRARY


def test_answer_sets_read_written_answers_whole() -> None:
    pos, neg = LIBRARY["positive_result"], LIBRARY["negative_result"]
    assert {"positive", "detected", "reactive", "+"} <= set(pos.texts)
    assert {"negative", "not detected", "non-reactive", "nonreactive", "-"} <= set(neg.texts)
    assert not set(pos.texts) & set(neg.texts)
    assert {"9191", "4126681", "45884084", "45877985"} <= {c.code for c in pos.codes_in("OMOP")}
    assert {"9189", "9190", "45878583", "45880296"} <= {c.code for c in neg.codes_in("OMOP")}


@pytest.mark.parametrize("code", ["I25", "M35", "O09", "C50", "C43-C44", "D47"])
def test_descendants_are_the_releases_own_hierarchy(code: str) -> None:
    """The expansion agrees with the package's own walk of the tabular list (blocks and categories
    that share a name, C50 and O09, included)."""
    import simple_icd_10_cm as lib

    theirs = {icd10cm.normalise(d) for d in lib.get_descendants(code) if lib.is_category_or_subcategory(d)}
    if lib.is_category_or_subcategory(code):
        theirs.add(icd10cm.normalise(code))
    assert icd10cm.expand(code) == theirs


def test_the_shipped_icd10cm_index_is_the_releases_hierarchy_for_every_library_code() -> None:
    """A screen reads data/icd10cm_index.json instead of importing the release's tables; the file
    must hold every code the library lists, expanded exactly as the release expands it."""
    shipped = icd10cm.index_file().read_text(encoding="utf-8")
    assert shipped == icd10cm.build_index(icd10cm.library_codes()), (
        "terminology/data/icd10cm_index.json is out of date; regenerate it with `python -m trialdesk.terminology.icd10cm`")
