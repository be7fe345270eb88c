"""Schema versions, applied in order and recorded in PRAGMA user_version. Never edit a released one.

Statements inside one migration are separated by a line holding only `-- ;`.
"""

MIGRATIONS: list[str] = [
    # v1: the audit chain. Triggers make the table append-only for the application;
    # the hash chain, not the triggers, is what exposes someone editing the file directly.
    """
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    outcome TEXT NOT NULL,
    details TEXT NOT NULL,
    hash TEXT NOT NULL
)
-- ;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END
-- ;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END
""",
]
