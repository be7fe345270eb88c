"""Typed application state shared by handlers (aiohttp AppKey, not string keys)."""

from __future__ import annotations

from aiohttp import web

from vsession.audit import AuditLog
from vsession.clock import Clock
from vsession.config import Settings
from vsession.store import Database

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
DB = web.AppKey("db", Database)
AUDIT = web.AppKey("audit", AuditLog)
AUDIT_KEY = web.AppKey("audit_key", bytes)
