-- Pails metadata, SQLite, version 2: multipart uploads, their parts, shared-chunk reference counts.

-- One row per CreateMultipartUpload. state: 'uploading' -> 'complete' | 'aborted'. Terminal rows
-- keep no parts; a complete one remembers its ETag so that a retried completion gets the same answer.
-- Upload ids start with the creation time in hex, so (key, upload_id) orders uploads as S3 lists them.
CREATE TABLE uploads (
    bucket_id          INTEGER NOT NULL REFERENCES buckets (id),
    upload_id          TEXT    NOT NULL,
    key                BLOB    NOT NULL,          -- UTF-8 bytes, like objects.key
    state              TEXT    NOT NULL DEFAULT 'uploading',
    initiated          REAL    NOT NULL,
    content_type       TEXT    NOT NULL,
    headers            TEXT    NOT NULL DEFAULT '{}',  -- JSON
    user_metadata      TEXT    NOT NULL DEFAULT '{}',  -- JSON
    storage_class      TEXT    NOT NULL DEFAULT 'STANDARD',
    checksum_algorithm TEXT    NOT NULL DEFAULT '',
    final_etag         TEXT,                           -- set when complete
    PRIMARY KEY (bucket_id, upload_id)
) WITHOUT ROWID;

CREATE INDEX uploads_listing ON uploads (bucket_id, key, upload_id) WHERE state = 'uploading';

CREATE TABLE parts (
    bucket_id     INTEGER NOT NULL,
    upload_id     TEXT    NOT NULL,
    part_number   INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    etag          TEXT    NOT NULL,
    checksums     TEXT    NOT NULL DEFAULT '{}',  -- JSON
    last_modified REAL    NOT NULL,
    manifest      BLOB    NOT NULL,               -- as objects.manifest
    PRIMARY KEY (bucket_id, upload_id, part_number),
    FOREIGN KEY (bucket_id, upload_id) REFERENCES uploads (bucket_id, upload_id)
) WITHOUT ROWID;

-- A chunk is born with one reference (the object or part that wrote it). Copies add references:
-- `extra` counts the references beyond the first. Dropping a reference decrements `extra` (the row
-- goes at 0); only a chunk without a row here goes to gc_queue. Absent row = exactly one reference.
CREATE TABLE chunk_shares (
    chunk_id BLOB    PRIMARY KEY,
    extra    INTEGER NOT NULL CHECK (extra > 0)
) WITHOUT ROWID;
