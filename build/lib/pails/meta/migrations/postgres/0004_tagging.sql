-- Pails metadata, PostgreSQL, version 4: object tagging (as SQLite's 0004_tagging.sql).
-- Tags are part of an object version (each version keeps its own); an upload carries the
-- x-amz-tagging of CreateMultipartUpload onto the object it completes. Added to the partitioned
-- parents, so every partition gets the column (a constant default: no table rewrite).
-- Bucket tags live in buckets.tags (since version 1; NULL: no tag set).
ALTER TABLE objects ADD COLUMN tags jsonb NOT NULL DEFAULT '{}';
ALTER TABLE uploads ADD COLUMN tags jsonb NOT NULL DEFAULT '{}';
