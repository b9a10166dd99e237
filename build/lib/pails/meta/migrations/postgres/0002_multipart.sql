-- Pails metadata, PostgreSQL, version 2: multipart uploads, their parts, shared-chunk reference
-- counts (the same model as SQLite's 0002_multipart.sql). uploads and parts are hash-partitioned
-- by bucket_id like objects, with bucket_id leading their keys, for Citus.

-- One row per CreateMultipartUpload. state: 'uploading' -> 'complete' | 'aborted'. Terminal rows
-- keep no parts; a complete one remembers its ETag so that a retried completion gets the same answer.
-- Upload ids start with the creation time in hex, so (key, upload_id) orders uploads as S3 lists them.
CREATE TABLE uploads (
    bucket_id          bigint NOT NULL REFERENCES buckets (id),
    upload_id          text COLLATE "C" NOT NULL,
    key                bytea NOT NULL,               -- UTF-8 bytes, like objects.key
    state              text NOT NULL DEFAULT 'uploading',
    initiated          double precision NOT NULL,
    content_type       text NOT NULL,
    headers            jsonb NOT NULL DEFAULT '{}',
    user_metadata      jsonb NOT NULL DEFAULT '{}',
    storage_class      text NOT NULL DEFAULT 'STANDARD',
    checksum_algorithm text NOT NULL DEFAULT '',
    final_etag         text,                         -- set when complete
    PRIMARY KEY (bucket_id, upload_id)
) PARTITION BY HASH (bucket_id);
CREATE INDEX uploads_listing ON uploads (bucket_id, key, upload_id) WHERE state = 'uploading';
CREATE TABLE uploads_p00 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 0);
CREATE TABLE uploads_p01 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 1);
CREATE TABLE uploads_p02 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 2);
CREATE TABLE uploads_p03 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 3);
CREATE TABLE uploads_p04 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 4);
CREATE TABLE uploads_p05 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 5);
CREATE TABLE uploads_p06 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 6);
CREATE TABLE uploads_p07 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 7);
CREATE TABLE uploads_p08 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 8);
CREATE TABLE uploads_p09 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 9);
CREATE TABLE uploads_p10 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 10);
CREATE TABLE uploads_p11 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 11);
CREATE TABLE uploads_p12 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 12);
CREATE TABLE uploads_p13 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 13);
CREATE TABLE uploads_p14 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 14);
CREATE TABLE uploads_p15 PARTITION OF uploads FOR VALUES WITH (MODULUS 16, REMAINDER 15);

CREATE TABLE parts (
    bucket_id     bigint NOT NULL,
    upload_id     text COLLATE "C" NOT NULL,
    part_number   integer NOT NULL,
    size          bigint NOT NULL,
    etag          text NOT NULL,
    checksums     jsonb NOT NULL DEFAULT '{}',
    last_modified double precision NOT NULL,
    manifest      bytea NOT NULL,                    -- as objects.manifest
    PRIMARY KEY (bucket_id, upload_id, part_number),
    FOREIGN KEY (bucket_id, upload_id) REFERENCES uploads (bucket_id, upload_id)
) PARTITION BY HASH (bucket_id);
CREATE TABLE parts_p00 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 0);
CREATE TABLE parts_p01 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 1);
CREATE TABLE parts_p02 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 2);
CREATE TABLE parts_p03 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 3);
CREATE TABLE parts_p04 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 4);
CREATE TABLE parts_p05 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 5);
CREATE TABLE parts_p06 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 6);
CREATE TABLE parts_p07 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 7);
CREATE TABLE parts_p08 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 8);
CREATE TABLE parts_p09 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 9);
CREATE TABLE parts_p10 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 10);
CREATE TABLE parts_p11 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 11);
CREATE TABLE parts_p12 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 12);
CREATE TABLE parts_p13 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 13);
CREATE TABLE parts_p14 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 14);
CREATE TABLE parts_p15 PARTITION OF parts FOR VALUES WITH (MODULUS 16, REMAINDER 15);

-- A chunk is born with one reference (the object or part that wrote it). Copies add references:
-- `extra` counts the references beyond the first. Dropping a reference decrements `extra` (the row
-- goes at 0); only a chunk without a row here goes to gc_queue. Absent row = exactly one reference.
-- Keyed by chunk id alone (a copy may cross buckets); under Citus, distributed by chunk_id.
CREATE TABLE chunk_shares (
    chunk_id bytea PRIMARY KEY,
    extra    integer NOT NULL CHECK (extra > 0)
);
