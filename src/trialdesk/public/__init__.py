"""The trial's public face, free of Django: the study page rendered from the protocol file and
the self-referral questionnaire whose questions, excluding answers and reasons the protocol
file holds (``self_referral``). The trial desk (``trialdesk.edc.referrals``) serves both and
stores a referral only when the person confirms it."""
