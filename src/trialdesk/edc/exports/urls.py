from __future__ import annotations

from django.urls import path

from trialdesk.edc.exports import views

urlpatterns = [
    path("exports/", views.exports_page, name="exports"),
    path("exports/<str:kind>/", views.download, name="export_download"),
]
