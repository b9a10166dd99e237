-- Pails metadata, SQLite, version 7: authorization.
-- The bucket policy (buckets.policy_json) and bucket ACL (buckets.acl, JSON) have had columns
-- since version 1. New: the bucket's PublicAccessBlock (JSON, NULL: none), and the ACL of each
-- object version and of each multipart upload (carried onto the object it completes).
-- An empty ACL means the default: the owner (the bucket owner) has FULL_CONTROL.
ALTER TABLE buckets ADD COLUMN public_access_block TEXT;
ALTER TABLE objects ADD COLUMN acl TEXT NOT NULL DEFAULT '';
ALTER TABLE uploads ADD COLUMN acl TEXT NOT NULL DEFAULT '';
