"""The public forms. The questions are built from the protocol's ``self_referral`` section;
the answers are checked by the clinical core (:func:`trialdesk.public.questionnaire.read_answers`)
so its messages appear beside the questions they concern."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from trialdesk.edc.referrals.service import CONSENT_TEXT, Contact
from trialdesk.protocol.model import Protocol
from trialdesk.public.questionnaire import AnswerProblems, Answers, age_hint, choices, questionnaire, read_answers

MARKUP = re.compile(r"<\s*[a-z/!]|javascript:|on[a-z]+\s*=", re.I)


class QuestionnaireForm(forms.Form):
    def __init__(self, protocol: Protocol, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.protocol = protocol
        self.answers: Answers | None = None
        for q in questionnaire(protocol).questions:
            if q.kind == "age":
                self.fields[q.id] = forms.CharField(
                    label=q.text, required=False, max_length=12, help_text=q.help or age_hint(q),
                    widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "size": 4}))
            else:
                self.fields[q.id] = forms.ChoiceField(label=q.text, required=False, choices=choices(q), widget=forms.RadioSelect,
                                                      help_text=q.help or "")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            self.answers = read_answers(self.protocol, data)
        except AnswerProblems as e:
            for qid, message in e.errors.items():
                self.add_error(qid, message)
        return data


class ContactForm(forms.Form):
    name = forms.CharField(label="Your name", max_length=120, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    phone = forms.CharField(label="Phone number", max_length=40, required=False,
                            widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel", "type": "tel"}))
    email = forms.EmailField(label="Email address", max_length=200, required=False,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    message = forms.CharField(label="Anything you would like the study team to know (optional)", max_length=1000, required=False,
                              widget=forms.Textarea(attrs={"rows": 3}),
                              help_text="Please do not include medical records; the team will ask what they need.")
    consent = forms.BooleanField(label=CONSENT_TEXT, required=False)

    def clean_name(self) -> str:
        name = " ".join(str(self.cleaned_data.get("name", "")).split())
        if MARKUP.search(name) or any(ch in name for ch in "<>{}"):
            raise forms.ValidationError("A name cannot contain < > { }; please give your name as plain text.")
        return name

    def clean_phone(self) -> str:
        phone = str(self.cleaned_data.get("phone", "")).strip()
        if phone and (not re.fullmatch(r"[+()\d][\d\s()./-]*", phone) or len(re.sub(r"\D", "", phone)) < 6):
            raise forms.ValidationError("Please give a phone number with digits only (spaces, + ( ) - allowed), e.g. +1 904 555 0100.")
        return phone

    def clean_message(self) -> str:
        return str(self.cleaned_data.get("message", "")).strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors.get("phone") and not self.errors.get("email") and not data.get("phone") and not data.get("email"):
            self.add_error("phone", "Give a phone number or an email address (or both) so the study team can reach you.")
        if not data.get("consent"):
            self.add_error("consent", "Tick this box to ask the study team to contact you; without it nothing is sent.")
        return data

    @property
    def message_has_markup(self) -> bool:
        return bool(MARKUP.search(self.cleaned_data.get("message", "")))

    def contact(self) -> Contact:
        d = self.cleaned_data
        return Contact(name=d["name"], phone=d["phone"], email=d["email"] or "", message=d["message"])
