-- Pails metadata, PostgreSQL, version 7: authorization (as SQLite's 0007_access.sql).
-- The bucket's PublicAccessBlock, and the ACL of each object version and multipart upload
-- (JSON text; '' is the default private ACL). Added to the partitioned parents, so every
-- partition gets the column (a constant default: no table rewrite).
ALTER TABLE buckets ADD COLUMN public_access_block text;
ALTER TABLE objects ADD COLUMN acl text NOT NULL DEFAULT '';
ALTER TABLE uploads ADD COLUMN acl text NOT NULL DEFAULT '';
