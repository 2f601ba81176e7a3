"""The public pages: the study page, the questionnaire, the contact step, the confirm step;
and the one coordinator action on a referral (its status, audited).

The public pages need no login (these views do not use :func:`trialdesk.edc.web.requires`); CSRF-protected by the
middleware like every other form; POSTs rate-limited per address through Django's cache (the
address is hashed with the secret key and kept only for the hour the count lasts). Nothing is
stored until the person presses Confirm: between the steps the answers travel in a signed,
time-limited hidden field, and the preliminary answer is worked out again on the server at
every step. No cookie is set other than Django's CSRF cookie; nothing is loaded from elsewhere.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from trialdesk.edc.audit import trail
from trialdesk.edc.referrals import service
from trialdesk.edc.referrals.forms import ContactForm, QuestionnaireForm
from trialdesk.edc.referrals.models import STATUSES, Referral
from trialdesk.edc.web import allow_inline_styles, protocol, requires
from trialdesk.protocol.model import Protocol
from trialdesk.public.page import render_study_page, stylesheet
from trialdesk.public.questionnaire import AnswerProblems, Answers, evaluate, read_answers
from trialdesk.trial.errors import ConductError

SALT = "trialdesk.referrals"
TOKEN_MAX_AGE = 2 * 60 * 60  # seconds a person has between answering and confirming
WINDOW = 60 * 60


def posts_per_hour() -> int:
    return int(getattr(settings, "TRIALDESK_REFERRAL_POSTS_PER_HOUR", 30))


def _address_key(request: HttpRequest) -> str:
    address = str(request.META.get("REMOTE_ADDR", ""))
    return "referrals:rate:" + hashlib.sha256(f"{settings.SECRET_KEY}|{address}".encode()).hexdigest()[:24]


def rate_limited(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Refuse (429) a POST beyond the hourly allowance for one address."""

    @wraps(view)
    def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            key = _address_key(request)
            cache.add(key, 0, timeout=WINDOW)
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=WINDOW)
                count = 1
            if count > posts_per_hour():
                response = _page(request, "referrals/limited.html", {"title": "Please try again later"}, status=429)
                response["Retry-After"] = str(WINDOW)
                return response
        return view(request, *args, **kwargs)

    return inner


def _questionnaire_protocol() -> Protocol:
    p = protocol()
    if p.self_referral is None:
        raise Http404("this study has no self-referral questionnaire")
    return p


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    p = protocol()
    from trialdesk.public.page import RECRUITING, words

    lines = [loc.contact_line or loc.facility for loc in p.locations]
    page = render(request, template, {"css": stylesheet(), "p": p, "contact_lines": lines, "locations": p.locations,
                                      "recruiting": p.status.overall_status in RECRUITING,
                                      "status_words": words(p.status.overall_status), **context}, status=status)
    return allow_inline_styles(page)  # the public pages inline their stylesheet; the Content Security Policy allows it by hash


def _sign(payload: dict[str, Any]) -> str:
    return signing.dumps(payload, salt=SALT, compress=True)


