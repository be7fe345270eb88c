"""Embedded SQLite storage: one connection, versioned migrations, one module per aggregate."""

from vsession.store.db import Database

__all__ = ["Database"]
