from django.apps import AppConfig


class VisitsConfig(AppConfig):
    name = "trialdesk.edc.visits"
    label = "visits"
    verbose_name = "Visits and case report forms"
