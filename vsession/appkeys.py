"""Typed application state shared by handlers (aiohttp AppKey, not string keys)."""

from __future__ import annotations

from aiohttp import web

from vsession.audit import AuditLog
from vsession.auth.context import AuthContext
from vsession.config import Settings
from vsession.services import Services
from vsession.store import Database

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
DB = web.AppKey("db", Database)
AUDIT = web.AppKey("audit", AuditLog)
AUTH = web.AppKey("auth", AuthContext)
