from django.apps import AppConfig


class ScreeningConfig(AppConfig):
    name = "trialdesk.edc.screening"
    label = "screening"
    verbose_name = "Screening and eligibility"
