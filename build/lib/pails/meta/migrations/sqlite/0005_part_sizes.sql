-- Pails metadata, SQLite, version 5: the part sizes of objects completed from multipart uploads.
-- A JSON array of the parts' sizes in part order (GET/HEAD ?partNumber=N answers one part's byte
-- range; GetObjectAttributes lists the parts); '[]' for an object written in one piece, and for
-- every row written before this version. Copies keep their source's parts layout.
ALTER TABLE objects ADD COLUMN part_sizes TEXT NOT NULL DEFAULT '[]';
