from django.apps import AppConfig


class ParticipantsConfig(AppConfig):
    name = "trialdesk.edc.participants"
    label = "participants"
    verbose_name = "Consent, enrolment and participants"
