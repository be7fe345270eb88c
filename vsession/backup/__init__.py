"""Encrypted backups of the database and key folder, and restoring them into a new data folder."""
