-- Pails metadata, SQLite, version 1: buckets, objects (versioning-ready), the GC queue.
-- Object keys are BLOBs holding the UTF-8 bytes of the key, so that the primary key orders them
-- the way S3 does (UTF-8 binary order); every bound key parameter must be bytes, never str.

-- AUTOINCREMENT: a bucket id is never reused, so a write still holding the id of a deleted bucket
-- fails (NoSuchBucket) instead of landing in a newer bucket that got the same id.
CREATE TABLE buckets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    owner_id    TEXT    NOT NULL,
    region      TEXT    NOT NULL,
    created_at  REAL    NOT NULL,
    versioning  TEXT    NOT NULL DEFAULT '',   -- '', 'Enabled' or 'Suspended'
    object_lock TEXT,                          -- JSON, NULL when not configured
    policy_json TEXT,                          -- the bucket policy document, NULL when none
    acl         TEXT,                          -- JSON
    cors        TEXT,                          -- JSON
    lifecycle   TEXT,                          -- JSON
    tags        TEXT,                          -- JSON
    settings    TEXT    NOT NULL DEFAULT '{}'  -- JSON: anything else bucket-wide
);

CREATE TABLE objects (
    bucket_id        INTEGER NOT NULL REFERENCES buckets (id),
    key              BLOB    NOT NULL,
    version_id       TEXT    NOT NULL,          -- 'null' while versioning is off
    is_latest        INTEGER NOT NULL DEFAULT 1,
    is_delete_marker INTEGER NOT NULL DEFAULT 0,
    size             INTEGER NOT NULL,
    etag             TEXT    NOT NULL,
    content_type     TEXT    NOT NULL,
    headers          TEXT    NOT NULL DEFAULT '{}',  -- JSON
    user_metadata    TEXT    NOT NULL DEFAULT '{}',  -- JSON
    checksums        TEXT    NOT NULL DEFAULT '{}',  -- JSON
    storage_class    TEXT    NOT NULL DEFAULT 'STANDARD',
    last_modified    REAL    NOT NULL,
    manifest         BLOB    NOT NULL,          -- n x (16-byte chunk id, 8-byte big-endian size)
    PRIMARY KEY (bucket_id, key, version_id)
) WITHOUT ROWID;

-- AUTOINCREMENT: a queue id is never reused, so a late ack can never remove a newer entry.
CREATE TABLE gc_queue (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id  BLOB NOT NULL,
    queued_at REAL NOT NULL
);
