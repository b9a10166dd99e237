-- Pails metadata, PostgreSQL, version 1: buckets, objects (versioning-ready), the GC queue.
-- Object keys are bytea holding the UTF-8 bytes of the key, so that the primary key orders them
-- the way S3 does (UTF-8 binary order, no collation); every bound key parameter must be bytes.
--
-- objects and gc_queue are hash-partitioned by bucket_id (16 partitions) and bucket_id leads every
-- primary key, so that each can later be distributed with Citus on that column
-- (create_distributed_table('objects', 'bucket_id'); buckets becomes a reference table).
-- See docs/scaling.md and docs/decisions/0006-postgres-partitioning.md.

-- An identity never reuses an id, so a write still holding the id of a deleted bucket fails
-- (NoSuchBucket, via the foreign key) instead of landing in a newer bucket that got the same id.
CREATE TABLE buckets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text COLLATE "C" NOT NULL UNIQUE,
    owner_id    text NOT NULL,
    region      text NOT NULL,
    created_at  double precision NOT NULL,
    versioning  text NOT NULL DEFAULT '',     -- '', 'Enabled' or 'Suspended'
    object_lock jsonb,                        -- NULL when not configured
    policy_json text,                         -- the bucket policy document, NULL when none
    acl         jsonb,
    cors        jsonb,
    lifecycle   jsonb,
    tags        jsonb,
    settings    jsonb NOT NULL DEFAULT '{}'   -- anything else bucket-wide
);
CREATE INDEX buckets_owner ON buckets (owner_id, name);

CREATE TABLE objects (
    bucket_id        bigint NOT NULL REFERENCES buckets (id),  -- RESTRICT: a bucket with rows stays
    key              bytea NOT NULL,
    version_id       text COLLATE "C" NOT NULL,   -- 'null' while versioning is off
    is_latest        boolean NOT NULL DEFAULT true,
    is_delete_marker boolean NOT NULL DEFAULT false,
    size             bigint NOT NULL,
    etag             text NOT NULL,
    content_type     text NOT NULL,
    headers          jsonb NOT NULL DEFAULT '{}',
    user_metadata    jsonb NOT NULL DEFAULT '{}',
    checksums        jsonb NOT NULL DEFAULT '{}',
    storage_class    text NOT NULL DEFAULT 'STANDARD',
    last_modified    double precision NOT NULL,
    manifest         bytea NOT NULL,              -- n x (16-byte chunk id, 8-byte big-endian size)
    PRIMARY KEY (bucket_id, key, version_id)
) PARTITION BY HASH (bucket_id);
-- At most one latest version per key, enforced by the database: two writers racing to make
-- different versions latest cannot both commit (the loser retries and demotes the winner).
CREATE UNIQUE INDEX objects_one_latest ON objects (bucket_id, key) WHERE is_latest;
CREATE TABLE objects_p00 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 0);
CREATE TABLE objects_p01 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 1);
CREATE TABLE objects_p02 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 2);
CREATE TABLE objects_p03 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 3);
CREATE TABLE objects_p04 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 4);
CREATE TABLE objects_p05 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 5);
CREATE TABLE objects_p06 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 6);
CREATE TABLE objects_p07 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 7);
CREATE TABLE objects_p08 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 8);
CREATE TABLE objects_p09 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 9);
CREATE TABLE objects_p10 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 10);
CREATE TABLE objects_p11 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 11);
CREATE TABLE objects_p12 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 12);
CREATE TABLE objects_p13 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 13);
CREATE TABLE objects_p14 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 14);
CREATE TABLE objects_p15 PARTITION OF objects FOR VALUES WITH (MODULUS 16, REMAINDER 15);

-- Identity ids are never reused, so a late ack can never remove a newer entry.
CREATE TABLE gc_queue (
    bucket_id bigint NOT NULL,
    id        bigint GENERATED ALWAYS AS IDENTITY,
    chunk_id  bytea NOT NULL,
    queued_at double precision NOT NULL,
    PRIMARY KEY (bucket_id, id)
) PARTITION BY HASH (bucket_id);
CREATE INDEX gc_queue_id ON gc_queue (id);
CREATE TABLE gc_queue_p00 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 0);
CREATE TABLE gc_queue_p01 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 1);
CREATE TABLE gc_queue_p02 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 2);
CREATE TABLE gc_queue_p03 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 3);
CREATE TABLE gc_queue_p04 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 4);
CREATE TABLE gc_queue_p05 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 5);
CREATE TABLE gc_queue_p06 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 6);
CREATE TABLE gc_queue_p07 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 7);
CREATE TABLE gc_queue_p08 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 8);
CREATE TABLE gc_queue_p09 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 9);
CREATE TABLE gc_queue_p10 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 10);
CREATE TABLE gc_queue_p11 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 11);
CREATE TABLE gc_queue_p12 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 12);
CREATE TABLE gc_queue_p13 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 13);
CREATE TABLE gc_queue_p14 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 14);
CREATE TABLE gc_queue_p15 PARTITION OF gc_queue FOR VALUES WITH (MODULUS 16, REMAINDER 15);
