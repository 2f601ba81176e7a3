"""Results and exports: the primary outcome, the participant flow, ClinicalTrials.gov results, SDTM, ODM and
the REDCap data dictionary, built by the analysis core from the EDC's data cut, checked first and audited."""
