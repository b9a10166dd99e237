-- Pails metadata, PostgreSQL, version 5: the part sizes of objects completed from multipart
-- uploads (as SQLite's 0005_part_sizes.sql): a JSON array in part order, '[]' for an object
-- written in one piece and for rows written before this version. Added to the partitioned
-- parent, so every partition gets the column (a constant default: no table rewrite).
ALTER TABLE objects ADD COLUMN part_sizes jsonb NOT NULL DEFAULT '[]';
