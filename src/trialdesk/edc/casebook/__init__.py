"""A participant's casebook: every record of theirs on one printable page, the principal investigator's
signature over it (21 CFR 11.50/11.70: printed name, time, meaning, bound to the data by its hash) and the
lock the data manager may set only on a casebook the investigator signed as it is now; and the
participant's timeline (consent, infusions, visits, AEs on one axis of study days)."""
