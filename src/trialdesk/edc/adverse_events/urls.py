from __future__ import annotations

from django.urls import path

from trialdesk.edc.adverse_events import views

urlpatterns = [
    path("adverse-events/", views.ae_list, name="ae_list"),
    path("adverse-events/new/", views.ae_new, name="ae_new"),
    path("adverse-events/suggestions/", views.suggestions, name="ae_suggestions"),
    path("adverse-events/<int:pk>/", views.ae_detail, name="ae_detail"),
    path("adverse-events/<int:pk>/edit/", views.ae_edit, name="ae_edit"),
    path("adverse-events/<int:pk>/medwatch/", views.ae_medwatch, name="ae_medwatch"),
    path("adverse-events/<int:pk>/medwatch.pdf", views.ae_medwatch_pdf, name="ae_medwatch_pdf"),
]
