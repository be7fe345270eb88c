"""Therapist authentication: passwords, TOTP, recovery codes, sessions, CSRF, throttling."""
