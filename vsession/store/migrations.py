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
    # v2: therapist accounts and sign-in. Tokens are stored only as SHA-256 hashes.
    """
CREATE TABLE therapists (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret BLOB NOT NULL,
    totp_enrolled INTEGER NOT NULL DEFAULT 0,
    totp_last_step INTEGER NOT NULL DEFAULT -1,
    is_admin INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
)
-- ;
CREATE TABLE recovery_codes (
    id INTEGER PRIMARY KEY,
    therapist_id INTEGER NOT NULL REFERENCES therapists(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at REAL
)
-- ;
CREATE TABLE setup_links (
    token_hash TEXT PRIMARY KEY,
    created_by INTEGER REFERENCES therapists(id),
    is_admin INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
)
-- ;
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    therapist_id INTEGER NOT NULL REFERENCES therapists(id) ON DELETE CASCADE,
    stage TEXT NOT NULL CHECK (stage IN ('second_factor', 'enrol', 'full')),
    csrf_token TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    totp_at REAL NOT NULL DEFAULT 0
)
-- ;
CREATE INDEX web_sessions_therapist ON web_sessions(therapist_id)
-- ;
CREATE TABLE login_failures (
    username TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    last_failure REAL NOT NULL,
    locked_until REAL NOT NULL DEFAULT 0
)
-- ;
CREATE TABLE ip_failures (
    ip TEXT NOT NULL,
    at REAL NOT NULL
)
-- ;
CREATE INDEX ip_failures_ip ON ip_failures(ip, at)
""",
    # v3: therapy sessions and their client seats. A seat's link token is stored hashed for lookup
    # and sealed (encrypted) so its therapist can copy it again; the guest cookie only hashed.
    """
CREATE TABLE therapy_sessions (
    id TEXT PRIMARY KEY,
    therapist_id INTEGER NOT NULL REFERENCES therapists(id),
    title TEXT NOT NULL,
    starts_at REAL NOT NULL,
    duration_minutes INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'ended')),
    created_at REAL NOT NULL,
    ended_at REAL
)
-- ;
CREATE INDEX therapy_sessions_therapist ON therapy_sessions(therapist_id, state)
-- ;
CREATE TABLE seats (
    session_id TEXT NOT NULL REFERENCES therapy_sessions(id) ON DELETE CASCADE,
    seat INTEGER NOT NULL,
    link_hash TEXT UNIQUE,
    link_sealed BLOB,
    link_issued_at REAL NOT NULL,
    redeemed_at REAL,
    guest_hash TEXT UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('invited', 'joined', 'waiting', 'admitted', 'denied', 'removed')),
    reuse_attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, seat)
)
""",
    # v4: recording consent and encrypted recordings. Answers are rows of their own, never updated,
    # so the history of who agreed to what, and when, is kept (and chained in the audit log).
    """
CREATE TABLE consent_requests (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES therapy_sessions(id),
    text_version TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    ended_at REAL,
    end_reason TEXT
)
-- ;
CREATE TABLE consent_answers (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES consent_requests(id),
    participant TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    answer TEXT NOT NULL CHECK (answer IN ('accept', 'decline', 'withdraw', 'void')),
    reason TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL
)
-- ;
CREATE INDEX consent_answers_request ON consent_answers(request_id)
-- ;
CREATE TABLE recordings (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES therapy_sessions(id),
    request_id TEXT NOT NULL REFERENCES consent_requests(id),
    segment INTEGER NOT NULL,
    therapist_id INTEGER NOT NULL REFERENCES therapists(id),
    participants TEXT NOT NULL,
    file_name TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    end_reason TEXT,
    bytes INTEGER,
    ciphertext_sha256 TEXT,
    state TEXT NOT NULL CHECK (state IN ('writing', 'complete', 'failed', 'deleted')),
    deleted_at REAL
)
-- ;
CREATE INDEX recordings_therapist ON recordings(therapist_id, state)
""",
    # v5: session titles and client names sealed with a key kept outside the database. SQL cannot
    # encrypt, so the server seals what older versions wrote in clear at its first start and empties
    # `title` and `display_name`, which stay as unused columns.
    """
ALTER TABLE therapy_sessions ADD COLUMN title_sealed BLOB
-- ;
ALTER TABLE seats ADD COLUMN name_sealed BLOB
""",
    # v6: addresses leave the audit chain (vsession/audit/personal.py). An entry commits to them;
    # they live sealed in audit_personal until data retention deletes the row. The one update the
    # log allows: an entry written before v6 by an `ip:` actor has its address moved out, with
    # everything else, its hash included, unchanged.
    """
ALTER TABLE audit_log ADD COLUMN personal TEXT NOT NULL DEFAULT ''
-- ;
CREATE TABLE audit_personal (
    seq INTEGER PRIMARY KEY REFERENCES audit_log(seq),
    at REAL NOT NULL,
    sealed BLOB NOT NULL
)
-- ;
CREATE INDEX audit_personal_at ON audit_personal(at)
-- ;
CREATE TRIGGER audit_personal_no_update BEFORE UPDATE ON audit_personal
BEGIN SELECT RAISE(ABORT, 'audit_personal rows are written once, then purged'); END
-- ;
DROP TRIGGER audit_log_no_update
-- ;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NOT (
    OLD.personal = '' AND NEW.personal LIKE 'r:%' AND OLD.actor LIKE 'ip:%' AND NEW.actor = 'ip'
    AND NEW.seq = OLD.seq AND NEW.ts = OLD.ts AND NEW.action = OLD.action AND NEW.object = OLD.object
    AND NEW.outcome = OLD.outcome AND NEW.details = OLD.details AND NEW.hash = OLD.hash
)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END
""",
    # v7: a sign-in's CSRF token is derived from its cookie (vsession/auth/signins.py), not stored:
    # the database and its WAL held every live one. secure_delete zeroes the dropped values.
    """
ALTER TABLE web_sessions DROP COLUMN csrf_token
""",
    # v8: failure counters are keyed by a keyed hash of the username (vsession/auth/throttle.py),
    # never the typed text, which may be a password. Earlier rows held the text: drop them.
    """
DELETE FROM login_failures
""",
    # v9: clients' acknowledgements of the privacy notice (vsession/rooms/notice.py), bound to the
    # device's guest cookie (hashed, as in seats) and to the exact words: version and SHA-256.
    """
CREATE TABLE notice_acks (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES therapy_sessions(id),
    seat INTEGER NOT NULL,
    guest_hash TEXT NOT NULL,
    notice_version TEXT NOT NULL,
    notice_sha256 TEXT NOT NULL,
    at REAL NOT NULL
)
-- ;
CREATE INDEX notice_acks_guest ON notice_acks(guest_hash, notice_sha256)
""",
]
