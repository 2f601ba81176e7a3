"""The investigator's eligibility sign-off asks each criterion once, in the criterion's own words, in the protocol's
order; an exclusion is answered "Excludes / Does not exclude" (never "met / not met"); a signature that fails says why
at the top of the page the investigator is sent back to, and at the field."""

from __future__ import annotations

import re

from .conftest import PASSWORD, eligible_answers


def _radio_values(page: str, name: str) -> list[tuple[str, str]]:
    return re.findall(rf'<input type="radio" name="{name}" value="([^"]+)"[^>]*>\s*([^<]+)</label>', page)


def test_each_criterion_is_asked_once_in_its_own_words_exclusions_as_excludes(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.web import protocol
    from trialdesk.trial.signoff import open_criteria

    p = protocol()
    entry = trial.screen()
    page = client_as("pi").get(f"/screening/{entry.number}/sign/").content.decode()
    for c in p.eligibility.criteria:
        assert page.count(f'id="criterion-{c.id}"') == 1, c.id
    lone_exclusions = [c for c in p.eligibility.criteria if not c.is_inclusion and c.computable is not None
                       and getattr(c.computable, "kind", "") == "attestation"]
    assert lone_exclusions
    for c in lone_exclusions:
        aid = c.computable.id  # type: ignore[union-attr]
        assert [label.strip() for _, label in _radio_values(page, f"answer_{aid}")] == ["Excludes", "Does not exclude"]
        block = page.split(f'id="criterion-{c.id}"')[1].split("</li>")[0]
        assert c.text.replace("'", "&#x27;") in block and c.computable.question not in page  # type: ignore[union-attr]  # its own words
    for cid in open_criteria(p, entry.snapshot):
        labels = [label.strip() for _, label in _radio_values(page, f"decision_{cid}")]
        assert labels == (["Met", "Not met"] if cid.startswith("I") else ["Excludes", "Does not exclude"]), cid
    assert "Not met" not in "".join(page.split('id="criterion-E')[1:])  # no exclusion is "not met"


def test_a_failed_signature_is_said_at_the_top_and_at_the_field_and_nothing_is_signed(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.screening.models import EligibilitySignoff
    from trialdesk.edc.web import protocol
    from trialdesk.trial.signoff import open_criteria

    p = protocol()
    entry = trial.screen()
    answers, _ = eligible_answers(p)
    data = {f"answer_{k}": "yes" if v else "no" for k, v in answers.items()}
    data |= {f"decision_{cid}": "met" if cid.startswith("I") else "not_met" for cid in open_criteria(p, entry.snapshot)}
    data |= {"printed_name": "Pi Tester", "password": "not-my-password"}
    pi = client_as("pi")
    r = pi.post(f"/screening/{entry.number}/sign/", data)
    page = r.content.decode()
    assert r.status_code == 422 and not EligibilitySignoff.objects.exists()
    top = page.split('id="signoff-errors"')[1].split("</div>")[0]
    assert "Not signed." in top and "the password is not correct" in top and 'href="#block-password"' in top
    assert page.index('id="signoff-errors"') < page.index('id="criterion-')  # above the criteria: the first thing on the page
    assert re.search(r'data-field="password">[^<]*the password is not correct', page)
    assert pi.post(f"/screening/{entry.number}/sign/", data | {"password": PASSWORD}).status_code == 302
    assert EligibilitySignoff.objects.get().overall == "eligible"
