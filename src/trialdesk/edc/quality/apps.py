from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "trialdesk.edc.quality"
    label = "quality"
    verbose_name = "Data quality"
