-- Pails metadata, SQLite, version 4: object tagging.
-- Tags are part of an object version (each version keeps its own); an upload carries the
-- x-amz-tagging of CreateMultipartUpload onto the object it completes. JSON maps, like headers.
-- Bucket tags live in buckets.tags (since version 1; NULL: no tag set).
ALTER TABLE objects ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
ALTER TABLE uploads ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
