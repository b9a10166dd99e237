-- Pails metadata, PostgreSQL, version 8: cluster membership, the versioned ring, the repair queue
-- and the lease that elects one gateway to run the background jobs (as SQLite's 0008_cluster.sql).

CREATE TABLE nodes (
    node_id    text PRIMARY KEY,
    address    text NOT NULL,
    zone       text NOT NULL,
    weight     double precision NOT NULL,
    state      text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining', 'removed')),
    added_at   double precision NOT NULL,
    changed_at double precision NOT NULL
);
CREATE UNIQUE INDEX nodes_live_address ON nodes (address) WHERE state <> 'removed';

CREATE TABLE ring (
    version    bigint PRIMARY KEY,
    layout     text NOT NULL,
    created_at double precision NOT NULL
);

CREATE TABLE repair_queue (
    id        bigserial PRIMARY KEY,
    chunk_id  bytea NOT NULL,
    node_id   text NOT NULL,
    reason    text NOT NULL,
    queued_at double precision NOT NULL
);
CREATE INDEX repair_queue_node ON repair_queue (node_id);

CREATE TABLE leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at double precision NOT NULL
);
