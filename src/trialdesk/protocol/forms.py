"""The case report forms as data: each form's fields, their types, units, choices and limits.

``forms.yaml`` next to this module holds the forms the visit schedule names; the EDC builds
its screens from them and the exports (ODM, REDCap data dictionary) describe the same fields.
Field names are unique across forms because REDCap variable names and ODM item OIDs must be.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML

FieldType = Literal["text", "integer", "float", "date", "datetime", "choice", "yesno"]
NUMERIC: tuple[FieldType, ...] = ("integer", "float")


class FormsError(ValueError):
    """A forms file that cannot be used; the message says where and what to change."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Model):
    code: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    label: str = Field(min_length=1)


class FormField(_Model):
    """One item of a form. ``min``/``max`` bound numeric fields; ``choices`` belong to choice fields."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=26)
    label: str = Field(min_length=1)
    type: FieldType
    unit: str | None = None
    choices: list[Choice] = []
    min: float | None = None
    max: float | None = None
    required: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> FormField:
        if self.type == "choice" and not self.choices:
            raise ValueError(f"field {self.name}: a choice field needs choices")
        if self.type != "choice" and self.choices:
            raise ValueError(f"field {self.name}: only a choice field has choices (this one is {self.type})")
        codes = [c.code for c in self.choices]
        if len(set(codes)) != len(codes):
            raise ValueError(f"field {self.name}: choice codes repeat ({', '.join(codes)})")
        if (self.min is not None or self.max is not None) and self.type not in NUMERIC:
            raise ValueError(f"field {self.name}: min/max apply to integer and float fields, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"field {self.name}: min {self.min} is greater than max {self.max}")
        return self


class LessThan(_Model):
    """A cross-field check: ``field`` must be below ``than`` when both are entered (``reason``: why, for whoever edits it)."""

    field: str
    than: str
    reason: str = Field(min_length=1)


class Form(_Model):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str = Field(min_length=1)
    fields: list[FormField] = Field(min_length=1)
    #: the form's date of assessment (on or after consent, not in the future, inside its visit's window or explained);
    #: by default its first date field
    date_field: str | None = None
    less_than: list[LessThan] = []
    #: false for a form recorded on its own page, not at a visit (the infusion, adverse events): a visit's schedule may
    #: name it, but it is never counted as a visit form to complete
    visit_form: bool = True

    @model_validator(mode="after")
    def _checks_name_fields(self) -> Form:
        names = {f.name for f in self.fields}
        for name in [self.date_field] + [n for c in self.less_than for n in (c.field, c.than)]:
            if name is not None and name not in names:
                raise ValueError(f"form {self.id}: a check names {name!r}, which is not one of its fields ({', '.join(sorted(names))})")
        return self

    @property
    def assessment_date(self) -> str | None:
        """The field holding the date the assessment was made."""
        return self.date_field or next((f.name for f in self.fields if f.type == "date"), None)

    def field(self, name: str) -> FormField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"form {self.id} has no field {name!r}; its fields: {', '.join(f.name for f in self.fields)}")


class FormCatalogue(_Model):
    schema_version: Literal[1] = 1
    forms: list[Form] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> FormCatalogue:
        seen_forms: set[str] = set()
        owner: dict[str, str] = {}
        for form in self.forms:
            if form.id in seen_forms:
                raise ValueError(f"form id {form.id!r} appears twice")
            seen_forms.add(form.id)
            for f in form.fields:
                if f.name in owner:
                    raise ValueError(f"field name {f.name!r} is in both {owner[f.name]} and {form.id}; field names must be unique")
                owner[f.name] = form.id
        return self

    def form(self, form_id: str) -> Form:
        for form in self.forms:
            if form.id == form_id:
                return form
        raise KeyError(f"no form {form_id!r}; known forms: {', '.join(f.id for f in self.forms)}")

    @property
    def ids(self) -> list[str]:
        return [f.id for f in self.forms]


def parse_forms(tree: Any, source: str = "forms") -> FormCatalogue:
    try:
        return FormCatalogue.model_validate(tree)
    except ValidationError as exc:
        problems = [f"{source}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise FormsError("\n".join(problems)) from None


def load_forms(path: Path | None = None) -> FormCatalogue:
    """The forms in ``path``, or the trial's own ``forms.yaml`` shipped with trialdesk."""
    if path is None:
        text = resources.files("trialdesk.protocol").joinpath("forms.yaml").read_text(encoding="utf-8")
        source = "trialdesk/protocol/forms.yaml"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FormsError(f"{path}: cannot read ({exc.strerror}); check the path") from None
        source = str(path)
    return parse_forms(YAML(typ="safe").load(text), source)
