"""docs/value-sets.md is the library as a clinician reads it: written from the value-set files,
so a code added, removed or re-sourced there without regenerating the page fails here."""

from __future__ import annotations

from pathlib import Path

from trialdesk.protocol.loader import load_value_sets
from trialdesk.terminology.value_set_docs import library_as_written, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "value-sets.md"


def test_docs_value_sets_is_the_library_as_written() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/value-sets.md is out of date; regenerate it with "
        "`python -m trialdesk.terminology.value_set_docs > docs/value-sets.md`")


def test_every_value_set_and_every_code_appears_with_its_source() -> None:
    text = DOC.read_text(encoding="utf-8")
    written = library_as_written()
    assert {vs.id for _, vs in written} == set(load_value_sets())
    for _, vs in written:
        assert f"## {vs.id}\n" in text
        assert vs.provenance.source.replace("|", "\\|") in text
        for code in [*vs.codes, *vs.excluded]:
            assert f"| {code.system} | `{code.code}` |" in text


def test_the_rendering_changes_when_a_code_is_added(tmp_path: Path) -> None:
    from trialdesk.terminology.value_set import library_dir

    for f in library_dir().glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    target = tmp_path / "ctd_ild.yaml"
    target.write_text(target.read_text(encoding="utf-8").replace(
        '    - {system: ICD10CM, code: I50, display: "Heart failure"}\n',
        '    - {system: ICD10CM, code: I50, display: "Heart failure"}\n    - {system: ICD10CM, code: I51.7, display: "Cardiomegaly"}\n', 1),
        encoding="utf-8")
    assert render(tmp_path) != render()
    assert "| ICD10CM | `I51.7` | Cardiomegaly |" in render(tmp_path)
