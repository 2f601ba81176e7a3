"""Self-referrals from the public study page: no login, nothing stored until the person
confirms, stored as a referral (contact data and answers), not as a medical record."""
