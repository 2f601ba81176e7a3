from __future__ import annotations

from pathlib import Path

import pytest

from trialdesk.protocol.forms import FormsError, load_forms, parse_forms
from trialdesk.protocol.model import Protocol


def test_every_form_the_schedule_names_is_defined(protocol: Protocol) -> None:
    named = {f for v in protocol.schedule.visits for f in v.forms}
    assert named <= set(load_forms().ids)


def test_field_names_are_unique_across_forms() -> None:
    tree = {"forms": [
        {"id": "a", "title": "A", "fields": [{"name": "x", "label": "X", "type": "text"}]},
        {"id": "b", "title": "B", "fields": [{"name": "x", "label": "X", "type": "text"}]},
    ]}
    with pytest.raises(FormsError, match="'x' is in both a and b"):
        parse_forms(tree)


def test_a_choice_field_needs_choices_and_limits_need_numbers() -> None:
    with pytest.raises(FormsError, match="needs choices"):
        parse_forms({"forms": [{"id": "a", "title": "A", "fields": [{"name": "x", "label": "X", "type": "choice"}]}]})
    with pytest.raises(FormsError, match="min/max apply"):
        parse_forms({"forms": [{"id": "a", "title": "A", "fields": [{"name": "x", "label": "X", "type": "text", "min": 1}]}]})


def test_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(FormsError, match="cannot read"):
        load_forms(tmp_path / "nope.yaml")
