from __future__ import annotations

import csv
import io

import pytest

from trialdesk.analysis.redcap import COLUMNS, RedcapImportError, export_dictionary, import_dictionary
from trialdesk.protocol.forms import load_forms

EIGHTEEN = [
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label", "Choices, Calculations, OR Slider Labels",
    "Field Note", "Text Validation Type OR Show Slider Number", "Text Validation Min", "Text Validation Max", "Identifier?",
    "Branching Logic (Show field only if...)", "Required Field?", "Custom Alignment", "Question Number (surveys only)",
    "Matrix Group Name", "Matrix Ranking?", "Field Annotation",
]


def test_dictionary_has_redcaps_18_columns_and_every_form() -> None:
    text = export_dictionary(load_forms())
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == EIGHTEEN == list(COLUMNS)
    assert all(len(r) == 18 for r in rows)
    forms = [r[1] for r in rows[1:]]
    assert list(dict.fromkeys(forms)) == ["demographics", "vital_signs", "laboratory", "spo2", "pulmonary_function", "six_minute_walk",
                                          "infusion", "adverse_events", "pregnancy_test"]


def test_field_types_map_to_redcap() -> None:
    rows = {r["Variable / Field Name"]: r for r in csv.DictReader(io.StringIO(export_dictionary(load_forms())))}
    assert (rows["sysbp"]["Field Type"], rows["sysbp"]["Text Validation Type OR Show Slider Number"], rows["sysbp"]["Field Note"],
            rows["sysbp"]["Text Validation Min"], rows["sysbp"]["Text Validation Max"]) == ("text", "integer", "mmHg", "50", "260")
    assert rows["temp"]["Text Validation Type OR Show Slider Number"] == "number"
    assert rows["ae_onset"]["Text Validation Type OR Show Slider Number"] == "date_ymd"
    assert rows["inf_start"]["Text Validation Type OR Show Slider Number"] == "datetime_ymd"
    assert rows["ae_grade"]["Field Type"] == "dropdown"
    assert rows["ae_grade"]["Choices, Calculations, OR Slider Labels"].startswith("1, Grade 1 | 2, Grade 2")
    assert rows["ae_serious"]["Field Type"] == "yesno"
    assert rows["ae_term"]["Required Field?"] == "y"
    assert rows["dm_age"]["Section Header"] == "Demographics"


def test_round_trip_import_of_export_gives_the_forms_back() -> None:
    forms = load_forms()
    # what a REDCap data dictionary has no column for (the desk's cross-field checks, its assessment-date field and
    # which forms are completed at a visit) comes back as the defaults
    carried = forms.model_copy(update={"forms": [f.model_copy(update={"less_than": [], "date_field": None, "visit_form": True})
                                                 for f in forms.forms]})
    assert import_dictionary(export_dictionary(forms)) == carried


def _with_row(**cells: str) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerow({**dict.fromkeys(COLUMNS, ""), "Variable / Field Name": "ok", "Form Name": "f", "Field Type": "text", "Field Label": "Ok"})
    w.writerow({**dict.fromkeys(COLUMNS, ""), "Variable / Field Name": "x", "Form Name": "f", "Field Label": "X", **cells})
    return buf.getvalue()


@pytest.mark.parametrize("redcap_type", ["checkbox", "calc", "file", "slider", "descriptive", "sql", "truefalse"])
def test_types_that_do_not_map_are_refused_with_row_and_column(redcap_type: str) -> None:
    with pytest.raises(RedcapImportError, match=rf"row 3, column 'Field Type': '{redcap_type}' does not map"):
        import_dictionary(_with_row(**{"Field Type": redcap_type}))


def test_unknown_text_validation_is_refused() -> None:
    with pytest.raises(RedcapImportError, match="row 3, column 'Text Validation Type OR Show Slider Number': validation 'email'"):
        import_dictionary(_with_row(**{"Field Type": "text", "Text Validation Type OR Show Slider Number": "email"}))


def test_radio_and_notes_map() -> None:
    forms = import_dictionary(_with_row(**{"Field Type": "radio", "Choices, Calculations, OR Slider Labels": "1, Yes | 0, No"}))
    field = forms.form("f").field("x")
    assert field.type == "choice" and [c.code for c in field.choices] == ["1", "0"]
    assert import_dictionary(_with_row(**{"Field Type": "notes"})).form("f").field("x").type == "text"


def test_a_header_that_is_not_redcaps_is_refused() -> None:
    with pytest.raises(RedcapImportError, match="row 1"):
        import_dictionary("name,form\nx,f\n")
