"""The public study page says what the protocol file says: every criterion word for word,
the registration number, the outcome, the site's city and country, the plain-language summary
and the contact line; a second protocol file gets its own page with no code change."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.public.pagetext import expected_on_study_page, visible_text
from trialdesk.cli import app
from trialdesk.protocol.loader import load
from trialdesk.public.page import render_study_page, stylesheet

SECOND = Path(__file__).resolve().parents[1] / "fixtures" / "protocols" / "hand_trial.yaml"


def test_the_study_page_shows_every_criterion_word_for_word_and_the_registry_facts(protocol) -> None:  # type: ignore[no-untyped-def]
    text = visible_text(render_study_page(protocol))
    missing = [s for s in expected_on_study_page(protocol) if s not in text]
    assert missing == []
    assert "Phase 1" in text and "Completed" in text and "Interventional" in text and "Single group" in text
    assert "Sex All" in text and "18 years to 80 years" in text
    assert "Jacksonville, Florida, United States" in text
    assert "Target recruitment 10 participants" in text


def test_a_completed_study_says_it_is_not_recruiting(protocol) -> None:  # type: ignore[no-untyped-def]
    assert "This study is not recruiting at present (status: Completed)" in visible_text(render_study_page(protocol))


def test_the_static_copy_has_no_questionnaire_link_and_the_desk_copy_has_one(protocol) -> None:  # type: ignore[no-untyped-def]
    assert "Answer the questions" not in render_study_page(protocol)
    html = render_study_page(protocol, questionnaire_url="/study/questionnaire/")
    assert 'href="/study/questionnaire/"' in html and "Answer 11 short questions" in visible_text(html)


def test_the_page_loads_nothing_from_elsewhere(protocol) -> None:  # type: ignore[no-untyped-def]
    html = render_study_page(protocol, questionnaire_url="/study/questionnaire/")
    assert "<script" not in html and "<link" not in html and "<img" not in html and "@import" not in html
    assert "@media print" in html and 'name="viewport"' in html and '<html lang="en">' in html
    assert stylesheet() in html  # inlined as written: an escaped quote would break the phone and print rules


def test_headings_run_in_order_with_one_page_title(protocol) -> None:  # type: ignore[no-untyped-def]
    import itertools
    import re

    levels = [int(h) for h in re.findall(r"<h([1-6])[ >]", render_study_page(protocol))]
    assert levels.count(1) == 1 and levels[0] == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels))


def test_a_second_protocol_file_gets_its_own_page() -> None:
    second = load(SECOND)
    text = visible_text(render_study_page(second, questionnaire_url="/q/"))
    assert [s for s in expected_on_study_page(second) if s not in text] == []
    assert "NCT03929120" not in text and "not recruiting" not in text
    assert "50 years and older" in text and "Answer 3 short questions" in text


def test_protocol_page_command_writes_the_static_copy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "site" / "study.html"
    result = CliRunner().invoke(app, ["protocol", "page", "nct03929120", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Adults over 18 years of age and less than 80 years of age" in out.read_text(encoding="utf-8")


def test_protocol_page_for_an_unknown_protocol_names_the_known_ones(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["protocol", "page", "nct00000000", "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 1
    assert "unknown protocol id" in result.output and "nct03929120" in result.output
    assert not (tmp_path / "x.html").exists()


def test_the_contact_section_gives_the_sites_phone_and_e_mail_from_the_protocol_file(protocol) -> None:  # type: ignore[no-untyped-def]
    site = protocol.locations[0]
    assert site.phone is None and site.email is None  # the registry record names none: the protocol team fills them
    html = render_study_page(protocol)
    assert "Telephone" not in html and "mailto:" not in html  # nothing invented
    filled = protocol.model_copy(update={"locations": [site.model_copy(update={"phone": "+1 904 555 0100",
                                                                                   "email": "research@example.org"})]})
    html = render_study_page(filled)
    contact = html.split('id="contact"')[1].split("</section>")[0]
    assert 'href="tel:+19045550100"' in contact and "+1 904 555 0100" in contact
    assert 'href="mailto:research@example.org"' in contact


def test_a_phone_or_e_mail_that_cannot_be_one_is_refused_naming_the_field(protocol) -> None:  # type: ignore[no-untyped-def]
    import pydantic
    import pytest

    from trialdesk.protocol.model import Location

    base = protocol.locations[0].model_dump()
    for field, value in (("phone", "call us"), ("email", "research at mayo")):
        with pytest.raises(pydantic.ValidationError, match=field):
            Location.model_validate(base | {field: value})
    assert Location.model_validate(base | {"phone": "(904) 555-0100", "email": "a.b@mayo.edu"}).phone == "(904) 555-0100"


def test_powers_of_ten_in_registry_text_read_as_superscripts(protocol) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.public.page import readable

    assert readable("0.5 to 1.0 x 10^6 cells/kg") == "0.5 to 1.0 × 10⁶ cells/kg"
    text = visible_text(render_study_page(protocol))
    assert "10^6" not in text and "1.0 × 10⁶ cells/kg" in text
