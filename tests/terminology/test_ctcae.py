"""The CTCAE v5.0 catalogue: every term NCI publishes, its grades, and a search that finds it as people say it."""

from __future__ import annotations

import pytest

from trialdesk.terminology.ctcae import Ctcae, CtcaeTerm, GradeError, UnknownTermError, catalogue


@pytest.fixture(scope="module")
def ctcae() -> Ctcae:
    return catalogue()


def test_the_catalogue_holds_all_837_terms(ctcae: Ctcae) -> None:
    assert len(ctcae) == 837


def test_the_terms_fall_in_26_meddra_system_organ_classes(ctcae: Ctcae) -> None:
    # CTCAE v5.0 uses 26 of MedDRA's 27 SOCs (no "Product issues").
    assert len(ctcae.socs) == 26
    assert "Investigations" in ctcae.socs


def test_every_term_has_a_meddra_code(ctcae: Ctcae) -> None:
    assert all(t.meddra_code.isdigit() and len(t.meddra_code) == 8 for t in ctcae)
    assert len({t.meddra_code for t in ctcae}) == 837


def test_every_term_allows_at_least_one_grade(ctcae: Ctcae) -> None:
    assert all(t.allowed_grades for t in ctcae)


def test_a_term_is_found_by_name_in_any_case_or_by_meddra_code(ctcae: Ctcae) -> None:
    mi = ctcae.term("Myocardial infarction")
    assert ctcae.term("myocardial INFARCTION") is mi
    assert ctcae.term(mi.meddra_code) is mi
    assert mi.soc == "Cardiac disorders"


def test_anemia_carries_its_definition_and_grade_texts(ctcae: Ctcae) -> None:
    anemia = ctcae.term("Anemia")
    assert anemia.meddra_code == "10002272"
    assert anemia.definition is not None and anemia.definition.startswith("A disorder characterized by a reduction")
    assert anemia.grades[3] is not None and "<8.0 g/dL" in anemia.grades[3]
    assert anemia.grades[5] == "Death"


def test_an_unknown_term_is_refused_with_suggestions(ctcae: Ctcae) -> None:
    with pytest.raises(UnknownTermError, match="did you mean: 'Myocardial infarction'"):
        ctcae.term("Myocardial infraction")
    assert ctcae.get("Myocardial infraction") is None
    assert "Myocardial infraction" not in ctcae


def test_grade_5_for_alt_increased_is_refused_naming_the_allowed_grades(ctcae: Ctcae) -> None:
    with pytest.raises(GradeError) as refused:
        ctcae.validate_grade("Alanine aminotransferase increased", 5)
    assert str(refused.value) == ('CTCAE v5.0 defines no grade 5 for "Alanine aminotransferase increased"; allowed grades: 1, 2, 3, 4')
    assert refused.value.allowed == (1, 2, 3, 4)


def test_grade_5_for_myocardial_infarction_is_death(ctcae: Ctcae) -> None:
    assert ctcae.validate_grade("Myocardial infarction", 5) == "Death"


def test_grade_1_for_myocardial_infarction_is_refused(ctcae: Ctcae) -> None:
    with pytest.raises(GradeError, match=r"no grade 1 for \"Myocardial infarction\"; allowed grades: 2, 3, 4, 5"):
        ctcae.validate_grade("Myocardial infarction", 1)


@pytest.mark.parametrize("grade", [0, 6, -1, True])
def test_a_grade_outside_1_to_5_is_refused(ctcae: Ctcae, grade: int) -> None:
    with pytest.raises(GradeError, match=r"is not a CTCAE v5\.0 grade"):
        ctcae.validate_grade("Fever", grade)


def test_validate_grade_accepts_a_term_object(ctcae: Ctcae) -> None:
    fever = ctcae.term("Fever")
    assert ctcae.validate_grade(fever, 1).startswith("38.0 - 39.0 degrees C")


def test_search_platelet_finds_platelet_count_decreased_first(ctcae: Ctcae) -> None:
    assert ctcae.search("platelet")[0].term == "Platelet count decreased"


def test_search_matches_word_prefixes_as_the_user_types(ctcae: Ctcae) -> None:
    assert ctcae.search("plat")[0].term == "Platelet count decreased"
    assert ctcae.search("infus reac")[0].term == "Infusion related reaction"


@pytest.mark.parametrize(
    ("said", "term"),
    [
        ("low platelets", "Platelet count decreased"),
        ("raised ALT", "Alanine aminotransferase increased"),
        ("fever", "Fever"),
        ("shortness of breath", "Dyspnea"),
        ("infusion reaction", "Infusion related reaction"),
        ("heart attack", "Myocardial infarction"),
        ("neutropenia", "Neutrophil count decreased"),
        ("ALT", "Alanine aminotransferase increased"),
    ],
)
def test_search_by_synonym_finds_the_ctcae_term_first(ctcae: Ctcae, said: str, term: str) -> None:
    assert ctcae.search(said)[0].term == term


def test_search_by_meddra_code_finds_the_term(ctcae: Ctcae) -> None:
    assert ctcae.search("10002272")[0].term == "Anemia"


def test_search_respects_the_limit_and_ignores_empty_text(ctcae: Ctcae) -> None:
    assert len(ctcae.search("disorder", limit=5)) == 5
    assert ctcae.search("  ") == []


def test_a_synonym_naming_a_missing_term_is_refused_when_loading() -> None:
    term = CtcaeTerm("10000001", "Investigations", "Something increased", {1: "x"}, None)
    with pytest.raises(ValueError, match=r"'Nothing' is not a CTCAE v5\.0 term"):
        Ctcae([term], {"made up": "Nothing"})
