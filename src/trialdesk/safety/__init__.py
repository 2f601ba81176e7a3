"""Safety of the trial as plain Python: attribution of adverse events to infusions, the checks an
AE must pass, AEs suggested by laboratory values and vital signs, SAE reporting clocks, stopping
rules with the Bayesian toxicity monitor, their operating characteristics, and the DSMB report.

Nothing here imports Django: the EDC hands a :class:`~trialdesk.trial.records.TrialData` cut to
these functions and persists what they return.
"""
