from django.apps import AppConfig


class SafetyConfig(AppConfig):
    name = "trialdesk.edc.safety"
    label = "safety"
    verbose_name = "Safety: expectedness assessments and IND safety reporting"
