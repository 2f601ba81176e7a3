from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "trialdesk.edc.exports"
    label = "exports"
    verbose_name = "Results and exports"
