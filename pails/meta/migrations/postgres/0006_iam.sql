-- Pails metadata, PostgreSQL, version 6 (as SQLite's 0006_iam.sql): IAM identities (accounts, users, access keys, groups, roles,
-- inline policies). Names are unique per account regardless of case, as in AWS: name_key is the
-- lower-cased name. Secrets are AES-GCM ciphertexts (pails.iam.secrets), never plain text.
-- The admin account (the server's root credentials) exists from the start, so that the buckets it
-- already owns keep their owner.
CREATE TABLE iam_accounts (
    account_id TEXT PRIMARY KEY,
    canonical_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    created_at double precision NOT NULL
);
INSERT INTO iam_accounts (account_id, canonical_id, name, name_key, created_at) VALUES (
    '000000000000', 'c2b5f28db79bee84a7396ba248f6de0f5117a60d86a97f4640b212066c12310f',
    'pails-root', 'pails-root', 0
);
CREATE TABLE iam_users (
    account_id TEXT NOT NULL REFERENCES iam_accounts (account_id),
    name_key TEXT NOT NULL,
    name TEXT NOT NULL,
    user_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (account_id, name_key)
);
CREATE TABLE iam_access_keys (
    access_key_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES iam_accounts (account_id),
    user_id TEXT REFERENCES iam_users (user_id),
    secret bytea NOT NULL,
    status TEXT NOT NULL,
    created_at double precision NOT NULL
);
CREATE INDEX iam_access_keys_owner ON iam_access_keys (account_id, user_id);
CREATE TABLE iam_groups (
    account_id TEXT NOT NULL REFERENCES iam_accounts (account_id),
    name_key TEXT NOT NULL,
    name TEXT NOT NULL,
    group_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (account_id, name_key)
);
CREATE TABLE iam_group_members (
    group_id TEXT NOT NULL REFERENCES iam_groups (group_id),
    user_id TEXT NOT NULL REFERENCES iam_users (user_id),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX iam_group_members_user ON iam_group_members (user_id);
CREATE TABLE iam_roles (
    account_id TEXT NOT NULL REFERENCES iam_accounts (account_id),
    name_key TEXT NOT NULL,
    name TEXT NOT NULL,
    role_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    trust_policy TEXT NOT NULL,
    max_session_duration INTEGER NOT NULL,
    description TEXT NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (account_id, name_key)
);
-- Inline policies of a user, group or role (owner_id is its unique id: AIDA..., AGPA..., AROA...).
CREATE TABLE iam_inline_policies (
    owner_id TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (owner_id, name)
);
