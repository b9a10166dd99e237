-- Pails metadata, PostgreSQL, version 3: versioning (as SQLite's 0003_versions.sql).
-- ListObjectVersions reads a key's versions newest first, and deleting the latest version promotes
-- the newest remaining one: both seek on this index (created on every partition of objects).
-- last_modified is strictly increasing within a key, so it orders versions by age, "null"
-- versions included, whose id says nothing about their age.
CREATE INDEX objects_versions ON objects (bucket_id, key, last_modified DESC, version_id DESC);
