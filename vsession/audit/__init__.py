"""Append-only, hash-chained audit log that every capability writes to."""

from vsession.audit.log import AuditLog
from vsession.audit.verify import Checkpoint, VerifyResult, head, verify

__all__ = ["AuditLog", "Checkpoint", "VerifyResult", "head", "verify"]
