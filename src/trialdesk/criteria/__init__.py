"""The criteria language: what a criterion says (its tree of leaves over value sets and
windows), how its windows become dates, and how statuses combine.

It sits below the protocol model (which holds criteria) and below the eligibility engine
(which compiles them), so neither imports the other to know what a criterion is.
"""
