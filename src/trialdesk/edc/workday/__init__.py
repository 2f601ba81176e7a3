"""The work of the day: what the coordinator's home page lists as due today and this week, the visit
calendar and the search by subject id (and by name or MRN for the roles that may see them)."""
