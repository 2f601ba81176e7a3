"""Public URLs (no login): the study page and the self-referral steps; and the coordinators' status change."""

from __future__ import annotations

from django.urls import path

from trialdesk.edc.referrals import views

urlpatterns = [
    path("study/", views.study_page, name="study_page"),
    path("study/questions/", views.questions, name="referral_questions"),
    path("study/contact/", views.contact, name="referral_contact"),
    path("study/confirm/", views.confirm, name="referral_confirm"),
]

#: the URL names anyone may open without logging in
PUBLIC_URL_NAMES = frozenset(p.name for p in urlpatterns if p.name)

urlpatterns += [
    path("referrals/<str:number>/status/", views.set_status, name="referral_status"),  # coordinators: the 'screen' action
]
