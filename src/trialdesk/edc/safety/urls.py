from __future__ import annotations

from django.urls import path

from trialdesk.edc.safety import views

urlpatterns = [
    path("adverse-events/<int:pk>/expectedness/", views.expectedness, name="ae_expectedness"),
]
