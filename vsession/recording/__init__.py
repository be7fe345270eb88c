"""Consent-gated recording: the age-encrypted segment files and what writes them."""