def _unsign(token: str) -> dict[str, Any] | None:
    try:
        value = signing.loads(token, salt=SALT, max_age=TOKEN_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return None
    return value if isinstance(value, dict) else None


def _answers_from(p: Protocol, payload: dict[str, Any] | None) -> Answers | None:
    if payload is None or not isinstance(payload.get("answers"), dict):
        return None
    try:
        return read_answers(p, {k: str(v) for k, v in payload["answers"].items()})
    except AnswerProblems:
        return None


def _expired(request: HttpRequest, p: Protocol) -> HttpResponse:
    form = QuestionnaireForm(p)
    return _page(request, "referrals/questions.html", {
        "form": form, "title": "Questions", "stale": "Your answers were more than two hours old or could not be read, so nothing was kept."
                                                     " Please answer the questions again."}, status=400)


def _result(request: HttpRequest, p: Protocol, answers: Answers, contact_form: ContactForm, status: int = 200) -> HttpResponse:
    return _page(request, "referrals/result.html", {
        "title": "Your preliminary answer", "result": evaluate(p, answers), "summary": service.summary(p, dict(answers.values)),
        "token": _sign({"answers": answers.values}), "form": contact_form}, status=status)


@require_GET
def study_page(request: HttpRequest) -> HttpResponse:
    p = protocol()
    url = reverse("referral_questions") if p.self_referral is not None else None
    return allow_inline_styles(HttpResponse(render_study_page(p, questionnaire_url=url)))


@never_cache
@require_http_methods(["GET", "POST"])
@rate_limited
def questions(request: HttpRequest) -> HttpResponse:
    p = _questionnaire_protocol()
    form = QuestionnaireForm(p, request.POST or None)
    if request.method == "POST" and form.is_valid() and form.answers is not None:
        return _result(request, p, form.answers, ContactForm())
    return _page(request, "referrals/questions.html", {"form": form, "title": "Questions"}, status=400 if form.errors else 200)


@never_cache
@require_POST
@rate_limited
def contact(request: HttpRequest) -> HttpResponse:
    p = _questionnaire_protocol()
    answers = _answers_from(p, _unsign(request.POST.get("token", "")))
    if answers is None:
        return _expired(request, p)
    if request.POST.get("edit"):
        return _result(request, p, answers, ContactForm(initial=request.POST.dict()))
    form = ContactForm(request.POST)
    if not form.is_valid():
        return _result(request, p, answers, form, status=400)
    c = form.contact()
    token = _sign({"answers": answers.values, "contact": c.__dict__, "submission": uuid.uuid4().hex})
    return _page(request, "referrals/confirm.html", {
        "title": "Check and confirm", "result": evaluate(p, answers), "summary": service.summary(p, dict(answers.values)), "contact": c,
        "token": token, "answers_token": _sign({"answers": answers.values}), "markup": form.message_has_markup,
        "consent_text": service.CONSENT_TEXT})


@never_cache
@require_POST
@rate_limited
def confirm(request: HttpRequest) -> HttpResponse:
    p = _questionnaire_protocol()
    payload = _unsign(request.POST.get("token", ""))
    answers = _answers_from(p, payload)
    if payload is None or answers is None or not isinstance(payload.get("contact"), dict) or not payload.get("submission"):
        return _expired(request, p)
    c = service.Contact(**{k: str(payload["contact"].get(k, "")) for k in ("name", "phone", "email", "message")})
    try:
        referral = service.submit(p, answers, c, submission=str(payload["submission"]), consent=True)
    except service.Repeat as repeat:
        return _page(request, "referrals/done.html", {"title": "Already received", "repeat": repeat, "referral": repeat.existing})
    return _page(request, "referrals/done.html", {"title": "Thank you", "referral": referral})


# --- the coordinators' side (logged in, through the permission table) -----------------


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=STATUSES)
    version = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(max_length=500, label="Reason or note", help_text="required: e.g. 'phoned, screening visit booked 3 May'")


@requires("screen")
@require_POST
def set_status(request: HttpRequest, number: str) -> HttpResponse:
    """A coordinator records where they are with a self-referred person (audited, with a reason)."""
    referral = get_object_or_404(Referral, number=number)
    form = StatusForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        messages.error(request, f"{number} not changed — {problems}")
        return redirect(f"{reverse('screening_list')}#{number}")
    d = form.cleaned_data
    try:
        trail.update(referral, request.user, changes={"status": d["status"]}, reason=d["reason"], version=d["version"])
    except ConductError as e:
        messages.error(request, f"{number} not changed — {e.message}")
    else:
        messages.success(request, f"{number} marked {dict(STATUSES)[d['status']].lower()}.")
    return redirect(f"{reverse('screening_list')}#{number}")
