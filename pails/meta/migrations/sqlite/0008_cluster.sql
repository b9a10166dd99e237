-- Pails metadata, SQLite, version 8: cluster membership, the versioned ring, the repair queue and
-- the lease that elects one gateway to run the background jobs (issue 5, decision 0016).

CREATE TABLE nodes (
    node_id    TEXT PRIMARY KEY,
    address    TEXT NOT NULL,
    zone       TEXT NOT NULL,
    weight     REAL NOT NULL,
    state      TEXT NOT NULL DEFAULT 'active',  -- 'active', 'draining' or 'removed'
    added_at   REAL NOT NULL,
    changed_at REAL NOT NULL
);
-- One live (not removed) node per address.
CREATE UNIQUE INDEX nodes_live_address ON nodes (address) WHERE state <> 'removed';

CREATE TABLE ring (
    version    INTEGER PRIMARY KEY,
    layout     TEXT NOT NULL,   -- Ring.to_json()
    created_at REAL NOT NULL
);

-- Replicas to re-create on a node (a hinted write, a failed read, a corrupt or missing replica).
CREATE TABLE repair_queue (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id  BLOB NOT NULL,
    node_id   TEXT NOT NULL,
    reason    TEXT NOT NULL,
    queued_at REAL NOT NULL
);
CREATE INDEX repair_queue_node ON repair_queue (node_id);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL
);
