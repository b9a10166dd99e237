-- Pails metadata, SQLite, version 3: versioning.
-- ListObjectVersions reads a key's versions newest first, and deleting the latest version promotes
-- the newest remaining one: both seek on this index. last_modified is strictly increasing within
-- a key (every write makes it greater than the latest's), so it orders versions by age; "null"
-- versions included, whose id says nothing about their age.
CREATE INDEX objects_versions ON objects (bucket_id, key, last_modified DESC, version_id DESC);
