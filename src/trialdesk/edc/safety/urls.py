from __future__ import annotations

from django.urls import path

from trialdesk.edc.safety import views

urlpatterns = [
    path("adverse-events/<int:pk>/expectedness/", views.expectedness, name="ae_expectedness"),
    path("participants/<str:subject_id>/death/", views.death_report, name="death_report"),
    path("safety/", views.dashboard, name="safety_dashboard"),
    path("safety/dsmb/", views.dsmb_report, name="dsmb_report"),
    path("safety/dsmb/pdf/", views.dsmb_report_pdf, name="dsmb_report_pdf"),
    path("safety/dsmb/decisions/", views.dsmb_decisions, name="dsmb_decisions"),
    path("pauses/", views.pauses, name="pauses"),
]
