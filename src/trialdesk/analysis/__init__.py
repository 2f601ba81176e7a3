"""Results of a data cut: the primary outcome, participant flow, and the exports regulators,
registries and statisticians read (ClinicalTrials.gov results, CDISC SDTM and ODM, REDCap data
dictionary). Plain Python: the EDC hands a :class:`trialdesk.trial.records.TrialData` in."""
