from django.apps import AppConfig


class ReferralsConfig(AppConfig):
    name = "trialdesk.edc.referrals"
    label = "referrals"
    verbose_name = "Self-referrals"
