"""Profiles: the golden customer record (identity resolution, merge, traits, consent, GDPR)."""
